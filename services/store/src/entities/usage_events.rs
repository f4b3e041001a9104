use sea_orm::entity::prelude::*;

/// One answered endpoint request (the metering outbox); the id is the
/// dedupe key.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub model_version_id: Uuid,
    pub api_key_id: Option<Uuid>,
    pub customer_key_id: Option<Uuid>,
    pub requests: i32,
    pub images: i32,
    pub input_tokens: i32,
    pub output_tokens: i32,
    pub compute_ms: i64,
    pub status_class: i16,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
