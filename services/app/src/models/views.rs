//! What the registry's use cases return.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenfold_domain::gate::PromotionRules;
use tenfold_domain::{Family, OrgId};
use tenfold_store::entities::{model_aliases, model_versions, models};
use uuid::Uuid;

use crate::error::{AppError, AppResult, stored};

/// A JSON column read back; unreadable is an internal error naming it.
fn stored_json<T: serde::de::DeserializeOwned>(raw: &str, what: &str) -> AppResult<T> {
    serde_json::from_str(raw).map_err(|e| AppError::internal(anyhow::anyhow!("stored {what} is invalid: {e}")))
}

#[derive(Debug, Clone)]
pub struct ModelView {
    pub id: Uuid,
    pub org: OrgId,
    pub name: String,
    pub family: Family,
    pub promotion_rules: PromotionRules,
    pub created_at: DateTime<Utc>,
}

pub(crate) fn model_view(m: &models::Model) -> AppResult<ModelView> {
    Ok(ModelView {
        id: m.id,
        org: OrgId(m.org_id),
        name: m.name.clone(),
        family: stored(m.family.parse::<Family>(), "model family")?,
        promotion_rules: match &m.promotion_rules {
            Some(raw) => stored_json(raw, "promotion rules")?,
            None => PromotionRules::default(),
        },
        created_at: m.created_at,
    })
}

/// Where a version came from. Written once, when the version is made.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Lineage {
    /// `job` or `import`.
    pub source: String,
    pub job_id: Option<Uuid>,
    /// FINE_TUNE or DISTILL.
    pub job_kind: Option<String>,
    pub dataset_id: Option<Uuid>,
    pub dataset_name: Option<String>,
    pub dataset_version_id: Option<Uuid>,
    pub dataset_version: Option<i32>,
    /// Of the dataset file the model was trained on (also in `model.json`).
    pub dataset_sha256: Option<String>,
    pub architecture: Option<String>,
    /// With the family's defaults filled in.
    pub hyperparameters: Option<serde_json::Value>,
    pub base_model_version_id: Option<Uuid>,
    pub teacher_model_version_id: Option<Uuid>,
    /// The engine that trained it (`tenfold-ml 0.1.0`).
    pub engine: Option<String>,
    /// Train/validation/test percentages, e.g. `80/10/10`.
    pub split: Option<String>,
    /// Seeds the split (which examples are held out).
    pub split_seed: Option<u64>,
    /// Seeds initialisation, shuffling and augmentation.
    pub seed: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct ModelVersionView {
    pub id: Uuid,
    pub org: OrgId,
    pub model_id: Uuid,
    pub version: i32,
    pub job_id: Option<Uuid>,
    pub family: Family,
    pub architecture: String,
    pub classes: Vec<String>,
    pub size_bytes: i64,
    pub metrics: serde_json::Value,
    pub lineage: Lineage,
    /// Whether its files include `report.json`.
    pub has_report: bool,
    pub created_at: DateTime<Utc>,
}

pub(crate) fn model_version_view(m: &model_versions::Model) -> AppResult<ModelVersionView> {
    let files: std::collections::BTreeMap<String, String> = stored_json(&m.files, "model files")?;
    Ok(ModelVersionView {
        id: m.id,
        org: OrgId(m.org_id),
        model_id: m.model_id,
        version: m.version,
        job_id: m.job_id,
        family: stored(m.family.parse::<Family>(), "model family")?,
        architecture: m.architecture.clone(),
        classes: stored_json(&m.classes, "model classes")?,
        size_bytes: m.size_bytes,
        metrics: serde_json::from_str(&m.metrics).unwrap_or(serde_json::Value::Null),
        lineage: stored_json(&m.lineage, "model lineage")?,
        has_report: files.contains_key(REPORT_FILE),
        created_at: m.created_at,
    })
}

/// The artifact files of a version, as stored and downloaded.
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const CARD_FILE: &str = "model.json";
pub const REPORT_FILE: &str = "report.json";

#[derive(Debug, Clone)]
pub struct AliasView {
    pub model_id: Uuid,
    pub alias: String,
    pub model_version_id: Uuid,
    pub moved_by: Option<Uuid>,
    pub moved_at: DateTime<Utc>,
}

pub(crate) fn alias_view(a: &model_aliases::Model) -> AliasView {
    AliasView {
        model_id: a.model_id,
        alias: a.alias.clone(),
        model_version_id: a.model_version_id,
        moved_by: a.moved_by,
        moved_at: a.moved_at,
    }
}
