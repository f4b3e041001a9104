//! What every hosted-endpoint protocol does around its own decoding and
//! encoding (the Open Inference Protocol in `v2`, OpenAI's chat
//! completions in `openai`): authorize and route, the API's and the
//! endpoint's rate limits, and after the model answered, meter the request
//! and wait for the usage event's commit, give back what an unanswered
//! request reserved, feed the canary's watch, record metrics and cold
//! starts. Nothing is answered that is not counted.

use std::time::Instant;

use actix_web::HttpRequest;
use tenfold_app::{Admission, AppError, Invocation, UsageEvent};
use tenfold_domain::Family;
use tenfold_serving::{ServeError, ServeTarget};

use crate::{ServerState, request};

const MAX_IDEMPOTENCY_KEY: usize = 255;

/// What one request used, beyond the request itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Used {
    pub images: u32,
    pub input_tokens: u32,
    pub output_tokens: u32,
}

/// Where each family is answered, for the message that sends a caller there.
fn protocol_of(family: Family) -> &'static str {
    match family {
        Family::ImageClassification => "the Open Inference Protocol at /v2/models/{slug}/infer",
        Family::Chat => "OpenAI's chat completions at /v1/chat/completions",
        Family::Recommendation => "/v1/endpoints/{slug}/recommendations, or the Open Inference Protocol at /v2/models/{slug}/infer",
    }
}

/// Authorizes a request to endpoint `slug` and picks the version that
/// answers it; an endpoint of a family this protocol does not serve is
/// refused with where it is answered.
pub async fn authorize(
    req: &HttpRequest,
    state: &ServerState,
    slug: &str,
    request_id: &str,
    serves: &[Family],
) -> Result<Invocation, AppError> {
    let meta = request::meta(req, state.app.settings().server.trust_forwarded_for, request_id.to_owned());
    let credential = request::bearer(req)?;
    let inv = state.app.invocation(credential.as_deref(), slug, meta.clone()).await?;
    state.app.admit_request(&meta, None).await?;
    if !serves.contains(&inv.family) {
        return Err(AppError::bad_input(
            "model",
            format!("{slug:?} is a {} endpoint; it is answered over {}", inv.family, protocol_of(inv.family)),
        ));
    }
    Ok(inv)
}

/// A request admitted to run a model: authorized (see [`authorize`]), its
/// `Idempotency-Key` read, within its invocation rate. Nothing of the body
/// has been read yet: an unauthorized or over-rate caller's bytes are never
/// taken in.
pub async fn admit(
    req: &HttpRequest,
    state: &ServerState,
    slug: &str,
    request_id: &str,
    serves: &[Family],
) -> Result<(Invocation, Option<String>), AppError> {
    let inv = authorize(req, state, slug, request_id, serves).await?;
    let key = idempotency_key(req)?;
    state.app.check_invocation_rate(&inv).await?;
    Ok((inv, key))
}

/// The client's `Idempotency-Key`: a retry with the same key is counted once.
pub fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, AppError> {
    let Some(value) = req.headers().get("idempotency-key") else { return Ok(None) };
    match value.to_str() {
        Ok(key) if !key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY => Ok(Some(key.to_owned())),
        _ => Err(AppError::bad_input("Idempotency-Key", format!("an Idempotency-Key is 1–{MAX_IDEMPOTENCY_KEY} visible ASCII characters"))),
    }
}

pub fn serve_error(e: ServeError) -> AppError {
    match e {
        ServeError::Overloaded { retry_after } => AppError::rate_limited(e.to_string(), retry_after.as_secs().max(1)),
        ServeError::BadInput(message) => AppError::bad_input("inputs", message),
        ServeError::Unavailable(message) => AppError::unavailable(message, 5),
        ServeError::Internal(message) => AppError::internal(anyhow::anyhow!(message)),
    }
}

/// The serving runtime's target for an invocation.
pub fn target(inv: &Invocation) -> ServeTarget {
    ServeTarget {
        org: inv.org,
        endpoint: inv.endpoint,
        label: inv.slug.clone(),
        version: inv.version,
        family: inv.family,
        scaling: inv.scaling,
        live: inv.live.clone(),
    }
}

/// One request's bookkeeping once the model answered or it failed.
pub struct Outcome<'a> {
    pub inv: &'a Invocation,
    pub idempotency_key: Option<&'a str>,
    pub started: Instant,
    /// What `reserve_quotas` held for it, if it got that far.
    pub admission: Option<Admission>,
}

impl Outcome<'_> {
    /// Meters the request (answered or not), settles its reservation,
    /// observes the canary and records metrics. `answered`: the model's
    /// answer and what it used, or the error the client gets. An error
    /// back means the answer must not be given (it was not counted); else
    /// the usage event's id (a recommendation's `recommendationId`).
    pub async fn record(
        self,
        state: &ServerState,
        answered: Result<(&tenfold_serving::Answer, Used), &AppError>,
    ) -> Result<uuid::Uuid, AppError> {
        let inv = self.inv;
        let status = match &answered {
            Ok(_) => 200,
            Err(e) => e.code.http_status(),
        };
        let mut event = UsageEvent::of(inv, self.idempotency_key, status);
        if let Ok((answer, used)) = &answered {
            event.images = used.images;
            event.input_tokens = used.input_tokens;
            event.output_tokens = used.output_tokens;
            event.compute = answer.compute;
        }
        let event_id = event.id;
        let metered = state.app.meter_request(event).await;
        if let Some(admission) = self.admission {
            // Kept only by a new answer: a retry of a counted one gives it back.
            state.app.settle(admission, status == 200 && matches!(metered, Ok(true))).await;
        }
        let took = self.started.elapsed();
        state.app.observe_canary(inv, status, took).await;
        let label = inv.endpoint.to_string();
        metrics::counter!("tenfold_endpoint_requests_total", "endpoint" => label.clone(), "status" => status.to_string()).increment(1);
        metrics::histogram!("tenfold_endpoint_request_seconds", "endpoint" => label).record(took.as_secs_f64());
        metered?;
        if let Ok((answer, _)) = answered
            && let Some(took) = answer.cold_start
        {
            let (app, org, endpoint) = (state.app.clone(), inv.org, inv.endpoint);
            tokio::spawn(async move {
                if let Err(e) = app.record_cold_start(org, endpoint, took).await {
                    tracing::warn!(error = %e, "cold start not recorded");
                }
            });
        }
        Ok(event_id)
    }
}
