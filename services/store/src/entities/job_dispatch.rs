use sea_orm::entity::prelude::*;

/// The scheduling index of an unfinished job (global: ids and scheduling
/// facts only). `waiting` rows are the outbox the relay hands to the broker.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "job_dispatch")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub job_id: Uuid,
    pub org_id: Uuid,
    /// waiting, dispatched or running.
    pub state: String,
    pub priority: i32,
    pub device: String,
    pub memory_mb: i32,
    /// The organization's concurrent-job limit when the job was queued.
    pub concurrency: i32,
    pub estimate_seconds: i64,
    pub run_after: DateTimeUtc,
    pub lease_until: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub dispatched_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
