use sea_orm::entity::prelude::*;

/// A hosted endpoint: a slug that serves a pinned version or follows an
/// alias, with an optional canary, its scaling and batching.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub slug: String,
    pub model_id: Uuid,
    pub family: String,
    pub model_version_id: Option<Uuid>,
    pub alias: Option<String>,
    pub canary_version_id: Option<Uuid>,
    pub canary_percent: i32,
    /// JSON `CanaryRules`.
    pub canary_rules: Option<String>,
    pub min_replicas: i32,
    pub max_replicas: i32,
    pub max_batch_size: i32,
    pub max_batch_delay_ms: i32,
    pub idle_unload_seconds: i32,
    pub state: String,
    pub cold_start_ms: Option<i64>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
