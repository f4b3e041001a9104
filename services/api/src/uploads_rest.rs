//! `/v1/uploads`: resumable chunked uploads for large dataset files.
//!
//! ```text
//! POST   /v1/uploads            {name, family, fileName, size, sha256, redact?} → 201 {id, offset, size, expiresAt}
//! HEAD   /v1/uploads/{id}       → Upload-Offset, Upload-Length (where to resume)
//! PATCH  /v1/uploads/{id}       Upload-Offset: N, body = bytes N.. (≤ 16 MiB)
//!                               → 204 Upload-Offset: M, or 200 {datasetVersion} when complete
//! DELETE /v1/uploads/{id}       → 204
//! ```

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;
use tenfold_app::{AppError, Appended, ErrorCode, MAX_CHUNK_BYTES, NewUpload, Principal, UploadState};
use tenfold_graphql::{GlobalId, NodeKind};
use tracing_actix_web::RequestId;
use uuid::Uuid;

use crate::{ServerState, request};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/uploads", web::post().to(create))
        .route("/v1/uploads/{id}", web::head().to(state))
        .route("/v1/uploads/{id}", web::patch().to(append))
        .route("/v1/uploads/{id}", web::delete().to(cancel));
}

/// The error table as a REST body (an offset mismatch is CONFLICT, 409).
fn error(e: AppError, request_id: &str) -> HttpResponse {
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
    res.json(json!({ "error": { "code": e.code.as_str(), "reason": e.reason.map(|r| r.as_str()), "message": message, "field": e.field, "requestId": request_id } }))
}

async fn principal(req: &HttpRequest, state: &ServerState, request_id: &str) -> Result<Principal, HttpResponse> {
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

fn with_offsets(mut res: actix_web::HttpResponseBuilder, s: &UploadState) -> actix_web::HttpResponseBuilder {
    res.insert_header(("Upload-Offset", s.offset.to_string()))
        .insert_header(("Upload-Length", s.size.to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    res
}

fn state_json(s: &UploadState) -> serde_json::Value {
    json!({ "id": s.id, "offset": s.offset, "size": s.size, "expiresAt": s.expires_at })
}

async fn create(req: HttpRequest, body: web::Bytes, state: web::Data<ServerState>, rid: RequestId) -> HttpResponse {
    let rid = rid.to_string();
    let p = match principal(&req, &state, &rid).await {
        Ok(p) => p,
        Err(res) => return res,
    };
    let upload: NewUpload = match serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|v| {
        Some(NewUpload {
            name: v.get("name")?.as_str()?.to_owned(),
            family: v.get("family")?.as_str()?.to_owned(),
            file_name: v.get("fileName")?.as_str()?.to_owned(),
            size: v.get("size")?.as_u64()?,
            sha256: v.get("sha256")?.as_str()?.to_owned(),
            redact: v.get("redact").and_then(serde_json::Value::as_bool).unwrap_or(false),
        })
    }) {
        Some(u) => u,
        None => {
            let msg = "send JSON {\"name\", \"family\", \"fileName\", \"size\" (bytes), \"sha256\" (hex), \"redact\"?}";
            return error(AppError::bad_input("body", msg), &rid);
        }
    };
    match state.app.create_upload(&p, upload).await {
        Ok(s) => with_offsets(HttpResponse::Created(), &s)
            .insert_header((header::LOCATION, format!("/v1/uploads/{}", s.id)))
            .json(state_json(&s)),
        Err(e) => error(e, &rid),
    }
}

async fn state(req: HttpRequest, path: web::Path<String>, state: web::Data<ServerState>, rid: RequestId) -> HttpResponse {
    let rid = rid.to_string();
    let p = match principal(&req, &state, &rid).await {
        Ok(p) => p,
        Err(res) => return res,
    };
    match upload_id(&path) {
        Ok(id) => match state.app.upload_state(&p, id).await {
            Ok(s) => with_offsets(HttpResponse::Ok(), &s).finish(),
            Err(e) => error(e, &rid),
        },
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
    let id = match upload_id(&path) {
        Ok(id) => id,
        Err(e) => return error(e, &rid),
    };
    let Some(offset) = req.headers().get("Upload-Offset").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok()) else {
        return error(AppError::bad_input("Upload-Offset", "send the header Upload-Offset: <byte where this chunk starts>"), &rid);
    };
    let chunk = match crate::uploads::read_capped(&req, payload, MAX_CHUNK_BYTES).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    match state.app.append_upload(&p, id, offset, &chunk).await {
        Ok(Appended::Partial(s)) => with_offsets(HttpResponse::NoContent(), &s).finish(),
        Ok(Appended::Complete(v)) => HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(json!({
            "datasetVersion": { "id": GlobalId::new(NodeKind::DatasetVersion, v.id).encode(), "version": v.version, "status": v.status, "sha256": v.sha256 }
        })),
        Err(e) => error(e, &rid),
    }
}

async fn cancel(req: HttpRequest, path: web::Path<String>, state: web::Data<ServerState>, rid: RequestId) -> HttpResponse {
    let rid = rid.to_string();
    let p = match principal(&req, &state, &rid).await {
        Ok(p) => p,
        Err(res) => return res,
    };
    match upload_id(&path) {
        Ok(id) => match state.app.cancel_upload(&p, id).await {
            Ok(()) => HttpResponse::NoContent().finish(),
            Err(e) => error(e, &rid),
        },
        Err(e) => error(e, &rid),
    }
}
