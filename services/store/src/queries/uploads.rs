//! Resumable uploads (tenant table) and the global index of when they
//! expire (`upload_expiry`), which the sweeper reads across organizations.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use tenfold_domain::OrgId;
use uuid::Uuid;

use crate::entities::upload_expiry::{self, Entity as Expiry};
use crate::entities::uploads::{self, Entity as Uploads};
use crate::{Result, Tx};

/// A new upload and its expiry entry, in the caller's transaction.
pub async fn insert(tx: &Tx, row: uploads::Model) -> Result<uploads::Model> {
    let expiry = upload_expiry::Model { upload_id: row.id, org_id: row.org_id, expires_at: row.expires_at };
    let row = uploads::ActiveModel::from(row).insert(tx.conn()).await?;
    upload_expiry::ActiveModel::from(expiry).insert(tx.conn()).await?;
    Ok(row)
}

pub async fn get(tx: &Tx, org: OrgId, id: Uuid) -> Result<Option<uploads::Model>> {
    Ok(Uploads::find().filter(uploads::Column::OrgId.eq(org.0)).filter(uploads::Column::Id.eq(id)).one(tx.conn()).await?)
}

/// Uploads of the organization still receiving bytes (not completed, not expired).
pub async fn count_open(tx: &Tx, org: OrgId, now: DateTime<Utc>) -> Result<u64> {
    Ok(open(org, now).count(tx.conn()).await?)
}

fn open(org: OrgId, now: DateTime<Utc>) -> sea_orm::Select<Uploads> {
    Uploads::find()
        .filter(uploads::Column::OrgId.eq(org.0))
        .filter(uploads::Column::DatasetVersionId.is_null())
        .filter(uploads::Column::ExpiresAt.gt(now))
}

/// Bytes staged by the organization's open uploads (for the storage quota).
pub async fn staged_bytes(tx: &Tx, org: OrgId, now: DateTime<Utc>) -> Result<i64> {
    let rows: Vec<i64> = open(org, now).select_only().column(uploads::Column::Offset).into_tuple().all(tx.conn()).await?;
    Ok(rows.into_iter().sum())
}

/// Bytes the organization's open uploads have still to send (promised,
/// not yet stored): a new upload must fit beside them.
pub async fn unsent_bytes(tx: &Tx, org: OrgId, now: DateTime<Utc>) -> Result<i64> {
    let rows: Vec<(i64, i64)> =
        open(org, now).select_only().column(uploads::Column::Length).column(uploads::Column::Offset).into_tuple().all(tx.conn()).await?;
    Ok(rows.into_iter().map(|(length, offset)| (length - offset).max(0)).sum())
}

/// Open uploads of the organization that stage the blob `sha256`.
pub async fn staging(tx: &Tx, org: OrgId, sha256: &str) -> Result<u64> {
    // Parts are JSON `[["<sha>", n], …]`; a 64-hex digest cannot match by accident.
    Ok(Uploads::find()
        .filter(uploads::Column::OrgId.eq(org.0))
        .filter(uploads::Column::DatasetVersionId.is_null())
        .filter(uploads::Column::Parts.like(format!("%\"{sha256}\"%")))
        .count(tx.conn())
        .await?)
}

/// Moves the upload from `from` to `to` bytes with `parts`, only if it
/// still stands at `from` (the check that serializes PATCHes). False: it
/// moved meanwhile, nothing written.
pub async fn advance(tx: &Tx, org: OrgId, id: Uuid, from: i64, to: i64, parts: String, expires_at: DateTime<Utc>) -> Result<bool> {
    let res = Uploads::update_many()
        .col_expr(uploads::Column::Offset, Expr::value(to))
        .col_expr(uploads::Column::Parts, Expr::value(parts))
        .col_expr(uploads::Column::ExpiresAt, Expr::value(expires_at))
        .filter(uploads::Column::OrgId.eq(org.0))
        .filter(uploads::Column::Id.eq(id))
        .filter(uploads::Column::Offset.eq(from))
        .filter(uploads::Column::DatasetVersionId.is_null())
        // An upload the sweeper may be deleting takes no more bytes.
        .filter(uploads::Column::ExpiresAt.gt(Utc::now()))
        .exec(tx.conn())
        .await?;
    if res.rows_affected == 1 {
        Expiry::update_many()
            .col_expr(upload_expiry::Column::ExpiresAt, Expr::value(expires_at))
            .filter(upload_expiry::Column::UploadId.eq(id))
            .exec(tx.conn())
            .await?;
    }
    Ok(res.rows_affected == 1)
}

/// Takes the last part back off an upload whose last byte arrived but
/// which did not become a dataset version (a transient failure, or a
/// process that stopped while joining it): the client sends that part
/// again. False: the upload is not in that state.
pub async fn retract_last_part(tx: &Tx, org: OrgId, row: &uploads::Model, to: i64, parts: String) -> Result<bool> {
    let res = Uploads::update_many()
        .col_expr(uploads::Column::Offset, Expr::value(to))
        .col_expr(uploads::Column::Parts, Expr::value(parts))
        .filter(uploads::Column::OrgId.eq(org.0))
        .filter(uploads::Column::Id.eq(row.id))
        .filter(uploads::Column::Offset.eq(row.length))
        .filter(uploads::Column::DatasetVersionId.is_null())
        .exec(tx.conn())
        .await?;
    Ok(res.rows_affected == 1)
}

/// Marks the upload complete: it became `version`; its parts are no longer staged.
pub async fn complete(tx: &Tx, org: OrgId, id: Uuid, version: Uuid) -> Result<()> {
    Uploads::update_many()
        .col_expr(uploads::Column::DatasetVersionId, Expr::value(version))
        .col_expr(uploads::Column::Parts, Expr::value("[]"))
        .filter(uploads::Column::OrgId.eq(org.0))
        .filter(uploads::Column::Id.eq(id))
        .exec(tx.conn())
        .await?;
    Ok(())
}

/// Deletes the upload and its expiry entry; the row as it was, if any.
pub async fn delete(tx: &Tx, org: OrgId, id: Uuid) -> Result<Option<uploads::Model>> {
    let Some(row) = get(tx, org, id).await? else { return Ok(None) };
    Uploads::delete_many().filter(uploads::Column::OrgId.eq(org.0)).filter(uploads::Column::Id.eq(id)).exec(tx.conn()).await?;
    Expiry::delete_by_id(id).exec(tx.conn()).await?;
    Ok(Some(row))
}

/// Expired uploads across organizations, oldest first (global index).
pub async fn expired(tx: &Tx, now: DateTime<Utc>, limit: u64) -> Result<Vec<(OrgId, Uuid)>> {
    let rows = Expiry::find()
        .filter(upload_expiry::Column::ExpiresAt.lte(now))
        .order_by_asc(upload_expiry::Column::ExpiresAt)
        .limit(limit)
        .all(tx.conn())
        .await?;
    Ok(rows.into_iter().map(|r| (OrgId(r.org_id), r.upload_id)).collect())
}

/// Forgets an expiry entry whose upload is gone.
pub async fn forget_expiry(tx: &Tx, id: Uuid) -> Result<()> {
    Expiry::delete_by_id(id).exec(tx.conn()).await?;
    Ok(())
}
