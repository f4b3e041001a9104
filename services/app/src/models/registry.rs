//! Reading the registry, and filing new versions under their model.

use chrono::{DateTime, Utc};
use tenfold_domain::{Family, OrgId, UserId};
use tenfold_store::Tx;
use tenfold_store::entities::{model_versions, models as model_rows};
use tenfold_store::queries::{Page, jobs, models};
use uuid::Uuid;

use super::views::{AliasView, ModelVersionView, ModelView, alias_view, model_version_view, model_view};
use crate::App;
use crate::error::{AppError, AppResult};
use crate::principal::{Principal, perms};

/// The alias that always means the newest version; it cannot be set.
pub const LATEST: &str = "latest";

/// A model name: what users type and see (defaults to the dataset's name).
pub(crate) fn check_model_name(name: &str) -> AppResult<&str> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AppError::bad_input("model", "give the model a name of 1–100 printable characters, e.g. \"support-bot\""));
    }
    Ok(name)
}

/// An alias: lowercase letters, digits, `-` and `_`, starting with a letter.
pub(crate) fn check_alias(alias: &str) -> AppResult<&str> {
    let ok = alias.len() <= 64
        && alias.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && alias.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        return Err(AppError::bad_input(
            "alias",
            format!(
                "{alias:?} is not an alias; use 1–64 lowercase letters, digits, - or _, starting with a letter (e.g. production, staging)"
            ),
        ));
    }
    if alias == LATEST {
        return Err(AppError::bad_input("alias", "\"latest\" always means the newest version and cannot be moved; choose another alias"));
    }
    Ok(alias)
}

/// The model a new version joins: found by name, or created. A name is one
/// model of one family.
pub(crate) async fn model_for_version(
    tx: &Tx,
    org: OrgId,
    name: &str,
    family: Family,
    by: Option<UserId>,
    now: DateTime<Utc>,
) -> AppResult<model_rows::Model> {
    let name = check_model_name(name)?;
    match models::by_name(tx, org, name).await? {
        Some(m) if m.family == family.as_str() => Ok(m),
        Some(m) => Err(AppError::bad_input(
            "model",
            format!("the model {name:?} holds {} versions, not {family}; choose another model name", m.family),
        )),
        None => Ok(models::insert(tx, org, name, family.as_str(), by, now).await?),
    }
}

/// Inserts `row` as the model's next version (numbered under the model's lock).
pub(crate) async fn file_version(tx: &Tx, org: OrgId, mut row: model_versions::Model) -> AppResult<model_versions::Model> {
    models::lock(tx, org, row.model_id).await?.ok_or_else(|| AppError::not_found("model"))?;
    row.version = models::next_version_number(tx, org, row.model_id).await?;
    jobs::insert_model_version(tx, row.clone()).await?;
    Ok(row)
}

impl App {
    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn models(
        &self,
        p: &Principal,
        family: Option<Family>,
        after: Option<Uuid>,
        first: Option<i32>,
    ) -> AppResult<Page<ModelView>> {
        p.require(perms::MODELS_READ)?;
        let limit = self.page_size(first)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let page = models::list(&tx, p.org, family.map(Family::as_str), after, limit).await?;
        tx.commit().await?;
        Ok(Page { rows: page.rows.iter().map(model_view).collect::<AppResult<_>>()?, has_next: page.has_next })
    }

    #[tracing::instrument(skip_all, fields(org = %p.org, id = %id))]
    pub async fn model(&self, p: &Principal, id: Uuid) -> AppResult<ModelView> {
        p.require(perms::MODELS_READ)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let row = models::get(&tx, p.org, id).await?.ok_or_else(|| AppError::not_found("model"))?;
        tx.commit().await?;
        model_view(&row)
    }

    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn model_by_name(&self, p: &Principal, name: &str) -> AppResult<ModelView> {
        p.require(perms::MODELS_READ)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let row = models::by_name(&tx, p.org, name.trim()).await?.ok_or_else(|| AppError::not_found("model"))?;
        tx.commit().await?;
        model_view(&row)
    }

    /// Versions of a model, newest first; `before` is a version number.
    #[tracing::instrument(skip_all, fields(org = %p.org, model = %model))]
    pub async fn model_versions(
        &self,
        p: &Principal,
        model: Uuid,
        before: Option<i32>,
        first: Option<i32>,
    ) -> AppResult<Page<ModelVersionView>> {
        p.require(perms::MODELS_READ)?;
        let limit = self.page_size(first)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let page = models::versions(&tx, p.org, model, before, limit).await?;
        tx.commit().await?;
        Ok(Page { rows: page.rows.iter().map(model_version_view).collect::<AppResult<_>>()?, has_next: page.has_next })
    }

    #[tracing::instrument(skip_all, fields(org = %p.org, id = %id))]
    pub async fn model_version(&self, p: &Principal, id: Uuid) -> AppResult<ModelVersionView> {
        p.require(perms::MODELS_READ)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let row = jobs::model_version(&tx, p.org, id).await?.ok_or_else(|| AppError::not_found("model version"))?;
        tx.commit().await?;
        model_version_view(&row)
    }

    /// A version of `model` by number or alias (`latest`: the newest).
    #[tracing::instrument(skip_all, fields(org = %p.org, model = %model))]
    pub async fn model_version_by_ref(
        &self,
        p: &Principal,
        model: Uuid,
        number: Option<i32>,
        alias: Option<&str>,
    ) -> AppResult<Option<ModelVersionView>> {
        p.require(perms::MODELS_READ)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let row = match (number, alias) {
            (Some(n), None) => models::version_by_number(&tx, p.org, model, n).await?,
            (None, Some(LATEST)) => models::versions(&tx, p.org, model, None, 1).await?.rows.into_iter().next(),
            (None, Some(alias)) => match models::alias(&tx, p.org, model, alias).await? {
                Some(a) => jobs::model_version(&tx, p.org, a.model_version_id).await?,
                None => None,
            },
            _ => return Err(AppError::bad_input("version", "give either a version number or an alias")),
        };
        tx.commit().await?;
        row.as_ref().map(model_version_view).transpose()
    }

    #[tracing::instrument(skip_all, fields(org = %p.org, model = %model))]
    pub async fn model_aliases(&self, p: &Principal, model: Uuid) -> AppResult<Vec<AliasView>> {
        p.require(perms::MODELS_READ)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let rows = models::aliases_of_model(&tx, p.org, model).await?;
        tx.commit().await?;
        Ok(rows.iter().map(alias_view).collect())
    }

    #[tracing::instrument(skip_all, fields(org = %p.org, version = %version))]
    pub async fn version_aliases(&self, p: &Principal, version: Uuid) -> AppResult<Vec<AliasView>> {
        p.require(perms::MODELS_READ)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let rows = models::aliases_of_version(&tx, p.org, version).await?;
        tx.commit().await?;
        Ok(rows.iter().map(alias_view).collect())
    }
}
