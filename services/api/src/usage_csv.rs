//! `GET /v1/usage.csv?from=…&to=…&groupBy=DAY,ENDPOINT`: the usage view as
//! CSV for spreadsheets and billing exports (bearer credential with
//! `usage:read`; the same rows as GraphQL `usage`).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tenfold_app::{AppError, UsageGroup, UsageRow};
use tracing_actix_web::RequestId;

use utoipa_actix_web::service_config::ServiceConfig;

use crate::openapi::schemas::RestError;
use crate::{ServerState, request};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(usage_csv);
}

#[derive(Deserialize)]
struct Query {
    from: Option<String>,
    to: Option<String>,
    #[serde(rename = "groupBy")]
    group_by: Option<String>,
}

fn time(field: &'static str, raw: Option<&str>) -> Result<DateTime<Utc>, AppError> {
    let raw = raw.ok_or_else(|| AppError::bad_input(field, format!("give `{field}` as an RFC 3339 time, e.g. 2026-12-01T00:00:00Z")))?;
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| AppError::bad_input(field, format!("`{field}` is not an RFC 3339 time (e.g. 2026-12-01T00:00:00Z): {raw:?}")))
}

fn groups(raw: Option<&str>) -> Result<Vec<UsageGroup>, AppError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else { return Ok(Vec::new()) };
    raw.split(',')
        .map(|g| {
            UsageGroup::from_code(g.trim()).ok_or_else(|| {
                let known: Vec<&str> = UsageGroup::ALL.iter().map(|g| g.as_str()).collect();
                AppError::bad_input("groupBy", format!("unknown grouping {g:?}; use a comma-separated list of {}", known.join(", ")))
            })
        })
        .collect()
}

fn to_csv(rows: &[UsageRow]) -> Result<Vec<u8>, AppError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(["hour", "day", "endpoint_id", "api_key_id", "customer_key_id", "unit", "quantity"]).map_err(AppError::internal)?;
    let id = |v: Option<uuid::Uuid>| v.map(|u| u.to_string()).unwrap_or_default();
    for r in rows {
        out.write_record([
            r.hour.map(|h| h.to_rfc3339()).unwrap_or_default(),
            r.day.map(|d| d.to_string()).unwrap_or_default(),
            id(r.endpoint_id),
            id(r.api_key_id),
            id(r.customer_key_id),
            r.unit.as_str().to_owned(),
            r.quantity.to_string(),
        ])
        .map_err(AppError::internal)?;
    }
    out.into_inner().map_err(|e| AppError::internal(anyhow::anyhow!("{e}")))
}

/// The organization's metered usage between `from` and `to`, one row per
/// group and unit (the same rows as GraphQL `usage`).
#[utoipa::path(
    tag = "usage",
    params(
        ("from" = String, Query, description = "RFC 3339 time, inclusive", example = "2026-12-01T00:00:00Z"),
        ("to" = String, Query, description = "RFC 3339 time, exclusive", example = "2027-01-01T00:00:00Z"),
        ("groupBy" = Option<String>, Query, description = "Comma-separated HOUR, DAY, ENDPOINT, KEY, CUSTOMER_KEY, UNIT"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "CSV: hour, day, endpoint_id, api_key_id, customer_key_id, unit, quantity", content_type = "text/csv", body = String),
        (status = 400, description = "A parameter is missing or malformed; the message says which", body = RestError),
        (status = 401, description = "No or a bad credential", body = RestError),
        (status = 403, description = "The credential may not read usage (`usage:read`)", body = RestError),
        (status = 429, description = "Too many requests; `Retry-After` says when to retry", body = RestError),
    )
)]
#[get("/v1/usage.csv")]
async fn usage_csv(req: HttpRequest, query: web::Query<Query>, state: web::Data<ServerState>, rid: RequestId) -> HttpResponse {
    let request_id = rid.to_string();
    let result = async {
        let meta = request::meta(&req, state.app.settings().server.trust_forwarded_for, request_id.clone());
        state.app.admit_request(&meta, None).await?;
        let credential = request::bearer(&req)?.ok_or_else(|| AppError::unauthenticated("send `Authorization: Bearer <token>`"))?;
        let p = state.app.authenticate(&credential, meta).await?;
        let q = query.into_inner();
        let (from, to) = (time("from", q.from.as_deref())?, time("to", q.to.as_deref())?);
        let rows = state.app.usage(&p, from, to, &groups(q.group_by.as_deref())?).await?;
        to_csv(&rows)
    }
    .await;
    match result {
        Ok(csv) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, "text/csv; charset=utf-8"))
            .insert_header((header::CONTENT_DISPOSITION, "attachment; filename=\"usage.csv\""))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(csv),
        Err(e) => request::error_response(e, &request_id),
    }
}
