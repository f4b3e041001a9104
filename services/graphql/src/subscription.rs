use async_graphql::{Context, Subscription as SubscriptionMacro};
use futures::{Stream, StreamExt};

use async_graphql::ID;

use crate::context::{GqlResult, app, principal};
use crate::error::to_graphql_error;
use crate::ids::{GlobalId, NodeKind};
use crate::types::{AuditEvent, JobEvent};

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

    /// A job's events in order, live, from sequence number `after` (0: the
    /// first); the stream ends after the job's last event. Another
    /// organization's job is NOT_FOUND.
    async fn job_events(
        &self,
        ctx: &Context<'_>,
        job_id: ID,
        #[graphql(default = 0)] after: i32,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<JobEvent>>> {
        let id = GlobalId::decode_kind(&job_id, NodeKind::Job, "job").gql(ctx)?;
        let stream = app(ctx)?.subscribe_job_events(principal(ctx)?, id, i64::from(after.max(0))).await.gql(ctx)?;
        Ok(stream.map(|event| event.map(JobEvent::from).map_err(|e| to_graphql_error(e, None))))
    }
}
