//! The child side: `tenfold attempt --spec FILE`.

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tenfold_domain::{FailureCode, JobKind};
use tenfold_ml::MlError;
use tenfold_ml::device::parse_device;
use tenfold_ml::family::{Registry, TrainJob, Trained};
use tenfold_ml::train::{Control, Event};

use super::{AttemptSpec, ChildMessage, STOP, STORED};
use crate::execute::Done;

/// Writes one message as a JSON line; a closed stdout (the worker is gone)
/// stops the run at its next step.
fn send(message: &ChildMessage, gone: &AtomicBool) {
    let Ok(line) = serde_json::to_string(message) else { return };
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        gone.store(true, Ordering::SeqCst);
    }
}

/// Runs the attempt described in `spec_path`; the process exit status.
pub fn child_main(families: &Registry, spec_path: &Path) -> i32 {
    let cancel = Arc::new(AtomicBool::new(false));
    let spec: AttemptSpec =
        match std::fs::read(spec_path).map_err(|e| e.to_string()).and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string())) {
            Ok(s) => s,
            Err(e) => {
                let message = format!("the attempt's spec {} cannot be read: {e}", spec_path.display());
                send(&ChildMessage::Failed { code: FailureCode::Internal, message, permanent: false }, &cancel);
                return 1;
            }
        };
    // Threads first (the compute pool, the stdin reader): the limit below
    // is for the job's data, not for thread stacks.
    let (stored_tx, stored_rx) = std::sync::mpsc::channel::<()>();
    let stop = cancel.clone();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line.as_deref().map(str::trim) {
                Ok(STOP) => stop.store(true, Ordering::SeqCst),
                Ok(STORED) => {
                    let _ = stored_tx.send(());
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        // The worker is gone (or closed the pipe): stop at the next step.
        stop.store(true, Ordering::SeqCst);
    });
    tenfold_ml::start_threads();
    if let Some(mb) = spec.memory_limit_mb {
        // On top of what the process has mapped already (the allocator
        // reserves its arenas at start, before this line can run).
        let bytes = mb.saturating_mul(1024 * 1024).saturating_add(mapped_bytes());
        // Linux and the BSDs offer it; elsewhere the job runs unlimited.
        if let Err(e) = rlimit::setrlimit(rlimit::Resource::AS, bytes, bytes) {
            eprintln!("tenfold attempt: the memory limit of {mb} MiB could not be set: {e}");
        }
    }
    let gone = cancel.clone();
    let mut on_event = |event: Event<'_>| match event {
        Event::Step(s) => send(&ChildMessage::Step(s.clone()), &gone),
        Event::Epoch(e) => send(&ChildMessage::Epoch(e.clone()), &gone),
        Event::Checkpoint { epoch, dir } => {
            send(&ChildMessage::Checkpoint { epoch, dir: dir.to_path_buf() }, &gone);
            // Bounded: a storage outage must not hang the run forever.
            let _ = stored_rx.recv_timeout(Duration::from_secs(300));
        }
    };
    let message = match run_spec(families, &spec, &cancel, &mut on_event) {
        Ok(Done::Trained(t)) => {
            let Trained { architecture, classes, summary, text } = *t;
            ChildMessage::Trained { architecture, classes, summary, text }
        }
        Ok(Done::Evaluated(e)) => ChildMessage::Evaluated { summary: e.summary, report: e.report },
        Err(e) => ChildMessage::Failed { code: e.code(), message: e.to_string(), permanent: e.is_permanent() },
    };
    send(&message, &cancel);
    0
}

/// The process's mapped address space now (`VmSize`), 0 where unknown.
fn mapped_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Runs the attempt `spec` describes, reporting the engine's events to
/// `on_event`: the one way an attempt runs, in its own process (here) or on
/// a worker thread (`MlExecutor::new`).
pub(crate) fn run_spec(
    families: &Registry,
    spec: &AttemptSpec,
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Done, MlError> {
    let family = families.get(spec.family)?;
    let device = parse_device(&spec.device)?;
    if spec.kind == JobKind::Evaluate {
        let model = spec.model.as_deref().ok_or_else(|| MlError::arg("model", "an evaluation needs the model directory"))?;
        return Ok(Done::Evaluated(Box::new(family.evaluate(model, &spec.data, &device)?)));
    }
    let job = TrainJob {
        kind: spec.kind,
        data: &spec.data,
        out: &spec.out,
        architecture: spec.architecture.as_deref(),
        hyperparameters: &spec.hyperparameters,
        base: spec.base.as_deref(),
        teacher: spec.teacher.as_deref(),
        device: &device,
    };
    let control = Control { on_event, cancel: Some(cancel), checkpoint_dir: Some(&spec.checkpoint_dir), resume: spec.resume };
    Ok(Done::Trained(Box::new(family.train(&job, control)?)))
}
