use async_graphql::{Context, ID, InputObject, Object};
use tenfold_domain::ApiKeyId;

use crate::context::{GqlResult, app, principal};
use crate::ids::{GlobalId, NodeKind};
use crate::types::{ApiKey, CreateApiKeyPayload};

#[derive(InputObject)]
pub struct CreateApiKeyInput {
    pub name: String,
    /// e.g. `["org:read", "datasets:write"]`.
    pub scopes: Vec<String>,
}

#[derive(Default)]
pub struct ApiKeysMutation;

#[Object]
impl ApiKeysMutation {
    /// Creates an API key. The secret is in this response only.
    async fn create_api_key(&self, ctx: &Context<'_>, input: CreateApiKeyInput) -> async_graphql::Result<CreateApiKeyPayload> {
        let (key, secret) = app(ctx)?.create_api_key(principal(ctx)?, &input.name, &input.scopes).await.gql(ctx)?;
        Ok(CreateApiKeyPayload { api_key: key.into(), secret })
    }

    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ApiKey> {
        let id = GlobalId::decode_kind(&id, NodeKind::ApiKey, "API key").gql(ctx)?;
        Ok(app(ctx)?.revoke_api_key(principal(ctx)?, ApiKeyId(id)).await.gql(ctx)?.into())
    }
}
