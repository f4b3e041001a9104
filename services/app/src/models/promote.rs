//! Moving aliases, through the ship gate for `production`; promotion rules.

use chrono::Utc;
use serde_json::json;
use tenfold_domain::Role;
use tenfold_domain::gate::{self, PromotionRules, RuleVerdict};
use tenfold_store::queries::{jobs, models};
use uuid::Uuid;

use super::registry::check_alias;
use super::views::{ModelView, model_view};
use crate::App;
use crate::audit_action::AuditAction;
use crate::error::{AppError, AppResult};
use crate::principal::{Principal, perms};

/// The alias the ship gate guards.
pub const PRODUCTION: &str = "production";

/// Longest override reason kept in the audit log.
const MAX_REASON_CHARS: usize = 500;

#[derive(Debug, Clone)]
pub struct SetAliasInput {
    pub alias: String,
    /// The version (and so the model) the alias points at.
    pub model_version_id: Uuid,
    /// An owner's reason to move `production` although rules failed.
    pub override_reason: Option<String>,
}

/// What a move did: for `production`, every rule's verdict.
#[derive(Debug, Clone)]
pub struct AliasMove {
    pub moved: bool,
    pub alias: String,
    pub model_version_id: Uuid,
    /// The version the alias pointed at before (after a refusal: still does).
    pub previous_version_id: Option<Uuid>,
    pub verdicts: Vec<RuleVerdict>,
    /// Rules failed and an owner moved it anyway.
    pub overridden: bool,
    pub message: String,
}

fn check_reason(reason: Option<&str>) -> AppResult<Option<String>> {
    match reason.map(str::trim) {
        None => Ok(None),
        Some(r) if r.is_empty() || r.chars().count() > MAX_REASON_CHARS => Err(AppError::bad_input(
            "overrideReason",
            format!("give the reason for the override in 1–{MAX_REASON_CHARS} characters; it is kept in the audit log"),
        )),
        Some(r) => Ok(Some(r.to_owned())),
    }
}

impl App {
    /// Points an alias at a version. Moving `production` checks every
    /// promotion rule of the model; a refused move changes nothing, unless
    /// an owner overrides it with a reason (audited).
    #[tracing::instrument(skip_all, fields(org = %p.org, version = %input.model_version_id))]
    pub async fn set_alias(&self, p: &Principal, input: SetAliasInput) -> AppResult<AliasMove> {
        p.require(perms::MODELS_WRITE)?;
        let alias = check_alias(input.alias.trim())?.to_owned();
        let reason = check_reason(input.override_reason.as_deref())?;
        if reason.is_some() && alias != PRODUCTION {
            return Err(AppError::bad_input("overrideReason", "only production moves pass the ship gate; other aliases need no override"));
        }
        if reason.is_some() && p.role() != Some(Role::Owner) {
            return Err(AppError::forbidden("only an owner, signed in as a person, can override the ship gate"));
        }
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let version = jobs::model_version(&tx, p.org, input.model_version_id).await?.ok_or_else(|| AppError::not_found("model version"))?;
        // One move of this model's aliases at a time: the gate compares with
        // the production version it read.
        let model = models::lock(&tx, p.org, version.model_id).await?.ok_or_else(|| AppError::not_found("model"))?;
        let previous = models::alias(&tx, p.org, model.id, &alias).await?.map(|a| a.model_version_id);
        let mut verdicts = Vec::new();
        let mut overridden = false;
        if alias == PRODUCTION {
            let candidate = self.load_report(p.org, &version).await?.ok_or_else(|| {
                AppError::bad_input(
                    "modelVersionId",
                    format!(
                        "version {} has no report (it was imported without report.json), so the ship gate cannot check it; \
                         import it again with its report.json",
                        version.version
                    ),
                )
            })?;
            let current = match previous.filter(|id| *id != version.id) {
                Some(id) => match jobs::model_version(&tx, p.org, id).await? {
                    Some(row) => self.load_report(p.org, &row).await?,
                    None => None,
                },
                None => None,
            };
            let rules = model_view(&model)?.promotion_rules;
            verdicts = gate::check(&rules, &candidate, u64::try_from(version.size_bytes).unwrap_or(0), current.as_ref());
            let failed: Vec<&RuleVerdict> = verdicts.iter().filter(|v| !v.passed).collect();
            if !failed.is_empty() {
                if reason.is_none() {
                    let names: Vec<&str> = failed.iter().map(|v| v.rule.as_str()).collect();
                    return Ok(AliasMove {
                        moved: false,
                        alias,
                        model_version_id: version.id,
                        previous_version_id: previous,
                        message: format!(
                            "production was not moved: version {} fails {} of {} rules ({}); fix the model, or an owner can override with a reason",
                            version.version,
                            failed.len(),
                            verdicts.len(),
                            names.join("; ")
                        ),
                        verdicts,
                        overridden: false,
                    });
                }
                overridden = true;
            }
        }
        let now = Utc::now();
        models::set_alias(&tx, p.org, model.id, &alias, version.id, p.user_id(), now).await?;
        let failed: Vec<&str> = verdicts.iter().filter(|v| !v.passed).map(|v| v.rule.as_str()).collect();
        self.record(
            &tx,
            p.org,
            Some(p),
            &p.meta,
            AuditAction::ModelAliasMoved,
            Some(format!("model:{}", model.id)),
            json!({
                "model": model.name, "alias": alias, "to": version.id, "toVersion": version.version, "from": previous,
                "rulesChecked": verdicts.len(), "failedRules": failed, "overridden": overridden, "reason": reason,
            }),
        )
        .await?;
        tx.commit().await?;
        let message = if overridden {
            format!("{alias} now points at version {} (owner override of {} failed rules)", version.version, failed.len())
        } else {
            format!("{alias} now points at version {}", version.version)
        };
        Ok(AliasMove { moved: true, alias, model_version_id: version.id, previous_version_id: previous, verdicts, overridden, message })
    }

    #[tracing::instrument(skip_all, fields(org = %p.org, model = %model_id))]
    pub async fn remove_alias(&self, p: &Principal, model_id: Uuid, alias: &str) -> AppResult<bool> {
        p.require(perms::MODELS_WRITE)?;
        let alias = check_alias(alias.trim())?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let model = models::lock(&tx, p.org, model_id).await?.ok_or_else(|| AppError::not_found("model"))?;
        let Some(current) = models::alias(&tx, p.org, model_id, alias).await? else {
            return Err(AppError::bad_input("alias", format!("the model {:?} has no alias {alias:?}", model.name)));
        };
        models::remove_alias(&tx, p.org, model_id, alias).await?;
        self.record(
            &tx,
            p.org,
            Some(p),
            &p.meta,
            AuditAction::ModelAliasRemoved,
            Some(format!("model:{model_id}")),
            json!({ "model": model.name, "alias": alias, "was": current.model_version_id }),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Sets (or with empty rules, clears) the ship gate of a model.
    #[tracing::instrument(skip_all, fields(org = %p.org, model = %model_id))]
    pub async fn set_promotion_rules(&self, p: &Principal, model_id: Uuid, rules: PromotionRules) -> AppResult<ModelView> {
        p.require(perms::MODELS_GOVERN)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let model = models::lock(&tx, p.org, model_id).await?.ok_or_else(|| AppError::not_found("model"))?;
        let family = model_view(&model)?.family;
        let plan = self.inner.families.get(family)?;
        rules.validate(plan.report_metrics())?;
        let stored = if rules.is_empty() { None } else { Some(serde_json::to_string(&rules).map_err(AppError::internal)?) };
        models::set_promotion_rules(&tx, p.org, model_id, stored).await?;
        self.record(
            &tx,
            p.org,
            Some(p),
            &p.meta,
            AuditAction::ModelPromotionRulesSet,
            Some(format!("model:{model_id}")),
            json!({ "model": model.name, "rules": rules }),
        )
        .await?;
        tx.commit().await?;
        self.model(p, model_id).await
    }

    /// Deletes a version and its files, unless something still uses it: an
    /// alias, an unfinished job that starts from it, or an endpoint.
    #[tracing::instrument(skip_all, fields(org = %p.org, version = %id))]
    pub async fn delete_model_version(&self, p: &Principal, id: Uuid) -> AppResult<bool> {
        use crate::error::ConflictReason::InUse;
        p.require(perms::MODELS_WRITE)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let row = jobs::model_version(&tx, p.org, id).await?.ok_or_else(|| AppError::not_found("model version"))?;
        let model = models::lock(&tx, p.org, row.model_id).await?.ok_or_else(|| AppError::not_found("model"))?;
        let serving = self.endpoints_serving(&tx, p.org, id).await?;
        if !serving.is_empty() {
            return Err(AppError::conflict(
                InUse,
                "id",
                format!("endpoint {} serves version {}; deploy another version there first", serving.join(", "), row.version),
            ));
        }
        let aliases = models::aliases_of_version(&tx, p.org, id).await?;
        if !aliases.is_empty() {
            let names: Vec<&str> = aliases.iter().map(|a| a.alias.as_str()).collect();
            return Err(AppError::conflict(
                InUse,
                "id",
                format!("version {} is {} of {:?}; move or remove the alias first", row.version, names.join(" and "), model.name),
            ));
        }
        if let Some(job) = models::unfinished_jobs_using(&tx, p.org, id).await?.first() {
            return Err(AppError::conflict(
                InUse,
                "id",
                format!("job {} ({}) starts from version {}; wait for it to finish or cancel it first", job.id, job.status, row.version),
            ));
        }
        models::delete_version(&tx, p.org, id).await?;
        let files = super::version_files(&row)?;
        self.delete_files_after_commit(&tx, p.org, files.into_values().collect());
        self.record(
            &tx,
            p.org,
            Some(p),
            &p.meta,
            AuditAction::ModelVersionDeleted,
            Some(format!("model_version:{id}")),
            json!({ "model": model.name, "version": row.version, "architecture": row.architecture }),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}
