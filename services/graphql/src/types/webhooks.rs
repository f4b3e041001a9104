use async_graphql::connection::Connection;
use async_graphql::{ComplexObject, Context, Enum, ID, Json, SimpleObject};
use chrono::{DateTime, Utc};
use tenfold_app::{DeliveryView, WebhookView};

use crate::context::{GqlResult, app, principal};
use crate::ids::{GlobalId, NodeKind, decode_cursor};
use crate::types::connection;

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum WebhookEvent {
    /// `job.succeeded`: a job finished; its result and model version.
    JobSucceeded,
    /// `job.failed`: a job failed; the error in plain words.
    JobFailed,
}

impl WebhookEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::JobSucceeded => "job.succeeded",
            WebhookEvent::JobFailed => "job.failed",
        }
    }

    fn parse(raw: &str) -> Self {
        if raw == "job.failed" { WebhookEvent::JobFailed } else { WebhookEvent::JobSucceeded }
    }
}

/// An endpoint that receives the organization's job events, signed with
/// `Tenfold-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Webhook {
    pub id: ID,
    pub url: String,
    pub events: Vec<WebhookEvent>,
    pub created_at: DateTime<Utc>,
    #[graphql(skip)]
    pub raw_id: uuid::Uuid,
}

impl From<WebhookView> for Webhook {
    fn from(w: WebhookView) -> Self {
        Self {
            id: GlobalId::new(NodeKind::Webhook, w.id).to_id(),
            url: w.url,
            events: w.events.iter().map(|e| WebhookEvent::parse(e)).collect(),
            created_at: w.created_at,
            raw_id: w.id,
        }
    }
}

#[ComplexObject]
impl Webhook {
    /// Deliveries, newest first, with the outcome of their last attempt.
    #[graphql(complexity = "first.unwrap_or(20).clamp(1, crate::MAX_PAGE_SIZE) as usize * child_complexity")]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, WebhookDelivery>> {
        let cursor = after.as_deref().map(decode_cursor).transpose().gql(ctx)?;
        let page = app(ctx)?.webhook_deliveries(principal(ctx)?, self.raw_id, cursor, first).await.gql(ctx)?;
        Ok(connection(page, cursor.is_some(), |d| d.id, WebhookDelivery::from))
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum DeliveryStatus {
    /// Not delivered yet; retried with backoff.
    Pending,
    Delivered,
    /// Every attempt failed.
    Failed,
}

#[derive(SimpleObject, Clone)]
pub struct WebhookDelivery {
    /// Also the `Tenfold-Delivery` header and the body's `id`: deduplicate on it.
    pub id: ID,
    pub event: WebhookEvent,
    pub status: DeliveryStatus,
    pub attempts: i32,
    /// The HTTP status of the last attempt.
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    /// The body, exactly as signed and sent.
    pub payload: Json<serde_json::Value>,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<DeliveryView> for WebhookDelivery {
    fn from(d: DeliveryView) -> Self {
        Self {
            id: ID(d.id.to_string()),
            event: WebhookEvent::parse(&d.event),
            status: match d.status.as_str() {
                "delivered" => DeliveryStatus::Delivered,
                "failed" => DeliveryStatus::Failed,
                _ => DeliveryStatus::Pending,
            },
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            payload: Json(d.payload),
            next_attempt_at: d.next_attempt_at,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

/// A new webhook and its signing secret, shown this once.
#[derive(SimpleObject)]
pub struct CreateWebhookPayload {
    pub webhook: Webhook,
    pub secret: String,
}
