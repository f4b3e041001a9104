use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dataset_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub dataset_id: Uuid,
    /// 1, 2, … per dataset; versions never change once READY.
    pub version: i32,
    /// PENDING, VALIDATING, READY or INVALID.
    pub status: String,
    pub file_name: String,
    pub size_bytes: i64,
    /// Hex SHA-256 of the uploaded file: its address in blob storage.
    pub sha256: String,
    /// JSON: family-specific statistics.
    pub stats: Option<String>,
    /// JSON: the first problems that make the version INVALID.
    pub problems: Option<String>,
    /// JSON: problems that do not (duplicates, ignored files).
    pub warnings: Option<String>,
    /// JSON: thumbnails per class, first rows or conversations.
    pub preview: Option<String>,
    /// JSON: the seeded train/val/test split plan.
    pub splits: Option<String>,
    /// JSON: what opt-in redaction masked before storing (chat only).
    pub redaction: Option<String>,
    pub problem_count: i64,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub validated_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
