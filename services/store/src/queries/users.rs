use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use tenfold_domain::{Email, UserId};

use crate::entities::users::{self, Entity as Users};
use crate::{Result, Tx};

pub async fn insert(tx: &Tx, id: UserId, email: &Email, password_hash: String, now: DateTime<Utc>) -> Result<users::Model> {
    let row = users::ActiveModel {
        id: Set(id.0),
        email: Set(email.as_str().to_owned()),
        password_hash: Set(password_hash),
        email_verified_at: Set(None),
        is_platform_admin: Set(false),
        password_changed_at: Set(now),
        created_at: Set(now),
    };
    Ok(row.insert(tx.conn()).await?)
}

pub async fn by_email(tx: &Tx, email: &Email) -> Result<Option<users::Model>> {
    Ok(Users::find().filter(users::Column::Email.eq(email.as_str())).one(tx.conn()).await?)
}

pub async fn by_id(tx: &Tx, id: UserId) -> Result<Option<users::Model>> {
    Ok(Users::find_by_id(id.0).one(tx.conn()).await?)
}

pub async fn by_ids(tx: &Tx, ids: &[uuid::Uuid]) -> Result<Vec<users::Model>> {
    Ok(Users::find().filter(users::Column::Id.is_in(ids.iter().copied())).all(tx.conn()).await?)
}

pub async fn set_password(tx: &Tx, id: UserId, password_hash: String, now: DateTime<Utc>) -> Result<()> {
    Users::update_many()
        .col_expr(users::Column::PasswordHash, password_hash.into())
        .col_expr(users::Column::PasswordChangedAt, now.into())
        .filter(users::Column::Id.eq(id.0))
        .exec(tx.conn())
        .await?;
    Ok(())
}

pub async fn mark_email_verified(tx: &Tx, id: UserId, now: DateTime<Utc>) -> Result<()> {
    Users::update_many()
        .col_expr(users::Column::EmailVerifiedAt, Some(now).into())
        .filter(users::Column::Id.eq(id.0))
        .filter(users::Column::EmailVerifiedAt.is_null())
        .exec(tx.conn())
        .await?;
    Ok(())
}
