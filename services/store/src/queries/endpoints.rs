//! Hosted endpoints (tenant table).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, Condition, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect};
use tenfold_domain::OrgId;
use uuid::Uuid;

use super::Page;
use crate::entities::endpoints::{self, Entity as Endpoints};
use crate::{Result, Tx};

pub async fn insert(tx: &Tx, row: endpoints::Model) -> Result<endpoints::Model> {
    Ok(endpoints::ActiveModel::from(row).insert(tx.conn()).await?)
}

/// Writes every column of an existing row (the use case changed it).
pub async fn save(tx: &Tx, row: endpoints::Model) -> Result<endpoints::Model> {
    Ok(row.into_active_model().reset_all().update(tx.conn()).await?)
}

pub async fn get(tx: &Tx, org: OrgId, id: Uuid) -> Result<Option<endpoints::Model>> {
    Ok(Endpoints::find().filter(endpoints::Column::OrgId.eq(org.0)).filter(endpoints::Column::Id.eq(id)).one(tx.conn()).await?)
}

pub async fn by_slug(tx: &Tx, org: OrgId, slug: &str) -> Result<Option<endpoints::Model>> {
    Ok(Endpoints::find().filter(endpoints::Column::OrgId.eq(org.0)).filter(endpoints::Column::Slug.eq(slug)).one(tx.conn()).await?)
}

pub async fn list(tx: &Tx, org: OrgId, after: Option<Uuid>, limit: u64) -> Result<Page<endpoints::Model>> {
    let mut q = Endpoints::find().filter(endpoints::Column::OrgId.eq(org.0));
    if let Some(after) = after {
        q = q.filter(endpoints::Column::Id.gt(after));
    }
    let rows = q.order_by_asc(endpoints::Column::Id).limit(limit + 1).all(tx.conn()).await?;
    Ok(Page::from_overfetch(rows, limit))
}

pub async fn delete(tx: &Tx, org: OrgId, id: Uuid) -> Result<bool> {
    let res =
        Endpoints::delete_many().filter(endpoints::Column::OrgId.eq(org.0)).filter(endpoints::Column::Id.eq(id)).exec(tx.conn()).await?;
    Ok(res.rows_affected == 1)
}

/// Endpoints that serve `version` now: pinned to it, as its canary, or
/// following an alias that points at it (`aliases` are the model's aliases
/// on that version).
pub async fn serving_version(tx: &Tx, org: OrgId, model: Uuid, version: Uuid, aliases: &[String]) -> Result<Vec<endpoints::Model>> {
    let mut any = Condition::any().add(endpoints::Column::ModelVersionId.eq(version)).add(endpoints::Column::CanaryVersionId.eq(version));
    if !aliases.is_empty() {
        any = any.add(endpoints::Column::Alias.is_in(aliases.iter().cloned()));
    }
    Ok(Endpoints::find()
        .filter(endpoints::Column::OrgId.eq(org.0))
        .filter(endpoints::Column::ModelId.eq(model))
        .filter(any)
        .order_by_asc(endpoints::Column::Slug)
        .all(tx.conn())
        .await?)
}

/// Records the last measured cold start of an endpoint.
pub async fn set_cold_start(tx: &Tx, org: OrgId, id: Uuid, ms: i64, now: DateTime<Utc>) -> Result<()> {
    Endpoints::update_many()
        .col_expr(endpoints::Column::ColdStartMs, Expr::value(ms))
        .col_expr(endpoints::Column::UpdatedAt, Expr::value(now))
        .filter(endpoints::Column::OrgId.eq(org.0))
        .filter(endpoints::Column::Id.eq(id))
        .exec(tx.conn())
        .await?;
    Ok(())
}
