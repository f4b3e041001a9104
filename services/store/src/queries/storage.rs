//! What an organization keeps in blob storage, across the tables that
//! point at blobs: dataset versions, model versions (their artifact files)
//! the checkpoints of jobs still running, and the parts that open
//! resumable uploads stage. Blobs are content-addressed
//! per organization, so one blob may be named by several rows.

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect};
use tenfold_domain::OrgId;

use crate::entities::dataset_versions::{self, Entity as Versions};
use crate::entities::job_checkpoints::{self, Entity as Checkpoints};
use crate::entities::model_versions::{self, Entity as ModelVersions};
use crate::{Result, Tx};

/// How many rows of the organization name a blob; 0: it may be deleted.
pub async fn blob_references(tx: &Tx, org: OrgId, sha256: &str) -> Result<u64> {
    let datasets = Versions::find()
        .filter(dataset_versions::Column::OrgId.eq(org.0))
        .filter(dataset_versions::Column::Sha256.eq(sha256))
        .filter(dataset_versions::Column::Status.ne("INVALID"))
        .count(tx.conn())
        .await?;
    // File maps are JSON `{name: sha256}`; a 64-hex digest cannot match by accident.
    let pattern = format!("%\"{sha256}\"%");
    let models = ModelVersions::find()
        .filter(model_versions::Column::OrgId.eq(org.0))
        .filter(model_versions::Column::Files.like(pattern.clone()))
        .count(tx.conn())
        .await?;
    let checkpoints = Checkpoints::find()
        .filter(job_checkpoints::Column::OrgId.eq(org.0))
        .filter(job_checkpoints::Column::RetiredAt.is_null())
        .filter(job_checkpoints::Column::Files.like(pattern))
        .count(tx.conn())
        .await?;
    let staged = super::uploads::staging(tx, org, sha256).await?;
    Ok(datasets + models + checkpoints + staged)
}

/// Bytes the organization keeps: datasets (an identical file counts once),
/// model artifacts and live checkpoints. What the storage quota counts.
pub async fn used_bytes(tx: &Tx, org: OrgId) -> Result<i64> {
    let datasets = super::datasets::stored_bytes(tx, org).await?;
    let models: Vec<i64> = ModelVersions::find()
        .select_only()
        .column(model_versions::Column::SizeBytes)
        .filter(model_versions::Column::OrgId.eq(org.0))
        .into_tuple()
        .all(tx.conn())
        .await?;
    let checkpoints: Vec<i64> = Checkpoints::find()
        .select_only()
        .column(job_checkpoints::Column::SizeBytes)
        .filter(job_checkpoints::Column::OrgId.eq(org.0))
        .filter(job_checkpoints::Column::RetiredAt.is_null())
        .into_tuple()
        .all(tx.conn())
        .await?;
    let staged = super::uploads::staged_bytes(tx, org, chrono::Utc::now()).await?;
    Ok(datasets + models.into_iter().sum::<i64>() + checkpoints.into_iter().sum::<i64>() + staged)
}
