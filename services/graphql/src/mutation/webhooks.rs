use async_graphql::{Context, ID, InputObject, Object};

use crate::context::{GqlResult, app, principal};
use crate::ids::{GlobalId, NodeKind};
use crate::types::{CreateWebhookPayload, WebhookEvent};

#[derive(InputObject)]
pub struct CreateWebhookInput {
    /// An https:// endpoint on the public internet.
    pub url: String,
    pub events: Vec<WebhookEvent>,
}

#[derive(Default)]
pub struct WebhooksMutation;

#[Object]
impl WebhooksMutation {
    /// Registers an endpoint for job events. Owners and admins. The signing
    /// secret is in this answer only.
    async fn create_webhook(&self, ctx: &Context<'_>, input: CreateWebhookInput) -> async_graphql::Result<CreateWebhookPayload> {
        let events: Vec<String> = input.events.iter().map(|e| e.as_str().to_owned()).collect();
        let (webhook, secret) = app(ctx)?.create_webhook(principal(ctx)?, &input.url, &events).await.gql(ctx)?;
        Ok(CreateWebhookPayload { webhook: webhook.into(), secret })
    }

    /// Deletes an endpoint and its deliveries.
    async fn delete_webhook(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let id = GlobalId::decode_kind(&id, NodeKind::Webhook, "webhook").gql(ctx)?;
        app(ctx)?.delete_webhook(principal(ctx)?, id).await.gql(ctx)
    }
}
