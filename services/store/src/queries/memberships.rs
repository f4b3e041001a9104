use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use tenfold_domain::{OrgId, Role, UserId};

use super::Page;
use crate::entities::memberships::{self, Entity as Memberships};
use crate::{Result, Tx};

pub async fn insert(tx: &Tx, org: OrgId, user: UserId, role: Role, now: DateTime<Utc>) -> Result<memberships::Model> {
    let row =
        memberships::ActiveModel { org_id: Set(org.0), user_id: Set(user.0), role: Set(role.as_str().to_owned()), created_at: Set(now) };
    Ok(row.insert(tx.conn()).await?)
}

pub async fn get(tx: &Tx, org: OrgId, user: UserId) -> Result<Option<memberships::Model>> {
    Ok(Memberships::find_by_id((org.0, user.0)).filter(memberships::Column::OrgId.eq(org.0)).one(tx.conn()).await?)
}

/// The one query across tenants: a user's own memberships (for `me`).
pub async fn for_user(tx: &Tx, user: UserId) -> Result<Vec<memberships::Model>> {
    Ok(Memberships::find()
        .filter(memberships::Column::UserId.eq(user.0))
        .order_by_asc(memberships::Column::CreatedAt)
        .all(tx.conn())
        .await?)
}

pub async fn list(tx: &Tx, org: OrgId, after: Option<UserId>, limit: u64) -> Result<Page<memberships::Model>> {
    let mut q = Memberships::find().filter(memberships::Column::OrgId.eq(org.0));
    if let Some(after) = after {
        q = q.filter(memberships::Column::UserId.gt(after.0));
    }
    let rows = q.order_by_asc(memberships::Column::UserId).limit(limit + 1).all(tx.conn()).await?;
    Ok(Page::from_overfetch(rows, limit))
}

pub async fn count(tx: &Tx, org: OrgId, role: Option<Role>) -> Result<u64> {
    let mut q = Memberships::find().filter(memberships::Column::OrgId.eq(org.0));
    if let Some(role) = role {
        q = q.filter(memberships::Column::Role.eq(role.as_str()));
    }
    Ok(q.count(tx.conn()).await?)
}

pub async fn set_role(tx: &Tx, org: OrgId, user: UserId, role: Role) -> Result<bool> {
    let res = Memberships::update_many()
        .col_expr(memberships::Column::Role, role.as_str().into())
        .filter(memberships::Column::OrgId.eq(org.0))
        .filter(memberships::Column::UserId.eq(user.0))
        .exec(tx.conn())
        .await?;
    Ok(res.rows_affected == 1)
}

pub async fn delete(tx: &Tx, org: OrgId, user: UserId) -> Result<bool> {
    let res = Memberships::delete_many()
        .filter(memberships::Column::OrgId.eq(org.0))
        .filter(memberships::Column::UserId.eq(user.0))
        .exec(tx.conn())
        .await?;
    Ok(res.rows_affected == 1)
}

/// Owners of `org`, locked until the transaction ends on PostgreSQL, so that
/// two concurrent demotions cannot leave an organization without an owner.
/// (SQLite allows one writer at a time, which gives the same guarantee.)
pub async fn owners_for_update(tx: &Tx, org: OrgId) -> Result<Vec<memberships::Model>> {
    use sea_orm::ConnectionTrait;
    let mut q = Memberships::find().filter(memberships::Column::OrgId.eq(org.0)).filter(memberships::Column::Role.eq(Role::Owner.as_str()));
    if tx.conn().get_database_backend() == sea_orm::DbBackend::Postgres {
        q = q.lock_exclusive();
    }
    Ok(q.all(tx.conn()).await?)
}
