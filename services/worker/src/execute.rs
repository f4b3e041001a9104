//! Running one claimed job on the ML engine: inputs from blob storage,
//! training on a blocking thread, progress and checkpoints written back as
//! they happen, the result or the failure recorded with the attempt.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tenfold_app::job_worker::Produced;
use tenfold_app::{App, FailOutcome, LeasedJob};
use tenfold_domain::Hyperparameters;
use tenfold_ml::MlError;
use tenfold_ml::device::parse_device;
use tenfold_ml::image::data::{Augment, SplitSpec};
use tenfold_ml::image::{Evaluation, Report, Teacher, TrainRequest};
use tenfold_ml::optim::OptimizerConfig;
use tenfold_ml::schedule::Schedule;
use tenfold_ml::train::{Control, EarlyStopping, EpochRecord, Event, StepProgress, TrainConfig};
use tokio::sync::mpsc;
use tracing::{info, warn};

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

/// Progress from the training thread, owned so it can cross threads.
enum Progress {
    Step(StepProgress),
    Epoch(EpochRecord),
    /// The training thread waits for `stored` before going on, so a
    /// checkpoint is in blob storage before the engine prunes its folder
    /// and before the next epoch's work depends on it.
    Checkpoint {
        epoch: usize,
        dir: PathBuf,
        stored: std::sync::mpsc::SyncSender<()>,
    },
}

/// A failure and whether retrying could help.
struct Failure {
    code: String,
    message: String,
    permanent: bool,
}

impl From<MlError> for Failure {
    fn from(e: MlError) -> Self {
        Self { code: e.code().to_owned(), message: e.to_string(), permanent: e.is_permanent() }
    }
}

fn transient(code: &str, e: impl std::fmt::Display) -> Failure {
    Failure { code: code.to_owned(), message: e.to_string(), permanent: false }
}

fn train_request(h: &Hyperparameters, lease: &LeasedJob, ws: &Workspace, device: &str) -> Result<TrainRequest, MlError> {
    let lr = h.learning_rate;
    let epochs = h.epochs as usize;
    let mut schedule = Schedule::parse(&h.schedule, lr, epochs).map_err(|e| MlError::arg("schedule", e.to_string()))?;
    schedule.warmup_steps = h.warmup_steps as usize;
    let base = lease.base.as_ref().map(|_| ws.path("base"));
    Ok(TrainRequest {
        data: ws.path("data.zip"),
        out: ws.path("out"),
        // From scratch the job names it; fine-tuning takes the base model's.
        architecture: if base.is_some() { None } else { lease.job.architecture.clone() },
        config: TrainConfig {
            epochs,
            batch_size: h.batch_size as usize,
            optimizer: OptimizerConfig::parse(&h.optimizer).map_err(|e| MlError::arg("optimizer", e.to_string()))?,
            schedule,
            clip_grad_norm: h.clip_grad_norm,
            early_stopping: h.patience.map(|p| EarlyStopping { patience: p as usize, min_delta: 0.0 }),
            seed: h.seed,
        },
        split: SplitSpec::parse(&h.split).map_err(|e| MlError::arg("split", e.to_string()))?,
        augment: Augment::parse(&h.augment).map_err(|e| MlError::arg("augment", e.to_string()))?,
        image_size: h.image_size.map(|s| s as usize),
        base,
        freeze_backbone: h.freeze_backbone,
        teacher: lease.teacher.as_ref().map(|_| Teacher { dir: ws.path("teacher"), alpha: h.alpha, temperature: h.temperature }),
        device: parse_device(device)?,
    })
}

fn evaluation_summary(e: &Evaluation) -> Value {
    json!({
        "split": e.split,
        "examples": e.metrics.examples,
        "accuracy": e.metrics.accuracy,
        "macro_f1": e.metrics.macro_f1,
        "weighted_f1": e.metrics.weighted_f1,
        "ece": e.metrics.ece,
        "top_k": e.metrics.top_k,
        "parameters": e.parameters,
        "artifact_bytes": e.artifact_bytes,
        "latency_ms_per_image": { "batch_1": e.latency_ms_per_image.batch_1_ms, "batch_64": e.latency_ms_per_image.batch_64_ms },
    })
}

fn report_summary(r: &Report) -> Value {
    let mut v = r.evaluation.as_ref().map_or_else(|| json!({}), evaluation_summary);
    if let Some(map) = v.as_object_mut() {
        map.insert("task".into(), json!(r.task));
        map.insert("architecture".into(), json!(r.architecture));
        map.insert("classes".into(), json!(r.classes.len()));
        map.insert("epochs_run".into(), json!(r.training.history.len()));
        map.insert("best_epoch".into(), json!(r.training.best_epoch));
        map.insert("stopped_early".into(), json!(r.training.stopped_early));
        map.insert("resumed_from_epoch".into(), json!(r.training.resumed_from_epoch));
        map.insert("samples_per_s".into(), json!(r.training.samples_per_s));
        if let Some(d) = &r.distillation {
            map.insert(
                "distillation".into(),
                json!({ "accuracy_retained": d.accuracy_retained, "parameter_ratio": d.parameter_ratio, "beats_baseline": d.beats_baseline, "verdict": d.verdict }),
            );
        }
    }
    v
}

/// Writes progress as it comes; returns when the training thread is done.
async fn follow(app: &App, lease: &LeasedJob, stop: &Stop, mut rx: mpsc::UnboundedReceiver<Progress>, every: Duration) {
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
                    Ok((files, size)) => app.record_checkpoint(lease, epoch as i32, files, size).await,
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
                let _ = stored.send(());
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
    let storage = |e: anyhow::Error| transient("storage_unavailable", format!("the job's files could not be read from storage: {e:#}"));
    Workspace::fetch(app, lease.org, &lease.dataset_sha256, &ws.path("data.zip")).await.map_err(storage)?;
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
        std::fs::write(dir.join("latest"), &name).map_err(|e| transient("io", e))?;
    }
    Ok(())
}

enum Done {
    Trained(Box<Report>),
    Evaluated(Box<Evaluation>),
}

async fn run_engine(app: &App, lease: &LeasedJob, ws: &Workspace, stop: &Stop, opts: &ExecOptions) -> Result<Done, Failure> {
    let device = opts.device.clone();
    let flag = stop.flag.clone();
    if lease.job.kind == "EVALUATE" {
        let (model, data) = (ws.path("base"), ws.path("data.zip"));
        let evaluation = tokio::task::spawn_blocking(move || tenfold_ml::image::evaluate(&model, &data, &parse_device(&device)?))
            .await
            .map_err(|e| transient("worker_panic", format!("the evaluation crashed: {e}")))??;
        return Ok(Done::Evaluated(Box::new(evaluation)));
    }
    let request = train_request(&lease.job.hyperparameters, lease, ws, &device)?;
    let checkpoints = ws.path("checkpoints");
    let resume = lease.checkpoint.is_some();
    let (tx, rx) = mpsc::unbounded_channel();
    let training = tokio::task::spawn_blocking(move || {
        let mut on_event = |event: Event<'_>| {
            let progress = match event {
                Event::Step(s) => Progress::Step(s.clone()),
                Event::Epoch(e) => Progress::Epoch(e.clone()),
                Event::Checkpoint { epoch, dir } => {
                    let (stored, wait) = std::sync::mpsc::sync_channel(1);
                    let _ = tx.send(Progress::Checkpoint { epoch, dir: dir.to_path_buf(), stored });
                    // Bounded: a storage outage must not hang the run forever.
                    let _ = wait.recv_timeout(Duration::from_secs(300));
                    return;
                }
            };
            let _ = tx.send(progress);
        };
        let control = Control { on_event: &mut on_event, cancel: Some(&flag), checkpoint_dir: Some(&checkpoints), resume };
        tenfold_ml::image::train(&request, control)
    });
    follow(app, lease, stop, rx, opts.step_event_interval).await;
    let report = training.await.map_err(|e| transient("worker_panic", format!("training crashed: {e}")))??;
    Ok(Done::Trained(Box::new(report)))
}

async fn produced(app: &App, lease: &LeasedJob, out: &Path, report: &Report, seconds: f64) -> Result<Produced, Failure> {
    let (files, size) = Workspace::store_all(app, lease.org, out)
        .await
        .map_err(|e| transient("storage_unavailable", format!("storing the model failed: {e:#}")))?;
    Ok(Produced {
        architecture: report.architecture.clone(),
        classes: report.classes.clone(),
        files,
        size_bytes: size,
        metrics: report_summary(report),
        compute_seconds: seconds,
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

/// Jobs of the image family on the ML engine.
pub struct MlExecutor;

#[async_trait::async_trait]
impl Executor for MlExecutor {
    async fn execute(&self, app: &App, lease: &LeasedJob, stop: &Stop, opts: &ExecOptions) -> Ending {
        execute(app, lease, stop, opts).await
    }
}

/// Runs a claimed job to its end and records that end.
async fn execute(app: &App, lease: &LeasedJob, stop: &Stop, opts: &ExecOptions) -> Ending {
    let started = Instant::now();
    let ws = match Workspace::create(&opts.work_dir, lease.fence.job, lease.fence.attempt) {
        Ok(ws) => ws,
        Err(e) => return record_failure(app, lease, transient("io", format!("the work folder cannot be created: {e}")), 0.0).await,
    };
    let outcome = match prepare(app, lease, &ws).await {
        Ok(()) => run_engine(app, lease, &ws, stop, opts).await,
        Err(f) => Err(f),
    };
    // Messages reach users (the job, emails, webhooks): no worker paths.
    let root = format!("{}/", ws.root.display());
    let outcome = outcome.map_err(|f| Failure { message: f.message.replace(&root, ""), ..f });
    let seconds = started.elapsed().as_secs_f64();
    let result = match outcome {
        Ok(Done::Trained(report)) => match produced(app, lease, &ws.path("out"), &report, seconds).await {
            Ok(p) => app.succeed_job(lease, p).await,
            Err(f) => return record_failure(app, lease, f, seconds).await,
        },
        Ok(Done::Evaluated(e)) => {
            let p = Produced {
                architecture: lease.job.architecture.clone().unwrap_or_default(),
                classes: Vec::new(),
                files: Default::default(),
                size_bytes: 0,
                metrics: evaluation_summary(&e),
                compute_seconds: seconds,
            };
            app.succeed_job(lease, p).await
        }
        Err(f) if f.code == "cancelled" => {
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

async fn record_failure(app: &App, lease: &LeasedJob, f: Failure, seconds: f64) -> Ending {
    info!(job = %lease.fence.job, attempt = lease.fence.attempt, code = %f.code, permanent = f.permanent, error = %f.message, "job attempt failed");
    match app.fail_job(lease, &f.code, &f.message, f.permanent, seconds).await {
        Ok(FailOutcome::Lost) => Ending::Lost,
        Ok(outcome) => Ending::Failed(outcome),
        Err(e) => {
            warn!(error = %e, "recording a job failure failed");
            Ending::Lost
        }
    }
}
