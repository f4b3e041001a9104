//! Running one claimed job on the ML engine: inputs from blob storage,
//! training on a blocking thread, progress and checkpoints written back as
//! they happen, the result or the failure recorded with the attempt.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tenfold_app::job_worker::Produced;
use tenfold_app::{App, FailOutcome, LeasedJob};
use tenfold_domain::{FailureCode, JobKind};
use tenfold_ml::MlError;
use tenfold_ml::family::{Evaluated, Registry, Trained};
use tenfold_ml::train::{EpochRecord, Event, StepProgress};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::attempt::{AttemptSpec, run_in_process, run_spec};
use crate::workspace::Workspace;

/// Why a run was asked to stop early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Cancel,
    Shutdown,
    /// Another attempt owns the job: write nothing more.
    Lost,
}

/// The stop switch of one run: the engine polls the flag before every step.
#[derive(Default)]
pub struct Stop {
    pub flag: Arc<AtomicBool>,
    reason: Mutex<Option<StopReason>>,
}

impl Stop {
    /// Asks the run to stop: at the next step, except on shutdown, where it
    /// goes on to its next checkpoint (the epoch's end) so that the next
    /// attempt loses nothing, until `halt` (the grace period ran out).
    pub fn request(&self, reason: StopReason) {
        let mut current = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        // Losing the lease overrides anything: nothing may be written then.
        if current.is_none() || reason == StopReason::Lost {
            *current = Some(reason);
        }
        if reason != StopReason::Shutdown {
            self.halt();
        }
    }

    /// Stop at the next step.
    pub fn halt(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    pub fn reason(&self) -> Option<StopReason> {
        *self.reason.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Records how a run ended from the app's answer (false: the attempt lost
/// the job meanwhile).
pub fn written(result: tenfold_app::AppResult<bool>, ending: Ending) -> Ending {
    match result {
        Ok(true) => ending,
        Ok(false) => Ending::Lost,
        Err(e) => {
            // The database did not answer: leave the entry pending; the lease
            // runs out and the job is retried from its last checkpoint.
            warn!(error = %e, "recording the end of a job failed");
            Ending::Lost
        }
    }
}

/// How a run ended, for the broker entry.
#[derive(Debug, PartialEq)]
pub enum Ending {
    Succeeded,
    Failed(FailOutcome),
    Cancelled,
    Released,
    Lost,
}

pub struct ExecOptions {
    pub work_dir: PathBuf,
    pub device: String,
    pub step_event_interval: Duration,
}

/// Progress from the training thread or process, owned so it can cross threads.
pub(crate) enum Progress {
    Step(StepProgress),
    Epoch(EpochRecord),
    /// The engine waits for `stored` to be called before going on, so a
    /// checkpoint is in blob storage before the engine prunes its folder
    /// and before the next epoch's work depends on it.
    Checkpoint {
        epoch: usize,
        dir: PathBuf,
        stored: Box<dyn FnOnce() + Send>,
    },
}

/// A failure and whether retrying could help.
pub(crate) struct Failure {
    pub(crate) code: FailureCode,
    pub(crate) message: String,
    pub(crate) permanent: bool,
}

impl From<MlError> for Failure {
    fn from(e: MlError) -> Self {
        Self { code: e.code(), message: e.to_string(), permanent: e.is_permanent() }
    }
}

pub(crate) fn transient(code: FailureCode, e: impl std::fmt::Display) -> Failure {
    Failure { code, message: e.to_string(), permanent: false }
}

/// The dataset's local file: `data` with the upload's extension, which
/// some families' readers go by (`.jsonl` or `.csv`). Only a short
/// alphanumeric extension is kept: the name came from a user.
pub(crate) fn data_path(ws: &Workspace, lease: &LeasedJob) -> PathBuf {
    let ext = Path::new(&lease.dataset_file_name)
        .extension()
        .and_then(|e| e.to_str())
        .filter(|e| !e.is_empty() && e.len() <= 8 && e.chars().all(|c| c.is_ascii_alphanumeric()))
        .map(str::to_ascii_lowercase);
    ws.path(&ext.map_or_else(|| "data".to_owned(), |e| format!("data.{e}")))
}

/// An attempt's compute time, billed in pieces: each finished epoch as its
/// checkpoint is recorded, then the rest when the attempt ends. A worker
/// killed mid-epoch has billed every epoch it finished.
struct Meter {
    started: Instant,
    billed: Mutex<f64>,
}

impl Meter {
    fn new() -> Self {
        Self { started: Instant::now(), billed: Mutex::new(0.0) }
    }

    /// Seconds run since the last piece; they count as billed from now.
    fn take(&self) -> f64 {
        let now = self.started.elapsed().as_secs_f64();
        let mut billed = self.billed.lock().unwrap_or_else(|p| p.into_inner());
        let piece = (now - *billed).max(0.0);
        *billed = now;
        piece
    }
}

/// Writes progress as it comes; returns when the training thread is done.
async fn follow(app: &App, lease: &LeasedJob, stop: &Stop, meter: &Meter, mut rx: mpsc::UnboundedReceiver<Progress>, every: Duration) {
    let mut last_step: Option<Instant> = None;
    while let Some(progress) = rx.recv().await {
        if stop.reason() == Some(StopReason::Lost) {
            continue;
        }
        let written = match progress {
            Progress::Step(s) => {
                let due = last_step.is_none_or(|t| t.elapsed() >= every) || s.step == s.steps_per_epoch;
                if !due {
                    continue;
                }
                last_step = Some(Instant::now());
                let payload = json!({ "epoch": s.epoch, "epochs": s.epochs, "step": s.step, "stepsPerEpoch": s.steps_per_epoch,
                    "loss": s.loss, "lr": s.lr, "samplesPerS": s.samples_per_s, "etaSeconds": s.eta_seconds });
                app.append_job_events(lease, vec![("step", payload)]).await
            }
            Progress::Epoch(e) => {
                let payload = json!({ "epoch": e.epoch, "trainLoss": e.train_loss, "lr": e.lr, "gradNorm": e.grad_norm,
                    "val": e.val, "samplesPerS": e.samples_per_s, "seconds": e.seconds });
                app.append_job_events(lease, vec![("epoch", payload)]).await
            }
            Progress::Checkpoint { epoch, dir, stored } => {
                let recorded = match Workspace::store_all(app, lease.org, &dir).await {
                    Ok((files, size)) => app.record_checkpoint(lease, epoch as i32, files, size, meter.take()).await,
                    Err(e) => {
                        // Training goes on; the next epoch's checkpoint replaces this one.
                        warn!(job = %lease.fence.job, epoch, error = %e, "storing a checkpoint failed");
                        Ok(true)
                    }
                };
                // Shutting down: this checkpoint is what the next attempt resumes from.
                if matches!(recorded, Ok(true)) && stop.reason() == Some(StopReason::Shutdown) {
                    stop.halt();
                }
                stored();
                recorded
            }
        };
        match written {
            Ok(true) => {}
            Ok(false) => stop.request(StopReason::Lost),
            Err(e) => warn!(job = %lease.fence.job, error = %e, "writing progress failed"),
        }
    }
}

async fn prepare(app: &App, lease: &LeasedJob, ws: &Workspace) -> Result<(), Failure> {
    let storage =
        |e: anyhow::Error| transient(FailureCode::StorageUnavailable, format!("the job's files could not be read from storage: {e:#}"));
    Workspace::fetch(app, lease.org, &lease.dataset_sha256, &data_path(ws, lease)).await.map_err(storage)?;
    if let Some(files) = &lease.base {
        Workspace::fetch_all(app, lease.org, files, &ws.path("base")).await.map_err(storage)?;
    }
    if let Some(files) = &lease.teacher {
        Workspace::fetch_all(app, lease.org, files, &ws.path("teacher")).await.map_err(storage)?;
    }
    if let Some((epoch, files)) = &lease.checkpoint {
        let name = format!("epoch-{epoch:04}");
        let dir = ws.path("checkpoints");
        Workspace::fetch_all(app, lease.org, files, &dir.join(&name)).await.map_err(storage)?;
        std::fs::write(dir.join("latest"), &name).map_err(|e| transient(FailureCode::Io, e))?;
    }
    Ok(())
}

pub(crate) enum Done {
    Trained(Box<Trained>),
    Evaluated(Box<Evaluated>),
}

/// The attempt as its process needs it; the workspace's files are in place.
fn attempt_spec(lease: &LeasedJob, ws: &Workspace, opts: &ExecOptions, limit_override_mb: Option<u64>) -> AttemptSpec {
    let base = lease.base.as_ref().map(|_| ws.path("base"));
    AttemptSpec {
        family: lease.job.family,
        kind: lease.job.kind,
        data: data_path(ws, lease),
        out: ws.path("out"),
        model: (lease.job.kind == JobKind::Evaluate).then(|| ws.path("base")),
        // From scratch the job names it; fine-tuning takes the base model's.
        architecture: if base.is_some() { None } else { lease.job.architecture.clone() },
        hyperparameters: lease.job.hyperparameters.clone(),
        base,
        teacher: lease.teacher.as_ref().map(|_| ws.path("teacher")),
        device: opts.device.clone(),
        checkpoint_dir: ws.path("checkpoints"),
        resume: lease.checkpoint.is_some(),
        memory_limit_mb: Some(limit_override_mb.unwrap_or_else(|| attempt_memory_limit_mb(lease.job.memory_mb))),
    }
}

/// The address space an attempt may use: its estimate with room for what
/// an estimate cannot see (allocator arenas, thread stacks, libraries).
fn attempt_memory_limit_mb(estimate_mb: i32) -> u64 {
    let estimate = u64::try_from(estimate_mb.max(64)).unwrap_or(64);
    (estimate * 3 / 2).max(estimate + 512)
}

/// Where attempts run.
#[derive(Debug, Clone)]
pub enum Attempts {
    /// On a blocking thread of the worker (tests with families the
    /// `tenfold` binary does not have; benchmarks).
    InThread,
    /// In a child process of `program` (`tenfold attempt`), one per attempt,
    /// with an address-space limit: the job's estimate with headroom, or
    /// `memory_limit_mb` for every attempt when set.
    InProcess { program: PathBuf, memory_limit_mb: Option<u64> },
}

async fn run_engine(
    ex: &MlExecutor,
    app: &App,
    lease: &LeasedJob,
    ws: &Workspace,
    stop: &Stop,
    meter: &Meter,
    opts: &ExecOptions,
) -> Result<Done, Failure> {
    if let Attempts::InProcess { program, memory_limit_mb } = &ex.attempts {
        let spec = attempt_spec(lease, ws, opts, *memory_limit_mb);
        let (tx, rx) = mpsc::unbounded_channel();
        let spec_path = ws.path("attempt.json");
        let run = run_in_process(program, &spec, &spec_path, lease.fence.job, stop, tx);
        let (done, ()) = tokio::join!(run, follow(app, lease, stop, meter, rx, opts.step_event_interval));
        return done;
    }
    // On a blocking thread of this process, with the same spec and runner
    // as an attempt process.
    let spec = attempt_spec(lease, ws, opts, None);
    let families = ex.families.clone();
    let flag = stop.flag.clone();
    let (tx, rx) = mpsc::unbounded_channel();
    let run = tokio::task::spawn_blocking(move || {
        let mut on_event = |event: Event<'_>| {
            let progress = match event {
                Event::Step(s) => Progress::Step(s.clone()),
                Event::Epoch(e) => Progress::Epoch(e.clone()),
                Event::Checkpoint { epoch, dir } => {
                    let (stored, wait) = std::sync::mpsc::sync_channel(1);
                    let stored = Box::new(move || {
                        let _ = stored.send(());
                    });
                    let _ = tx.send(Progress::Checkpoint { epoch, dir: dir.to_path_buf(), stored });
                    // Bounded: a storage outage must not hang the run forever.
                    let _ = wait.recv_timeout(Duration::from_secs(300));
                    return;
                }
            };
            let _ = tx.send(progress);
        };
        run_spec(&families, &spec, &flag, &mut on_event)
    });
    follow(app, lease, stop, meter, rx, opts.step_event_interval).await;
    Ok(run.await.map_err(|e| transient(FailureCode::WorkerPanic, format!("the attempt crashed: {e}")))??)
}

async fn produced(app: &App, lease: &LeasedJob, out: &Path, trained: &Trained, seconds: f64) -> Result<Produced, Failure> {
    let (files, size) = Workspace::store_all(app, lease.org, out)
        .await
        .map_err(|e| transient(FailureCode::StorageUnavailable, format!("storing the model failed: {e:#}")))?;
    // The card the engine just wrote names the engine, split and seed.
    let card = tenfold_ml::artifact::read_card(out).ok();
    Ok(Produced {
        architecture: trained.architecture.clone(),
        classes: trained.classes.clone(),
        files,
        size_bytes: size,
        metrics: trained.summary.clone(),
        compute_seconds: seconds,
        engine: card.as_ref().map(|c| c.engine.clone()),
        training: card.map(|c| c.training).unwrap_or(serde_json::Value::Null),
    })
}

/// What runs a claimed job. The worker's loops (claims, leases,
/// heartbeats, acknowledgements) are the same for every kind of work; the
/// executor does the work and records how it ended through the app's
/// fenced writes.
#[async_trait::async_trait]
pub trait Executor: Send + Sync + 'static {
    async fn execute(&self, app: &App, lease: &LeasedJob, stop: &Stop, opts: &ExecOptions) -> Ending;
}

/// Jobs of every registered family on the ML engine.
pub struct MlExecutor {
    families: Registry,
    attempts: Attempts,
}

impl MlExecutor {
    /// Attempts on threads of the worker.
    pub fn new(families: Registry) -> Self {
        Self { families, attempts: Attempts::InThread }
    }

    /// Attempts in child processes of the `tenfold` binary at `program`.
    pub fn in_processes(families: Registry, program: PathBuf, memory_limit_mb: Option<u64>) -> Self {
        Self { families, attempts: Attempts::InProcess { program, memory_limit_mb } }
    }
}

#[async_trait::async_trait]
impl Executor for MlExecutor {
    async fn execute(&self, app: &App, lease: &LeasedJob, stop: &Stop, opts: &ExecOptions) -> Ending {
        execute(self, app, lease, stop, opts).await
    }
}

/// Runs a claimed job to its end and records that end.
async fn execute(ex: &MlExecutor, app: &App, lease: &LeasedJob, stop: &Stop, opts: &ExecOptions) -> Ending {
    let meter = Meter::new();
    let ws = match Workspace::create(&opts.work_dir, lease.fence.job, lease.fence.attempt) {
        Ok(ws) => ws,
        Err(e) => {
            return record_failure(app, lease, transient(FailureCode::Io, format!("the work folder cannot be created: {e}")), 0.0).await;
        }
    };
    let outcome = match prepare(app, lease, &ws).await {
        Ok(()) => run_engine(ex, app, lease, &ws, stop, &meter, opts).await,
        Err(f) => Err(f),
    };
    // Messages reach users (the job, emails, webhooks): no worker paths.
    let root = format!("{}/", ws.root.display());
    let outcome = outcome.map_err(|f| Failure { message: f.message.replace(&root, ""), ..f });
    // The rest of the attempt, after its last billed epoch.
    let seconds = meter.take();
    let result = match outcome {
        Ok(Done::Trained(trained)) => match produced(app, lease, &ws.path("out"), &trained, seconds).await {
            Ok(p) => app.succeed_job(lease, p).await,
            Err(f) => return record_failure(app, lease, f, seconds).await,
        },
        Ok(Done::Evaluated(e)) => {
            let p = Produced {
                architecture: lease.job.architecture.clone().unwrap_or_default(),
                classes: Vec::new(),
                files: Default::default(),
                size_bytes: 0,
                metrics: e.summary.clone(),
                compute_seconds: seconds,
                engine: None,
                training: serde_json::Value::Null,
            };
            app.succeed_job(lease, p).await
        }
        Err(f) if f.code == FailureCode::Cancelled => {
            return match stop.reason() {
                Some(StopReason::Shutdown) => written(app.release_job(lease, seconds).await, Ending::Released),
                Some(StopReason::Lost) => Ending::Lost,
                _ => written(app.cancelled_job(lease, seconds).await, Ending::Cancelled),
            };
        }
        Err(f) => return record_failure(app, lease, f, seconds).await,
    };
    written(result, Ending::Succeeded)
}

pub(crate) async fn record_failure(app: &App, lease: &LeasedJob, f: Failure, seconds: f64) -> Ending {
    info!(job = %lease.fence.job, attempt = lease.fence.attempt, code = %f.code, permanent = f.permanent, error = %f.message, "job attempt failed");
    match app.fail_job(lease, f.code, &f.message, f.permanent, seconds).await {
        Ok(FailOutcome::Lost) => Ending::Lost,
        Ok(outcome) => Ending::Failed(outcome),
        Err(e) => {
            warn!(error = %e, "recording a job failure failed");
            Ending::Lost
        }
    }
}
