use async_graphql::{Context, ID, InputObject, Json, Object};
use tenfold_app::{CanaryInput, CustomerKeyInput, DeployInput, DeployTarget, ScalingInput, UpdateEndpointInput};
use tenfold_domain::EndpointState;

use crate::context::{GqlResult, app, principal};
use crate::ids::{GlobalId, NodeKind};
use crate::types::{CanaryRules, CreateCustomerKeyPayload, CustomerKey, Endpoint};

/// What to deploy: a version, or an alias of a model (the endpoint then
/// follows the alias when it moves). Give `modelVersionId`, or `modelId`
/// and `alias`.
#[derive(InputObject)]
pub struct DeployModelInput {
    pub model_version_id: Option<ID>,
    pub model_id: Option<ID>,
    /// `production`, `staging`, `latest` or any alias of the model.
    pub alias: Option<String>,
    /// The endpoint's name in `/v2/models/{slug}`.
    pub slug: String,
    #[graphql(flatten)]
    pub scaling: ScalingFields,
}

/// How an endpoint scales and batches; what is left out takes the default
/// (deploy) or stays (update).
#[derive(InputObject)]
pub struct ScalingFields {
    pub min_replicas: Option<u32>,
    /// Model threads that answer the endpoint's queue in this process.
    pub max_replicas: Option<u32>,
    pub max_batch_size: Option<u32>,
    pub max_batch_delay_ms: Option<u32>,
    /// Unload after this long without a request (scale to zero); 0: never.
    pub idle_unload_seconds: Option<u32>,
}

impl From<ScalingFields> for ScalingInput {
    fn from(f: ScalingFields) -> Self {
        ScalingInput {
            min_replicas: f.min_replicas,
            max_replicas: f.max_replicas,
            max_batch_size: f.max_batch_size,
            max_batch_delay_ms: f.max_batch_delay_ms,
            idle_unload_seconds: f.idle_unload_seconds,
        }
    }
}

/// Changes to an endpoint; what is left out stays.
#[derive(InputObject)]
pub struct UpdateEndpointInputGql {
    pub id: ID,
    pub model_version_id: Option<ID>,
    pub alias: Option<String>,
    #[graphql(flatten)]
    pub scaling: ScalingFields,
}

#[derive(InputObject)]
pub struct SetCanaryInput {
    pub endpoint_id: ID,
    pub model_version_id: ID,
    /// 1–99 % of the callers (sticky per key).
    pub percent: u32,
    pub rules: Option<CanaryRules>,
}

#[derive(InputObject)]
pub struct CreateCustomerKeyInput {
    pub name: String,
    pub endpoint_ids: Vec<ID>,
    /// Requests per minute.
    pub rate_limit: Option<u32>,
    /// Answered requests per calendar month (UTC).
    pub monthly_quota: Option<u64>,
    /// Your own strings (customer id, plan), shown back with the key.
    pub metadata: Option<Json<serde_json::Value>>,
}

fn target(
    version: Option<ID>,
    model: Option<ID>,
    alias: Option<String>,
    required: bool,
) -> Result<Option<DeployTarget>, tenfold_app::AppError> {
    match (version, model, alias) {
        (Some(v), None, None) => Ok(Some(DeployTarget::Version(GlobalId::decode_kind(&v, NodeKind::ModelVersion, "model version")?))),
        (None, Some(m), Some(alias)) => {
            Ok(Some(DeployTarget::Alias { model_id: GlobalId::decode_kind(&m, NodeKind::Model, "model")?, alias }))
        }
        (None, None, Some(alias)) if !required => Err(tenfold_app::AppError::bad_input(
            "alias",
            format!("to follow {alias:?}, give the model too (modelId) — or give a modelVersionId"),
        )),
        (None, None, None) if !required => Ok(None),
        _ => Err(tenfold_app::AppError::bad_input("modelVersionId", "give either modelVersionId, or modelId and alias")),
    }
}

#[derive(Default)]
pub struct EndpointsMutation;

#[Object]
impl EndpointsMutation {
    /// Deploys a version, or an alias of a model, as a hosted endpoint.
    async fn deploy_model(&self, ctx: &Context<'_>, input: DeployModelInput) -> async_graphql::Result<Endpoint> {
        let target = target(input.model_version_id, input.model_id, input.alias, true).gql(ctx)?;
        let Some(target) = target else { return Err(async_graphql::Error::new("unreachable")) };
        let deploy = DeployInput { target, slug: input.slug, scaling: input.scaling.into() };
        Ok(app(ctx)?.deploy_model(principal(ctx)?, deploy).await.gql(ctx)?.into())
    }

    /// Changes what an endpoint serves (a version or an alias of its model)
    /// and how it scales.
    async fn update_endpoint(&self, ctx: &Context<'_>, input: UpdateEndpointInputGql) -> async_graphql::Result<Endpoint> {
        let id = GlobalId::decode_kind(&input.id, NodeKind::Endpoint, "endpoint").gql(ctx)?;
        let p = principal(ctx)?;
        let app = app(ctx)?;
        let target = match (input.model_version_id, input.alias) {
            (None, Some(alias)) => {
                let model = app.endpoint(p, id).await.gql(ctx)?.model_id;
                Some(DeployTarget::Alias { model_id: model, alias })
            }
            (version, None) => target(version, None, None, false).gql(ctx)?,
            (Some(_), Some(_)) => {
                return Err(tenfold_app::AppError::bad_input("alias", "give a modelVersionId or an alias, not both")).gql(ctx);
            }
        };
        let update = UpdateEndpointInput { id, target, scaling: input.scaling.into() };
        Ok(app.update_endpoint(p, update).await.gql(ctx)?.into())
    }

    /// Stops answering (503) and unloads the model; settings are kept.
    async fn pause_endpoint(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Endpoint> {
        let id = GlobalId::decode_kind(&id, NodeKind::Endpoint, "endpoint").gql(ctx)?;
        Ok(app(ctx)?.set_endpoint_state(principal(ctx)?, id, EndpointState::Paused).await.gql(ctx)?.into())
    }

    async fn resume_endpoint(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Endpoint> {
        let id = GlobalId::decode_kind(&id, NodeKind::Endpoint, "endpoint").gql(ctx)?;
        Ok(app(ctx)?.set_endpoint_state(principal(ctx)?, id, EndpointState::Active).await.gql(ctx)?.into())
    }

    async fn delete_endpoint(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let id = GlobalId::decode_kind(&id, NodeKind::Endpoint, "endpoint").gql(ctx)?;
        app(ctx)?.delete_endpoint(principal(ctx)?, id).await.gql(ctx)
    }

    /// Sends a share of the callers to another version of the model, rolled
    /// back by itself when its error rate or latency crosses the rules.
    async fn set_canary(&self, ctx: &Context<'_>, input: SetCanaryInput) -> async_graphql::Result<Endpoint> {
        let endpoint_id = GlobalId::decode_kind(&input.endpoint_id, NodeKind::Endpoint, "endpoint").gql(ctx)?;
        let model_version_id = GlobalId::decode_kind(&input.model_version_id, NodeKind::ModelVersion, "model version").gql(ctx)?;
        let canary = CanaryInput { endpoint_id, model_version_id, percent: input.percent, rules: input.rules.map(Into::into) };
        Ok(app(ctx)?.set_canary(principal(ctx)?, canary).await.gql(ctx)?.into())
    }

    async fn clear_canary(&self, ctx: &Context<'_>, endpoint_id: ID) -> async_graphql::Result<Endpoint> {
        let id = GlobalId::decode_kind(&endpoint_id, NodeKind::Endpoint, "endpoint").gql(ctx)?;
        Ok(app(ctx)?.clear_canary(principal(ctx)?, id).await.gql(ctx)?.into())
    }

    /// Issues a key to one of your customers for the endpoints named, with
    /// its own rate limit and monthly quota. The secret is shown once.
    async fn create_customer_key(
        &self,
        ctx: &Context<'_>,
        input: CreateCustomerKeyInput,
    ) -> async_graphql::Result<CreateCustomerKeyPayload> {
        let endpoint_ids = input
            .endpoint_ids
            .iter()
            .map(|id| GlobalId::decode_kind(id, NodeKind::Endpoint, "endpoint"))
            .collect::<Result<Vec<_>, _>>()
            .gql(ctx)?;
        let key = CustomerKeyInput {
            name: input.name,
            endpoint_ids,
            rate_per_minute: input.rate_limit,
            monthly_quota: input.monthly_quota,
            metadata: input.metadata.map(|j| j.0),
        };
        let (view, secret) = app(ctx)?.create_customer_key(principal(ctx)?, key).await.gql(ctx)?;
        Ok(CreateCustomerKeyPayload { key: CustomerKey::from(view), secret })
    }

    async fn revoke_customer_key(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let id = GlobalId::decode_kind(&id, NodeKind::CustomerKey, "customer key").gql(ctx)?;
        app(ctx)?.revoke_customer_key(principal(ctx)?, id).await.gql(ctx)
    }
}
