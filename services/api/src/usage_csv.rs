//! `GET /v1/usage.csv?from=…&to=…&groupBy=DAY,ENDPOINT`: the usage view as
//! CSV for spreadsheets and billing exports (bearer credential with
//! `usage:read`; the same rows as GraphQL `usage`).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tenfold_app::{AppError, UsageGroup, UsageRow, UsageUnit};
use tracing_actix_web::RequestId;

use crate::{ServerState, request};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/usage.csv", web::get().to(usage_csv));
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
        .map(|g| match g.trim() {
            "HOUR" => Ok(UsageGroup::Hour),
            "DAY" => Ok(UsageGroup::Day),
            "ENDPOINT" => Ok(UsageGroup::Endpoint),
            "KEY" => Ok(UsageGroup::Key),
            "CUSTOMER_KEY" => Ok(UsageGroup::CustomerKey),
            "UNIT" => Ok(UsageGroup::Unit),
            other => Err(AppError::bad_input(
                "groupBy",
                format!("unknown grouping {other:?}; use a comma-separated list of HOUR, DAY, ENDPOINT, KEY, CUSTOMER_KEY, UNIT"),
            )),
        })
        .collect()
}

pub fn unit_name(u: UsageUnit) -> &'static str {
    match u {
        UsageUnit::Requests => "REQUESTS",
        UsageUnit::Images => "IMAGES",
        UsageUnit::InputTokens => "INPUT_TOKENS",
        UsageUnit::OutputTokens => "OUTPUT_TOKENS",
        UsageUnit::InferenceSeconds => "INFERENCE_SECONDS",
        UsageUnit::TrainingSeconds => "TRAINING_SECONDS",
        UsageUnit::FailedRequests => "FAILED_REQUESTS",
    }
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
            unit_name(r.unit).to_owned(),
            r.quantity.to_string(),
        ])
        .map_err(AppError::internal)?;
    }
    out.into_inner().map_err(|e| AppError::internal(anyhow::anyhow!("{e}")))
}

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
