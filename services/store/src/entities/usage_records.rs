use sea_orm::entity::prelude::*;

/// One metered quantity. `source_key` makes recording idempotent.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_records")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub source_key: String,
    /// `compute_seconds` (the deployments issue adds requests and tokens).
    pub meter: String,
    pub device: String,
    pub quantity: f64,
    pub job_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
