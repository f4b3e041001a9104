//! The model registry (tenant tables): models, their numbered versions and
//! their aliases.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use tenfold_domain::{OrgId, UserId};
use uuid::Uuid;

use super::Page;
use crate::entities::jobs::{self, Entity as Jobs};
use crate::entities::model_aliases::{self, Entity as Aliases};
use crate::entities::model_versions::{self, Entity as Versions};
use crate::entities::models::{self, Entity as Models};
use crate::{Result, Tx};

pub async fn insert(tx: &Tx, org: OrgId, name: &str, family: &str, by: Option<UserId>, now: DateTime<Utc>) -> Result<models::Model> {
    let row = models::ActiveModel {
        org_id: Set(org.0),
        id: Set(Uuid::now_v7()),
        name: Set(name.to_owned()),
        family: Set(family.to_owned()),
        promotion_rules: Set(None),
        created_by: Set(by.map(|u| u.0)),
        created_at: Set(now),
    };
    Ok(row.insert(tx.conn()).await?)
}

pub async fn get(tx: &Tx, org: OrgId, id: Uuid) -> Result<Option<models::Model>> {
    Ok(Models::find().filter(models::Column::OrgId.eq(org.0)).filter(models::Column::Id.eq(id)).one(tx.conn()).await?)
}

pub async fn by_name(tx: &Tx, org: OrgId, name: &str) -> Result<Option<models::Model>> {
    Ok(Models::find().filter(models::Column::OrgId.eq(org.0)).filter(models::Column::Name.eq(name)).one(tx.conn()).await?)
}

/// The model row, locked until the transaction ends (on PostgreSQL; SQLite
/// has one writer at a time): version numbers and alias moves of one model
/// are decided one at a time.
pub async fn lock(tx: &Tx, org: OrgId, id: Uuid) -> Result<Option<models::Model>> {
    let mut q = Models::find().filter(models::Column::OrgId.eq(org.0)).filter(models::Column::Id.eq(id));
    if tx.conn().get_database_backend() == sea_orm::DbBackend::Postgres {
        q = q.lock_exclusive();
    }
    Ok(q.one(tx.conn()).await?)
}

pub async fn list(tx: &Tx, org: OrgId, family: Option<&str>, after: Option<Uuid>, limit: u64) -> Result<Page<models::Model>> {
    let mut q = Models::find().filter(models::Column::OrgId.eq(org.0));
    if let Some(family) = family {
        q = q.filter(models::Column::Family.eq(family));
    }
    if let Some(after) = after {
        q = q.filter(models::Column::Id.gt(after));
    }
    let rows = q.order_by_asc(models::Column::Id).limit(limit + 1).all(tx.conn()).await?;
    Ok(Page::from_overfetch(rows, limit))
}

pub async fn set_promotion_rules(tx: &Tx, org: OrgId, id: Uuid, rules: Option<String>) -> Result<bool> {
    let res = Models::update_many()
        .col_expr(models::Column::PromotionRules, sea_orm::sea_query::Expr::value(rules))
        .filter(models::Column::OrgId.eq(org.0))
        .filter(models::Column::Id.eq(id))
        .exec(tx.conn())
        .await?;
    Ok(res.rows_affected == 1)
}

/// The next version number of a model (call with the model locked).
pub async fn next_version_number(tx: &Tx, org: OrgId, model: Uuid) -> Result<i32> {
    let last = Versions::find()
        .filter(model_versions::Column::OrgId.eq(org.0))
        .filter(model_versions::Column::ModelId.eq(model))
        .order_by_desc(model_versions::Column::Version)
        .one(tx.conn())
        .await?;
    Ok(last.map_or(1, |v| v.version + 1))
}

/// Versions of a model, newest first, keyset-paginated by version number.
pub async fn versions(tx: &Tx, org: OrgId, model: Uuid, before: Option<i32>, limit: u64) -> Result<Page<model_versions::Model>> {
    let mut q = Versions::find().filter(model_versions::Column::OrgId.eq(org.0)).filter(model_versions::Column::ModelId.eq(model));
    if let Some(before) = before {
        q = q.filter(model_versions::Column::Version.lt(before));
    }
    let rows = q.order_by_desc(model_versions::Column::Version).limit(limit + 1).all(tx.conn()).await?;
    Ok(Page::from_overfetch(rows, limit))
}

pub async fn version_by_number(tx: &Tx, org: OrgId, model: Uuid, version: i32) -> Result<Option<model_versions::Model>> {
    Ok(Versions::find()
        .filter(model_versions::Column::OrgId.eq(org.0))
        .filter(model_versions::Column::ModelId.eq(model))
        .filter(model_versions::Column::Version.eq(version))
        .one(tx.conn())
        .await?)
}

pub async fn delete_version(tx: &Tx, org: OrgId, id: Uuid) -> Result<bool> {
    let res = Versions::delete_many()
        .filter(model_versions::Column::OrgId.eq(org.0))
        .filter(model_versions::Column::Id.eq(id))
        .exec(tx.conn())
        .await?;
    Ok(res.rows_affected == 1)
}

pub async fn aliases_of_model(tx: &Tx, org: OrgId, model: Uuid) -> Result<Vec<model_aliases::Model>> {
    Ok(Aliases::find()
        .filter(model_aliases::Column::OrgId.eq(org.0))
        .filter(model_aliases::Column::ModelId.eq(model))
        .order_by_asc(model_aliases::Column::Alias)
        .all(tx.conn())
        .await?)
}

pub async fn aliases_of_version(tx: &Tx, org: OrgId, version: Uuid) -> Result<Vec<model_aliases::Model>> {
    Ok(Aliases::find()
        .filter(model_aliases::Column::OrgId.eq(org.0))
        .filter(model_aliases::Column::ModelVersionId.eq(version))
        .order_by_asc(model_aliases::Column::Alias)
        .all(tx.conn())
        .await?)
}

pub async fn alias(tx: &Tx, org: OrgId, model: Uuid, alias: &str) -> Result<Option<model_aliases::Model>> {
    Ok(Aliases::find()
        .filter(model_aliases::Column::OrgId.eq(org.0))
        .filter(model_aliases::Column::ModelId.eq(model))
        .filter(model_aliases::Column::Alias.eq(alias))
        .one(tx.conn())
        .await?)
}

/// Points `alias` of `model` at `version` (created or moved).
pub async fn set_alias(tx: &Tx, org: OrgId, model: Uuid, alias: &str, version: Uuid, by: Option<UserId>, now: DateTime<Utc>) -> Result<()> {
    let row = model_aliases::ActiveModel {
        org_id: Set(org.0),
        model_id: Set(model),
        alias: Set(alias.to_owned()),
        model_version_id: Set(version),
        moved_by: Set(by.map(|u| u.0)),
        moved_at: Set(now),
    };
    Aliases::insert(row)
        .on_conflict(
            OnConflict::columns([model_aliases::Column::OrgId, model_aliases::Column::ModelId, model_aliases::Column::Alias])
                .update_columns([model_aliases::Column::ModelVersionId, model_aliases::Column::MovedBy, model_aliases::Column::MovedAt])
                .to_owned(),
        )
        .exec_without_returning(tx.conn())
        .await?;
    Ok(())
}

pub async fn remove_alias(tx: &Tx, org: OrgId, model: Uuid, alias: &str) -> Result<bool> {
    let res = Aliases::delete_many()
        .filter(model_aliases::Column::OrgId.eq(org.0))
        .filter(model_aliases::Column::ModelId.eq(model))
        .filter(model_aliases::Column::Alias.eq(alias))
        .exec(tx.conn())
        .await?;
    Ok(res.rows_affected == 1)
}

/// Unfinished jobs that start from `version` (as base, teacher or the model
/// they evaluate): deleting it would fail them.
pub async fn unfinished_jobs_using(tx: &Tx, org: OrgId, version: Uuid) -> Result<Vec<jobs::Model>> {
    use sea_orm::Condition;
    Ok(Jobs::find()
        .filter(jobs::Column::OrgId.eq(org.0))
        .filter(jobs::Column::Status.is_in(["QUEUED", "RUNNING"]))
        .filter(Condition::any().add(jobs::Column::BaseModelVersionId.eq(version)).add(jobs::Column::TeacherModelVersionId.eq(version)))
        .limit(5)
        .all(tx.conn())
        .await?)
}
