//! Deploying models to endpoints: create, change, pause, resume, delete,
//! canaries. Every change is audited in its own transaction.

use chrono::Utc;
use serde_json::json;
use tenfold_domain::{CanaryRules, EndpointSlug, EndpointState, Family, OrgId, Scaling};
use tenfold_store::Tx;
use tenfold_store::entities::endpoints as rows;
use tenfold_store::queries::{Page, endpoints, jobs, models};
use uuid::Uuid;

use super::views::{EndpointTarget, EndpointView, endpoint_view};
use crate::App;
use crate::audit_action::AuditAction;
use crate::error::{AppError, AppResult};
use crate::models::LATEST;
use crate::principal::{Principal, perms};

/// What a deployment serves, as the caller names it.
#[derive(Debug, Clone)]
pub enum DeployTarget {
    Version(Uuid),
    /// An alias of a model (`production`, `staging`, `latest`…).
    Alias {
        model_id: Uuid,
        alias: String,
    },
}

/// Scaling and batching settings; each one left out keeps its current
/// value (or, at deployment, the default of `Scaling::DEFAULT`).
#[derive(Debug, Clone, Default)]
pub struct ScalingInput {
    pub min_replicas: Option<u32>,
    pub max_replicas: Option<u32>,
    pub max_batch_size: Option<u32>,
    pub max_batch_delay_ms: Option<u32>,
    pub idle_unload_seconds: Option<u32>,
}

impl ScalingInput {
    fn over(&self, base: Scaling) -> Result<Scaling, tenfold_domain::DomainError> {
        Scaling {
            min_replicas: self.min_replicas.unwrap_or(base.min_replicas),
            max_replicas: self.max_replicas.unwrap_or(base.max_replicas),
            max_batch_size: self.max_batch_size.unwrap_or(base.max_batch_size),
            max_batch_delay_ms: self.max_batch_delay_ms.unwrap_or(base.max_batch_delay_ms),
            idle_unload_seconds: self.idle_unload_seconds.unwrap_or(base.idle_unload_seconds),
        }
        .check()
    }
}

#[derive(Debug, Clone)]
pub struct DeployInput {
    pub target: DeployTarget,
    pub slug: String,
    pub scaling: ScalingInput,
}

#[derive(Debug, Clone)]
pub struct UpdateEndpointInput {
    pub id: Uuid,
    pub target: Option<DeployTarget>,
    pub scaling: ScalingInput,
}

#[derive(Debug, Clone)]
pub struct CanaryInput {
    pub endpoint_id: Uuid,
    pub model_version_id: Uuid,
    /// Share of callers (by key) sent to the canary, 1–99.
    pub percent: u32,
    pub rules: Option<CanaryRules>,
}

/// The model and the stored columns of a target, checked against the
/// organization's registry: the version exists, or the alias is set.
struct ResolvedTarget {
    model_id: Uuid,
    family: String,
    version: Option<Uuid>,
    alias: Option<String>,
}

async fn resolve_target(tx: &Tx, org: OrgId, target: &DeployTarget) -> AppResult<ResolvedTarget> {
    match target {
        DeployTarget::Version(id) => {
            let v = jobs::model_version(tx, org, *id).await?.ok_or_else(|| AppError::not_found("model version"))?;
            Ok(ResolvedTarget { model_id: v.model_id, family: v.family, version: Some(v.id), alias: None })
        }
        DeployTarget::Alias { model_id, alias } => {
            let model = models::get(tx, org, *model_id).await?.ok_or_else(|| AppError::not_found("model"))?;
            let alias = alias.trim().to_owned();
            let set = if alias == LATEST {
                !models::versions(tx, org, model.id, None, 1).await?.rows.is_empty()
            } else {
                crate::models::check_alias(&alias)?;
                models::alias(tx, org, model.id, &alias).await?.is_some()
            };
            if !set {
                return Err(AppError::bad_input(
                    "alias",
                    format!("the model {:?} has no {alias:?} version yet; point the alias at a version first (setAlias)", model.name),
                ));
            }
            Ok(ResolvedTarget { model_id: model.id, family: model.family, version: None, alias: Some(alias) })
        }
    }
}

impl App {
    fn check_servable(&self, family: &str) -> AppResult<Family> {
        let family: Family = family.parse()?;
        if !self.inner.families.get(family)?.serves() {
            return Err(AppError::bad_input(
                "modelVersionId",
                format!("{family} models cannot be deployed yet; this build does not serve them"),
            ));
        }
        Ok(family)
    }

    /// Deploys a version, or an alias of a model, under a new slug.
    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn deploy_model(&self, p: &Principal, input: DeployInput) -> AppResult<EndpointView> {
        p.require(perms::ENDPOINTS_WRITE)?;
        let slug = EndpointSlug::parse(input.slug.trim())?;
        let scaling = input.scaling.over(Scaling::DEFAULT)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let target = resolve_target(&tx, p.org, &input.target).await?;
        self.check_servable(&target.family)?;
        if endpoints::by_slug(&tx, p.org, slug.as_str()).await?.is_some() {
            return Err(AppError::bad_input(
                "slug",
                format!("an endpoint named {slug:?} exists already; choose another slug or update that one"),
            ));
        }
        let now = Utc::now();
        let row = rows::Model {
            org_id: p.org.0,
            id: Uuid::now_v7(),
            slug: slug.to_string(),
            model_id: target.model_id,
            family: target.family,
            model_version_id: target.version,
            alias: target.alias,
            canary_version_id: None,
            canary_percent: 0,
            canary_rules: None,
            min_replicas: 0,
            max_replicas: 0,
            max_batch_size: 0,
            max_batch_delay_ms: 0,
            idle_unload_seconds: 0,
            state: EndpointState::Active.as_str().into(),
            cold_start_ms: None,
            created_by: p.user_id().map(|u| u.0),
            created_at: now,
            updated_at: now,
        };
        let row = endpoints::insert(&tx, with_scaling(row, scaling)).await?;
        let view = endpoint_view(&row)?;
        self.record(
            &tx,
            p.org,
            Some(p),
            &p.meta,
            AuditAction::EndpointDeployed,
            Some(format!("endpoint:{}", row.id)),
            audit_details(&view),
        )
        .await?;
        tx.commit().await?;
        self.forget_routes();
        Ok(view)
    }

    /// Changes what an endpoint serves and how it scales; a new target
    /// takes the next requests (in-flight ones finish on the old model).
    #[tracing::instrument(skip_all, fields(org = %p.org, endpoint = %input.id))]
    pub async fn update_endpoint(&self, p: &Principal, input: UpdateEndpointInput) -> AppResult<EndpointView> {
        let (tx, mut row) = self.endpoint_to_change(p, input.id).await?;
        let before = endpoint_view(&row)?;
        let scaling = input.scaling.over(before.scaling)?;
        if let Some(target) = &input.target {
            let target = resolve_target(&tx, p.org, target).await?;
            if target.model_id != row.model_id {
                return Err(AppError::bad_input(
                    "modelVersionId",
                    "an endpoint serves one model; deploy another model under a new slug (its callers' URLs would change meaning)",
                ));
            }
            row.model_version_id = target.version;
            row.alias = target.alias;
        }
        let row = with_scaling(row, scaling);
        let details = json!({ "before": audit_details(&before), "after": audit_details(&endpoint_view(&row)?) });
        endpoint_view(&self.save_change(p, tx, row, AuditAction::EndpointUpdated, details).await?)
    }

    /// Pauses (requests get 503 and the model is unloaded) or resumes.
    #[tracing::instrument(skip_all, fields(org = %p.org, endpoint = %id))]
    pub async fn set_endpoint_state(&self, p: &Principal, id: Uuid, state: EndpointState) -> AppResult<EndpointView> {
        let (tx, mut row) = self.endpoint_to_change(p, id).await?;
        if row.state == state.as_str() {
            tx.commit().await?;
            return endpoint_view(&row);
        }
        row.state = state.as_str().into();
        let action = match state {
            EndpointState::Paused => AuditAction::EndpointPaused,
            EndpointState::Active => AuditAction::EndpointResumed,
        };
        let details = json!({ "slug": row.slug });
        endpoint_view(&self.save_change(p, tx, row, action, details).await?)
    }

    /// Deletes an endpoint; its URL answers 404 from then on.
    #[tracing::instrument(skip_all, fields(org = %p.org, endpoint = %id))]
    pub async fn delete_endpoint(&self, p: &Principal, id: Uuid) -> AppResult<bool> {
        let (tx, row) = self.endpoint_to_change(p, id).await?;
        endpoints::delete(&tx, p.org, id).await?;
        self.record(
            &tx,
            p.org,
            Some(p),
            &p.meta,
            AuditAction::EndpointDeleted,
            Some(format!("endpoint:{id}")),
            json!({ "slug": row.slug }),
        )
        .await?;
        tx.commit().await?;
        self.forget_routes();
        Ok(true)
    }

    /// Sends `percent` of the callers (sticky per key) to another version
    /// of the same model, rolled back by itself when its rules fail.
    #[tracing::instrument(skip_all, fields(org = %p.org, endpoint = %input.endpoint_id))]
    pub async fn set_canary(&self, p: &Principal, input: CanaryInput) -> AppResult<EndpointView> {
        p.require(perms::ENDPOINTS_WRITE)?;
        if !(1..=99).contains(&input.percent) {
            return Err(AppError::bad_input("percent", "a canary takes 1–99 % of the callers; to move everyone, update the endpoint"));
        }
        let rules = input.rules.unwrap_or(CanaryRules::DEFAULT).check()?;
        let (tx, mut row) = self.endpoint_to_change(p, input.endpoint_id).await?;
        let version = jobs::model_version(&tx, p.org, input.model_version_id).await?.ok_or_else(|| AppError::not_found("model version"))?;
        if version.model_id != row.model_id {
            return Err(AppError::bad_input("modelVersionId", "a canary is another version of the endpoint's own model"));
        }
        if row.model_version_id == Some(version.id) {
            return Err(AppError::bad_input(
                "modelVersionId",
                format!("the endpoint serves version {} already; a canary is another version", version.version),
            ));
        }
        row.canary_version_id = Some(version.id);
        row.canary_percent = i32::try_from(input.percent).unwrap_or(0);
        row.canary_rules = Some(serde_json::to_string(&rules).map_err(AppError::internal)?);
        let details =
            json!({ "slug": row.slug, "version": version.id, "versionNumber": version.version, "percent": input.percent, "rules": rules });
        endpoint_view(&self.save_change(p, tx, row, AuditAction::EndpointCanarySet, details).await?)
    }

    /// Ends a canary: everyone is served the endpoint's target again.
    #[tracing::instrument(skip_all, fields(org = %p.org, endpoint = %id))]
    pub async fn clear_canary(&self, p: &Principal, id: Uuid) -> AppResult<EndpointView> {
        let (tx, row) = self.endpoint_to_change(p, id).await?;
        let row = self.end_canary(&tx, p.org, row, Some(p), None).await?;
        tx.commit().await?;
        self.forget_routes();
        endpoint_view(&row)
    }

    /// The first half of every change: the permission, a transaction, the
    /// caller's endpoint (404 when it is not theirs).
    async fn endpoint_to_change(&self, p: &Principal, id: Uuid) -> AppResult<(Tx, rows::Model)> {
        p.require(perms::ENDPOINTS_WRITE)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let row = endpoints::get(&tx, p.org, id).await?.ok_or_else(|| AppError::not_found("endpoint"))?;
        Ok((tx, row))
    }

    /// The second half: save, audit in the same transaction, commit, and
    /// forget this process's cached routes (others within their TTL).
    async fn save_change(
        &self,
        p: &Principal,
        tx: Tx,
        mut row: rows::Model,
        action: AuditAction,
        details: serde_json::Value,
    ) -> AppResult<rows::Model> {
        row.updated_at = Utc::now();
        let row = endpoints::save(&tx, row).await?;
        self.record(&tx, p.org, Some(p), &p.meta, action, Some(format!("endpoint:{}", row.id)), details).await?;
        tx.commit().await?;
        self.forget_routes();
        Ok(row)
    }

    /// Removes the canary of `row`; `why` is the automatic rollback's reason.
    pub(crate) async fn end_canary(
        &self,
        tx: &Tx,
        org: OrgId,
        mut row: rows::Model,
        by: Option<&Principal>,
        why: Option<String>,
    ) -> AppResult<rows::Model> {
        let Some(version) = row.canary_version_id.take() else { return Ok(row) };
        row.canary_percent = 0;
        row.canary_rules = None;
        row.updated_at = Utc::now();
        let row = endpoints::save(tx, row).await?;
        let meta = by.map(|p| p.meta.clone()).unwrap_or_default();
        let action = if why.is_some() { AuditAction::EndpointCanaryRolledBack } else { AuditAction::EndpointUpdated };
        self.record(
            tx,
            org,
            by,
            &meta,
            action,
            Some(format!("endpoint:{}", row.id)),
            json!({ "slug": row.slug, "canary": version, "reason": why }),
        )
        .await?;
        Ok(row)
    }

    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn endpoints(&self, p: &Principal, after: Option<Uuid>, first: Option<i32>) -> AppResult<Page<EndpointView>> {
        p.require(perms::ENDPOINTS_READ)?;
        let limit = self.page_size(first)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let page = endpoints::list(&tx, p.org, after, limit).await?;
        tx.commit().await?;
        Ok(Page { rows: page.rows.iter().map(endpoint_view).collect::<AppResult<_>>()?, has_next: page.has_next })
    }

    #[tracing::instrument(skip_all, fields(org = %p.org, endpoint = %id))]
    pub async fn endpoint(&self, p: &Principal, id: Uuid) -> AppResult<EndpointView> {
        p.require(perms::ENDPOINTS_READ)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let row = endpoints::get(&tx, p.org, id).await?.ok_or_else(|| AppError::not_found("endpoint"))?;
        tx.commit().await?;
        endpoint_view(&row)
    }

    /// Endpoints that serve a version (by slug), for the registry's delete guard.
    pub(crate) async fn endpoints_serving(&self, tx: &Tx, org: OrgId, version: Uuid) -> AppResult<Vec<String>> {
        let Some(row) = jobs::model_version(tx, org, version).await? else { return Ok(Vec::new()) };
        let mut aliases: Vec<String> = models::aliases_of_version(tx, org, version).await?.into_iter().map(|a| a.alias).collect();
        let newest = models::versions(tx, org, row.model_id, None, 1).await?.rows.first().map(|v| v.id);
        if newest == Some(version) {
            aliases.push(LATEST.to_owned());
        }
        Ok(endpoints::serving_version(tx, org, row.model_id, version, &aliases).await?.into_iter().map(|e| e.slug).collect())
    }
}

fn with_scaling(mut row: rows::Model, s: Scaling) -> rows::Model {
    let int = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    row.min_replicas = int(s.min_replicas);
    row.max_replicas = int(s.max_replicas);
    row.max_batch_size = int(s.max_batch_size);
    row.max_batch_delay_ms = int(s.max_batch_delay_ms);
    row.idle_unload_seconds = int(s.idle_unload_seconds);
    row
}

fn audit_details(v: &EndpointView) -> serde_json::Value {
    let (version, alias) = match &v.target {
        EndpointTarget::Version(id) => (Some(*id), None),
        EndpointTarget::Alias(a) => (None, Some(a.as_str())),
    };
    json!({
        "slug": v.slug.as_str(), "model": v.model_id, "version": version, "alias": alias,
        "minReplicas": v.scaling.min_replicas, "maxReplicas": v.scaling.max_replicas,
        "maxBatchSize": v.scaling.max_batch_size, "maxBatchDelayMs": v.scaling.max_batch_delay_ms,
        "idleUnloadSeconds": v.scaling.idle_unload_seconds,
    })
}
