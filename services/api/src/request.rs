//! Reading credentials and client facts from an HTTP request.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
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

/// The `/v1` REST error shape: `{"error": {"code", "message", "requestId"}}`
/// with the error table's status (and `Retry-After` when it has one).
pub fn error_response(e: AppError, request_id: &str) -> HttpResponse {
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
    res.json(json!({ "error": { "code": e.code.as_str(), "message": message, "requestId": request_id } }))
}
