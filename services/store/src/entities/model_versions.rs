use sea_orm::entity::prelude::*;

/// A trained model: the artifact files a job produced, once per job.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "model_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub job_id: Uuid,
    pub family: String,
    pub architecture: String,
    /// JSON: the class names, in output order.
    pub classes: String,
    /// JSON: {file name: sha256} (model.safetensors, model.json, report.json).
    pub files: String,
    pub size_bytes: i64,
    /// JSON: the evaluation summary.
    pub metrics: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
