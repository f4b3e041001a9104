use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use tenfold_domain::{Email, InvitationId, OrgId, Role, UserId};

use super::Page;
use crate::entities::invitations::{self, Entity as Invitations};
use crate::{Result, Tx};

pub struct NewInvitation<'a> {
    pub id: InvitationId,
    pub email: &'a Email,
    pub role: Role,
    pub token_hash: String,
    pub invited_by: UserId,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert(tx: &Tx, org: OrgId, new: NewInvitation<'_>, now: DateTime<Utc>) -> Result<invitations::Model> {
    let row = invitations::ActiveModel {
        org_id: Set(org.0),
        id: Set(new.id.0),
        email: Set(new.email.as_str().to_owned()),
        role: Set(new.role.as_str().to_owned()),
        token_hash: Set(new.token_hash),
        invited_by: Set(new.invited_by.0),
        created_at: Set(now),
        expires_at: Set(new.expires_at),
        accepted_at: Set(None),
        revoked_at: Set(None),
    };
    Ok(row.insert(tx.conn()).await?)
}

pub async fn by_token_hash(tx: &Tx, org: OrgId, token_hash: &str) -> Result<Option<invitations::Model>> {
    Ok(Invitations::find()
        .filter(invitations::Column::OrgId.eq(org.0))
        .filter(invitations::Column::TokenHash.eq(token_hash))
        .one(tx.conn())
        .await?)
}

pub async fn get(tx: &Tx, org: OrgId, id: InvitationId) -> Result<Option<invitations::Model>> {
    Ok(Invitations::find().filter(invitations::Column::OrgId.eq(org.0)).filter(invitations::Column::Id.eq(id.0)).one(tx.conn()).await?)
}

/// Marks the invitation used; false when it was already used or revoked
/// (single use even under concurrent acceptance).
pub async fn accept(tx: &Tx, org: OrgId, id: InvitationId, now: DateTime<Utc>) -> Result<bool> {
    close_pending(tx, org, id, invitations::Column::AcceptedAt, now).await
}

pub async fn revoke(tx: &Tx, org: OrgId, id: InvitationId, now: DateTime<Utc>) -> Result<bool> {
    close_pending(tx, org, id, invitations::Column::RevokedAt, now).await
}

/// Sets `column` to `now` if the invitation is still pending: a
/// compare-and-swap, so exactly one of accept/revoke wins.
async fn close_pending(tx: &Tx, org: OrgId, id: InvitationId, column: invitations::Column, now: DateTime<Utc>) -> Result<bool> {
    let res = Invitations::update_many()
        .col_expr(column, Some(now).into())
        .filter(invitations::Column::OrgId.eq(org.0))
        .filter(invitations::Column::Id.eq(id.0))
        .filter(invitations::Column::AcceptedAt.is_null())
        .filter(invitations::Column::RevokedAt.is_null())
        .exec(tx.conn())
        .await?;
    Ok(res.rows_affected == 1)
}

/// Pending invitations (not accepted, not revoked, not expired).
pub async fn list_pending(
    tx: &Tx,
    org: OrgId,
    now: DateTime<Utc>,
    after: Option<InvitationId>,
    limit: u64,
) -> Result<Page<invitations::Model>> {
    let mut q = Invitations::find()
        .filter(invitations::Column::OrgId.eq(org.0))
        .filter(invitations::Column::AcceptedAt.is_null())
        .filter(invitations::Column::RevokedAt.is_null())
        .filter(invitations::Column::ExpiresAt.gt(now));
    if let Some(after) = after {
        q = q.filter(invitations::Column::Id.gt(after.0));
    }
    let rows = q.order_by_asc(invitations::Column::Id).limit(limit + 1).all(tx.conn()).await?;
    Ok(Page::from_overfetch(rows, limit))
}

pub async fn count_pending(tx: &Tx, org: OrgId, now: DateTime<Utc>) -> Result<u64> {
    Ok(Invitations::find()
        .filter(invitations::Column::OrgId.eq(org.0))
        .filter(invitations::Column::AcceptedAt.is_null())
        .filter(invitations::Column::RevokedAt.is_null())
        .filter(invitations::Column::ExpiresAt.gt(now))
        .count(tx.conn())
        .await?)
}
