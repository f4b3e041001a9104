use sea_orm::entity::prelude::*;

/// A training checkpoint stored in blob storage, one per finished epoch.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "job_checkpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub job_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub epoch: i32,
    pub attempt: i32,
    /// JSON: {file name: sha256}.
    pub files: String,
    pub size_bytes: i64,
    pub created_at: DateTimeUtc,
    /// Set when the job ended and the files were deleted; the row stays as a record.
    pub retired_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
