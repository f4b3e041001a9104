//! Datasets and dataset versions (tenant tables).

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use tenfold_domain::{OrgId, UserId};
use uuid::Uuid;

use super::Page;
use crate::entities::dataset_versions::{self, Entity as Versions};
use crate::entities::datasets::{self, Entity as Datasets};
use crate::{Result, Tx};

pub async fn insert(
    tx: &Tx,
    org: OrgId,
    id: Uuid,
    name: &str,
    family: &str,
    by: Option<UserId>,
    now: DateTime<Utc>,
) -> Result<datasets::Model> {
    let row = datasets::ActiveModel {
        org_id: Set(org.0),
        id: Set(id),
        name: Set(name.to_owned()),
        family: Set(family.to_owned()),
        created_by: Set(by.map(|u| u.0)),
        created_at: Set(now),
    };
    Ok(row.insert(tx.conn()).await?)
}

pub async fn get(tx: &Tx, org: OrgId, id: Uuid) -> Result<Option<datasets::Model>> {
    Ok(Datasets::find().filter(datasets::Column::OrgId.eq(org.0)).filter(datasets::Column::Id.eq(id)).one(tx.conn()).await?)
}

pub async fn by_name(tx: &Tx, org: OrgId, name: &str) -> Result<Option<datasets::Model>> {
    Ok(Datasets::find().filter(datasets::Column::OrgId.eq(org.0)).filter(datasets::Column::Name.eq(name)).one(tx.conn()).await?)
}

pub async fn list(tx: &Tx, org: OrgId, family: Option<&str>, after: Option<Uuid>, limit: u64) -> Result<Page<datasets::Model>> {
    let mut q = Datasets::find().filter(datasets::Column::OrgId.eq(org.0));
    if let Some(family) = family {
        q = q.filter(datasets::Column::Family.eq(family));
    }
    if let Some(after) = after {
        q = q.filter(datasets::Column::Id.gt(after));
    }
    let rows = q.order_by_asc(datasets::Column::Id).limit(limit + 1).all(tx.conn()).await?;
    Ok(Page::from_overfetch(rows, limit))
}

pub async fn delete(tx: &Tx, org: OrgId, id: Uuid) -> Result<bool> {
    let res = Datasets::delete_many().filter(datasets::Column::OrgId.eq(org.0)).filter(datasets::Column::Id.eq(id)).exec(tx.conn()).await?;
    Ok(res.rows_affected == 1)
}

pub struct NewVersion<'a> {
    pub id: Uuid,
    pub dataset_id: Uuid,
    pub version: i32,
    pub file_name: &'a str,
    pub size_bytes: i64,
    pub sha256: &'a str,
    pub created_by: Option<UserId>,
    pub redaction: Option<String>,
}

pub async fn insert_version(tx: &Tx, org: OrgId, new: NewVersion<'_>, now: DateTime<Utc>) -> Result<dataset_versions::Model> {
    let row = dataset_versions::ActiveModel {
        org_id: Set(org.0),
        id: Set(new.id),
        dataset_id: Set(new.dataset_id),
        version: Set(new.version),
        status: Set("PENDING".into()),
        file_name: Set(new.file_name.to_owned()),
        size_bytes: Set(new.size_bytes),
        sha256: Set(new.sha256.to_owned()),
        stats: Set(None),
        problems: Set(None),
        warnings: Set(None),
        preview: Set(None),
        splits: Set(None),
        redaction: Set(new.redaction),
        problem_count: Set(0),
        created_by: Set(new.created_by.map(|u| u.0)),
        created_at: Set(now),
        validated_at: Set(None),
    };
    Ok(row.insert(tx.conn()).await?)
}

pub async fn next_version_number(tx: &Tx, org: OrgId, dataset: Uuid) -> Result<i32> {
    let last = Versions::find()
        .filter(dataset_versions::Column::OrgId.eq(org.0))
        .filter(dataset_versions::Column::DatasetId.eq(dataset))
        .order_by_desc(dataset_versions::Column::Version)
        .one(tx.conn())
        .await?;
    Ok(last.map_or(1, |v| v.version + 1))
}

pub async fn versions(tx: &Tx, org: OrgId, dataset: Uuid) -> Result<Vec<dataset_versions::Model>> {
    Ok(Versions::find()
        .filter(dataset_versions::Column::OrgId.eq(org.0))
        .filter(dataset_versions::Column::DatasetId.eq(dataset))
        .order_by_asc(dataset_versions::Column::Version)
        .all(tx.conn())
        .await?)
}

pub async fn version(tx: &Tx, org: OrgId, id: Uuid) -> Result<Option<dataset_versions::Model>> {
    Ok(Versions::find()
        .filter(dataset_versions::Column::OrgId.eq(org.0))
        .filter(dataset_versions::Column::Id.eq(id))
        .one(tx.conn())
        .await?)
}

pub struct ValidationResult {
    pub status: &'static str,
    pub stats: String,
    pub problems: String,
    pub warnings: String,
    pub preview: String,
    pub splits: String,
    pub problem_count: i64,
}

/// Records the outcome of validation. Only a PENDING version changes, so a
/// version, once READY or INVALID, is immutable.
pub async fn finish_validation(tx: &Tx, org: OrgId, id: Uuid, result: ValidationResult, now: DateTime<Utc>) -> Result<bool> {
    let res = Versions::update_many()
        .col_expr(dataset_versions::Column::Status, result.status.into())
        .col_expr(dataset_versions::Column::Stats, Some(result.stats).into())
        .col_expr(dataset_versions::Column::Problems, Some(result.problems).into())
        .col_expr(dataset_versions::Column::Warnings, Some(result.warnings).into())
        .col_expr(dataset_versions::Column::Preview, Some(result.preview).into())
        .col_expr(dataset_versions::Column::Splits, Some(result.splits).into())
        .col_expr(dataset_versions::Column::ProblemCount, result.problem_count.into())
        .col_expr(dataset_versions::Column::ValidatedAt, Some(now).into())
        .filter(dataset_versions::Column::OrgId.eq(org.0))
        .filter(dataset_versions::Column::Id.eq(id))
        .filter(dataset_versions::Column::Status.eq("PENDING"))
        .exec(tx.conn())
        .await?;
    Ok(res.rows_affected == 1)
}

/// How many versions of the organization point at a blob (for deletion).
pub async fn blob_references(tx: &Tx, org: OrgId, sha256: &str) -> Result<u64> {
    Ok(Versions::find()
        .filter(dataset_versions::Column::OrgId.eq(org.0))
        .filter(dataset_versions::Column::Sha256.eq(sha256))
        .filter(dataset_versions::Column::Status.ne("INVALID"))
        .count(tx.conn())
        .await?)
}

/// Bytes of the organization's kept uploads (for the storage quota).
pub async fn stored_bytes(tx: &Tx, org: OrgId) -> Result<i64> {
    let rows: Vec<(String, i64)> = Versions::find()
        .select_only()
        .column(dataset_versions::Column::Sha256)
        .column(dataset_versions::Column::SizeBytes)
        .filter(dataset_versions::Column::OrgId.eq(org.0))
        .filter(dataset_versions::Column::Status.ne("INVALID"))
        .into_tuple()
        .all(tx.conn())
        .await?;
    // Identical files share one blob.
    let mut seen = std::collections::HashSet::new();
    Ok(rows.into_iter().filter(|(sha, _)| seen.insert(sha.clone())).map(|(_, size)| size).sum())
}
