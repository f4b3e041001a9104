//! `/v1/uploads`: resumable uploads over tus 1.0 (core, creation, checksum,
//! termination, expiration), so tus-js-client, Uppy and tuspy work
//! unchanged. The use cases are in `app/src/uploads.rs`.
//!
//! ```text
//! OPTIONS /v1/uploads       → 204 Tus-Version, Tus-Extension, Tus-Checksum-Algorithm
//! POST    /v1/uploads       Upload-Length, Upload-Metadata (filename, family, dataset?, redact?, sha256?)
//!                           → 201 Location, Upload-Expires
//! HEAD    /v1/uploads/{id}  → 200 Upload-Offset, Upload-Length, Upload-Metadata, Upload-Expires
//!                             (+ Tenfold-Dataset-Version once complete)
//! PATCH   /v1/uploads/{id}  Content-Type: application/offset+octet-stream, Upload-Offset,
//!                           Upload-Checksum? → 204 Upload-Offset (+ Tenfold-Dataset-Version on the last)
//! DELETE  /v1/uploads/{id}  → 204
//! ```
//!
//! Every request but OPTIONS carries `Tus-Resumable: 1.0.0` (else 412) and
//! a bearer credential, checked before any body is read. A PATCH body is
//! streamed to a temporary file; when the connection drops, the bytes that
//! arrived are kept and the client resumes from HEAD's offset.

use std::io::Write;
use std::time::SystemTime;

use actix_web::http::header::HttpDate;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, delete, head, options, patch, post, web};
use futures::StreamExt;
use serde_json::json;
use tenfold_app::{AppError, Appended, CHECKSUM_ALGORITHMS, Checksum, Chunk, ConflictReason, ErrorCode, NewUpload, Principal, UploadState};
use tenfold_graphql::{GlobalId, NodeKind};
use tracing_actix_web::RequestId;
use uuid::Uuid;

use utoipa_actix_web::service_config::ServiceConfig;

use crate::openapi::schemas::RestError;
use crate::{ServerState, request};

const TUS_VERSION: &str = "1.0.0";
const EXTENSIONS: &str = "creation,checksum,termination,expiration";

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(tus_options).service(tus_options_upload).service(create).service(upload_state).service(append).service(cancel);
}

fn tus(mut res: HttpResponseBuilder) -> HttpResponseBuilder {
    res.insert_header(("Tus-Resumable", TUS_VERSION)).insert_header((header::CACHE_CONTROL, "no-store"));
    res
}

/// The error table as a REST body (`schemas::RestError`); tus's own
/// statuses where it has them.
fn error(e: AppError, request_id: &str) -> HttpResponse {
    let (mut res, message) = request::error_head(&e, request_id);
    if e.reason == Some(ConflictReason::ChecksumMismatch) {
        res.status(StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST));
    }
    res.insert_header(("Tus-Resumable", TUS_VERSION));
    res.json(json!({ "error": { "code": e.code.as_str(), "reason": e.reason.map(|r| r.as_str()), "message": message, "field": e.field, "requestId": request_id } }))
}

/// The 412 for a client that does not speak our tus version, if it does not.
fn refuse_version(req: &HttpRequest) -> Option<HttpResponse> {
    if req.headers().get("Tus-Resumable").and_then(|v| v.to_str().ok()) == Some(TUS_VERSION) {
        return None;
    }
    Some(
        HttpResponse::PreconditionFailed()
            .insert_header(("Tus-Version", TUS_VERSION))
            .insert_header(("Tus-Resumable", TUS_VERSION))
            .json(json!({ "error": { "code": ErrorCode::BadUserInput.as_str(), "message": "send `Tus-Resumable: 1.0.0` (this server speaks tus 1.0.0)" } })),
    )
}

/// The tus version, then the credential and the rate limits.
async fn principal(req: &HttpRequest, state: &ServerState, request_id: &str) -> Result<Principal, HttpResponse> {
    if let Some(refused) = refuse_version(req) {
        return Err(refused);
    }
    let meta = request::meta(req, state.app.settings().server.trust_forwarded_for, request_id.to_owned());
    let p = match request::bearer(req) {
        Ok(Some(credential)) => state.app.authenticate(&credential, meta.clone()).await.map_err(|e| error(e, request_id))?,
        Ok(None) => return Err(error(AppError::unauthenticated("send `Authorization: Bearer <access token or API key>`"), request_id)),
        Err(e) => return Err(error(e, request_id)),
    };
    state.app.admit_request(&meta, Some(&p)).await.map_err(|e| error(e, request_id))?;
    Ok(p)
}

fn upload_id(raw: &str) -> Result<Uuid, AppError> {
    Uuid::try_parse(raw).map_err(|_| AppError::not_found("upload"))
}

fn header_str<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn expires(s: &UploadState) -> String {
    HttpDate::from(SystemTime::from(s.expires_at)).to_string()
}

/// The headers that say where an upload stands.
fn with_state(mut res: HttpResponseBuilder, s: &UploadState) -> HttpResponseBuilder {
    res.insert_header(("Upload-Offset", s.offset.to_string())).insert_header(("Upload-Expires", expires(s)));
    if let Some(v) = s.dataset_version {
        res.insert_header(("Tenfold-Dataset-Version", GlobalId::new(NodeKind::DatasetVersion, v).encode()));
    }
    res
}

/// The tus versions, extensions and checksum algorithms this server speaks.
#[utoipa::path(tag = "uploads", responses((status = 204, description = "Tus-Version, Tus-Extension, Tus-Checksum-Algorithm")))]
#[options("/v1/uploads")]
async fn tus_options() -> HttpResponse {
    discovery()
}

/// The same answer on an upload's URL.
#[utoipa::path(tag = "uploads", params(("id" = String, Path, description = "The upload")), responses((status = 204, description = "Tus-Version, Tus-Extension, Tus-Checksum-Algorithm")))]
#[options("/v1/uploads/{id}")]
async fn tus_options_upload() -> HttpResponse {
    discovery()
}

fn discovery() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header(("Tus-Resumable", TUS_VERSION))
        .insert_header(("Tus-Version", TUS_VERSION))
        .insert_header(("Tus-Extension", EXTENSIONS))
        .insert_header(("Tus-Checksum-Algorithm", CHECKSUM_ALGORITHMS))
        .finish()
}

/// Creates an upload of `Upload-Length` bytes; `Upload-Metadata` carries
/// `filename`, `family`, and optionally `dataset`, `redact`, `sha256`.
#[utoipa::path(
    tag = "uploads",
    params(("Tus-Resumable" = String, Header, pattern = r"^1\.0\.0$", description = "The tus version: 1.0.0"), ("Upload-Length" = u64, Header, description = "The file's size in bytes"),
           ("Upload-Metadata" = String, Header, description = "tus metadata: comma-separated `key base64(value)` pairs")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; `Location` is the upload's URL", headers(("Location" = String), ("Upload-Expires" = String))),
        (status = 400, description = "A header is missing or malformed; the message says which", body = RestError),
        (status = 401, description = "No or a bad credential", body = RestError),
        (status = 403, description = "The credential may not upload", body = RestError),
        (status = 412, description = "`Tus-Resumable: 1.0.0` is missing", body = RestError),
        (status = 429, description = "Too many requests; `Retry-After` says when to retry", body = RestError),
        (status = 402, description = "The plan's storage quota would be exceeded", body = RestError),
        (status = 404, description = "The dataset named in the metadata does not exist", body = RestError),
        (status = 409, description = "The metadata clashes with the dataset", body = RestError),
    )
)]
#[post("/v1/uploads")]
async fn create(req: HttpRequest, state: web::Data<ServerState>, rid: RequestId) -> HttpResponse {
    let rid = rid.to_string();
    let p = match principal(&req, &state, &rid).await {
        Ok(p) => p,
        Err(res) => return res,
    };
    if req.headers().contains_key("Upload-Defer-Length") {
        return error(AppError::bad_input("Upload-Defer-Length", "deferred lengths are not offered; send Upload-Length"), &rid);
    }
    let length = match header_str(&req, "Upload-Length").map(str::parse::<u64>) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => return error(AppError::bad_input("Upload-Length", "send the file's size in bytes as a whole number"), &rid),
    };
    let metadata = header_str(&req, "Upload-Metadata").unwrap_or("");
    match state.app.create_upload(&p, NewUpload { length, metadata }).await {
        Ok(s) => tus(HttpResponse::Created())
            .insert_header((header::LOCATION, format!("/v1/uploads/{}", s.id)))
            .insert_header(("Upload-Expires", expires(&s)))
            .finish(),
        Err(e) => error(e, &rid),
    }
}

/// Where an upload stands: `Upload-Offset` is where to resume.
#[utoipa::path(
    tag = "uploads",
    params(("id" = String, Path, description = "The upload"), ("Tus-Resumable" = String, Header, pattern = r"^1\.0\.0$", description = "The tus version: 1.0.0")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Upload-Offset, Upload-Length, Upload-Metadata, Upload-Expires (and Tenfold-Dataset-Version once complete)"),
        (status = 400, description = "A header is missing or malformed; the message says which", body = RestError),
        (status = 401, description = "No or a bad credential", body = RestError),
        (status = 403, description = "The credential may not upload", body = RestError),
        (status = 412, description = "`Tus-Resumable: 1.0.0` is missing", body = RestError),
        (status = 429, description = "Too many requests; `Retry-After` says when to retry", body = RestError),
        (status = 404, description = "No such upload: not yours, expired or cancelled", body = RestError),
    )
)]
#[head("/v1/uploads/{id}")]
async fn upload_state(req: HttpRequest, path: web::Path<String>, state: web::Data<ServerState>, rid: RequestId) -> HttpResponse {
    let rid = rid.to_string();
    let p = match principal(&req, &state, &rid).await {
        Ok(p) => p,
        Err(res) => return res,
    };
    let found = match upload_id(&path) {
        Ok(id) => state.app.upload_state(&p, id).await,
        Err(e) => Err(e),
    };
    match found {
        Ok(s) => with_state(tus(HttpResponse::Ok()), &s)
            .insert_header(("Upload-Length", s.length.to_string()))
            .insert_header(("Upload-Metadata", s.metadata.clone()))
            .finish(),
        Err(e) => error(e, &rid),
    }
}

/// Appends bytes at `Upload-Offset`; the last chunk completes the upload
/// into a dataset version (`Tenfold-Dataset-Version`).
#[utoipa::path(
    tag = "uploads",
    params(("id" = String, Path, description = "The upload"), ("Tus-Resumable" = String, Header, pattern = r"^1\.0\.0$", description = "The tus version: 1.0.0"),
           ("Upload-Offset" = u64, Header, description = "Where this body starts"),
           ("Upload-Checksum" = Option<String>, Header, description = "`sha1|sha256|md5 base64(digest)` of this body")),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Appended; Upload-Offset is the new offset"),
        (status = 400, description = "A header is missing or malformed; the message says which", body = RestError),
        (status = 401, description = "No or a bad credential", body = RestError),
        (status = 403, description = "The credential may not upload", body = RestError),
        (status = 412, description = "`Tus-Resumable: 1.0.0` is missing", body = RestError),
        (status = 429, description = "Too many requests; `Retry-After` says when to retry", body = RestError),
        (status = 402, description = "The plan's storage quota would be exceeded", body = RestError),
        (status = 404, description = "No such upload: not yours, expired or cancelled", body = RestError),
        (status = 409, description = "Upload-Offset is not the upload's offset, or the upload is complete", body = RestError),
        (status = 415, description = "The body is not application/offset+octet-stream", body = RestError),
        (status = 460, description = "The body does not match Upload-Checksum", body = RestError),
    )
)]
#[patch("/v1/uploads/{id}")]
async fn append(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<ServerState>,
    rid: RequestId,
) -> HttpResponse {
    let rid = rid.to_string();
    let p = match principal(&req, &state, &rid).await {
        Ok(p) => p,
        Err(res) => return res,
    };
    if header_str(&req, "Content-Type") != Some("application/offset+octet-stream") {
        let e = AppError::bad_input("Content-Type", "send the bytes with `Content-Type: application/offset+octet-stream`");
        return HttpResponse::UnsupportedMediaType().insert_header(("Tus-Resumable", TUS_VERSION)).json(json!({ "error": {
            "code": e.code.as_str(), "message": e.public_message(), "field": e.field, "requestId": rid } }));
    }
    let id = match upload_id(&path) {
        Ok(id) => id,
        Err(e) => return error(e, &rid),
    };
    let Some(offset) = header_str(&req, "Upload-Offset").and_then(|v| v.parse::<u64>().ok()) else {
        return error(AppError::bad_input("Upload-Offset", "send Upload-Offset: the byte where this body starts (HEAD tells)"), &rid);
    };
    let checksum = match header_str(&req, "Upload-Checksum").map(Checksum::parse).transpose() {
        Ok(c) => c,
        Err(e) => return error(e, &rid),
    };
    // Refused before a byte of the body is read: a missing or finished
    // upload, a stale offset.
    let before = match state.app.precheck_append(&p, id, offset).await {
        Ok(s) => s,
        Err(e) => return error(e, &rid),
    };
    let room = before.length - before.offset;
    let chunk = match receive(payload, room, checksum).await {
        Ok(c) => c,
        Err(e) => return error(e, &rid),
    };
    match state.app.append_upload(&p, id, offset, chunk).await {
        Ok(Appended::Partial(s)) => with_state(tus(HttpResponse::NoContent()), &s).finish(),
        Ok(Appended::Complete(s, _)) => with_state(tus(HttpResponse::NoContent()), &s).finish(),
        Err(e) => error(e, &rid),
    }
}

/// Streams a PATCH body into a temporary file, at most `room` bytes. A
/// body cut short (the client's connection dropped) is kept as far as it
/// arrived.
async fn receive(mut payload: web::Payload, room: u64, checksum: Option<Checksum>) -> Result<Chunk, AppError> {
    let mut file = tempfile::tempfile().map_err(AppError::internal)?;
    let mut len: u64 = 0;
    let mut whole = true;
    while let Some(piece) = payload.next().await {
        let piece = match piece {
            Ok(p) => p,
            Err(e) => {
                tracing::info!(error = %e, received = len, "a PATCH body ended early; keeping what arrived");
                whole = false;
                break;
            }
        };
        len += piece.len() as u64;
        if len > room {
            return Err(AppError::bad_input(
                "Upload-Length",
                format!("the body goes past the upload's length: {room} bytes are left to send"),
            ));
        }
        file.write_all(&piece).map_err(AppError::internal)?;
    }
    file.flush().map_err(AppError::internal)?;
    Ok(Chunk { file, len, checksum, whole })
}

/// Cancels an upload and deletes what arrived.
#[utoipa::path(
    tag = "uploads",
    params(("id" = String, Path, description = "The upload"), ("Tus-Resumable" = String, Header, pattern = r"^1\.0\.0$", description = "The tus version: 1.0.0")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Cancelled"),
        (status = 400, description = "A header is missing or malformed; the message says which", body = RestError),
        (status = 401, description = "No or a bad credential", body = RestError),
        (status = 403, description = "The credential may not upload", body = RestError),
        (status = 412, description = "`Tus-Resumable: 1.0.0` is missing", body = RestError),
        (status = 429, description = "Too many requests; `Retry-After` says when to retry", body = RestError),
        (status = 404, description = "No such upload: not yours, expired or cancelled", body = RestError),
        (status = 409, description = "The upload is complete", body = RestError),
    )
)]
#[delete("/v1/uploads/{id}")]
async fn cancel(req: HttpRequest, path: web::Path<String>, state: web::Data<ServerState>, rid: RequestId) -> HttpResponse {
    let rid = rid.to_string();
    let p = match principal(&req, &state, &rid).await {
        Ok(p) => p,
        Err(res) => return res,
    };
    let done = match upload_id(&path) {
        Ok(id) => state.app.cancel_upload(&p, id).await,
        Err(e) => Err(e),
    };
    match done {
        Ok(()) => tus(HttpResponse::NoContent()).finish(),
        Err(e) => error(e, &rid),
    }
}
