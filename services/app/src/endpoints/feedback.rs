//! Online feedback on recommendations: our customers' apps report what
//! their users were shown (impressions) and chose (clicks) against the
//! `recommendationId` an answer gave — the id of that request's usage
//! event, which knows the endpoint and the model version that made it. The
//! endpoint's page shows the click-through rate per version, so a canary
//! is judged on live behaviour as well as on offline NDCG.

use sha2::{Digest, Sha256};
use tenfold_domain::{EndpointId, ModelVersionId};
use tenfold_store::entities::recommendation_events;
use tenfold_store::queries::{endpoints, feedback};
use uuid::Uuid;

use super::Invocation;
use crate::App;
use crate::error::{AppError, AppResult};
use crate::principal::{Principal, perms};

/// Events one report may carry.
pub const MAX_EVENTS: usize = 100;

/// What a user did with a recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedbackKind {
    /// The list (or an item of it) was shown.
    Impression,
    /// The user chose an item of it.
    Click,
}

impl FeedbackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackKind::Impression => "impression",
            FeedbackKind::Click => "click",
        }
    }
}

#[derive(Debug, Clone)]
pub struct FeedbackEvent {
    pub kind: FeedbackKind,
    pub recommendation_id: Uuid,
    pub item_id: Option<String>,
    /// The client's id of the event: a retried report is counted once.
    pub event_id: Option<String>,
}

/// Click-through of one model version of an endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionFeedback {
    pub version: ModelVersionId,
    pub impressions: i64,
    pub clicks: i64,
    /// Clicks per impression (`None` before the first impression).
    pub click_through_rate: Option<f64>,
}

impl App {
    /// Records impressions and clicks reported through endpoint `inv`.
    /// Every event must name a recommendation this endpoint answered;
    /// one that does not refuses the whole report (nothing is stored).
    /// Returns how many events were new.
    #[tracing::instrument(skip_all, fields(org = %inv.org, endpoint = %inv.endpoint, events = events.len()))]
    pub async fn record_feedback(&self, inv: &Invocation, events: Vec<FeedbackEvent>) -> AppResult<u64> {
        if events.is_empty() || events.len() > MAX_EVENTS {
            return Err(AppError::bad_input("events", format!("send 1–{MAX_EVENTS} events per request, got {}", events.len())));
        }
        let tx = self.inner.store.tenant(inv.org, None).await?;
        let now = chrono::Utc::now();
        let mut rows = Vec::with_capacity(events.len());
        for (i, e) in events.into_iter().enumerate() {
            let made = feedback::recommendation(&tx, inv.org, e.recommendation_id).await?;
            let Some(made) = made.filter(|m| m.endpoint_id == inv.endpoint.0) else {
                return Err(AppError::bad_input(
                    "recommendationId",
                    format!(
                        "event {i}: {} is not a recommendation of endpoint {:?}; send the recommendationId its recommendations answer gave",
                        e.recommendation_id, inv.slug
                    ),
                ));
            };
            let id = match &e.event_id {
                Some(key) => {
                    let digest = Sha256::new()
                        .chain_update(inv.org.0.as_bytes())
                        .chain_update(inv.endpoint.0.as_bytes())
                        .chain_update(key.as_bytes())
                        .finalize();
                    let mut bytes = [0u8; 16];
                    bytes.copy_from_slice(&digest[..16]);
                    uuid::Builder::from_random_bytes(bytes).into_uuid()
                }
                None => Uuid::now_v7(),
            };
            rows.push(recommendation_events::Model {
                org_id: inv.org.0,
                id,
                endpoint_id: inv.endpoint.0,
                model_version_id: made.model_version_id,
                recommendation_id: e.recommendation_id,
                event_type: e.kind.as_str().to_owned(),
                item_id: e.item_id,
                created_at: now,
            });
        }
        let new = feedback::record(&tx, rows).await?;
        tx.commit().await?;
        Ok(new)
    }

    /// Impressions, clicks and click-through rate per version of an endpoint.
    #[tracing::instrument(skip_all, fields(org = %p.org, endpoint = %endpoint))]
    pub async fn endpoint_feedback(&self, p: &Principal, endpoint: EndpointId) -> AppResult<Vec<VersionFeedback>> {
        p.require(perms::ENDPOINTS_READ)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        endpoints::get(&tx, p.org, endpoint.0).await?.ok_or_else(|| AppError::not_found("endpoint"))?;
        let counted = feedback::counts(&tx, p.org, endpoint.0).await?;
        tx.commit().await?;
        let mut out: Vec<VersionFeedback> = Vec::new();
        for c in counted {
            let version = ModelVersionId(c.model_version_id);
            let i = match out.iter().position(|v| v.version == version) {
                Some(i) => i,
                None => {
                    out.push(VersionFeedback { version, impressions: 0, clicks: 0, click_through_rate: None });
                    out.len() - 1
                }
            };
            match c.event_type.as_str() {
                "impression" => out[i].impressions += c.events,
                "click" => out[i].clicks += c.events,
                other => return Err(AppError::internal(anyhow::anyhow!("unknown feedback event type {other:?}"))),
            }
        }
        for v in &mut out {
            v.click_through_rate = (v.impressions > 0).then(|| v.clicks as f64 / v.impressions as f64);
        }
        out.sort_by_key(|v| v.version.0);
        Ok(out)
    }
}
