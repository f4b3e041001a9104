use async_graphql::{Context, Subscription as SubscriptionMacro};
use futures::{Stream, StreamExt};

use crate::context::{GqlResult, app, principal};
use crate::error::to_graphql_error;
use crate::types::AuditEvent;

#[derive(Default)]
pub struct Subscription;

#[SubscriptionMacro]
impl Subscription {
    /// The organization's audit events as they happen. Owners and admins, or
    /// API keys with `audit:read`. Over WebSocket (`graphql-transport-ws`),
    /// authenticated in `connection_init` with `{"authorization": "Bearer …"}`.
    async fn audit_events(&self, ctx: &Context<'_>) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<AuditEvent>>> {
        let stream = app(ctx)?.subscribe_audit_events(principal(ctx)?).await.gql(ctx)?;
        Ok(stream.map(|event| event.map(AuditEvent::from).map_err(|e| to_graphql_error(e, None))))
    }
}
