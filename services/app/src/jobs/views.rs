use chrono::{DateTime, Utc};
use tenfold_domain::{FailureCode, Family, Hyperparameters, JobKind, JobStatus, OrgId};
use tenfold_store::entities::{job_checkpoints, job_events, jobs, usage_records};
use uuid::Uuid;

use crate::error::{AppError, AppResult, stored};

#[derive(Debug, Clone)]
pub struct JobView {
    pub id: Uuid,
    pub org: OrgId,
    pub kind: JobKind,
    pub family: Family,
    pub status: JobStatus,
    pub dataset_version_id: Uuid,
    pub architecture: Option<String>,
    pub base_model_version_id: Option<Uuid>,
    pub teacher_model_version_id: Option<Uuid>,
    pub hyperparameters: Hyperparameters,
    pub priority: i32,
    pub idempotency_key: Option<String>,
    pub device: String,
    pub attempt: i32,
    pub failures: i32,
    pub max_attempts: i32,
    pub cancel_requested: bool,
    pub estimate_seconds: i64,
    /// Memory the job's process needs, from its family's estimate.
    pub memory_mb: i32,
    pub compute_seconds: f64,
    pub error_code: Option<FailureCode>,
    pub error_message: Option<String>,
    pub dead_lettered: bool,
    pub result: serde_json::Value,
    pub model_version_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// 1 = next to start; only while QUEUED.
    pub queue_position: Option<u64>,
    /// Seconds until it starts, estimated from the queue and the workers.
    pub eta_seconds: Option<f64>,
}

pub(crate) fn job_view(j: &jobs::Model) -> AppResult<JobView> {
    // The store's edge: an unknown stored value is an error, never a default.
    let status = stored(JobStatus::parse(&j.status), "job status")?;
    let kind = stored(JobKind::parse(&j.kind), "job kind")?;
    let family = stored(j.family.parse::<Family>(), "job family")?;
    let hyperparameters = serde_json::from_str(&j.hyperparameters).map_err(AppError::internal)?;
    Ok(JobView {
        id: j.id,
        org: OrgId(j.org_id),
        kind,
        family,
        status,
        dataset_version_id: j.dataset_version_id,
        architecture: j.architecture.clone(),
        base_model_version_id: j.base_model_version_id,
        teacher_model_version_id: j.teacher_model_version_id,
        hyperparameters,
        priority: j.priority,
        idempotency_key: j.idempotency_key.clone(),
        device: j.device.clone(),
        attempt: j.attempt,
        failures: j.failures,
        max_attempts: j.max_attempts,
        cancel_requested: j.cancel_requested,
        estimate_seconds: j.estimate_seconds,
        memory_mb: j.memory_mb,
        compute_seconds: j.compute_seconds,
        error_code: j.error_code.as_deref().map(|c| stored(FailureCode::parse(c), "job error code")).transpose()?,
        error_message: j.error_message.clone(),
        dead_lettered: j.dead_lettered,
        result: j.result.as_deref().and_then(|r| serde_json::from_str(r).ok()).unwrap_or(serde_json::Value::Null),
        model_version_id: j.model_version_id,
        created_at: j.created_at,
        started_at: j.started_at,
        finished_at: j.finished_at,
        queue_position: None,
        eta_seconds: None,
    })
}

#[derive(Debug, Clone)]
pub struct JobEventView {
    pub job_id: Uuid,
    pub seq: i64,
    pub attempt: i32,
    pub kind: String,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

pub(crate) fn event_view(e: &job_events::Model) -> JobEventView {
    JobEventView {
        job_id: e.job_id,
        seq: e.seq,
        attempt: e.attempt,
        kind: e.kind.clone(),
        payload: serde_json::from_str(&e.payload).unwrap_or(serde_json::Value::Null),
        created_at: e.created_at,
    }
}

#[derive(Debug, Clone)]
pub struct CheckpointView {
    pub epoch: i32,
    pub attempt: i32,
    pub size_bytes: i64,
    pub created_at: DateTime<Utc>,
    /// When the job ended and its files were deleted (the row is a record).
    pub retired_at: Option<DateTime<Utc>>,
}

pub(crate) fn checkpoint_view(c: &job_checkpoints::Model) -> CheckpointView {
    CheckpointView { epoch: c.epoch, attempt: c.attempt, size_bytes: c.size_bytes, created_at: c.created_at, retired_at: c.retired_at }
}

#[derive(Debug, Clone)]
pub struct UsageView {
    pub meter: String,
    pub device: String,
    pub quantity: f64,
    pub job_id: Option<Uuid>,
    /// For compute: the attempt billed, and the finished epoch (none: the
    /// rest of the attempt after its last epoch).
    pub attempt: Option<i32>,
    pub epoch: Option<i32>,
    pub created_at: DateTime<Utc>,
}

/// `job:<id>:attempt:<n>[:epoch:<e>]`, the keys `meter` writes.
fn attempt_and_epoch(source_key: &str) -> (Option<i32>, Option<i32>) {
    let parts: Vec<&str> = source_key.split(':').collect();
    let after = |name: &str| parts.iter().position(|p| *p == name).and_then(|i| parts.get(i + 1)).and_then(|v| v.parse().ok());
    (after("attempt"), after("epoch"))
}

pub(crate) fn usage_view(u: &usage_records::Model) -> UsageView {
    let (attempt, epoch) = attempt_and_epoch(&u.source_key);
    UsageView {
        meter: u.meter.clone(),
        device: u.device.clone(),
        quantity: u.quantity,
        job_id: u.job_id,
        attempt,
        epoch,
        created_at: u.created_at,
    }
}
