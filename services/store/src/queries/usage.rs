//! Endpoint usage: the event outbox and its hourly rollups (tenant tables).
//!
//! An event is inserted at most once (its id is the dedupe key) and the
//! rollup grows in the same transaction only when the insert was new, so
//! the rollups are exact however often a batch is retried.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use tenfold_domain::OrgId;
use uuid::Uuid;

use crate::entities::usage_events::{self, Entity as Events};
use crate::entities::usage_rollups::{self, Entity as Rollups};
use crate::{Result, Tx};

/// The hour an instant falls in (rollups are keyed by it).
pub fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::hours(1)).unwrap_or(t)
}

/// Inserts the event unless its id is known; when new, adds it to its
/// hour's rollup. Returns whether it was new.
pub async fn record(tx: &Tx, event: usage_events::Model) -> Result<bool> {
    let inserted = Events::insert(usage_events::ActiveModel::from(event.clone()))
        .on_conflict(OnConflict::columns([usage_events::Column::OrgId, usage_events::Column::Id]).do_nothing().to_owned())
        .exec_without_returning(tx.conn())
        .await?;
    if inserted != 1 {
        return Ok(false);
    }
    let nil = Uuid::nil();
    let row = usage_rollups::Model {
        org_id: event.org_id,
        hour: hour_of(event.created_at),
        endpoint_id: event.endpoint_id,
        model_version_id: event.model_version_id,
        api_key_id: event.api_key_id.unwrap_or(nil),
        customer_key_id: event.customer_key_id.unwrap_or(nil),
        status_class: event.status_class,
        requests: i64::from(event.requests),
        images: i64::from(event.images),
        input_tokens: i64::from(event.input_tokens),
        output_tokens: i64::from(event.output_tokens),
        compute_ms: event.compute_ms,
    };
    let add = |c: usage_rollups::Column| (c, Expr::col((Rollups, c)).add(Expr::col((sea_orm::sea_query::Alias::new("excluded"), c))));
    Rollups::insert(usage_rollups::ActiveModel::from(row))
        .on_conflict(
            OnConflict::columns([
                usage_rollups::Column::OrgId,
                usage_rollups::Column::Hour,
                usage_rollups::Column::EndpointId,
                usage_rollups::Column::ModelVersionId,
                usage_rollups::Column::ApiKeyId,
                usage_rollups::Column::CustomerKeyId,
                usage_rollups::Column::StatusClass,
            ])
            .values([
                add(usage_rollups::Column::Requests),
                add(usage_rollups::Column::Images),
                add(usage_rollups::Column::InputTokens),
                add(usage_rollups::Column::OutputTokens),
                add(usage_rollups::Column::ComputeMs),
            ])
            .to_owned(),
        )
        .exec_without_returning(tx.conn())
        .await?;
    Ok(true)
}

/// The rollups of `[from, to)` (by hour), oldest first.
pub async fn rollups(tx: &Tx, org: OrgId, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<usage_rollups::Model>> {
    Ok(Rollups::find()
        .filter(usage_rollups::Column::OrgId.eq(org.0))
        .filter(usage_rollups::Column::Hour.gte(hour_of(from)))
        .filter(usage_rollups::Column::Hour.lt(to))
        .order_by_asc(usage_rollups::Column::Hour)
        .all(tx.conn())
        .await?)
}

/// Answered (2xx) requests of a customer key since `since`, for its quota.
pub async fn customer_key_requests_since(tx: &Tx, org: OrgId, key: Uuid, since: DateTime<Utc>) -> Result<i64> {
    let rows = Rollups::find()
        .filter(usage_rollups::Column::OrgId.eq(org.0))
        .filter(usage_rollups::Column::CustomerKeyId.eq(key))
        .filter(usage_rollups::Column::StatusClass.eq(2))
        .filter(usage_rollups::Column::Hour.gte(hour_of(since)))
        .all(tx.conn())
        .await?;
    Ok(rows.iter().map(|r| r.requests).sum())
}

/// The organization's answered requests, images and tokens since `since`.
pub async fn org_totals_since(tx: &Tx, org: OrgId, since: DateTime<Utc>) -> Result<Totals> {
    let rows = Rollups::find()
        .filter(usage_rollups::Column::OrgId.eq(org.0))
        .filter(usage_rollups::Column::StatusClass.eq(2))
        .filter(usage_rollups::Column::Hour.gte(hour_of(since)))
        .all(tx.conn())
        .await?;
    Ok(rows.iter().fold(Totals::default(), |t, r| Totals {
        requests: t.requests + r.requests,
        images: t.images + r.images,
        tokens: t.tokens + r.input_tokens + r.output_tokens,
    }))
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub requests: i64,
    pub images: i64,
    pub tokens: i64,
}

/// How many events (any status) an endpoint has, for tests and checks.
pub async fn count_events(tx: &Tx, org: OrgId, status_class: Option<i16>) -> Result<u64> {
    use sea_orm::PaginatorTrait;
    let mut q = Events::find().filter(usage_events::Column::OrgId.eq(org.0));
    if let Some(class) = status_class {
        q = q.filter(usage_events::Column::StatusClass.eq(class));
    }
    Ok(q.count(tx.conn()).await?)
}
