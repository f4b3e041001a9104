use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use tenfold_domain::{OrgId, RefreshTokenId, UserId};
use uuid::Uuid;

use crate::entities::refresh_tokens::{self, Entity as RefreshTokens};
use crate::{Result, Tx};

pub struct NewRefreshToken {
    pub id: RefreshTokenId,
    pub family_id: Uuid,
    pub user: UserId,
    pub org: OrgId,
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
    pub family_expires_at: DateTime<Utc>,
}

pub async fn insert(tx: &Tx, new: NewRefreshToken, now: DateTime<Utc>) -> Result<refresh_tokens::Model> {
    let row = refresh_tokens::ActiveModel {
        id: Set(new.id.0),
        family_id: Set(new.family_id),
        user_id: Set(new.user.0),
        org_id: Set(new.org.0),
        token_hash: Set(new.token_hash),
        created_at: Set(now),
        expires_at: Set(new.expires_at),
        family_expires_at: Set(new.family_expires_at),
        used_at: Set(None),
        revoked_at: Set(None),
    };
    Ok(row.insert(tx.conn()).await?)
}

pub async fn by_hash(tx: &Tx, token_hash: &str) -> Result<Option<refresh_tokens::Model>> {
    Ok(RefreshTokens::find().filter(refresh_tokens::Column::TokenHash.eq(token_hash)).one(tx.conn()).await?)
}

/// Marks the token used if nobody has: the compare-and-swap that makes
/// rotation safe under concurrent refreshes (exactly one wins).
pub async fn mark_used(tx: &Tx, id: RefreshTokenId, now: DateTime<Utc>) -> Result<bool> {
    let res = RefreshTokens::update_many()
        .col_expr(refresh_tokens::Column::UsedAt, Some(now).into())
        .filter(refresh_tokens::Column::Id.eq(id.0))
        .filter(refresh_tokens::Column::UsedAt.is_null())
        .filter(refresh_tokens::Column::RevokedAt.is_null())
        .exec(tx.conn())
        .await?;
    Ok(res.rows_affected == 1)
}

pub async fn revoke_family(tx: &Tx, family_id: Uuid, now: DateTime<Utc>) -> Result<u64> {
    let res = RefreshTokens::update_many()
        .col_expr(refresh_tokens::Column::RevokedAt, Some(now).into())
        .filter(refresh_tokens::Column::FamilyId.eq(family_id))
        .filter(refresh_tokens::Column::RevokedAt.is_null())
        .exec(tx.conn())
        .await?;
    Ok(res.rows_affected)
}

/// Ends every sign-in of `user`, or only those in `org` when given.
pub async fn revoke_for_user(tx: &Tx, user: UserId, org: Option<OrgId>, now: DateTime<Utc>) -> Result<u64> {
    let mut q = RefreshTokens::update_many()
        .col_expr(refresh_tokens::Column::RevokedAt, Some(now).into())
        .filter(refresh_tokens::Column::UserId.eq(user.0))
        .filter(refresh_tokens::Column::RevokedAt.is_null());
    if let Some(org) = org {
        q = q.filter(refresh_tokens::Column::OrgId.eq(org.0));
    }
    Ok(q.exec(tx.conn()).await?.rows_affected)
}

/// Whether the family is still live (not revoked): access tokens name their
/// family so that logging out ends them too.
pub async fn family_is_live(tx: &Tx, family_id: Uuid) -> Result<bool> {
    let revoked = RefreshTokens::find()
        .filter(refresh_tokens::Column::FamilyId.eq(family_id))
        .filter(refresh_tokens::Column::RevokedAt.is_not_null())
        .one(tx.conn())
        .await?;
    Ok(revoked.is_none())
}
