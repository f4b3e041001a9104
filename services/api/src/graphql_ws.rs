//! GraphQL subscriptions over WebSocket (`graphql-transport-ws`, and the
//! older `graphql-ws`). The credential comes in the `connection_init`
//! payload (browsers cannot set headers on a WebSocket); a connection that
//! does not authenticate is closed (4403) before any subscription starts.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use async_graphql::Data;
use async_graphql_actix_web::GraphQLSubscription;
use serde_json::Value;
use tenfold_graphql::RequestAuth;
use tracing_actix_web::RequestId;

use crate::{ServerState, request};

/// The bearer credential in a `connection_init` payload:
/// `{"authorization": "Bearer <token>"}` (any capitalisation of the key).
fn credential(payload: &Value) -> Option<String> {
    let obj = payload.as_object()?;
    let raw = obj.iter().find(|(k, _)| k.eq_ignore_ascii_case("authorization"))?.1.as_str()?;
    let token = raw.strip_prefix("Bearer ").or_else(|| raw.strip_prefix("bearer ")).unwrap_or(raw).trim();
    (!token.is_empty()).then(|| token.to_owned())
}

/// Browsers send `Origin`; only our own origin may open a socket that acts
/// with the user's credential (cross-site WebSocket hijacking).
fn origin_allowed(req: &HttpRequest, public_url: &str) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let host = req.connection_info().host().to_owned();
    origin.trim_end_matches('/') == public_url.trim_end_matches('/')
        || origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host.as_str())
}

pub async fn start(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<ServerState>,
    request_id: RequestId,
) -> actix_web::Result<HttpResponse> {
    let settings = state.app.settings();
    if !origin_allowed(&req, &settings.server.public_url) {
        return Ok(HttpResponse::Forbidden().body("this origin may not open GraphQL subscriptions"));
    }
    let meta = request::meta(&req, settings.server.trust_forwarded_for, request_id.to_string());
    let app = state.app.clone();
    GraphQLSubscription::new(state.schema.clone())
        .keepalive_timeout(Duration::from_secs(60))
        .on_connection_init(move |payload: Value| async move {
            let token = credential(&payload)
                .ok_or_else(|| async_graphql::Error::new("send {\"authorization\": \"Bearer <token>\"} in connection_init"))?;
            let principal =
                app.authenticate(&token, meta.clone()).await.map_err(|e| async_graphql::Error::new(e.public_message().to_owned()))?;
            let mut data = Data::default();
            data.insert(RequestAuth { meta, principal: Ok(Some(principal)) });
            Ok(data)
        })
        .start(&req, payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_credential_from_the_init_payload() {
        assert_eq!(credential(&json!({ "authorization": "Bearer abc" })).as_deref(), Some("abc"));
        assert_eq!(credential(&json!({ "Authorization": "tfk_x" })).as_deref(), Some("tfk_x"));
        assert_eq!(credential(&json!({ "authorization": "Bearer " })), None);
        assert_eq!(credential(&json!({})), None);
        assert_eq!(credential(&Value::Null), None);
    }
}
