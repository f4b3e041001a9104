use async_graphql::connection::{Connection, Edge};
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Json, SimpleObject};
use chrono::{DateTime, Utc};
use tenfold_app::{CheckpointView, JobEventView, JobView, UsageView};

use super::Family;
use super::ModelVersion;
use crate::context::{GqlResult, app, principal};
use crate::ids::{GlobalId, NodeKind};

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "tenfold_domain::JobKind")]
pub enum JobKind {
    /// Train on a dataset: from scratch with an architecture, or from a base model.
    FineTune,
    /// Train a small student architecture from a teacher model's outputs.
    Distill,
    /// Evaluate a model version on a dataset's held-out split.
    Evaluate,
    /// The check of an uploaded dataset version, started by the upload
    /// (never submitted, never billed). See `DatasetVersion.validation`.
    Validate,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "tenfold_domain::JobStatus")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// Why a job failed. Permanent ones (bad data, bad model, a bad argument,
/// unsupported, cancelled, deleted data) fail the job at once; the others
/// are retried with backoff until the attempts run out.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "tenfold_domain::FailureCode")]
pub enum JobErrorCode {
    InvalidArgument,
    UnknownArchitecture,
    InvalidDataset,
    InvalidModel,
    IncompatibleModel,
    Unsupported,
    DatasetDeleted,
    Cancelled,
    OutOfMemory,
    Io,
    DeviceUnavailable,
    StorageUnavailable,
    WorkerLost,
    WorkerPanic,
    Internal,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum DeviceType {
    Cpu,
    Cuda,
}

#[derive(InputObject)]
pub struct SubmitJobInput {
    pub kind: JobKind,
    pub family: Family,
    /// A READY dataset version of the job's family.
    pub dataset_version_id: ID,
    /// FINE_TUNE from scratch, or DISTILL's student: cnn-small, resnet-s or cnn-tiny.
    pub architecture: Option<String>,
    /// FINE_TUNE: start from this model; EVALUATE: the model to evaluate.
    pub base_model_version_id: Option<ID>,
    /// DISTILL: the teacher.
    pub teacher_model_version_id: Option<ID>,
    /// Named as in `families { hyperparameters { name } }`, e.g.
    /// `{epochs: 10, learningRate: 0.001}`; anything left out takes the
    /// family's default. Each value is checked against its range.
    pub hyperparameters: Option<Json<serde_json::Map<String, serde_json::Value>>>,
    /// -10 (lowest) to 10 (highest); orders your own queued jobs (default 0).
    #[graphql(default = 0)]
    pub priority: i32,
    /// Retrying with the same key returns the same job instead of a second one.
    pub idempotency_key: Option<String>,
    #[graphql(default_with = "DeviceType::Cpu")]
    pub device: DeviceType,
    /// FINE_TUNE and DISTILL: the registry model the new version joins
    /// (created if new; a name is one model of one family). Default: the
    /// dataset's name.
    pub model: Option<String>,
}

/// A training, distillation or evaluation job.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Job {
    pub id: ID,
    pub kind: JobKind,
    pub family: Family,
    pub status: JobStatus,
    pub dataset_version_id: ID,
    pub architecture: Option<String>,
    pub base_model_version_id: Option<ID>,
    pub teacher_model_version_id: Option<ID>,
    /// The hyperparameters it runs with, the family's defaults filled in.
    pub hyperparameters: Json<serde_json::Value>,
    pub priority: i32,
    pub idempotency_key: Option<String>,
    pub device: String,
    /// Attempts started so far (each claim by a worker is one).
    pub attempt: i32,
    /// Attempts that failed transiently or whose worker was lost.
    pub failures: i32,
    pub max_attempts: i32,
    pub cancel_requested: bool,
    /// Estimated duration in seconds, from the data's size and measured throughput.
    pub estimate_seconds: i32,
    /// Compute used so far, all attempts together.
    pub compute_seconds: f64,
    /// While QUEUED: 1 means next to start.
    pub queue_position: Option<i32>,
    /// While QUEUED: estimated seconds until it starts.
    pub eta_seconds: Option<f64>,
    /// Why it failed, from the one table of job failures.
    pub error_code: Option<JobErrorCode>,
    /// Why it failed, in plain words.
    pub error_message: Option<String>,
    /// It failed transiently on every attempt and was moved to the dead-letter queue.
    pub dead_lettered: bool,
    /// The evaluation summary of a finished job.
    pub result: Option<Json<serde_json::Value>>,
    pub model_version_id: Option<ID>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    #[graphql(skip)]
    pub raw_id: uuid::Uuid,
}

fn model_id(id: uuid::Uuid) -> ID {
    GlobalId::new(NodeKind::ModelVersion, id).to_id()
}

impl From<JobView> for Job {
    fn from(j: JobView) -> Self {
        Self {
            id: GlobalId::new(NodeKind::Job, j.id).to_id(),
            kind: j.kind.into(),
            family: j.family.into(),
            status: j.status.into(),
            dataset_version_id: GlobalId::new(NodeKind::DatasetVersion, j.dataset_version_id).to_id(),
            architecture: j.architecture,
            base_model_version_id: j.base_model_version_id.map(model_id),
            teacher_model_version_id: j.teacher_model_version_id.map(model_id),
            hyperparameters: Json(j.hyperparameters.as_json()),
            priority: j.priority,
            idempotency_key: j.idempotency_key,
            device: j.device,
            attempt: j.attempt,
            failures: j.failures,
            max_attempts: j.max_attempts,
            cancel_requested: j.cancel_requested,
            estimate_seconds: i32::try_from(j.estimate_seconds).unwrap_or(i32::MAX),
            compute_seconds: j.compute_seconds,
            queue_position: j.queue_position.map(|p| i32::try_from(p).unwrap_or(i32::MAX)),
            eta_seconds: j.eta_seconds,
            error_code: j.error_code.map(Into::into),
            error_message: j.error_message,
            dead_lettered: j.dead_lettered,
            result: (!j.result.is_null()).then_some(Json(j.result)),
            model_version_id: j.model_version_id.map(model_id),
            created_at: j.created_at,
            started_at: j.started_at,
            finished_at: j.finished_at,
            raw_id: j.id,
        }
    }
}

/// One event of a job: a status change, training progress, a checkpoint.
#[derive(SimpleObject, Clone)]
pub struct JobEvent {
    /// 1, 2, 3, … per job, in the order they happened.
    pub seq: i32,
    pub attempt: i32,
    /// `status`, `step`, `epoch`, `checkpoint` or `log`.
    pub kind: String,
    pub payload: Json<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub job_id: ID,
}

impl From<JobEventView> for JobEvent {
    fn from(e: JobEventView) -> Self {
        Self {
            seq: i32::try_from(e.seq).unwrap_or(i32::MAX),
            attempt: e.attempt,
            kind: e.kind,
            payload: Json(e.payload),
            created_at: e.created_at,
            job_id: GlobalId::new(NodeKind::Job, e.job_id).to_id(),
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct Checkpoint {
    pub epoch: i32,
    pub attempt: i32,
    pub size_bytes: f64,
    pub created_at: DateTime<Utc>,
    /// When the job ended and the checkpoint's files were deleted; the
    /// entry stays as a record. Live checkpoints count in storage.
    pub retired_at: Option<DateTime<Utc>>,
}

impl From<CheckpointView> for Checkpoint {
    fn from(c: CheckpointView) -> Self {
        Self { epoch: c.epoch, attempt: c.attempt, size_bytes: c.size_bytes as f64, created_at: c.created_at, retired_at: c.retired_at }
    }
}

/// Metered usage: compute-seconds of job attempts, by device type.
#[derive(SimpleObject, Clone)]
pub struct UsageRecord {
    pub meter: String,
    pub device: String,
    pub quantity: f64,
    /// Compute: the attempt billed.
    pub attempt: Option<i32>,
    /// Compute: the finished epoch billed; null for the rest of the attempt.
    pub epoch: Option<i32>,
    pub created_at: DateTime<Utc>,
}

impl From<UsageView> for UsageRecord {
    fn from(u: UsageView) -> Self {
        Self { meter: u.meter, device: u.device, quantity: u.quantity, attempt: u.attempt, epoch: u.epoch, created_at: u.created_at }
    }
}

#[ComplexObject]
impl Job {
    /// Events after sequence number `after` (0: from the start), oldest first.
    #[graphql(complexity = "first.unwrap_or(20).clamp(1, crate::MAX_PAGE_SIZE) as usize * child_complexity")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<i32>,
    ) -> async_graphql::Result<Connection<String, JobEvent>> {
        let after = i64::from(after.unwrap_or(0).max(0));
        let page = app(ctx)?.job_events(principal(ctx)?, self.raw_id, after, first).await.gql(ctx)?;
        let mut conn = Connection::new(after > 0, page.has_next);
        conn.edges.extend(page.rows.into_iter().map(|e| Edge::new(e.seq.to_string(), JobEvent::from(e))));
        Ok(conn)
    }

    /// Validation metrics and loss of every epoch, in order.
    async fn metrics(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Json<serde_json::Value>>> {
        Ok(app(ctx)?.job_metrics(principal(ctx)?, self.raw_id).await.gql(ctx)?.into_iter().map(Json).collect())
    }

    async fn checkpoints(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Checkpoint>> {
        Ok(app(ctx)?.job_checkpoints(principal(ctx)?, self.raw_id).await.gql(ctx)?.into_iter().map(Checkpoint::from).collect())
    }

    /// Compute-seconds metered per attempt.
    async fn usage(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<UsageRecord>> {
        Ok(app(ctx)?.job_usage(principal(ctx)?, self.raw_id).await.gql(ctx)?.into_iter().map(UsageRecord::from).collect())
    }

    /// The model the job produced (none for EVALUATE, or before it succeeds).
    async fn model_versions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ModelVersion>> {
        Ok(app(ctx)?.job_model_versions(principal(ctx)?, self.raw_id).await.gql(ctx)?.into_iter().map(ModelVersion::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Webhooks and job events spell a failure as `FailureCode::api_code`;
    /// GraphQL as its enum item: one code, one spelling, everywhere.
    #[test]
    fn every_failure_code_is_spelled_the_same_in_graphql_events_and_webhooks() {
        for code in tenfold_domain::FailureCode::ALL {
            let item = <JobErrorCode as async_graphql::resolver_utils::EnumType>::items()
                .iter()
                .find(|i| i.value == JobErrorCode::from(*code))
                .map(|i| i.name)
                .unwrap_or_default();
            assert_eq!(item, code.api_code(), "{code}");
        }
    }
}
