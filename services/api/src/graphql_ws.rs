//! GraphQL subscriptions over WebSocket (`graphql-transport-ws`, and the
//! older `graphql-ws`). The credential comes in the `connection_init`
//! payload (browsers cannot set headers on a WebSocket); a connection that
//! does not authenticate is closed before any subscription starts.
//!
//! A socket lives longer than the request that opened it, so its credential
//! is checked again — on a timer and before every event it delivers, with
//! the same check as an HTTP request (membership, sign-in, password change,
//! key revocation, expiry). When the check fails the socket closes with
//! 4401 (or 4403 when the member's role changed), and every socket closes
//! after `graphql.ws_max_lifetime_seconds` (1001, going away). That is why
//! this is our own loop on `actix-ws` rather than async-graphql's actor,
//! which has no way to close a socket from the server's side.

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, Session};
use async_graphql::Data;
use async_graphql::http::{WebSocket, WebSocketProtocols, WsMessage};
use futures::StreamExt;
use serde_json::Value;
use tenfold_app::{Actor, App, Principal, RequestMeta};
use tenfold_graphql::RequestAuth;
use tokio::time::{Instant, interval_at};
use tracing::info;
use tracing_actix_web::RequestId;

use crate::{ServerState, request};

/// A client silent (no message, no pong) for this long is gone.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
const PING_EVERY: Duration = Duration::from_secs(10);

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

/// The first sub-protocol the client offers that we speak.
fn protocol(req: &HttpRequest) -> Option<WebSocketProtocols> {
    let offered = req.headers().get(header::SEC_WEBSOCKET_PROTOCOL)?.to_str().ok()?;
    offered.split(',').find_map(|p| WebSocketProtocols::from_str(p.trim()).ok())
}

/// The credential a socket authenticated with, and who it was then.
#[derive(Default)]
struct Authenticated {
    token: Option<String>,
    principal: Option<Principal>,
}

/// Why a socket must close now, if it must.
async fn recheck(app: &App, meta: &RequestMeta, auth: &Mutex<Authenticated>) -> Option<CloseReason> {
    let (token, before) = {
        let a = auth.lock().unwrap_or_else(|p| p.into_inner());
        (a.token.clone()?, a.principal.clone()?)
    };
    match app.authenticate(&token, meta.clone()).await {
        Err(e) => Some(CloseReason {
            code: CloseCode::Other(4401),
            description: Some(format!("{}; reconnect with a valid credential", e.public_message())),
        }),
        Ok(now) => {
            let role = |p: &Principal| match p.actor {
                Actor::User { role, .. } => Some(role),
                Actor::ApiKey { .. } => None,
            };
            (role(&now) != role(&before)).then(|| CloseReason {
                code: CloseCode::Other(4403),
                description: Some("your role in the organization changed; reconnect".into()),
            })
        }
    }
}

/// A `next`/`data` message: one event for a subscriber.
fn is_event(text: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Kind<'a> {
        #[serde(borrow, rename = "type")]
        kind: &'a str,
    }
    serde_json::from_str::<Kind<'_>>(text).is_ok_and(|k| k.kind == "next" || k.kind == "data")
}

pub async fn start(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<ServerState>,
    request_id: RequestId,
) -> actix_web::Result<HttpResponse> {
    let settings = state.app.settings().clone();
    if !origin_allowed(&req, &settings.server.public_url) {
        return Ok(HttpResponse::Forbidden().body("this origin may not open GraphQL subscriptions"));
    }
    let Some(protocol) = protocol(&req) else {
        return Ok(HttpResponse::BadRequest().body("offer the graphql-transport-ws (or graphql-ws) sub-protocol"));
    };
    let meta = request::meta(&req, settings.server.trust_forwarded_for, request_id.to_string());
    let (mut response, session, messages) = actix_ws::handle(&req, payload)?;
    response.headers_mut().insert(header::SEC_WEBSOCKET_PROTOCOL, header::HeaderValue::from_static(protocol.sec_websocket_protocol()));
    let messages = messages
        .max_frame_size(settings.graphql.max_body_bytes)
        .aggregate_continuations()
        .max_continuation_size(settings.graphql.max_body_bytes);

    let auth = Arc::new(Mutex::new(Authenticated::default()));
    let (to_graphql, from_client) = futures::channel::mpsc::unbounded::<Vec<u8>>();
    let (app, init_auth, init_meta) = (state.app.clone(), auth.clone(), meta.clone());
    let graphql = WebSocket::new(state.schema.clone(), from_client, protocol)
        .keepalive_timeout(Duration::from_secs(60))
        .on_connection_init(move |payload: Value| async move {
            let token = credential(&payload)
                .ok_or_else(|| async_graphql::Error::new("send {\"authorization\": \"Bearer <token>\"} in connection_init"))?;
            let principal =
                app.authenticate(&token, init_meta.clone()).await.map_err(|e| async_graphql::Error::new(e.public_message().to_owned()))?;
            *init_auth.lock().unwrap_or_else(|p| p.into_inner()) = Authenticated { token: Some(token), principal: Some(principal.clone()) };
            let mut data = Data::default();
            data.insert(RequestAuth { meta: init_meta, principal: Ok(Some(principal)) });
            Ok(data)
        });
    let app = state.app.clone();
    actix_web::rt::spawn(async move {
        let every = Duration::from_secs_f64(settings.graphql.ws_recheck_seconds.max(0.05));
        let lifetime = Duration::from_secs(settings.graphql.ws_max_lifetime_seconds.max(1));
        let reason = serve(Loop { app, meta, auth, session: session.clone(), to_graphql }, messages, graphql, every, lifetime).await;
        if let Some(r) = &reason {
            info!(code = ?r.code, reason = r.description.as_deref().unwrap_or(""), "subscription socket closed by the server");
        }
        let _ = session.close(reason).await;
    });
    Ok(response)
}

struct Loop {
    app: App,
    meta: RequestMeta,
    auth: Arc<Mutex<Authenticated>>,
    session: Session,
    to_graphql: futures::channel::mpsc::UnboundedSender<Vec<u8>>,
}

/// Moves messages both ways until either side ends, the credential fails
/// or the socket's lifetime is up; the close reason, if the server closes.
async fn serve(
    mut l: Loop,
    mut client: actix_ws::AggregatedMessageStream,
    mut graphql: impl futures::Stream<Item = WsMessage> + Unpin,
    recheck_every: Duration,
    lifetime: Duration,
) -> Option<CloseReason> {
    let ends_at = Instant::now() + lifetime;
    let mut rechecks = interval_at(Instant::now() + recheck_every, recheck_every);
    let mut pings = interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    let mut heard_at = Instant::now();
    loop {
        tokio::select! {
            msg = client.next() => {
                heard_at = Instant::now();
                match msg {
                    Some(Ok(AggregatedMessage::Text(text))) => { let _ = l.to_graphql.unbounded_send(text.as_bytes().to_vec()); }
                    Some(Ok(AggregatedMessage::Binary(bytes))) => { let _ = l.to_graphql.unbounded_send(bytes.to_vec()); }
                    Some(Ok(AggregatedMessage::Ping(bytes))) => { if l.session.pong(&bytes).await.is_err() { return None; } }
                    Some(Ok(AggregatedMessage::Pong(_))) => {}
                    Some(Ok(AggregatedMessage::Close(_))) | None => return None,
                    Some(Err(e)) => return Some(CloseReason { code: CloseCode::Protocol, description: Some(e.to_string()) }),
                }
            }
            out = graphql.next() => match out {
                Some(WsMessage::Text(text)) => {
                    // No event reaches a caller whose access has ended.
                    if is_event(&text) && let Some(reason) = recheck(&l.app, &l.meta, &l.auth).await {
                        return Some(reason);
                    }
                    if l.session.text(text).await.is_err() { return None; }
                }
                Some(WsMessage::Close(code, message)) => return Some(CloseReason { code: code.into(), description: Some(message) }),
                None => return None,
            },
            _ = rechecks.tick() => {
                if let Some(reason) = recheck(&l.app, &l.meta, &l.auth).await {
                    return Some(reason);
                }
            }
            _ = pings.tick() => {
                if heard_at.elapsed() > CLIENT_TIMEOUT {
                    return Some(CloseReason { code: CloseCode::Away, description: Some("no message or pong for 30 s".into()) });
                }
                if l.session.ping(b"").await.is_err() { return None; }
            }
            () = tokio::time::sleep_until(ends_at) => {
                return Some(CloseReason { code: CloseCode::Away, description: Some("the socket reached its maximum lifetime; reconnect".into()) });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_the_credential_from_the_init_payload() {
        assert_eq!(credential(&json!({ "authorization": "Bearer abc" })).as_deref(), Some("abc"));
        assert_eq!(credential(&json!({ "Authorization": "tfk_x" })).as_deref(), Some("tfk_x"));
        assert_eq!(credential(&json!({ "authorization": "Bearer " })), None);
        assert_eq!(credential(&json!({})), None);
        assert_eq!(credential(&Value::Null), None);
    }

    #[test]
    fn events_are_told_from_protocol_messages() {
        assert!(is_event(r#"{"type":"next","id":"1","payload":{}}"#));
        assert!(is_event(r#"{"type":"data","id":"1","payload":{}}"#));
        assert!(!is_event(r#"{"type":"connection_ack"}"#));
        assert!(!is_event(r#"{"type":"complete","id":"1"}"#));
    }
}
