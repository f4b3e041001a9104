//! Hosted endpoints, customer keys and usage in GraphQL.

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Json, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use tenfold_app::{
    CanaryView, CustomerKeyView, EndpointTarget, EndpointView, UsageGroup as AppGroup, UsageRow as AppRow, UsageUnit as AppUnit,
};
use tenfold_domain::{CanaryRules as DomainRules, EndpointState as DomainState};

use super::{Family, Model, ModelVersion};
use crate::context::{GqlResult, app, principal};
use crate::ids::{GlobalId, NodeKind};

fn id_of(kind: NodeKind, id: uuid::Uuid) -> ID {
    GlobalId::new(kind, id).to_id()
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum EndpointState {
    Active,
    /// Requests get 503; no model is held.
    Paused,
}

impl From<DomainState> for EndpointState {
    fn from(s: DomainState) -> Self {
        match s {
            DomainState::Active => Self::Active,
            DomainState::Paused => Self::Paused,
        }
    }
}

/// How an endpoint scales and batches.
#[derive(SimpleObject, Clone)]
pub struct EndpointScaling {
    /// 0: the model unloads after `idleUnloadSeconds` and loads on the next request.
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// Inputs answered together in one model call.
    pub max_batch_size: u32,
    /// How long the first request of a batch waits for more.
    pub max_batch_delay_ms: u32,
    pub idle_unload_seconds: u32,
}

/// When a canary rolls back by itself.
#[derive(SimpleObject, InputObject, Clone, Copy)]
#[graphql(input_name = "CanaryRulesInput")]
pub struct CanaryRules {
    /// Roll back when more than this share of the canary's answers fail (5xx).
    pub max_error_rate: f64,
    /// Roll back when its p95 latency exceeds this many milliseconds.
    pub max_p95_ms: Option<f64>,
    pub window_seconds: u32,
    /// No verdict before this many canary answers in the window.
    pub min_requests: u32,
}

impl From<DomainRules> for CanaryRules {
    fn from(r: DomainRules) -> Self {
        Self { max_error_rate: r.max_error_rate, max_p95_ms: r.max_p95_ms, window_seconds: r.window_seconds, min_requests: r.min_requests }
    }
}

impl From<CanaryRules> for DomainRules {
    fn from(r: CanaryRules) -> Self {
        Self { max_error_rate: r.max_error_rate, max_p95_ms: r.max_p95_ms, window_seconds: r.window_seconds, min_requests: r.min_requests }
    }
}

/// A second version taking a share of an endpoint's callers.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Canary {
    /// Share of callers, by key: a caller always lands on the same side.
    pub percent: u32,
    pub rules: CanaryRules,
    #[graphql(skip)]
    pub version_id: uuid::Uuid,
}

#[ComplexObject]
impl Canary {
    async fn model_version(&self, ctx: &Context<'_>) -> async_graphql::Result<ModelVersion> {
        Ok(app(ctx)?.model_version(principal(ctx)?, self.version_id).await.gql(ctx)?.into())
    }
}

impl From<CanaryView> for Canary {
    fn from(c: CanaryView) -> Self {
        Self { percent: c.percent, rules: c.rules.into(), version_id: c.model_version_id }
    }
}

/// A hosted endpoint: `POST /v2/models/{slug}/infer` (Open Inference Protocol).
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Endpoint {
    pub id: ID,
    pub slug: String,
    pub family: Family,
    /// The alias it follows (it switches when the alias moves), if any.
    pub alias: Option<String>,
    pub scaling: EndpointScaling,
    pub state: EndpointState,
    pub canary: Option<Canary>,
    /// Unloaded to first answer, the last time it was measured.
    pub cold_start_ms: Option<i64>,
    /// The path to call, relative to the API's address.
    pub infer_path: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[graphql(skip)]
    pub model_id: uuid::Uuid,
    #[graphql(skip)]
    pub pinned: Option<uuid::Uuid>,
    #[graphql(skip)]
    pub uuid: uuid::Uuid,
}

#[ComplexObject]
impl Endpoint {
    async fn model(&self, ctx: &Context<'_>) -> async_graphql::Result<Model> {
        Ok(app(ctx)?.model(principal(ctx)?, self.model_id).await.gql(ctx)?.into())
    }

    /// The version it serves now (the alias's, when it follows one).
    async fn model_version(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ModelVersion>> {
        let app = app(ctx)?;
        let p = principal(ctx)?;
        let v = match (&self.pinned, &self.alias) {
            (Some(id), _) => Some(app.model_version(p, *id).await.gql(ctx)?),
            (None, Some(alias)) => app.model_version_by_ref(p, self.model_id, None, Some(alias)).await.gql(ctx)?,
            (None, None) => None,
        };
        Ok(v.map(ModelVersion::from))
    }

    /// What our customers' users did with this endpoint's recommendations
    /// (reported to `/v1/endpoints/{slug}/events`), per model version that
    /// made them: a canary is judged on live behaviour as well as offline.
    async fn feedback(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<VersionFeedback>> {
        let rows = app(ctx)?.endpoint_feedback(principal(ctx)?, tenfold_domain::EndpointId(self.uuid)).await.gql(ctx)?;
        Ok(rows
            .into_iter()
            .map(|f| VersionFeedback {
                model_version_id: id_of(NodeKind::ModelVersion, f.version.0),
                impressions: f.impressions,
                clicks: f.clicks,
                click_through_rate: f.click_through_rate,
            })
            .collect())
    }
}

/// Impressions and clicks on the recommendations one model version made.
#[derive(SimpleObject, Clone)]
pub struct VersionFeedback {
    pub model_version_id: ID,
    pub impressions: i64,
    pub clicks: i64,
    /// Clicks per impression; null before the first impression.
    pub click_through_rate: Option<f64>,
}

impl From<EndpointView> for Endpoint {
    fn from(e: EndpointView) -> Self {
        let (pinned, alias) = match e.target {
            EndpointTarget::Version(id) => (Some(id), None),
            EndpointTarget::Alias(a) => (None, Some(a)),
        };
        Self {
            id: id_of(NodeKind::Endpoint, e.id),
            infer_path: format!("/v2/models/{}/infer", e.slug),
            slug: e.slug.to_string(),
            family: e.family.into(),
            alias,
            scaling: EndpointScaling {
                min_replicas: e.scaling.min_replicas,
                max_replicas: e.scaling.max_replicas,
                max_batch_size: e.scaling.max_batch_size,
                max_batch_delay_ms: e.scaling.max_batch_delay_ms,
                idle_unload_seconds: e.scaling.idle_unload_seconds,
            },
            state: e.state.into(),
            canary: e.canary.map(Canary::from),
            cold_start_ms: e.cold_start_ms,
            created_at: e.created_at,
            updated_at: e.updated_at,
            model_id: e.model_id,
            pinned,
            uuid: e.id,
        }
    }
}

/// A key the organization issued to one of its own customers.
#[derive(SimpleObject, Clone)]
pub struct CustomerKey {
    pub id: ID,
    pub name: String,
    /// `tfc_` and the key's public id, to recognise it.
    pub prefix: String,
    pub metadata: Json<serde_json::Value>,
    pub endpoint_ids: Vec<ID>,
    /// Requests per minute, if limited.
    pub rate_limit: Option<u32>,
    /// Answered requests per calendar month (UTC), if limited.
    pub monthly_quota: Option<u64>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<CustomerKeyView> for CustomerKey {
    fn from(k: CustomerKeyView) -> Self {
        Self {
            id: id_of(NodeKind::CustomerKey, k.id),
            name: k.name,
            prefix: k.prefix,
            metadata: Json(k.metadata),
            endpoint_ids: k.endpoint_ids.into_iter().map(|id| id_of(NodeKind::Endpoint, id)).collect(),
            rate_limit: k.rate_per_minute,
            monthly_quota: k.monthly_quota,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A new customer key and its secret, shown this once.
#[derive(SimpleObject)]
pub struct CreateCustomerKeyPayload {
    pub key: CustomerKey,
    pub secret: String,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "AppGroup")]
pub enum UsageGroupBy {
    Hour,
    Day,
    Endpoint,
    Key,
    CustomerKey,
    Unit,
}

/// What usage counts, in the plan's units.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "AppUnit")]
pub enum UsageUnit {
    /// Answered (2xx) endpoint requests.
    Requests,
    Images,
    InputTokens,
    OutputTokens,
    /// Model time of answered endpoint requests.
    InferenceSeconds,
    /// Compute of training, distillation and evaluation jobs.
    TrainingSeconds,
    /// Endpoint requests answered with an error: shown, never billed.
    FailedRequests,
}

/// One quantity of one unit; the dimensions not grouped by are null.
#[derive(SimpleObject, Clone)]
pub struct UsageRow {
    pub hour: Option<DateTime<Utc>>,
    pub day: Option<NaiveDate>,
    pub endpoint_id: Option<ID>,
    pub api_key_id: Option<ID>,
    pub customer_key_id: Option<ID>,
    pub unit: UsageUnit,
    pub quantity: f64,
}

impl From<AppRow> for UsageRow {
    fn from(r: AppRow) -> Self {
        Self {
            hour: r.hour,
            day: r.day,
            endpoint_id: r.endpoint_id.map(|id| id_of(NodeKind::Endpoint, id)),
            api_key_id: r.api_key_id.map(|id| id_of(NodeKind::ApiKey, id)),
            customer_key_id: r.customer_key_id.map(|id| id_of(NodeKind::CustomerKey, id)),
            unit: r.unit.into(),
            quantity: r.quantity,
        }
    }
}
