//! OpenAI's chat completions API for hosted chat endpoints, so that every
//! `openai` client library can call them: `POST /v1/chat/completions`
//! (a JSON answer, or server-sent events with `stream: true`, and the
//! token usage with `stream_options.include_usage`), `GET /v1/models` and
//! `GET /v1/models/{model}`; errors in OpenAI's body shape with the status
//! of our error table. `model` is the endpoint's slug.
//!
//! The gateway's bookkeeping (keys, rate limits, quotas, metering before
//! the answer, the canary's watch) is `gateway`'s, as for the Open
//! Inference Protocol. Input tokens (what the model read of the
//! conversation) and output tokens (the reply) are metered.

mod completion;
pub mod wire;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use tenfold_app::{AppError, ErrorCode};
use tenfold_domain::Family;
use tracing_actix_web::RequestId;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::{ServerState, request};
use wire::{ModelList, ModelObject, OpenAiError, OpenAiErrorBody};

/// The largest chat request body: a long conversation is far smaller.
pub const MAX_BODY_BYTES: usize = 1 << 20;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(completion::chat_completions).service(list_models).service(get_model);
}

/// OpenAI's `type` and `code` for an error of our table.
fn kind_and_code(e: &AppError) -> (&'static str, Option<&'static str>) {
    match e.code {
        ErrorCode::Unauthenticated => ("authentication_error", Some("invalid_api_key")),
        ErrorCode::Forbidden => ("permission_error", Some("forbidden")),
        ErrorCode::NotFound => ("invalid_request_error", Some("model_not_found")),
        ErrorCode::BadUserInput => ("invalid_request_error", None),
        ErrorCode::Conflict => ("invalid_request_error", Some("conflict")),
        ErrorCode::RateLimited => ("rate_limit_error", Some("rate_limit_exceeded")),
        ErrorCode::QuotaExceeded => ("insufficient_quota", Some("insufficient_quota")),
        ErrorCode::Unavailable => ("server_error", Some("unavailable")),
        ErrorCode::Internal => ("server_error", None),
    }
}

/// An error in OpenAI's shape, with our status and headers.
fn error(e: &AppError, request_id: &str) -> HttpResponse {
    let (mut res, message) = request::error_head(e, request_id);
    let (kind, code) = kind_and_code(e);
    let param = match e.code {
        ErrorCode::NotFound => Some("model".to_owned()),
        _ => e.field.map(str::to_owned),
    };
    res.json(OpenAiError { error: OpenAiErrorBody { message, kind, param, code: code.map(str::to_owned) } })
}

fn model_object(callable: tenfold_app::Callable) -> ModelObject {
    ModelObject { id: callable.slug, object: "model", created: callable.created_at.timestamp(), owned_by: "organization" }
}

async fn callable(req: &HttpRequest, state: &ServerState, request_id: &str) -> Result<Vec<tenfold_app::Callable>, AppError> {
    let meta = request::meta(req, state.app.settings().server.trust_forwarded_for, request_id.to_owned());
    let credential = request::bearer(req)?;
    state.app.admit_request(&meta, None).await?;
    state.app.callable_endpoints(credential.as_deref(), meta, Family::Chat).await
}

/// The chat endpoints this key may call, as models.
#[utoipa::path(tag = "chat", security(("bearer" = [])), responses(
    (status = 200, description = "The active chat endpoints the key may call", body = ModelList),
    (status = 401, description = "No or a bad credential", body = OpenAiError),
    (status = 403, description = "The credential may not call endpoints", body = OpenAiError),
    (status = 429, description = "Over a rate limit; `Retry-After` says when to retry", body = OpenAiError, headers(("Retry-After" = u64))),
))]
#[get("/v1/models")]
async fn list_models(req: HttpRequest, state: web::Data<ServerState>, rid: RequestId) -> HttpResponse {
    let request_id = rid.to_string();
    match callable(&req, &state, &request_id).await {
        Ok(list) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(ModelList { object: "list", data: list.into_iter().map(model_object).collect() }),
        Err(e) => error(&e, &request_id),
    }
}

/// One chat endpoint, as a model.
#[utoipa::path(tag = "chat", params(("model" = String, Path, description = "The endpoint's slug", example = "support")), security(("bearer" = [])), responses(
    (status = 200, description = "The endpoint", body = ModelObject),
    (status = 401, description = "No or a bad credential", body = OpenAiError),
    (status = 403, description = "The credential may not call endpoints", body = OpenAiError),
    (status = 404, description = "No active chat endpoint of that slug that this key may call", body = OpenAiError),
    (status = 429, description = "Over a rate limit; `Retry-After` says when to retry", body = OpenAiError, headers(("Retry-After" = u64))),
))]
#[get("/v1/models/{model}")]
async fn get_model(req: HttpRequest, path: web::Path<String>, state: web::Data<ServerState>, rid: RequestId) -> HttpResponse {
    let (slug, request_id) = (path.into_inner(), rid.to_string());
    let found = callable(&req, &state, &request_id)
        .await
        .and_then(|list| list.into_iter().find(|c| c.slug == slug).ok_or_else(|| AppError::not_found("endpoint")));
    match found {
        Ok(c) => HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(model_object(c)),
        Err(e) => error(&e, &request_id),
    }
}
