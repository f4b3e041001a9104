//! Webhooks and their deliveries (tenant tables), and the global index of
//! deliveries due (`webhook_outbox`), which a deliverer claims by pushing
//! the due time forward inside its transaction.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tenfold_domain::OrgId;
use uuid::Uuid;

use super::Page;
use crate::entities::webhook_deliveries::{self, Entity as Deliveries};
use crate::entities::webhook_outbox::{self, Entity as Outbox};
use crate::entities::webhooks::{self, Entity as Webhooks};
use crate::{Result, Tx};

pub async fn insert(tx: &Tx, row: webhooks::Model) -> Result<webhooks::Model> {
    Ok(webhooks::ActiveModel::from(row).insert(tx.conn()).await?)
}

pub async fn get(tx: &Tx, org: OrgId, id: Uuid) -> Result<Option<webhooks::Model>> {
    Ok(Webhooks::find().filter(webhooks::Column::OrgId.eq(org.0)).filter(webhooks::Column::Id.eq(id)).one(tx.conn()).await?)
}

pub async fn list(tx: &Tx, org: OrgId) -> Result<Vec<webhooks::Model>> {
    Ok(Webhooks::find().filter(webhooks::Column::OrgId.eq(org.0)).order_by_asc(webhooks::Column::Id).all(tx.conn()).await?)
}

pub async fn count(tx: &Tx, org: OrgId) -> Result<u64> {
    use sea_orm::PaginatorTrait;
    Ok(Webhooks::find().filter(webhooks::Column::OrgId.eq(org.0)).count(tx.conn()).await?)
}

/// Deletes a webhook; its deliveries cascade. Their outbox rows go too.
pub async fn delete(tx: &Tx, org: OrgId, id: Uuid) -> Result<bool> {
    let pending: Vec<Uuid> = Deliveries::find()
        .select_only()
        .column(webhook_deliveries::Column::Id)
        .filter(webhook_deliveries::Column::OrgId.eq(org.0))
        .filter(webhook_deliveries::Column::WebhookId.eq(id))
        .filter(webhook_deliveries::Column::Status.eq("pending"))
        .into_tuple()
        .all(tx.conn())
        .await?;
    if !pending.is_empty() {
        Outbox::delete_many().filter(webhook_outbox::Column::DeliveryId.is_in(pending)).exec(tx.conn()).await?;
    }
    let res = Webhooks::delete_many().filter(webhooks::Column::OrgId.eq(org.0)).filter(webhooks::Column::Id.eq(id)).exec(tx.conn()).await?;
    Ok(res.rows_affected == 1)
}

/// Queues a delivery: its row and its outbox entry, in the caller's transaction.
pub async fn enqueue(tx: &Tx, row: webhook_deliveries::Model) -> Result<()> {
    let outbox = webhook_outbox::Model { delivery_id: row.id, org_id: row.org_id, due_at: row.next_attempt_at };
    webhook_deliveries::ActiveModel::from(row).insert(tx.conn()).await?;
    webhook_outbox::ActiveModel::from(outbox).insert(tx.conn()).await?;
    Ok(())
}

pub async fn delivery(tx: &Tx, org: OrgId, id: Uuid) -> Result<Option<webhook_deliveries::Model>> {
    Ok(Deliveries::find()
        .filter(webhook_deliveries::Column::OrgId.eq(org.0))
        .filter(webhook_deliveries::Column::Id.eq(id))
        .one(tx.conn())
        .await?)
}

/// A webhook's deliveries, newest first.
pub async fn deliveries(tx: &Tx, org: OrgId, webhook: Uuid, before: Option<Uuid>, limit: u64) -> Result<Page<webhook_deliveries::Model>> {
    let mut q =
        Deliveries::find().filter(webhook_deliveries::Column::OrgId.eq(org.0)).filter(webhook_deliveries::Column::WebhookId.eq(webhook));
    if let Some(before) = before {
        q = q.filter(webhook_deliveries::Column::Id.lt(before));
    }
    let rows = q.order_by_desc(webhook_deliveries::Column::Id).limit(limit + 1).all(tx.conn()).await?;
    Ok(Page::from_overfetch(rows, limit))
}

/// Claims up to `n` due deliveries for `hold` (their due time moves past
/// it, so another deliverer skips them meanwhile).
pub async fn claim_due(tx: &Tx, now: DateTime<Utc>, hold: DateTime<Utc>, n: u64) -> Result<Vec<(OrgId, Uuid)>> {
    tx.serialize("tenfold:webhook-deliveries").await?;
    let due = Outbox::find()
        .filter(webhook_outbox::Column::DueAt.lte(now))
        .order_by_asc(webhook_outbox::Column::DueAt)
        .limit(n)
        .all(tx.conn())
        .await?;
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = due.iter().map(|d| d.delivery_id).collect();
    Outbox::update_many()
        .col_expr(webhook_outbox::Column::DueAt, Expr::value(hold))
        .filter(webhook_outbox::Column::DeliveryId.is_in(ids))
        .exec(tx.conn())
        .await?;
    Ok(due.into_iter().map(|d| (OrgId(d.org_id), d.delivery_id)).collect())
}

/// Records an attempt: delivered, failed for good, or due again at `retry_at`.
#[allow(clippy::too_many_arguments)]
pub async fn record_attempt(
    tx: &Tx,
    org: OrgId,
    id: Uuid,
    status: &str,
    http_status: Option<i32>,
    error: Option<String>,
    retry_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut q = Deliveries::update_many()
        .col_expr(webhook_deliveries::Column::Status, Expr::value(status))
        .col_expr(webhook_deliveries::Column::Attempts, Expr::col(webhook_deliveries::Column::Attempts).add(1))
        .col_expr(webhook_deliveries::Column::LastStatus, Expr::value(http_status))
        .col_expr(webhook_deliveries::Column::LastError, Expr::value(error))
        .filter(webhook_deliveries::Column::OrgId.eq(org.0))
        .filter(webhook_deliveries::Column::Id.eq(id));
    if status == "delivered" {
        q = q.col_expr(webhook_deliveries::Column::DeliveredAt, Expr::value(now));
    }
    if let Some(at) = retry_at {
        q = q.col_expr(webhook_deliveries::Column::NextAttemptAt, Expr::value(at));
    }
    q.exec(tx.conn()).await?;
    match retry_at {
        Some(at) => {
            Outbox::update_many()
                .col_expr(webhook_outbox::Column::DueAt, Expr::value(at))
                .filter(webhook_outbox::Column::DeliveryId.eq(id))
                .exec(tx.conn())
                .await?;
        }
        None => {
            Outbox::delete_many().filter(webhook_outbox::Column::DeliveryId.eq(id)).exec(tx.conn()).await?;
        }
    }
    Ok(())
}

/// Drops an outbox entry whose delivery no longer exists (webhook deleted).
pub async fn forget(tx: &Tx, id: Uuid) -> Result<()> {
    Outbox::delete_many().filter(webhook_outbox::Column::DeliveryId.eq(id)).exec(tx.conn()).await?;
    Ok(())
}
