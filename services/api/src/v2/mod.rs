//! The Open Inference Protocol (KServe v2) over REST, for hosted endpoints
//! of image classifiers (`image.rs`), chat models' intents (`chat.rs`) and
//! recommenders (`recommend.rs`):
//! `/v2/health/live|ready`, `/v2`, `/v2/models/{slug}`,
//! `/v2/models/{slug}/ready`, `POST /v2/models/{slug}/infer`. Errors are
//! the protocol's `{"error": "…"}` with the status of our error table.
//!
//! One request: authorize and route (`App::invocation`, cached), the API's
//! own limits, decode the tensors, run the model through the serving
//! runtime's batching queue, then write the usage event and wait for its
//! commit before answering (`App::meter`): nothing is answered that is not
//! counted.

mod chat;
mod files;
mod image;
mod recommend;
mod tensor;

use std::time::Instant;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde_json::{Value, json};
use tenfold_app::{AppError, Invocation, ServedVersion};
use tenfold_domain::Family;
use tracing_actix_web::RequestId;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::openapi::schemas::{InferResponse, InferenceError, ModelMetadata, ServerLive, ServerMetadata, ServerReady};
use crate::{ServerState, gateway, request};

pub use files::BlobModelFiles;

/// How often the sweeper looks for models of paused, deleted or switched endpoints.
const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Unloads what no endpoint serves any more (paused, deleted, moved on),
/// without waiting for its idle time: a paused endpoint holds no memory.
pub async fn sweep(app: tenfold_app::App, runtime: tenfold_serving::Runtime) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        tick.tick().await;
        let mut endpoints: Vec<_> = runtime.status().into_iter().map(|h| (h.org, h.endpoint)).collect();
        endpoints.sort();
        endpoints.dedup();
        for (org, endpoint) in endpoints {
            match app.live_versions(org, endpoint).await {
                Ok(live) => runtime.retire(endpoint, &live),
                Err(e) => tracing::warn!(error = %e, %endpoint, "serving sweep skipped an endpoint"),
            }
        }
    }
}

/// The largest inference request body (a batch of encoded images).
pub const MAX_BODY_BYTES: usize = 32 << 20;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(server_live).service(server_ready).service(server_metadata).service(model_metadata).service(model_ready).service(infer);
}

/// The protocol's error shape (`schemas::InferenceError`), with our status and headers.
fn error(e: &AppError, request_id: &str) -> HttpResponse {
    let (mut res, message) = request::error_head(e, request_id);
    res.json(json!({ "error": message }))
}

/// The server is alive.
#[utoipa::path(tag = "inference", responses((status = 200, description = "Alive", body = ServerLive)))]
#[get("/v2/health/live")]
async fn server_live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "live": true }))
}

/// The server can answer: its database and broker answer.
#[utoipa::path(tag = "inference", responses(
    (status = 200, description = "Ready", body = ServerReady),
    (status = 503, description = "The database or the broker does not answer", body = InferenceError),
))]
#[get("/v2/health/ready")]
async fn server_ready(state: web::Data<ServerState>) -> HttpResponse {
    match state.app.ready().await {
        Ok(()) => HttpResponse::Ok().json(json!({ "ready": true })),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            HttpResponse::ServiceUnavailable().json(json!({ "error": "the server cannot reach its database or broker" }))
        }
    }
}

/// The server's name, version and protocol extensions.
#[utoipa::path(tag = "inference", responses((status = 200, description = "Server metadata", body = ServerMetadata)))]
#[get("/v2")]
async fn server_metadata() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "name": "tenfold",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["binary_tensor_data"],
    }))
}

/// The families this protocol serves.
const SERVED: [Family; 3] = [Family::ImageClassification, Family::Chat, Family::Recommendation];

/// Authorizes and routes a request to endpoint `slug`.
async fn invocation(req: &HttpRequest, state: &ServerState, slug: &str, request_id: &str) -> Result<Invocation, AppError> {
    gateway::authorize(req, state, slug, request_id, &SERVED).await
}

/// The endpoint's model: its inputs, outputs and classes.
#[utoipa::path(tag = "inference", params(("slug" = String, Path, description = "The endpoint's slug", example = "digits")), security(("bearer" = [])), responses(
    (status = 200, description = "Model metadata", body = ModelMetadata),
    (status = 400, description = "The endpoint's family is not served over this protocol", body = InferenceError),
    (status = 401, description = "No or a bad credential", body = InferenceError),
    (status = 403, description = "The credential may not call this endpoint", body = InferenceError),
    (status = 404, description = "No such endpoint", body = InferenceError),
    (status = 429, description = "Over a rate limit; `Retry-After` says when to retry", body = InferenceError, headers(("Retry-After" = u64))),
    (status = 503, description = "The endpoint is paused or has no version to serve", body = InferenceError),
))]
#[get("/v2/models/{slug}")]
async fn model_metadata(req: HttpRequest, path: web::Path<String>, state: web::Data<ServerState>, rid: RequestId) -> HttpResponse {
    let (slug, request_id) = (path.into_inner(), rid.to_string());
    let result = async {
        let inv = invocation(&req, &state, &slug, &request_id).await?;
        let served = state.app.served_version(inv.org, inv.version).await?;
        Ok::<_, AppError>(match inv.family {
            Family::Chat => chat::metadata(&slug, &served),
            Family::Recommendation => recommend::metadata(&slug, &served),
            Family::ImageClassification => image::metadata(&slug, &served),
        })
    }
    .await;
    match result {
        Ok(body) => HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(body),
        Err(e) => error(&e, &request_id),
    }
}

/// Ready when the endpoint answers requests: active, with a version to
/// serve (a scaled-to-zero model loads on the first request).
#[utoipa::path(tag = "inference", params(("slug" = String, Path, description = "The endpoint's slug", example = "digits")), security(("bearer" = [])), responses(
    (status = 200, description = "Ready: active, with a version to serve"),
    (status = 400, description = "The endpoint's family is not served over this protocol", body = InferenceError),
    (status = 401, description = "No or a bad credential", body = InferenceError),
    (status = 403, description = "The credential may not call this endpoint", body = InferenceError),
    (status = 404, description = "No such endpoint", body = InferenceError),
    (status = 429, description = "Over a rate limit; `Retry-After` says when to retry", body = InferenceError, headers(("Retry-After" = u64))),
    (status = 503, description = "The endpoint is paused or has no version to serve", body = InferenceError),
))]
#[get("/v2/models/{slug}/ready")]
async fn model_ready(req: HttpRequest, path: web::Path<String>, state: web::Data<ServerState>, rid: RequestId) -> HttpResponse {
    let (slug, request_id) = (path.into_inner(), rid.to_string());
    match invocation(&req, &state, &slug, &request_id).await {
        Ok(_) => HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).finish(),
        Err(e) => error(&e, &request_id),
    }
}

/// Runs the endpoint's model. JSON tensors, or Triton's binary tensor
/// extension (`Inference-Header-Content-Length` bytes of JSON, then the
/// tensors' bytes). Counted once per `Idempotency-Key`.
#[utoipa::path(
    tag = "inference",
    params(
        ("slug" = String, Path, description = "The endpoint's slug", example = "digits"),
        ("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key is counted once"),
        ("Inference-Header-Content-Length" = Option<u64>, Header, description = "With a binary body: the JSON header's length"),
    ),
    request_body(content(
        (tensor::RequestHeader = "application/json"),
        (Vec<u8> = "application/octet-stream"),
    )),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The outputs; binary ones after the JSON header", content(
            (InferResponse = "application/json"),
            (Vec<u8> = "application/octet-stream"),
        )),
        (status = 400, description = "Bad tensors, or a family not served over this protocol; the message says what to fix", body = InferenceError),
        (status = 401, description = "No or a bad credential", body = InferenceError),
        (status = 402, description = "Over the plan's or the customer key's monthly quota", body = InferenceError),
        (status = 403, description = "The credential may not call this endpoint", body = InferenceError),
        (status = 404, description = "No such endpoint", body = InferenceError),
        (status = 409, description = "The Idempotency-Key was used for another request", body = InferenceError),
        (status = 413, description = "The body is over 32 MiB", body = InferenceError),
        (status = 429, description = "Over a rate limit, or the model's queue is full; `Retry-After` says when to retry", body = InferenceError, headers(("Retry-After" = u64))),
        (status = 503, description = "Paused, loading too long, or metering unavailable", body = InferenceError),
    )
)]
#[post("/v2/models/{slug}/infer")]
async fn infer(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<ServerState>,
    rid: RequestId,
) -> HttpResponse {
    let started = Instant::now();
    let (slug, request_id) = (path.into_inner(), rid.to_string());
    let (inv, idempotency_key) = match gateway::admit(&req, &state, &slug, &request_id, &SERVED).await {
        Ok(admitted) => admitted,
        Err(e) => return error(&e, &request_id),
    };
    let body = match request::read_body(&req, payload, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(e) => {
            return HttpResponse::build(e.status())
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .json(json!({ "error": e.message() }));
        }
    };
    let mut admission = None;
    let result = answer(&req, &body, &state, &inv, &mut admission).await;
    let outcome = gateway::Outcome { inv: &inv, idempotency_key: idempotency_key.as_deref(), started, admission };
    let answered = result.as_ref().map(|(_, answer, used)| (answer, *used));
    let recorded = outcome.record(&state, answered).await;
    let (body, _, _) = match result {
        Ok(ok) => ok,
        Err(e) => return error(&e, &request_id),
    };
    // An answer that is not counted is not given.
    if let Err(e) = recorded {
        return error(&e, &request_id);
    }
    body.respond(&inv.version.to_string())
}

/// The family's outputs of the answers (none: only check the names asked for).
fn outputs_of(
    inv: &Invocation,
    parsed: &tensor::InferRequest,
    served: &ServedVersion,
    answers: &[Value],
) -> Result<Vec<(tensor::Output, bool)>, AppError> {
    match inv.family {
        Family::Chat => chat::outputs(parsed, answers),
        Family::Recommendation => recommend::outputs(parsed, answers),
        Family::ImageClassification => image::outputs(parsed, served, answers),
    }
    .map_err(|m| AppError::bad_input("outputs", m))
}

/// Decodes, runs and encodes one request; the answer, the model's answer
/// and what it used (images classified, tokens read and replied).
async fn answer(
    req: &HttpRequest,
    body: &[u8],
    state: &ServerState,
    inv: &Invocation,
    admission: &mut Option<tenfold_app::Admission>,
) -> Result<(Encoded, tenfold_serving::Answer, gateway::Used), AppError> {
    let header_length = req.headers().get("inference-header-content-length").and_then(|v| v.to_str().ok());
    let parsed = tensor::parse(body, header_length).map_err(|m| AppError::bad_input("inputs", m))?;
    let served = state.app.served_version(inv.org, inv.version).await?;
    let inputs = match inv.family {
        Family::Chat => chat::inputs(&parsed),
        Family::Recommendation => recommend::inputs(&parsed),
        Family::ImageClassification => image::inputs(&parsed, &served),
    }
    .map_err(|m| AppError::bad_input("inputs", m))?;
    // Refuse an unknown output before spending the model's time.
    outputs_of(inv, &parsed, &served, &[])?;
    let images = if inv.family == Family::ImageClassification { u32::try_from(inputs.len()).unwrap_or(u32::MAX) } else { 0 };
    *admission = Some(state.app.reserve_quotas(inv, images).await?);
    let answer = state.runtime.infer(&gateway::target(inv), inputs).await.map_err(gateway::serve_error)?;
    let outputs = outputs_of(inv, &parsed, &served, &answer.outputs)?;
    let mut used = gateway::Used { images, ..Default::default() };
    if inv.family == Family::Chat {
        (used.input_tokens, used.output_tokens) = chat::tokens(&answer.outputs);
    }
    let mut header = json!({
        "model_name": inv.slug,
        "model_version": served.number.to_string(),
        "outputs": [],
    });
    if let Some(id) = &parsed.id {
        header["id"] = Value::String(id.clone());
    }
    let mut binary = Vec::new();
    let mut listed = Vec::with_capacity(outputs.len());
    for (output, as_binary) in &outputs {
        let mut entry = json!({ "name": output.name, "datatype": output.datatype(), "shape": output.shape });
        if *as_binary {
            let bytes = output.to_binary();
            entry["parameters"] = json!({ "binary_data_size": bytes.len() });
            binary.extend(bytes);
        } else {
            entry["data"] = output.to_json_data();
        }
        listed.push(entry);
    }
    header["outputs"] = Value::Array(listed);
    let mut body = serde_json::to_vec(&header).map_err(AppError::internal)?;
    let header_length = (!binary.is_empty()).then_some(body.len());
    body.extend(binary);
    Ok((Encoded { body, header_length }, answer, used))
}

/// An encoded answer: JSON, or a JSON header followed by binary outputs.
struct Encoded {
    body: Vec<u8>,
    header_length: Option<usize>,
}

impl Encoded {
    fn respond(self, version: &str) -> HttpResponse {
        let mut res = HttpResponse::Ok();
        res.insert_header((header::CACHE_CONTROL, "no-store")).insert_header(("Tenfold-Model-Version", version.to_owned()));
        match self.header_length {
            Some(n) => res.insert_header(("Inference-Header-Content-Length", n.to_string())).content_type("application/octet-stream"),
            None => res.content_type("application/json"),
        };
        res.body(self.body)
    }
}
