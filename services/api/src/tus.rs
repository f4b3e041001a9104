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
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use futures::StreamExt;
use serde_json::json;
use tenfold_app::{AppError, Appended, CHECKSUM_ALGORITHMS, Checksum, Chunk, ConflictReason, ErrorCode, NewUpload, Principal, UploadState};
use tenfold_graphql::{GlobalId, NodeKind};
use tracing_actix_web::RequestId;
use uuid::Uuid;

use crate::{ServerState, request};

const TUS_VERSION: &str = "1.0.0";
const EXTENSIONS: &str = "creation,checksum,termination,expiration";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/uploads", web::method(actix_web::http::Method::OPTIONS).to(options))
        .route("/v1/uploads", web::post().to(create))
        .route("/v1/uploads/{id}", web::method(actix_web::http::Method::OPTIONS).to(options))
        .route("/v1/uploads/{id}", web::head().to(state))
        .route("/v1/uploads/{id}", web::patch().to(append))
        .route("/v1/uploads/{id}", web::delete().to(cancel));
}

fn tus(mut res: HttpResponseBuilder) -> HttpResponseBuilder {
    res.insert_header(("Tus-Resumable", TUS_VERSION)).insert_header((header::CACHE_CONTROL, "no-store"));
    res
}

/// The error table as a REST body; tus's own statuses where it has them.
fn error(e: AppError, request_id: &str) -> HttpResponse {
    let status = match e.reason {
        Some(ConflictReason::ChecksumMismatch) => StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST),
        _ => StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
    };
    let message = if e.code == ErrorCode::Internal {
        tracing::error!(request_id, error = %e, "internal error");
        format!("internal error; quote request id {request_id} to support")
    } else {
        e.public_message().to_owned()
    };
    let mut res = tus(HttpResponse::build(status));
    if let Some(secs) = e.retry_after_secs {
        res.insert_header((header::RETRY_AFTER, secs.to_string()));
    }
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

async fn options() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header(("Tus-Resumable", TUS_VERSION))
        .insert_header(("Tus-Version", TUS_VERSION))
        .insert_header(("Tus-Extension", EXTENSIONS))
        .insert_header(("Tus-Checksum-Algorithm", CHECKSUM_ALGORITHMS))
        .finish()
}

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

async fn state(req: HttpRequest, path: web::Path<String>, state: web::Data<ServerState>, rid: RequestId) -> HttpResponse {
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
