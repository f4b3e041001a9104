//! `GET /v1/downloads/model-versions/{id}/{file}?org=…&expires=…&signature=…`:
//! a model version's files by signed, expiring URL (the URL is the
//! credential; `modelVersion { downloadUrl }` issues it). The use case is
//! `app/src/models/downloads.rs`.
//!
//! Files are attachments; the HTML report is also served under a CSP that
//! allows no script and no request, so opening it from our origin cannot
//! run anything.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use futures::StreamExt;
use serde::Deserialize;

use tenfold_app::{AppError, Download, SignedQuery};
use tracing_actix_web::RequestId;
use uuid::Uuid;

use utoipa_actix_web::service_config::ServiceConfig;

use crate::openapi::schemas::RestError;
use crate::{ServerState, request};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(download);
}

#[derive(Deserialize)]
struct Query {
    org: Option<String>,
    expires: Option<String>,
    signature: Option<String>,
}

/// A model version's file (`weights`, `card`, `report`, `report.html`, …);
/// the link comes from `modelVersion { downloadUrl(file) }`.
#[utoipa::path(
    tag = "downloads",
    params(
        ("id" = String, Path, description = "The model version's id (a UUID)"),
        ("file" = String, Path, description = "The file's name"),
        ("org" = Option<String>, Query, description = "Part of the signed link"),
        ("expires" = Option<String>, Query, description = "Part of the signed link"),
        ("signature" = Option<String>, Query, description = "Part of the signed link"),
    ),
    responses(
        (status = 200, description = "The file, as an attachment: weights as bytes, the card and report as JSON, the report page as HTML", content(
            (Vec<u8> = "application/octet-stream"),
            (Object = "application/json"),
            (String = "text/html"),
        )),
        (status = 400, description = "No such kind of file; the message lists them", body = RestError),
        (status = 403, description = "The link is incomplete, altered or expired", body = RestError),
        (status = 404, description = "No such model version or file", body = RestError),
        (status = 429, description = "Too many requests; `Retry-After` says when to retry", body = RestError),
    )
)]
#[get("/v1/downloads/model-versions/{id}/{file}")]
async fn download(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: web::Query<Query>,
    state: web::Data<ServerState>,
    rid: RequestId,
) -> HttpResponse {
    let request_id = rid.to_string();
    let meta = request::meta(&req, state.app.settings().server.trust_forwarded_for, request_id.clone());
    if let Err(e) = state.app.admit_request(&meta, None).await {
        return request::error_response(e, &request_id);
    }
    let (id, file) = path.into_inner();
    let Ok(version) = Uuid::try_parse(&id) else { return request::error_response(AppError::not_found("model version"), &request_id) };
    let q = query.into_inner();
    let (Some(org), Some(expires), Some(signature)) = (q.org, q.expires, q.signature) else {
        return request::error_response(
            AppError::forbidden(
                "this download link is incomplete (org, expires and signature are required); ask for a new one with modelVersion { downloadUrl }",
            ),
            &request_id,
        );
    };
    match state.app.download(version, &file, &SignedQuery { org, expires, signature }).await {
        Ok(Download::Bytes { file, name, bytes }) => attachment(file.content_type(), &name, bytes.len() as u64).body(bytes),
        Ok(Download::Stream { file, name, size, stream }) => attachment(file.content_type(), &name, size)
            .streaming(stream.map(|chunk| chunk.map_err(actix_web::error::ErrorInternalServerError))),
        Err(e) => request::error_response(e, &request_id),
    }
}

fn attachment(content_type: &str, name: &str, size: u64) -> actix_web::HttpResponseBuilder {
    let mut res = HttpResponse::Ok();
    res.insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")))
        .insert_header((header::CONTENT_LENGTH, size.to_string()))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"))
        // The URL is a credential: no shared cache may keep the file.
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"));
    res
}
