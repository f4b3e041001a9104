//! Keys organizations issue to their own customers (tenant table, found by
//! lookup id before the tenant is known, like API keys).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tenfold_domain::OrgId;
use uuid::Uuid;

use super::Page;
use crate::entities::customer_keys::{self, Entity as CustomerKeys};
use crate::{Result, Tx};

pub async fn insert(tx: &Tx, row: customer_keys::Model) -> Result<customer_keys::Model> {
    Ok(customer_keys::ActiveModel::from(row).insert(tx.conn()).await?)
}

/// The caller must have called `Tx::set_api_key_lookup` with the same id.
pub async fn by_lookup_id(tx: &Tx, lookup_id: &str) -> Result<Option<customer_keys::Model>> {
    Ok(CustomerKeys::find().filter(customer_keys::Column::LookupId.eq(lookup_id)).one(tx.conn()).await?)
}

pub async fn get(tx: &Tx, org: OrgId, id: Uuid) -> Result<Option<customer_keys::Model>> {
    Ok(CustomerKeys::find().filter(customer_keys::Column::OrgId.eq(org.0)).filter(customer_keys::Column::Id.eq(id)).one(tx.conn()).await?)
}

pub async fn list(tx: &Tx, org: OrgId, include_revoked: bool, after: Option<Uuid>, limit: u64) -> Result<Page<customer_keys::Model>> {
    let mut q = CustomerKeys::find().filter(customer_keys::Column::OrgId.eq(org.0));
    if !include_revoked {
        q = q.filter(customer_keys::Column::RevokedAt.is_null());
    }
    if let Some(after) = after {
        q = q.filter(customer_keys::Column::Id.gt(after));
    }
    let rows = q.order_by_asc(customer_keys::Column::Id).limit(limit + 1).all(tx.conn()).await?;
    Ok(Page::from_overfetch(rows, limit))
}

pub async fn revoke(tx: &Tx, org: OrgId, id: Uuid, now: DateTime<Utc>) -> Result<bool> {
    let res = CustomerKeys::update_many()
        .col_expr(customer_keys::Column::RevokedAt, Expr::value(now))
        .filter(customer_keys::Column::OrgId.eq(org.0))
        .filter(customer_keys::Column::Id.eq(id))
        .filter(customer_keys::Column::RevokedAt.is_null())
        .exec(tx.conn())
        .await?;
    Ok(res.rows_affected == 1)
}
