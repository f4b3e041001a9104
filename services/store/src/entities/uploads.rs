use sea_orm::entity::prelude::*;

/// A resumable (tus) upload in progress, or completed and kept until it
/// expires so that its client can learn the dataset version it became.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "uploads")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub family: String,
    pub file_name: String,
    pub redact: bool,
    pub sha256: Option<String>,
    pub metadata: String,
    pub length: i64,
    pub offset: i64,
    /// JSON `[[sha256, bytes], …]`, in order.
    pub parts: String,
    pub dataset_version_id: Option<Uuid>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
