//! The validation pool's executor: checks one uploaded dataset version
//! (a VALIDATE job) with the datasets crate's validators, on a blocking
//! thread of the worker, and records READY or INVALID through the app's
//! fenced write. Decoding images and reading large files happen here, never
//! on an API server.

use tenfold_app::{App, LeasedJob};
use tenfold_datasets::Limits;
use tenfold_domain::{FailureCode, JobKind};

use crate::execute::{Ending, ExecOptions, Executor, Failure, Stop, StopReason, data_path, record_failure, transient, written};
use crate::workspace::Workspace;

/// Runs VALIDATE jobs.
pub struct Validator;

#[async_trait::async_trait]
impl Executor for Validator {
    async fn execute(&self, app: &App, lease: &LeasedJob, stop: &Stop, opts: &ExecOptions) -> Ending {
        if lease.job.kind != JobKind::Validate {
            let message = format!("a {} job reached the validation pool; it runs on training workers", lease.job.kind);
            return record_failure(app, lease, Failure { code: FailureCode::Internal, message, permanent: true }, 0.0).await;
        }
        let ws = match Workspace::create(&opts.work_dir, lease.fence.job, lease.fence.attempt) {
            Ok(ws) => ws,
            Err(e) => {
                return record_failure(app, lease, transient(FailureCode::Io, format!("the work folder cannot be created: {e}")), 0.0)
                    .await;
            }
        };
        let path = data_path(&ws, lease);
        if let Err(e) = Workspace::fetch(app, lease.org, &lease.dataset_sha256, &path).await {
            let f = transient(FailureCode::StorageUnavailable, format!("the upload could not be read from storage: {e:#}"));
            return record_failure(app, lease, f, 0.0).await;
        }
        let (family, file_name) = (lease.job.family, lease.dataset_file_name.clone());
        let checked = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            let file = std::fs::File::open(&path)?;
            Ok(tenfold_datasets::validate_file(family, &file_name, file, &Limits::default()))
        });
        // A validation has no checkpoint: when the worker must stop (its
        // shutdown grace ran out) or lost the lease, it gives the job back
        // instead of being killed mid-way, which would count as a failure.
        let checked = tokio::select! {
            done = checked => done,
            () = halted(stop) => {
                return match stop.reason() {
                    Some(StopReason::Lost) => Ending::Lost,
                    _ => written(app.release_job(lease, 0.0).await, Ending::Released),
                };
            }
        };
        drop(ws);
        match checked {
            Ok(Ok(outcome)) => written(app.finish_validation(lease, &outcome).await, Ending::Succeeded),
            Ok(Err(e)) => record_failure(app, lease, transient(FailureCode::Io, format!("the upload could not be read: {e}")), 0.0).await,
            // The same bytes would panic again: no retry.
            Err(e) => {
                let f = Failure { code: FailureCode::WorkerPanic, message: format!("the validator crashed: {e}"), permanent: true };
                record_failure(app, lease, f, 0.0).await
            }
        }
    }
}

/// Resolves once the run is told to stop at once (a cancel is refused for
/// validations, so: the lease was lost, or the shutdown grace ran out).
async fn halted(stop: &Stop) {
    while !stop.flag.load(std::sync::atomic::Ordering::SeqCst) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
