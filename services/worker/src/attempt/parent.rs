//! The worker side: starts the attempt process, turns its messages into
//! progress, answers its checkpoints, passes on a cancel, and reads how it
//! ended from its result or, when it died, from its exit status.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tenfold_domain::FailureCode;
use tenfold_ml::family::{Evaluated, Trained};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;
use tracing::{info, warn};
use uuid::Uuid;

use super::{AttemptSpec, ChildMessage, STOP, STORED};
use crate::execute::{Done, Failure, Progress, Stop, StopReason, transient};

/// Runs `spec` in a child process of `program` (the `tenfold` binary),
/// sending its progress to `progress` until it ends.
pub(crate) async fn run_in_process(
    program: &Path,
    spec: &AttemptSpec,
    spec_path: &Path,
    job: Uuid,
    stop: &Stop,
    progress: mpsc::UnboundedSender<Progress>,
) -> Result<Done, Failure> {
    let raw = serde_json::to_vec(spec).map_err(|e| transient(FailureCode::Internal, e))?;
    std::fs::write(spec_path, raw).map_err(|e| transient(FailureCode::Io, format!("the attempt's spec cannot be written: {e}")))?;
    let mut child = Command::new(program)
        .arg("attempt")
        .arg("--spec")
        .arg(spec_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        // A worker that stops without waiting takes its attempts with it.
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| transient(FailureCode::WorkerPanic, format!("the attempt process could not start: {e}")))?;
    info!(job = %job, pid = child.id(), memory_limit_mb = spec.memory_limit_mb, "attempt process started");
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(transient(FailureCode::WorkerPanic, "the attempt process has no pipes"));
    };
    let (answers, mut to_send) = mpsc::unbounded_channel::<&'static str>();
    let writer = tokio::spawn(async move {
        while let Some(line) = to_send.recv().await {
            if stdin.write_all(format!("{line}\n").as_bytes()).await.is_err() || stdin.flush().await.is_err() {
                break;
            }
        }
    });
    let mut lines = BufReader::new(stdout).lines();
    let mut result = None;
    let mut stop_sent = false;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) => match serde_json::from_str::<ChildMessage>(&line) {
                    Ok(ChildMessage::Step(s)) => { let _ = progress.send(Progress::Step(s)); }
                    Ok(ChildMessage::Epoch(e)) => { let _ = progress.send(Progress::Epoch(e)); }
                    Ok(ChildMessage::Checkpoint { epoch, dir }) => {
                        let ack = answers.clone();
                        let stored = Box::new(move || { let _ = ack.send(STORED); });
                        let _ = progress.send(Progress::Checkpoint { epoch, dir, stored });
                    }
                    Ok(end) => result = Some(end),
                    Err(e) => warn!(job = %job, error = %e, "an unreadable line from the attempt process"),
                },
                Ok(None) | Err(_) => break,
            },
            _ = tick.tick() => {
                if stop.reason() == Some(StopReason::Lost) {
                    // Another attempt owns the job: nothing of this one may go on.
                    let _ = child.start_kill();
                } else if !stop_sent && stop.flag.load(std::sync::atomic::Ordering::SeqCst) {
                    stop_sent = true;
                    let _ = answers.send(STOP);
                }
            }
        }
    }
    // Progress ends here; the follower drains what was sent.
    drop(progress);
    let status = child.wait().await;
    drop(answers);
    writer.abort();
    match result {
        Some(ChildMessage::Trained { architecture, classes, summary, text }) => {
            Ok(Done::Trained(Box::new(Trained { architecture, classes, summary, text })))
        }
        Some(ChildMessage::Evaluated { summary, report }) => Ok(Done::Evaluated(Box::new(Evaluated { summary, report }))),
        Some(ChildMessage::Failed { code, message, permanent }) => Err(Failure { code, message, permanent }),
        Some(ChildMessage::Step(_) | ChildMessage::Epoch(_) | ChildMessage::Checkpoint { .. }) | None => {
            Err(died(status.ok(), spec.memory_limit_mb))
        }
    }
}

/// Why an attempt process ended without a result.
fn died(status: Option<std::process::ExitStatus>, memory_limit_mb: Option<u64>) -> Failure {
    #[cfg(unix)]
    let signal = status.and_then(|s| std::os::unix::process::ExitStatusExt::signal(&s));
    #[cfg(not(unix))]
    let signal: Option<i32> = None;
    match (signal, memory_limit_mb) {
        // An allocation refused under the address-space limit aborts the process.
        (Some(6), Some(mb)) => Failure {
            code: FailureCode::OutOfMemory,
            message: format!(
                "the training process needed more than the {mb} MiB it was given; use a smaller batch size, image size or architecture"
            ),
            permanent: true,
        },
        (Some(9), _) => transient(
            FailureCode::WorkerPanic,
            "the training process was killed (signal 9), e.g. by the operating system when memory ran out",
        ),
        (Some(sig), _) => transient(FailureCode::WorkerPanic, format!("the training process crashed (signal {sig})")),
        (None, _) => transient(
            FailureCode::WorkerPanic,
            format!("the training process ended without a result ({})", status.map_or_else(|| "unknown status".into(), |s| s.to_string())),
        ),
    }
}
