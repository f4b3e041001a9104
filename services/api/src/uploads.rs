//! Request bodies: JSON capped before parsing, and GraphQL multipart
//! uploads (the GraphQL multipart request spec) streamed to a temporary
//! file with a size cap and a CSRF header requirement.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use async_graphql::http::MultipartOptions;
use futures::{SinkExt, StreamExt, TryStreamExt};
use tenfold_app::ErrorCode;
use tenfold_config::Settings;

use crate::graphql_http::http_error;

/// Headers a browser cannot send cross-site without a CORS preflight; a
/// multipart form could otherwise be posted by any page (Apollo's rule).
const PREFLIGHT_HEADERS: [&str; 3] = ["apollo-require-preflight", "x-apollo-operation-name", "graphql-require-preflight"];

fn declared_length(req: &HttpRequest) -> Option<u64> {
    req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
}

fn too_large(limit: u64) -> HttpResponse {
    http_error(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::BadUserInput, &format!("the request body is larger than {limit} bytes"))
}

/// Reads a body of at most `limit` bytes, refusing in GraphQL's shape.
pub async fn read_capped(req: &HttpRequest, payload: web::Payload, limit: usize) -> Result<web::BytesMut, HttpResponse> {
    crate::request::read_body(req, payload, limit).await.map_err(|e| http_error(e.status(), ErrorCode::BadUserInput, &e.message()))
}

/// What a multipart request must satisfy before anything else is looked
/// at: the preflight header (a form posted cross-site cannot send it) and
/// the size it declares. The refusal, if it is refused.
pub fn refuse_multipart_headers(req: &HttpRequest, settings: &Settings) -> Option<HttpResponse> {
    if !PREFLIGHT_HEADERS.iter().any(|h| req.headers().contains_key(*h)) {
        return Some(http_error(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadUserInput,
            "multipart requests must carry the header `Apollo-Require-Preflight: true` (protection against cross-site uploads)",
        ));
    }
    let limit = settings.graphql.max_upload_bytes;
    declared_length(req).is_some_and(|n| n > limit + 1024 * 1024).then(|| too_large(limit))
}

/// Files one request may carry: a dataset is one, a model import up to
/// three (weights, card, report). The size cap is for all of them.
const MAX_FILES: usize = 3;

const BODY_TOO_LARGE: &str = "the multipart body is over the upload limit";

pub async fn parse_multipart(
    req: &HttpRequest,
    mut payload: web::Payload,
    content_type: &str,
    settings: &Settings,
) -> Result<async_graphql::Request, HttpResponse> {
    if let Some(refused) = refuse_multipart_headers(req, settings) {
        return Err(refused);
    }
    let limit = settings.graphql.max_upload_bytes;
    if declared_length(req).is_some_and(|n| n > limit + 1024 * 1024) {
        return Err(too_large(limit));
    }
    // actix's payload is not Send; async-graphql's parser needs Send. Feed
    // it through a channel from a local task.
    let (mut tx, rx) = futures::channel::mpsc::channel::<std::io::Result<web::Bytes>>(16);
    // The whole body is capped too (a chunked body declares no length, and
    // the per-file cap alone would allow MAX_FILES times the limit).
    let body_cap = limit.saturating_add(1024 * 1024);
    actix_web::rt::spawn(async move {
        let mut seen = 0u64;
        while let Some(chunk) = payload.next().await {
            seen += chunk.as_ref().map_or(0, |c| c.len() as u64);
            let over = seen > body_cap;
            let item = if over { Err(std::io::Error::other(BODY_TOO_LARGE)) } else { chunk.map_err(std::io::Error::other) };
            if tx.send(item).await.is_err() || over {
                break;
            }
        }
    });
    let options = MultipartOptions::default().max_file_size(usize::try_from(limit).unwrap_or(usize::MAX)).max_num_files(MAX_FILES);
    async_graphql::http::receive_body(Some(content_type), rx.into_async_read(), options).await.map_err(|e| match e {
        async_graphql::ParseRequestError::PayloadTooLarge => too_large(limit),
        async_graphql::ParseRequestError::Io(e) if e.to_string().contains(BODY_TOO_LARGE) => too_large(limit),
        async_graphql::ParseRequestError::UnsupportedBatch => http_error(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadUserInput,
            "batched requests are not supported; send one operation per request",
        ),
        other => http_error(StatusCode::BAD_REQUEST, ErrorCode::BadUserInput, &format!("the multipart request is not valid: {other}")),
    })
}
