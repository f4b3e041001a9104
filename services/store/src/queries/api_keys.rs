use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use tenfold_domain::{ApiKeyId, OrgId, UserId};

use super::Page;
use crate::entities::api_keys::{self, Entity as ApiKeys};
use crate::{Result, Tx};

pub struct NewApiKey {
    pub id: ApiKeyId,
    pub name: String,
    pub lookup_id: String,
    pub prefix: String,
    pub secret_hash: String,
    pub scopes_json: String,
    pub created_by: UserId,
}

pub async fn insert(tx: &Tx, org: OrgId, new: NewApiKey, now: DateTime<Utc>) -> Result<api_keys::Model> {
    let row = api_keys::ActiveModel {
        org_id: Set(org.0),
        id: Set(new.id.0),
        name: Set(new.name),
        lookup_id: Set(new.lookup_id),
        prefix: Set(new.prefix),
        secret_hash: Set(new.secret_hash),
        scopes: Set(new.scopes_json),
        created_by: Set(new.created_by.0),
        created_at: Set(now),
        last_used_at: Set(None),
        revoked_at: Set(None),
    };
    Ok(row.insert(tx.conn()).await?)
}

/// Finds a key by its public lookup id, before its tenant is known. The
/// caller must have called `Tx::set_api_key_lookup` with the same id.
pub async fn by_lookup_id(tx: &Tx, lookup_id: &str) -> Result<Option<api_keys::Model>> {
    Ok(ApiKeys::find().filter(api_keys::Column::LookupId.eq(lookup_id)).one(tx.conn()).await?)
}

pub async fn get(tx: &Tx, org: OrgId, id: ApiKeyId) -> Result<Option<api_keys::Model>> {
    Ok(ApiKeys::find().filter(api_keys::Column::OrgId.eq(org.0)).filter(api_keys::Column::Id.eq(id.0)).one(tx.conn()).await?)
}

pub async fn list_active(tx: &Tx, org: OrgId, after: Option<ApiKeyId>, limit: u64) -> Result<Page<api_keys::Model>> {
    let mut q = ApiKeys::find().filter(api_keys::Column::OrgId.eq(org.0)).filter(api_keys::Column::RevokedAt.is_null());
    if let Some(after) = after {
        q = q.filter(api_keys::Column::Id.gt(after.0));
    }
    let rows = q.order_by_asc(api_keys::Column::Id).limit(limit + 1).all(tx.conn()).await?;
    Ok(Page::from_overfetch(rows, limit))
}

pub async fn count_active(tx: &Tx, org: OrgId) -> Result<u64> {
    Ok(ApiKeys::find().filter(api_keys::Column::OrgId.eq(org.0)).filter(api_keys::Column::RevokedAt.is_null()).count(tx.conn()).await?)
}

pub async fn revoke(tx: &Tx, org: OrgId, id: ApiKeyId, now: DateTime<Utc>) -> Result<bool> {
    let res = ApiKeys::update_many()
        .col_expr(api_keys::Column::RevokedAt, Some(now).into())
        .filter(api_keys::Column::OrgId.eq(org.0))
        .filter(api_keys::Column::Id.eq(id.0))
        .filter(api_keys::Column::RevokedAt.is_null())
        .exec(tx.conn())
        .await?;
    Ok(res.rows_affected == 1)
}

/// Revokes every live key `user` created in the organization; how many.
pub async fn revoke_created_by(tx: &Tx, org: OrgId, user: UserId, now: DateTime<Utc>) -> Result<u64> {
    let res = ApiKeys::update_many()
        .col_expr(api_keys::Column::RevokedAt, Some(now).into())
        .filter(api_keys::Column::OrgId.eq(org.0))
        .filter(api_keys::Column::CreatedBy.eq(user.0))
        .filter(api_keys::Column::RevokedAt.is_null())
        .exec(tx.conn())
        .await?;
    Ok(res.rows_affected)
}

pub async fn touch(tx: &Tx, org: OrgId, id: ApiKeyId, now: DateTime<Utc>) -> Result<()> {
    ApiKeys::update_many()
        .col_expr(api_keys::Column::LastUsedAt, Some(now).into())
        .filter(api_keys::Column::OrgId.eq(org.0))
        .filter(api_keys::Column::Id.eq(id.0))
        .exec(tx.conn())
        .await?;
    Ok(())
}
