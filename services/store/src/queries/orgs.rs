use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};
use tenfold_domain::{OrgId, OrgName, Plan, Slug};

use crate::entities::organizations::{self, Entity as Orgs};
use crate::{Result, StoreError, Tx};

/// Inserts an organization, trying `slug` first and `slug-<suffix>` if that
/// is taken. The attempt runs in a savepoint so a conflict does not abort
/// the caller's PostgreSQL transaction.
pub async fn insert(
    tx: &Tx,
    id: OrgId,
    name: &OrgName,
    slug: &Slug,
    fallback_suffix: &str,
    plan: Plan,
    now: DateTime<Utc>,
) -> Result<organizations::Model> {
    let row = |slug: &Slug| organizations::ActiveModel {
        id: Set(id.0),
        name: Set(name.as_str().to_owned()),
        slug: Set(slug.as_str().to_owned()),
        plan: Set(plan.as_str().to_owned()),
        created_at: Set(now),
    };
    let savepoint = tx.conn().begin().await?;
    match row(slug).insert(&savepoint).await.map_err(StoreError::from) {
        Ok(model) => {
            savepoint.commit().await?;
            Ok(model)
        }
        Err(StoreError::Conflict(_)) => {
            savepoint.rollback().await?;
            Ok(row(&slug.with_suffix(fallback_suffix)).insert(tx.conn()).await?)
        }
        Err(other) => Err(other),
    }
}

pub async fn get(tx: &Tx, org: OrgId) -> Result<Option<organizations::Model>> {
    Ok(Orgs::find().filter(organizations::Column::Id.eq(org.0)).one(tx.conn()).await?)
}

pub async fn by_ids(tx: &Tx, ids: &[uuid::Uuid]) -> Result<Vec<organizations::Model>> {
    Ok(Orgs::find().filter(organizations::Column::Id.is_in(ids.iter().copied())).all(tx.conn()).await?)
}

pub async fn set_plan(tx: &Tx, org: OrgId, plan: Plan) -> Result<bool> {
    let res = Orgs::update_many()
        .col_expr(organizations::Column::Plan, plan.as_str().into())
        .filter(organizations::Column::Id.eq(org.0))
        .exec(tx.conn())
        .await?;
    Ok(res.rows_affected == 1)
}
