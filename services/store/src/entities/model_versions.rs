use sea_orm::entity::prelude::*;

/// An immutable version of a registry model: the artifact files a job (or
/// an import) produced, numbered within its model.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "model_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub model_id: Uuid,
    /// 1, 2, … within the model.
    pub version: i32,
    /// `job` or `import`.
    pub source: String,
    pub job_id: Option<Uuid>,
    pub family: String,
    pub architecture: String,
    /// JSON: the class names, in output order.
    pub classes: String,
    /// JSON: {file name: sha256} (model.safetensors, model.json, report.json).
    pub files: String,
    pub size_bytes: i64,
    /// JSON: the evaluation summary.
    pub metrics: String,
    /// JSON: where it came from (dataset, job, hyperparameters, base or
    /// teacher, engine, split and seed).
    pub lineage: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
