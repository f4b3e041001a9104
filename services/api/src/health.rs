use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::ServerState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz)).route("/readyz", web::get().to(readyz));
}

/// Liveness: the process answers. No dependency is checked, so a database
/// outage does not make Kubernetes restart every replica.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Readiness: the database and the broker answer.
async fn readyz(state: web::Data<ServerState>) -> HttpResponse {
    match state.app.ready().await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ready" })),
        Err(err) => {
            tracing::warn!(error = %err, "not ready");
            HttpResponse::ServiceUnavailable().json(json!({ "status": "unavailable" }))
        }
    }
}
