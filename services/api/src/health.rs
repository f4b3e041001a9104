use actix_web::{HttpResponse, get, web};
use serde_json::json;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::ServerState;
use crate::openapi::schemas::HealthStatus;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(healthz).service(readyz);
}

/// Liveness: the process answers. No dependency is checked, so a database
/// outage does not make Kubernetes restart every replica.
#[utoipa::path(tag = "operations", responses((status = 200, description = "The process answers", body = HealthStatus)))]
#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Readiness: the database and the broker answer.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "The database and the broker answer", body = HealthStatus),
        (status = 503, description = "The database or the broker does not answer", body = HealthStatus),
    )
)]
#[get("/readyz")]
async fn readyz(state: web::Data<ServerState>) -> HttpResponse {
    match state.app.ready().await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ready" })),
        Err(err) => {
            tracing::warn!(error = %err, "not ready");
            HttpResponse::ServiceUnavailable().json(json!({ "status": "unavailable" }))
        }
    }
}
