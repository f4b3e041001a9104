use sea_orm::entity::prelude::*;

/// A worker process and its capacity (global).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "workers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub device: String,
    pub slots: i32,
    pub memory_mb: i32,
    pub started_at: DateTimeUtc,
    pub heartbeat_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
