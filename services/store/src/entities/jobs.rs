use sea_orm::entity::prelude::*;

/// A job: the one source of truth of its state. Workers change it only
/// through writes fenced by `attempt`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// FINE_TUNE, DISTILL or EVALUATE.
    pub kind: String,
    pub family: String,
    /// QUEUED, RUNNING, SUCCEEDED, FAILED or CANCELLED.
    pub status: String,
    pub dataset_version_id: Uuid,
    pub architecture: Option<String>,
    pub base_model_version_id: Option<Uuid>,
    pub teacher_model_version_id: Option<Uuid>,
    /// JSON: the hyperparameters with defaults filled in.
    pub hyperparameters: String,
    pub priority: i32,
    pub idempotency_key: Option<String>,
    /// SHA-256 of the normalised request, to tell a retry from a reused key.
    pub request_hash: String,
    /// `cpu` or `cuda`.
    pub device: String,
    pub memory_mb: i32,
    /// The fencing token, bumped by each claim.
    pub attempt: i32,
    /// Attempts that ended in a retryable failure or a lost worker.
    pub failures: i32,
    pub max_attempts: i32,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTimeUtc>,
    /// Not before: the backoff of a retry.
    pub run_after: DateTimeUtc,
    pub cancel_requested: bool,
    /// The last event sequence number handed out.
    pub event_seq: i64,
    pub estimate_seconds: i64,
    pub compute_seconds: f64,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub dead_lettered: bool,
    /// JSON: the job's result (report summary, metrics).
    pub result: Option<String>,
    pub model_version_id: Option<Uuid>,
    /// The registry model its version joins (none for EVALUATE and VALIDATE).
    pub model_id: Option<Uuid>,
    pub submitted_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
