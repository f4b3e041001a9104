use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use tenfold_domain::UserId;
use uuid::Uuid;

use crate::entities::email_tokens::{self, Entity as EmailTokens};
use crate::{Result, Tx};

pub async fn insert(tx: &Tx, user: UserId, purpose: &str, token_hash: String, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<()> {
    let row = email_tokens::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user.0),
        purpose: Set(purpose.to_owned()),
        token_hash: Set(token_hash),
        created_at: Set(now),
        expires_at: Set(expires_at),
        used_at: Set(None),
    };
    row.insert(tx.conn()).await?;
    Ok(())
}

pub async fn by_hash(tx: &Tx, purpose: &str, token_hash: &str) -> Result<Option<email_tokens::Model>> {
    Ok(EmailTokens::find()
        .filter(email_tokens::Column::Purpose.eq(purpose))
        .filter(email_tokens::Column::TokenHash.eq(token_hash))
        .one(tx.conn())
        .await?)
}

/// Uses the token once; false if it was used already.
pub async fn consume(tx: &Tx, id: Uuid, now: DateTime<Utc>) -> Result<bool> {
    let res = EmailTokens::update_many()
        .col_expr(email_tokens::Column::UsedAt, Some(now).into())
        .filter(email_tokens::Column::Id.eq(id))
        .filter(email_tokens::Column::UsedAt.is_null())
        .exec(tx.conn())
        .await?;
    Ok(res.rows_affected == 1)
}

/// Invalidates the user's other unused tokens of one purpose (a new reset
/// email makes the older links useless).
pub async fn invalidate_all(tx: &Tx, user: UserId, purpose: &str, now: DateTime<Utc>) -> Result<()> {
    EmailTokens::update_many()
        .col_expr(email_tokens::Column::UsedAt, Some(now).into())
        .filter(email_tokens::Column::UserId.eq(user.0))
        .filter(email_tokens::Column::Purpose.eq(purpose))
        .filter(email_tokens::Column::UsedAt.is_null())
        .exec(tx.conn())
        .await?;
    Ok(())
}
