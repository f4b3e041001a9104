//! Reading credentials and client facts from an HTTP request.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use futures::StreamExt;
use serde_json::json;
use tenfold_app::{AppError, ErrorCode, RequestMeta};

/// The bearer credential of the request, if any. Credentials in the URL
/// are refused: they end up in logs and browser history.
pub fn bearer(req: &HttpRequest) -> Result<Option<String>, AppError> {
    let query = req.query_string();
    if query.split('&').any(|kv| {
        let key = kv.split('=').next().unwrap_or("");
        matches!(key, "access_token" | "api_key" | "apiKey" | "token")
    }) {
        return Err(AppError::unauthenticated("credentials in the URL are refused; send them in the Authorization header"));
    }
    let Some(value) = req.headers().get(header::AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| AppError::unauthenticated("the Authorization header is not valid text"))?;
    if value.len() > 8192 {
        return Err(AppError::unauthenticated("the Authorization header is too long"));
    }
    let (scheme, credential) = value.split_once(' ').ok_or_else(|| AppError::unauthenticated("use `Authorization: Bearer <token>`"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || credential.trim().is_empty() {
        return Err(AppError::unauthenticated("use `Authorization: Bearer <token>`"));
    }
    Ok(Some(credential.trim().to_owned()))
}

pub fn meta(req: &HttpRequest, trust_forwarded_for: bool, request_id: String) -> RequestMeta {
    let forwarded = if trust_forwarded_for {
        req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok()).and_then(|v| v.split(',').next()).map(|s| s.trim().to_owned())
    } else {
        None
    };
    let ip = forwarded.or_else(|| req.peer_addr().map(|a| a.ip().to_string()));
    RequestMeta { ip, request_id }
}

/// An error answer's status (the error table's), `Cache-Control`,
/// `Retry-After` and `WWW-Authenticate`, and the message a client may
/// see: an internal error shows only the request id to quote.
pub fn error_head(e: &AppError, request_id: &str) -> (HttpResponseBuilder, String) {
    let status = StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = if e.code == ErrorCode::Internal {
        tracing::error!(request_id, error = %e, "internal error");
        format!("internal error; quote request id {request_id} to support")
    } else {
        e.public_message().to_owned()
    };
    let mut res = HttpResponse::build(status);
    res.insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some(secs) = e.retry_after_secs {
        res.insert_header((header::RETRY_AFTER, secs.to_string()));
    }
    if e.code == ErrorCode::Unauthenticated {
        res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
    }
    (res, message)
}

/// The `/v1` REST error shape: `{"error": {"code", "message", "requestId"}}`
/// (`schemas::RestError`).
pub fn error_response(e: AppError, request_id: &str) -> HttpResponse {
    let (mut res, message) = error_head(&e, request_id);
    res.json(json!({ "error": { "code": e.code.as_str(), "message": message, "requestId": request_id } }))
}

/// Why a request body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// Over the limit, by its Content-Length or as it streamed.
    TooLarge(usize),
    /// The connection broke or the encoding is bad.
    Unreadable(String),
}

impl BodyError {
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Unreadable(_) => StatusCode::BAD_REQUEST,
        }
    }

    pub fn message(&self) -> String {
        match self {
            BodyError::TooLarge(limit) => format!("the request body is larger than {limit} bytes"),
            BodyError::Unreadable(e) => format!("the body could not be read: {e}"),
        }
    }
}

/// Reads a body of at most `limit` bytes: refused by its Content-Length
/// first, then while streaming (chunked bodies have none). Handlers read
/// the body themselves, after the caller is authorized, so an anonymous
/// client cannot make the server take in its bytes.
pub async fn read_body(req: &HttpRequest, mut payload: web::Payload, limit: usize) -> Result<web::BytesMut, BodyError> {
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| BodyError::Unreadable(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// No route has this path and method: the REST error shape, not an empty 404.
pub async fn no_route(req: HttpRequest) -> HttpResponse {
    let message = format!("no route {} {}; the routes are listed at /v1/openapi.json", req.method(), req.path());
    HttpResponse::NotFound()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "error": { "code": ErrorCode::NotFound.as_str(), "message": message } }))
}

/// A query string or path that does not fit the route: a 400 in the REST
/// error shape, saying what did not parse.
pub fn refuse_extractor(part: &str, reason: &str, _req: &HttpRequest) -> actix_web::Error {
    let body = json!({ "error": { "code": ErrorCode::BadUserInput.as_str(), "message": format!("the {part} does not parse: {reason}") } });
    actix_web::error::InternalError::from_response(
        reason.to_owned(),
        HttpResponse::BadRequest().insert_header((header::CACHE_CONTROL, "no-store")).json(body),
    )
    .into()
}
