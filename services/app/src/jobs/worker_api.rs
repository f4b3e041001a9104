//! What workers do to jobs, as the app's use cases. None of these take a
//! `Principal`: only the worker process calls them, and every write after
//! the claim is fenced by the attempt the worker holds.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tenfold_broker::{JobMessage, JobQueue};
use tenfold_config::JobSettings;
use tenfold_domain::{FailureCode, JobKind, JobStatus, OrgId};
use tenfold_store::entities::{job_checkpoints, model_versions, usage_records, workers};
use tenfold_store::queries::datasets;
use tenfold_store::queries::dispatch::{self, Capability};
use tenfold_store::queries::jobs::{self, Claim, Fence, Finish, NewEvent};
use tenfold_store::{BlobStore, Tx};
use tracing::{info, warn};
use uuid::Uuid;

use super::views::{JobView, job_view};
use super::{WAKE_TOPIC, job_topic};
use crate::App;
use crate::error::{AppError, AppResult};
use crate::models::{Lineage, file_version, model_for_version};

/// Artifact files by name → sha256 in blob storage.
pub type Files = BTreeMap<String, String>;

/// A job a worker holds, with what it needs to run it.
#[derive(Debug, Clone)]
pub struct LeasedJob {
    pub org: OrgId,
    pub fence: Fence,
    pub job: JobView,
    pub dataset_sha256: String,
    pub dataset_file_name: String,
    pub base: Option<Files>,
    pub teacher: Option<Files>,
    /// The newest checkpoint (epoch, files), to resume from.
    pub checkpoint: Option<(i32, Files)>,
    /// The previous attempt's worker stopped answering.
    pub took_over: bool,
}

pub enum Claimed {
    Run(Box<LeasedJob>),
    /// Nothing to run (finished, cancelled, held by a live worker, gone).
    Skip(&'static str),
    /// The job used up its attempts: it is FAILED now; dead-letter its entry.
    GaveUp(String),
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    Yes {
        cancel_requested: bool,
    },
    /// Another attempt owns the job now: stop, write nothing more.
    Lost,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FailOutcome {
    Retrying {
        after: Duration,
    },
    Failed,
    /// Transient failures used up every attempt.
    DeadLettered,
    Lost,
}

/// What a successful run produced.
pub struct Produced {
    pub architecture: String,
    pub classes: Vec<String>,
    pub files: Files,
    pub size_bytes: i64,
    /// The summary users see on the job (`result`) and the model (`metrics`).
    pub metrics: serde_json::Value,
    pub compute_seconds: f64,
    /// From the model card, for the version's lineage: the engine that
    /// trained it and its training section (`split`, `seed`).
    pub engine: Option<String>,
    pub training: serde_json::Value,
}

/// Retry delay after `failures` failures: `base × 2^(failures-1)`, capped at
/// `max`, then ±20 % jitter (`jitter` in [-1, 1]) so retries of many jobs
/// that failed together do not return together.
pub fn backoff(failures: u32, base: f64, max: f64, jitter: f64) -> Duration {
    let exp = base * 2f64.powi(failures.saturating_sub(1).min(30) as i32);
    let capped = exp.min(max).max(0.0);
    Duration::from_secs_f64(capped * (1.0 + 0.2 * jitter.clamp(-1.0, 1.0)))
}

pub(super) fn status_event(status: JobStatus, message: impl Into<String>, extra: serde_json::Value) -> NewEvent {
    let mut payload = json!({ "status": status.as_str(), "message": message.into() });
    if let (Some(map), serde_json::Value::Object(extra)) = (payload.as_object_mut(), extra) {
        map.extend(extra);
    }
    NewEvent { kind: "status", payload: payload.to_string() }
}

/// Whether ending with `error` counts the current attempt as failed: every
/// failure does, except giving up on a job whose worker was lost (that
/// attempt was counted when it was taken over).
fn self_failed(error: Option<(FailureCode, &str)>) -> bool {
    error.is_some_and(|(code, _)| code != FailureCode::WorkerLost)
}

fn files_of(raw: &str) -> Files {
    serde_json::from_str(raw).unwrap_or_default()
}

impl App {
    pub fn job_settings(&self) -> &JobSettings {
        &self.inner.settings.jobs
    }

    pub fn job_queue(&self) -> std::sync::Arc<dyn JobQueue> {
        self.inner.queue.clone()
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.inner.blobs
    }

    fn lease_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::milliseconds((self.inner.settings.jobs.lease_seconds * 1000.0) as i64)
    }

    /// Hands up to `free` due jobs, chosen fairly, to the broker. Entries
    /// already dispatched and not yet claimed count against `free`, so the
    /// broker never holds more than the workers can start: the choice of
    /// who goes next is made when a slot is actually free.
    #[tracing::instrument(skip_all)]
    pub async fn relay_jobs(&self, cap: &Capability, free: usize) -> AppResult<usize> {
        if free == 0 {
            return Ok(0);
        }
        let tx = self.inner.store.begin().await?;
        let picked = dispatch::pick(&tx, cap, free, Utc::now()).await?;
        tx.commit().await?;
        // Published after the commit, outside the lock: a publish that fails
        // leaves its row `dispatched`, and the reconciler puts it back in the
        // queue after `redispatch_after_seconds`.
        for p in &picked {
            if let Err(e) = self.inner.queue.publish(&cap.device, JobMessage { org: p.org, job: p.job.into() }).await {
                warn!(job = %p.job, error = %e, "publishing a job failed; the reconciler will dispatch it again");
            }
        }
        Ok(picked.len())
    }

    /// Puts back in the outbox what a dead worker or a lost broker entry
    /// left behind.
    #[tracing::instrument(skip_all)]
    pub async fn reconcile_jobs(&self) -> AppResult<u64> {
        let now = Utc::now();
        let cutoff = now - chrono::Duration::milliseconds((self.inner.settings.jobs.redispatch_after_seconds * 1000.0) as i64);
        let tx = self.inner.store.begin().await?;
        let n = dispatch::reconcile(&tx, now, cutoff).await?;
        tx.commit().await?;
        if n > 0 {
            info!(jobs = n, "jobs returned to the queue (dead worker or lost dispatch)");
            if let Err(e) = self.inner.bus.publish(WAKE_TOPIC, "any".into()).await {
                warn!(error = %e, "waking relays failed");
            }
        }
        Ok(n)
    }

    /// Claims the job of a broker entry for `owner`, which has `memory_mb`
    /// left after the jobs it is running.
    #[tracing::instrument(skip_all)]
    pub async fn claim_job(&self, message: JobMessage, owner: &str, memory_mb: i32) -> AppResult<Claimed> {
        let (org, id) = (message.org, message.job.0);
        let now = Utc::now();
        let lease_until = self.lease_until(now);
        let tx = self.inner.store.tenant(org, None).await?;
        if let Some(job) = jobs::get(&tx, org, id).await?
            && job.memory_mb > memory_mb
            && job.status == "QUEUED"
        {
            // One stream per device type: a worker with less memory left can
            // read an entry meant for a bigger one or for a moment when it is
            // less busy. Back to the outbox for a relay that has enough
            // (relays filter by the memory their worker has left).
            dispatch::set_waiting(&tx, id, now).await?;
            tx.commit().await?;
            return Ok(Claimed::Skip("the job needs more memory than this worker has left"));
        }
        let (row, took_over) = match jobs::claim(&tx, org, id, owner, lease_until, now).await? {
            Claim::Claimed { job, took_over } => (job, took_over),
            Claim::NotClaimable => return Ok(Claimed::Skip("the job is finished, cancelled, not due or held by a live worker")),
        };
        let fence = Fence { job: id, attempt: row.attempt };
        if row.cancel_requested {
            // Its worker died while the user was cancelling it.
            self.end_in(&tx, org, fence, JobStatus::Cancelled, None, "cancelled", false).await?;
            tx.commit().await?;
            return Ok(Claimed::Skip("cancelled"));
        }
        if row.failures >= row.max_attempts {
            let earlier = row.error_message.as_deref().map(|m| format!(" (an earlier attempt failed with: {m})")).unwrap_or_default();
            let reason = format!(
                "gave up after {} attempts; the last one's worker stopped answering (crashed or was killed){earlier}",
                row.failures
            );
            self.end_in(&tx, org, fence, JobStatus::Failed, Some((FailureCode::WorkerLost, &reason)), &reason, true).await?;
            tx.commit().await?;
            self.notify_job_finished(org, id).await;
            return Ok(Claimed::GaveUp(reason));
        }
        dispatch::set_running(&tx, id, lease_until).await?;
        let checkpoint = jobs::checkpoints(&tx, org, id).await?.into_iter().last();
        let message = match (&checkpoint, took_over) {
            (Some(c), _) => format!("attempt {} started on {owner}; resuming from the checkpoint of epoch {}", row.attempt, c.epoch),
            (None, true) => format!("attempt {} started on {owner} after the previous worker stopped answering", row.attempt),
            (None, false) => format!("attempt {} started on {owner}", row.attempt),
        };
        let extra = json!({ "attempt": row.attempt, "worker": owner, "resumeFromEpoch": checkpoint.as_ref().map(|c| c.epoch) });
        jobs::append_events(&tx, org, id, Some(fence), vec![status_event(JobStatus::Running, message, extra)], now).await?;
        let version = datasets::version(&tx, org, row.dataset_version_id).await?;
        let model_files = |m: Option<model_versions::Model>| m.map(|m| files_of(&m.files));
        let base = match row.base_model_version_id {
            Some(b) => model_files(jobs::model_version(&tx, org, b).await?),
            None => None,
        };
        let teacher = match row.teacher_model_version_id {
            Some(t) => model_files(jobs::model_version(&tx, org, t).await?),
            None => None,
        };
        let view = job_view(&row)?;
        self.publish_after_commit(&tx, job_topic(org, id), row.event_seq.to_string());
        tx.commit().await?;
        let Some(version) = version else {
            // The dataset was deleted after the job was queued.
            let message = if view.kind == JobKind::Validate {
                "the dataset was deleted before its upload was validated; nothing to do"
            } else {
                "the dataset version was deleted; submit the job again with another"
            };
            self.fail_job_permanently(org, fence, FailureCode::DatasetDeleted, message).await?;
            return Ok(Claimed::Skip("the dataset was deleted"));
        };
        Ok(Claimed::Run(Box::new(LeasedJob {
            org,
            fence,
            job: view,
            dataset_sha256: version.sha256,
            dataset_file_name: version.file_name,
            base,
            teacher,
            checkpoint: checkpoint.map(|c| (c.epoch, files_of(&c.files))),
            took_over,
        })))
    }

    /// Extends the lease; says whether the user asked to cancel.
    #[tracing::instrument(skip_all, fields(org = %lease.org, job = %lease.fence.job, attempt = lease.fence.attempt))]
    pub async fn heartbeat_job(&self, lease: &LeasedJob) -> AppResult<Held> {
        let until = self.lease_until(Utc::now());
        let tx = self.inner.store.tenant(lease.org, None).await?;
        let held = match jobs::heartbeat(&tx, lease.org, lease.fence, until).await? {
            Some(cancel_requested) => {
                dispatch::set_running(&tx, lease.fence.job, until).await?;
                Held::Yes { cancel_requested }
            }
            None => Held::Lost,
        };
        tx.commit().await?;
        Ok(held)
    }

    /// Appends progress events; false when the attempt no longer holds the job.
    #[tracing::instrument(skip_all, fields(org = %lease.org, job = %lease.fence.job, attempt = lease.fence.attempt))]
    pub async fn append_job_events(&self, lease: &LeasedJob, events: Vec<(&'static str, serde_json::Value)>) -> AppResult<bool> {
        let tx = self.inner.store.tenant(lease.org, None).await?;
        let events = events.into_iter().map(|(kind, payload)| NewEvent { kind, payload: payload.to_string() }).collect();
        let Some(seqs) = jobs::append_events(&tx, lease.org, lease.fence.job, Some(lease.fence), events, Utc::now()).await? else {
            return Ok(false);
        };
        if let Some(last) = seqs.last() {
            self.publish_after_commit(&tx, job_topic(lease.org, lease.fence.job), last.to_string());
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Records a checkpoint already stored in blob storage.
    /// Records a finished epoch's checkpoint and bills the epoch's
    /// `compute_seconds` (once, whatever happens to the attempt later).
    #[tracing::instrument(skip_all, fields(org = %lease.org, job = %lease.fence.job, attempt = lease.fence.attempt))]
    pub async fn record_checkpoint(
        &self,
        lease: &LeasedJob,
        epoch: i32,
        files: Files,
        size_bytes: i64,
        compute_seconds: f64,
    ) -> AppResult<bool> {
        let now = Utc::now();
        let tx = self.inner.store.tenant(lease.org, None).await?;
        if !jobs::holds(&tx, lease.org, lease.fence).await? {
            return Ok(false);
        }
        self.meter(&tx, lease.org, lease.fence, &lease.job.device, compute_seconds, Some(epoch)).await?;
        // An earlier attempt's checkpoint of this epoch is replaced: its files go.
        if let Some(old) = jobs::checkpoint(&tx, lease.org, lease.fence.job, epoch).await? {
            let kept: std::collections::BTreeSet<&String> = files.values().collect();
            let gone = files_of(&old.files).into_values().filter(|sha| !kept.contains(sha)).collect();
            self.delete_files_after_commit(&tx, lease.org, gone);
        }
        let row = job_checkpoints::Model {
            org_id: lease.org.0,
            job_id: lease.fence.job,
            epoch,
            attempt: lease.fence.attempt,
            files: json!(files).to_string(),
            size_bytes,
            created_at: now,
            retired_at: None,
        };
        jobs::upsert_checkpoint(&tx, row).await?;
        let event = NewEvent { kind: "checkpoint", payload: json!({ "epoch": epoch, "bytes": size_bytes }).to_string() };
        let seqs = jobs::append_events(&tx, lease.org, lease.fence.job, Some(lease.fence), vec![event], now).await?;
        if let Some(last) = seqs.and_then(|s| s.last().copied()) {
            self.publish_after_commit(&tx, job_topic(lease.org, lease.fence.job), last.to_string());
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The webhook event of a job that just ended, from its final row.
    async fn enqueue_job_webhook(&self, tx: &Tx, org: OrgId, job: Uuid, event: &str) -> AppResult<()> {
        let Some(row) = jobs::get(tx, org, job).await? else { return Ok(()) };
        let result: serde_json::Value = row.result.as_deref().and_then(|r| serde_json::from_str(r).ok()).unwrap_or(serde_json::Value::Null);
        let data = json!({ "job": {
            "id": crate::views::global_id("Job", row.id),
            "kind": row.kind, "family": row.family, "status": row.status, "architecture": row.architecture,
            "attempt": row.attempt, "computeSeconds": row.compute_seconds, "result": result,
            "errorCode": row.error_code.as_deref().and_then(FailureCode::from_code).map(FailureCode::api_code), "errorMessage": row.error_message, "deadLettered": row.dead_lettered,
            "modelVersionId": row.model_version_id.map(|m| crate::views::global_id("ModelVersion", m)),
            "createdAt": row.created_at, "finishedAt": row.finished_at,
        } });
        self.enqueue_webhooks(tx, org, event, data).await
    }

    /// Records the usage of an attempt, once per attempt whatever retries.
    /// Bills `seconds` of compute once per source: each finished epoch of
    /// an attempt (`epoch`), then the rest of the attempt when it ends
    /// (`None`). A repeated write of the same source bills nothing, so a
    /// crash after an epoch leaves that epoch billed exactly once and only
    /// the unfinished one free.
    async fn meter(&self, tx: &Tx, lease_org: OrgId, fence: Fence, device: &str, seconds: f64, epoch: Option<i32>) -> AppResult<()> {
        // Checking an upload is the platform's work, not the customer's.
        if seconds <= 0.0 || device == tenfold_domain::VALIDATION_POOL {
            return Ok(());
        }
        let device_type = if device.starts_with("cuda") { "cuda" } else { "cpu" };
        let source_key = match epoch {
            Some(e) => format!("job:{}:attempt:{}:epoch:{e}", fence.job, fence.attempt),
            None => format!("job:{}:attempt:{}", fence.job, fence.attempt),
        };
        let recorded = jobs::record_usage(
            tx,
            usage_records::Model {
                org_id: lease_org.0,
                id: Uuid::now_v7(),
                source_key,
                meter: "compute_seconds".into(),
                device: device_type.into(),
                quantity: seconds,
                job_id: Some(fence.job),
                created_at: Utc::now(),
            },
        )
        .await?;
        if recorded {
            jobs::add_compute_seconds(tx, lease_org, fence, seconds).await?;
        }
        Ok(())
    }

    /// The job ended: its checkpoints are working files no more. The rows
    /// stay as a record; their blobs go once nothing else names them.
    pub(crate) async fn retire_checkpoints(&self, tx: &Tx, org: OrgId, job: Uuid) -> AppResult<()> {
        let retired = jobs::retire_checkpoints(tx, org, job, Utc::now()).await?;
        self.delete_files_after_commit(tx, org, retired.iter().flat_map(|f| files_of(f).into_values()).collect());
        Ok(())
    }

    pub(crate) fn delete_files_after_commit(&self, tx: &Tx, org: OrgId, shas: Vec<String>) {
        if shas.is_empty() {
            return;
        }
        let app = self.clone();
        tx.after_commit(move || {
            tokio::spawn(async move {
                for sha in shas {
                    app.delete_blob_if_unreferenced(org, &sha).await;
                }
            });
        });
    }

    /// Ends the job: the model version, the job row, usage and the event in
    /// one fenced transaction. False: this attempt lost the job.
    #[tracing::instrument(skip_all, fields(org = %lease.org, job = %lease.fence.job, attempt = lease.fence.attempt))]
    pub async fn succeed_job(&self, lease: &LeasedJob, produced: Produced) -> AppResult<bool> {
        let now = Utc::now();
        let (org, fence) = (lease.org, lease.fence);
        let tx = self.inner.store.tenant(org, None).await?;
        if !jobs::holds(&tx, org, fence).await? {
            return Ok(false);
        }
        self.meter(&tx, org, fence, &lease.job.device, produced.compute_seconds, None).await?;
        self.retire_checkpoints(&tx, org, fence.job).await?;
        let model_id =
            if lease.job.kind == JobKind::Evaluate { None } else { Some(self.file_job_version(&tx, lease, &produced, now).await?) };
        let end = Finish {
            status: "SUCCEEDED",
            error_code: None,
            error_message: None,
            result: Some(produced.metrics.to_string()),
            model_version_id: model_id,
            dead_lettered: false,
            failed_attempt: false,
        };
        jobs::finish(&tx, org, fence.job, Some(fence), end, now).await?;
        dispatch::remove(&tx, fence.job).await?;
        self.enqueue_job_webhook(&tx, org, fence.job, "job.succeeded").await?;
        let event = status_event(JobStatus::Succeeded, "succeeded", json!({ "attempt": fence.attempt, "modelVersionId": model_id }));
        self.append_final_event(&tx, org, fence.job, event, now).await?;
        tx.commit().await?;
        info!(job = %fence.job, attempt = fence.attempt, "job succeeded");
        self.notify_job_finished(org, fence.job).await;
        Ok(true)
    }

    /// Files the job's model as the next version of its model, with its lineage.
    async fn file_job_version(&self, tx: &Tx, lease: &LeasedJob, produced: &Produced, now: DateTime<Utc>) -> AppResult<Uuid> {
        let org = lease.org;
        let job = jobs::get(tx, org, lease.fence.job).await?.ok_or_else(|| AppError::not_found("job"))?;
        let version = datasets::version(tx, org, job.dataset_version_id).await?;
        let dataset = match &version {
            Some(v) => datasets::get(tx, org, v.dataset_id).await?,
            None => None,
        };
        let model_id = match job.model_id {
            Some(id) => id,
            // Submitted before the registry existed: the dataset's name.
            None => {
                let name = dataset.as_ref().map_or("model", |d| d.name.as_str());
                model_for_version(tx, org, name, lease.job.family, None, now).await?.id
            }
        };
        let training = &produced.training;
        let split = training.get("split").and_then(|s| {
            let parts = ["train", "val", "test"].map(|k| s.get(k).and_then(serde_json::Value::as_f64));
            match parts {
                [Some(a), Some(b), Some(c)] => Some(format!("{a}/{b}/{c}")),
                _ => s.as_str().map(str::to_owned),
            }
        });
        let lineage = Lineage {
            source: "job".into(),
            job_id: Some(job.id),
            job_kind: Some(job.kind.clone()),
            dataset_id: dataset.as_ref().map(|d| d.id),
            dataset_name: dataset.as_ref().map(|d| d.name.clone()),
            dataset_version_id: Some(job.dataset_version_id),
            dataset_version: version.as_ref().map(|v| v.version),
            dataset_sha256: version.as_ref().map(|v| v.sha256.clone()),
            architecture: Some(produced.architecture.clone()),
            hyperparameters: serde_json::from_str(&job.hyperparameters).ok(),
            base_model_version_id: job.base_model_version_id,
            teacher_model_version_id: job.teacher_model_version_id,
            engine: produced.engine.clone(),
            split,
            split_seed: training.get("split_seed").or_else(|| training.get("seed")).and_then(serde_json::Value::as_u64),
            seed: training.get("seed").and_then(serde_json::Value::as_u64),
        };
        let row = file_version(
            tx,
            org,
            model_versions::Model {
                org_id: org.0,
                id: Uuid::now_v7(),
                model_id,
                version: 0,
                source: "job".into(),
                job_id: Some(job.id),
                family: lease.job.family.as_str().to_owned(),
                architecture: produced.architecture.clone(),
                classes: json!(produced.classes).to_string(),
                files: json!(produced.files).to_string(),
                size_bytes: produced.size_bytes,
                metrics: produced.metrics.to_string(),
                lineage: serde_json::to_string(&lineage).map_err(AppError::internal)?,
                created_by: job.submitted_by,
                created_at: now,
            },
        )
        .await?;
        Ok(row.id)
    }

    pub(super) async fn append_final_event(&self, tx: &Tx, org: OrgId, job: Uuid, event: NewEvent, now: DateTime<Utc>) -> AppResult<()> {
        // The job is no longer RUNNING, so the event is appended unfenced
        // (the fenced write that ended it already proved the attempt).
        if let Some(seqs) = jobs::append_events(tx, org, job, None, vec![event], now).await?
            && let Some(last) = seqs.last()
        {
            self.publish_after_commit(tx, job_topic(org, job), last.to_string());
        }
        Ok(())
    }

    /// Ends `fence`'s attempt with `status` inside `tx`.
    #[allow(clippy::too_many_arguments)]
    async fn end_in(
        &self,
        tx: &Tx,
        org: OrgId,
        fence: Fence,
        status: JobStatus,
        error: Option<(FailureCode, &str)>,
        message: &str,
        dead_lettered: bool,
    ) -> AppResult<bool> {
        let now = Utc::now();
        let end = Finish {
            status: status.as_str(),
            error_code: error.map(|e| e.0.as_str()),
            error_message: error.map(|e| e.1),
            result: None,
            model_version_id: None,
            dead_lettered,
            // This attempt's own failure (a lost attempt was counted when taken over).
            failed_attempt: status == JobStatus::Failed && self_failed(error),
        };
        if !jobs::finish(tx, org, fence.job, Some(fence), end, now).await? {
            return Ok(false);
        }
        self.retire_checkpoints(tx, org, fence.job).await?;
        dispatch::remove(tx, fence.job).await?;
        let validation = match jobs::get(tx, org, fence.job).await? {
            Some(row) if row.kind == JobKind::Validate.as_str() => Some(row),
            _ => None,
        };
        if let Some(row) = &validation {
            self.validation_ended_without_outcome(tx, org, row, error.map(|e| e.0)).await?;
        } else if status == JobStatus::Failed {
            self.enqueue_job_webhook(tx, org, fence.job, "job.failed").await?;
        }
        let extra = json!({ "attempt": fence.attempt, "errorCode": error.map(|e| e.0.api_code()), "deadLettered": dead_lettered });
        self.append_final_event(tx, org, fence.job, status_event(status, message, extra), now).await?;
        Ok(true)
    }

    async fn fail_job_permanently(&self, org: OrgId, fence: Fence, code: FailureCode, message: &str) -> AppResult<bool> {
        let tx = self.inner.store.tenant(org, None).await?;
        let ended = self.end_in(&tx, org, fence, JobStatus::Failed, Some((code, message)), message, false).await?;
        tx.commit().await?;
        if ended {
            self.notify_job_finished(org, fence.job).await;
        }
        Ok(ended)
    }

    /// Records a failed attempt: a permanent error fails the job at once;
    /// a transient one is retried after a backoff until the attempts run out.
    #[tracing::instrument(skip_all, fields(org = %lease.org, job = %lease.fence.job, attempt = lease.fence.attempt))]
    pub async fn fail_job(
        &self,
        lease: &LeasedJob,
        code: FailureCode,
        message: &str,
        permanent: bool,
        compute_seconds: f64,
    ) -> AppResult<FailOutcome> {
        let (org, fence) = (lease.org, lease.fence);
        let settings = &self.inner.settings.jobs;
        let tx = self.inner.store.tenant(org, None).await?;
        if !jobs::holds(&tx, org, fence).await? {
            return Ok(FailOutcome::Lost);
        }
        self.meter(&tx, org, fence, &lease.job.device, compute_seconds, None).await?;
        let failures = lease.job.failures + 1;
        let outcome = if permanent {
            self.end_in(&tx, org, fence, JobStatus::Failed, Some((code, message)), message, false).await?;
            FailOutcome::Failed
        } else if failures >= lease.job.max_attempts {
            let reason = format!("gave up after {failures} attempts; the last one failed with: {message}");
            self.end_in(&tx, org, fence, JobStatus::Failed, Some((code, &reason)), &reason, true).await?;
            FailOutcome::DeadLettered
        } else {
            let jitter = rand::random::<f64>() * 2.0 - 1.0;
            let after = backoff(failures as u32, settings.backoff_base_seconds, settings.backoff_max_seconds, jitter);
            let run_after = Utc::now() + chrono::Duration::from_std(after).unwrap_or_default();
            jobs::requeue(&tx, org, fence, run_after, Some((code.as_str(), message))).await?;
            dispatch::set_waiting(&tx, fence.job, run_after).await?;
            let text = format!("attempt {} failed ({message}); retrying in {:.1} s", fence.attempt, after.as_secs_f64());
            let extra = json!({ "attempt": fence.attempt, "errorCode": code.api_code(), "retryInSeconds": after.as_secs_f64() });
            self.append_final_event(&tx, org, fence.job, status_event(JobStatus::Queued, text, extra), Utc::now()).await?;
            FailOutcome::Retrying { after }
        };
        tx.commit().await?;
        if matches!(outcome, FailOutcome::Failed | FailOutcome::DeadLettered) {
            self.notify_job_finished(org, fence.job).await;
        }
        Ok(outcome)
    }

    /// The run stopped because the user cancelled it.
    #[tracing::instrument(skip_all, fields(org = %lease.org, job = %lease.fence.job, attempt = lease.fence.attempt))]
    pub async fn cancelled_job(&self, lease: &LeasedJob, compute_seconds: f64) -> AppResult<bool> {
        let tx = self.inner.store.tenant(lease.org, None).await?;
        if !jobs::holds(&tx, lease.org, lease.fence).await? {
            return Ok(false);
        }
        self.meter(&tx, lease.org, lease.fence, &lease.job.device, compute_seconds, None).await?;
        let ended = self.end_in(&tx, lease.org, lease.fence, JobStatus::Cancelled, None, "cancelled", false).await?;
        tx.commit().await?;
        Ok(ended)
    }

    /// Gives the job back (the worker is shutting down): queued again at
    /// once, not counted as a failure; the next attempt resumes from the
    /// last checkpoint.
    #[tracing::instrument(skip_all, fields(org = %lease.org, job = %lease.fence.job, attempt = lease.fence.attempt))]
    pub async fn release_job(&self, lease: &LeasedJob, compute_seconds: f64) -> AppResult<bool> {
        let (org, fence) = (lease.org, lease.fence);
        let now = Utc::now();
        let tx = self.inner.store.tenant(org, None).await?;
        if !jobs::holds(&tx, org, fence).await? {
            return Ok(false);
        }
        self.meter(&tx, org, fence, &lease.job.device, compute_seconds, None).await?;
        jobs::requeue(&tx, org, fence, now, None).await?;
        dispatch::set_waiting(&tx, fence.job, now).await?;
        let event = status_event(
            JobStatus::Queued,
            "released by a worker that is shutting down; it resumes from its last checkpoint",
            json!({ "attempt": fence.attempt }),
        );
        self.append_final_event(&tx, org, fence.job, event, now).await?;
        self.publish_after_commit(&tx, WAKE_TOPIC.into(), lease.job.device.clone());
        tx.commit().await?;
        Ok(true)
    }

    /// Registers a worker (or refreshes it) for capacity and ETAs.
    #[tracing::instrument(skip_all)]
    pub async fn worker_alive(&self, id: &str, device: &str, slots: i32, memory_mb: i32, started_at: DateTime<Utc>) -> AppResult<()> {
        let tx = self.inner.store.begin().await?;
        let row = workers::Model { id: id.to_owned(), device: device.to_owned(), slots, memory_mb, started_at, heartbeat_at: Utc::now() };
        dispatch::worker_heartbeat(&tx, row).await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    pub async fn worker_stopped(&self, id: &str) -> AppResult<()> {
        let tx = self.inner.store.begin().await?;
        dispatch::worker_gone(&tx, id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Subscribes to a bus topic (the worker's wake-ups and cancellations).
    #[tracing::instrument(skip_all)]
    pub async fn bus_subscribe(&self, topic: &str) -> AppResult<futures::stream::BoxStream<'static, String>> {
        Ok(self.inner.bus.subscribe(topic).await?)
    }

    /// A checkpoint or artifact file into blob storage (content-addressed).
    #[tracing::instrument(skip_all, fields(org = %org))]
    pub async fn put_job_file(&self, org: OrgId, path: &std::path::Path) -> AppResult<(String, u64)> {
        let file = std::fs::File::open(path).map_err(AppError::internal)?;
        self.inner.blobs.put_file(org, file).await.map_err(AppError::internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_jitter_stays_within_a_fifth() {
        let plain: Vec<f64> = (1..=12).map(|n| backoff(n, 5.0, 600.0, 0.0).as_secs_f64()).collect();
        assert_eq!(&plain[..4], &[5.0, 10.0, 20.0, 40.0]);
        assert!(plain.windows(2).all(|w| w[0] <= w[1]), "never decreasing: {plain:?}");
        assert!(plain.iter().all(|s| *s <= 600.0), "capped: {plain:?}");
        for n in 1..=40 {
            let base = backoff(n, 5.0, 600.0, 0.0).as_secs_f64();
            let lo = backoff(n, 5.0, 600.0, -1.0).as_secs_f64();
            let hi = backoff(n, 5.0, 600.0, 1.0).as_secs_f64();
            assert!((lo - base * 0.8).abs() < 1e-9 && (hi - base * 1.2).abs() < 1e-9);
        }
    }
}
