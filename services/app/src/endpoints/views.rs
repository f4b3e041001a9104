//! What the endpoint use cases return.

use chrono::{DateTime, Utc};
use serde_json::Value;
use tenfold_domain::{CanaryRules, EndpointSlug, EndpointState, Family, Scaling};
use tenfold_store::entities::{customer_keys, endpoints};
use uuid::Uuid;

use crate::error::{AppError, AppResult, stored};

/// What an endpoint serves: one version for good, or whatever an alias
/// of a model points at (it switches when the alias moves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointTarget {
    Version(Uuid),
    Alias(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CanaryView {
    pub model_version_id: Uuid,
    pub percent: u32,
    pub rules: CanaryRules,
}

#[derive(Debug, Clone)]
pub struct EndpointView {
    pub id: Uuid,
    pub slug: EndpointSlug,
    pub model_id: Uuid,
    pub family: Family,
    pub target: EndpointTarget,
    pub canary: Option<CanaryView>,
    pub scaling: Scaling,
    pub state: EndpointState,
    /// The last measured time from unloaded to the first answer.
    pub cold_start_ms: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub(crate) fn endpoint_view(row: &endpoints::Model) -> AppResult<EndpointView> {
    let target = match (&row.model_version_id, &row.alias) {
        (Some(v), None) => EndpointTarget::Version(*v),
        (None, Some(a)) => EndpointTarget::Alias(a.clone()),
        _ => return Err(AppError::internal(anyhow::anyhow!("endpoint {} has neither or both of a version and an alias", row.id))),
    };
    let canary = match row.canary_version_id {
        Some(version) => {
            let rules = match &row.canary_rules {
                Some(raw) => serde_json::from_str(raw).map_err(AppError::internal)?,
                None => CanaryRules::DEFAULT,
            };
            Some(CanaryView { model_version_id: version, percent: u32::try_from(row.canary_percent).unwrap_or(0), rules })
        }
        None => None,
    };
    let count = |v: i32| u32::try_from(v).map_err(AppError::internal);
    Ok(EndpointView {
        id: row.id,
        slug: stored(EndpointSlug::parse(&row.slug), "endpoint slug")?,
        model_id: row.model_id,
        family: stored(row.family.parse(), "endpoint family")?,
        target,
        canary,
        scaling: Scaling {
            min_replicas: count(row.min_replicas)?,
            max_replicas: count(row.max_replicas)?,
            max_batch_size: count(row.max_batch_size)?,
            max_batch_delay_ms: count(row.max_batch_delay_ms)?,
            idle_unload_seconds: count(row.idle_unload_seconds)?,
        },
        state: stored(row.state.parse(), "endpoint state")?,
        cold_start_ms: row.cold_start_ms,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

#[derive(Debug, Clone)]
pub struct CustomerKeyView {
    pub id: Uuid,
    pub name: String,
    /// `tfc_` and the public lookup id: enough to recognise a key.
    pub prefix: String,
    pub metadata: Value,
    pub endpoint_ids: Vec<Uuid>,
    pub rate_per_minute: Option<u32>,
    pub monthly_quota: Option<u64>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub(crate) fn customer_key_view(row: &customer_keys::Model) -> AppResult<CustomerKeyView> {
    Ok(CustomerKeyView {
        id: row.id,
        name: row.name.clone(),
        prefix: format!("{}{}", crate::secrets::CUSTOMER_KEY_PREFIX, row.lookup_id),
        metadata: serde_json::from_str(&row.metadata).map_err(AppError::internal)?,
        endpoint_ids: serde_json::from_str(&row.endpoint_ids).map_err(AppError::internal)?,
        rate_per_minute: row.rate_per_minute.and_then(|r| u32::try_from(r).ok()),
        monthly_quota: row.monthly_quota.and_then(|q| u64::try_from(q).ok()),
        created_at: row.created_at,
        revoked_at: row.revoked_at,
    })
}
