//! Hosted recommenders: `POST /v1/endpoints/{slug}/recommendations` (top-K
//! for a user, Amazon Personalize's shape), `/similar-items` (the items
//! most like one) and `/events` (impressions and clicks against a
//! `recommendationId`, for the endpoint's click-through rate per version).
//! Errors are `{"error": "…"}` with the status of our error table, as on
//! the Open Inference Protocol (which serves the same models too).
//!
//! The gateway's bookkeeping (keys, rate limits, quotas, metering before
//! the answer, the canary's watch) is `gateway`'s; a recommendation's id
//! is its request's usage event id, which knows the version that answered.

pub mod wire;

use std::time::Instant;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, post, web};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tenfold_app::{AppError, FeedbackEvent, FeedbackKind, Invocation, MAX_FEEDBACK_EVENTS};
use tenfold_domain::Family;
use tenfold_serving::ServeInput;
use tracing_actix_web::RequestId;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::openapi::schemas::InferenceError;
use crate::{ServerState, gateway, request};
use wire::{EventType, EventsRequest, EventsResponse, RecommendationsRequest, RecommendationsResponse, ScoredItem, SimilarItemsRequest};

/// A request body's limit: a long filter list is far smaller.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Items one answer may list.
pub const MAX_RESULTS: u32 = 500;
/// Items listed when `numResults` is not given (Personalize's default).
pub const DEFAULT_RESULTS: u32 = 25;
/// The longest user or item id (characters), on every route.
pub(crate) const MAX_ID_CHARS: usize = 256;
const MAX_FILTER_IDS: usize = 10_000;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(recommendations).service(similar_items).service(events);
}

fn error(e: &AppError, request_id: &str) -> HttpResponse {
    let (mut res, message) = request::error_head(e, request_id);
    res.json(json!({ "error": message }))
}

/// A body that could not be read (too large, cut off), with its status.
fn body_error(e: &request::BodyError) -> HttpResponse {
    HttpResponse::build(e.status()).insert_header((header::CACHE_CONTROL, "no-store")).json(json!({ "error": e.message() }))
}

fn parse<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, AppError> {
    serde_json::from_slice(body).map_err(|e| AppError::bad_input("body", format!("the body is not a {what} request: {e}")))
}

fn id_field(field: &'static str, value: &str) -> Result<(), AppError> {
    if value.trim().is_empty() || value.chars().count() > MAX_ID_CHARS {
        return Err(AppError::bad_input(field, format!("{field} is 1–{MAX_ID_CHARS} characters")));
    }
    Ok(())
}

fn num_results(n: Option<u32>) -> Result<u32, AppError> {
    match n.unwrap_or(DEFAULT_RESULTS) {
        n @ 1..=MAX_RESULTS => Ok(n),
        n => Err(AppError::bad_input("numResults", format!("numResults is the number of items to list, 1 to {MAX_RESULTS}; got {n}"))),
    }
}

/// The model's query for a recommendations request, checked.
fn recommendations_query(body: &[u8]) -> Result<Value, AppError> {
    let r: RecommendationsRequest = parse(body, "recommendations")?;
    id_field("userId", &r.user_id)?;
    let n = num_results(r.num_results)?;
    let mut query = json!({ "userId": r.user_id, "numResults": n, "excludeSeen": r.exclude_seen.unwrap_or(true) });
    if let Some(filter) = r.filter {
        for (name, list) in [("filter.includeItemIds", &filter.include_item_ids), ("filter.excludeItemIds", &filter.exclude_item_ids)] {
            if list.as_ref().is_some_and(|l| l.len() > MAX_FILTER_IDS) {
                return Err(AppError::bad_input(name, format!("{name} lists at most {MAX_FILTER_IDS} items")));
            }
        }
        let mut f = serde_json::Map::new();
        if let Some(include) = filter.include_item_ids {
            f.insert("includeItemIds".into(), json!(include));
        }
        f.insert("excludeItemIds".into(), json!(filter.exclude_item_ids.unwrap_or_default()));
        query["filter"] = Value::Object(f);
    }
    Ok(query)
}

fn similar_query(body: &[u8]) -> Result<Value, AppError> {
    let r: SimilarItemsRequest = parse(body, "similar-items")?;
    id_field("itemId", &r.item_id)?;
    Ok(json!({ "itemId": r.item_id, "numResults": num_results(r.num_results)? }))
}

/// Authorizes, reads and checks the body, runs the model, meters the
/// request and answers with the items and the recommendation's id.
async fn serve(
    req: HttpRequest,
    slug: String,
    payload: web::Payload,
    state: &ServerState,
    request_id: &str,
    query_of: fn(&[u8]) -> Result<Value, AppError>,
) -> HttpResponse {
    let started = Instant::now();
    let (inv, idempotency_key) = match gateway::admit(&req, state, &slug, request_id, &[Family::Recommendation]).await {
        Ok(admitted) => admitted,
        Err(e) => return error(&e, request_id),
    };
    let body = match request::read_body(&req, payload, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(e) => return body_error(&e),
    };
    let query = match query_of(&body) {
        Ok(q) => q,
        Err(e) => return error(&e, request_id),
    };
    let mut admission = None;
    let result = run(state, &inv, query, &mut admission).await;
    let outcome = gateway::Outcome { inv: &inv, idempotency_key: idempotency_key.as_deref(), started, admission };
    let recorded = outcome.record(state, result.as_ref().map(|(a, _)| (a, gateway::Used::default()))).await;
    let (answer, version) = match result {
        Ok(answered) => answered,
        Err(e) => return error(&e, request_id),
    };
    // An answer that is not counted is not given.
    let recommendation_id = match recorded {
        Ok(id) => id,
        Err(e) => return error(&e, request_id),
    };
    match respond(&answer, version, recommendation_id) {
        Ok(body) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header(("Tenfold-Model-Version", inv.version.to_string()))
            .json(body),
        Err(e) => error(&e, request_id),
    }
}

/// Runs the model; its answer and the number of the version that gave it
/// (looked up first: nothing that can fail comes between metering and the
/// answer but the answer's own encoding).
async fn run(
    state: &ServerState,
    inv: &Invocation,
    query: Value,
    admission: &mut Option<tenfold_app::Admission>,
) -> Result<(tenfold_serving::Answer, String), AppError> {
    let served = state.app.served_version(inv.org, inv.version).await?;
    *admission = Some(state.app.reserve_quotas(inv, 0).await?);
    let answer = state.runtime.infer(&gateway::target(inv), vec![ServeInput::Json(query)]).await.map_err(gateway::serve_error)?;
    Ok((answer, served.number.to_string()))
}

fn respond(answer: &tenfold_serving::Answer, model_version: String, id: uuid::Uuid) -> Result<RecommendationsResponse, AppError> {
    let out = answer.outputs.first().ok_or_else(|| AppError::internal(anyhow::anyhow!("the model gave no answer")))?;
    let item_list: Vec<ScoredItem> = serde_json::from_value(out["itemList"].clone()).map_err(AppError::internal)?;
    Ok(RecommendationsResponse {
        item_list,
        recommendation_id: id.to_string(),
        cold_start: out.get("coldStart").and_then(Value::as_bool),
        model_version,
    })
}

/// The items to show a user: exact top-K over the whole catalogue (what
/// they already interacted with left out unless `excludeSeen: false`), or
/// the most popular items for a user the model has not seen
/// (`coldStart: true`). Counted once per `Idempotency-Key`.
#[utoipa::path(
    tag = "recommendations",
    params(
        ("slug" = String, Path, description = "The endpoint's slug", example = "movies"),
        ("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key is counted once"),
    ),
    request_body = RecommendationsRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The items, best first, and the recommendation's id", body = RecommendationsResponse),
        (status = 400, description = "Not a request this endpoint can answer; the message says what to fix", body = InferenceError),
        (status = 401, description = "No or a bad credential", body = InferenceError),
        (status = 402, description = "Over the plan's or the customer key's monthly quota", body = InferenceError),
        (status = 403, description = "The credential may not call this endpoint", body = InferenceError),
        (status = 404, description = "No such endpoint", body = InferenceError),
        (status = 409, description = "The Idempotency-Key was used for another request", body = InferenceError),
        (status = 413, description = "The body is over 1 MiB", body = InferenceError),
        (status = 429, description = "Over a rate limit, or the model's queue is full; `Retry-After` says when to retry", body = InferenceError, headers(("Retry-After" = u64))),
        (status = 503, description = "Paused, loading too long, or metering unavailable", body = InferenceError),
    )
)]
#[post("/v1/endpoints/{slug}/recommendations")]
async fn recommendations(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<ServerState>,
    rid: RequestId,
) -> HttpResponse {
    serve(req, path.into_inner(), payload, &state, &rid.to_string(), recommendations_query).await
}

/// The items most like one item (cosine similarity of the model's item
/// factors), the item itself left out. Counted once per `Idempotency-Key`.
#[utoipa::path(
    tag = "recommendations",
    params(
        ("slug" = String, Path, description = "The endpoint's slug", example = "movies"),
        ("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key is counted once"),
    ),
    request_body = SimilarItemsRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The items, most similar first, and the recommendation's id", body = RecommendationsResponse),
        (status = 400, description = "Not a request this endpoint can answer (an item the model does not know); the message says what to fix", body = InferenceError),
        (status = 401, description = "No or a bad credential", body = InferenceError),
        (status = 402, description = "Over the plan's or the customer key's monthly quota", body = InferenceError),
        (status = 403, description = "The credential may not call this endpoint", body = InferenceError),
        (status = 404, description = "No such endpoint", body = InferenceError),
        (status = 409, description = "The Idempotency-Key was used for another request", body = InferenceError),
        (status = 413, description = "The body is over 1 MiB", body = InferenceError),
        (status = 429, description = "Over a rate limit, or the model's queue is full; `Retry-After` says when to retry", body = InferenceError, headers(("Retry-After" = u64))),
        (status = 503, description = "Paused, loading too long, or metering unavailable", body = InferenceError),
    )
)]
#[post("/v1/endpoints/{slug}/similar-items")]
async fn similar_items(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<ServerState>,
    rid: RequestId,
) -> HttpResponse {
    serve(req, path.into_inner(), payload, &state, &rid.to_string(), similar_query).await
}

/// Impressions and clicks against recommendations this endpoint gave;
/// the endpoint's click-through rate per model version counts them. One
/// event naming another endpoint's (or no) recommendation refuses the
/// whole report. Not metered.
#[utoipa::path(
    tag = "recommendations",
    params(("slug" = String, Path, description = "The endpoint's slug", example = "movies")),
    request_body = EventsRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Recorded; `recorded` counts the events that were new", body = EventsResponse),
        (status = 400, description = "Not an events report this endpoint can take; the message says what to fix", body = InferenceError),
        (status = 401, description = "No or a bad credential", body = InferenceError),
        (status = 403, description = "The credential may not call this endpoint", body = InferenceError),
        (status = 404, description = "No such endpoint", body = InferenceError),
        (status = 413, description = "The body is over 1 MiB", body = InferenceError),
        (status = 429, description = "Over a rate limit; `Retry-After` says when to retry", body = InferenceError, headers(("Retry-After" = u64))),
        (status = 503, description = "Paused, or the database is unavailable", body = InferenceError),
    )
)]
#[post("/v1/endpoints/{slug}/events")]
async fn events(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<ServerState>,
    rid: RequestId,
) -> HttpResponse {
    let (slug, request_id) = (path.into_inner(), rid.to_string());
    let admitted = async {
        let inv = gateway::authorize(&req, &state, &slug, &request_id, &[Family::Recommendation]).await?;
        state.app.check_invocation_rate(&inv).await?;
        Ok::<_, AppError>(inv)
    };
    let inv = match admitted.await {
        Ok(inv) => inv,
        Err(e) => return error(&e, &request_id),
    };
    let body = match request::read_body(&req, payload, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(e) => return body_error(&e),
    };
    let result = async {
        let report: EventsRequest = parse(&body, "events")?;
        if report.event_list.is_empty() || report.event_list.len() > MAX_FEEDBACK_EVENTS {
            return Err(AppError::bad_input("eventList", format!("send 1–{MAX_FEEDBACK_EVENTS} events, got {}", report.event_list.len())));
        }
        let mut events = Vec::with_capacity(report.event_list.len());
        for (i, e) in report.event_list.into_iter().enumerate() {
            let recommendation_id = uuid::Uuid::parse_str(&e.recommendation_id).map_err(|_| {
                AppError::bad_input(
                    "recommendationId",
                    format!("event {i}: {:?} is not a recommendationId; send the one an answer gave", e.recommendation_id),
                )
            })?;
            if let Some(item) = &e.item_id {
                id_field("itemId", item)?;
            }
            if let Some(id) = &e.event_id {
                id_field("eventId", id)?;
            }
            let kind = match e.event_type {
                EventType::Impression => FeedbackKind::Impression,
                EventType::Click => FeedbackKind::Click,
            };
            events.push(FeedbackEvent { kind, recommendation_id, item_id: e.item_id, event_id: e.event_id });
        }
        state.app.record_feedback(&inv, events).await
    }
    .await;
    match result {
        Ok(recorded) => HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(EventsResponse { recorded }),
        Err(e) => error(&e, &request_id),
    }
}
