//! GraphQL subscriptions over `graphql-transport-ws`: authenticated at
//! connection init, tenant-checked, events in order.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::json;
use tenfold_tests::{TestApp, WsRefused};

const AUDIT: &str = "subscription { auditEvents { action target } }";

/// Subscriptions start asynchronously (the protocol has no "subscribed"
/// ack): publish probe events until one arrives, then drain, so that what
/// the test does next is surely seen.
async fn prime(app: &TestApp, access: &str, socket: &mut tenfold_tests::GqlSocket) {
    for i in 0..100 {
        create_key(app, access, &format!("probe-{i}")).await;
        if socket.next_message(Duration::from_millis(200)).await.is_some() {
            while socket.next_message(Duration::from_millis(300)).await.is_some() {}
            return;
        }
    }
    panic!("the subscription never delivered a probe event");
}

async fn create_key(app: &TestApp, access: &str, name: &str) -> String {
    let res = app
        .gql(
            "mutation($n: String!) { createApiKey(input: {name: $n, scopes: [\"org:read\"]}) { apiKey { id } } }",
            json!({ "n": name }),
            Some(access),
        )
        .await
        .ok();
    res.str_at("/createApiKey/apiKey/id")
}

#[tokio::test]
async fn events_arrive_live_and_in_order() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    let mut socket = live_audit_socket(&app, &owner.access, &owner.access).await;
    let key = create_key(&app, &owner.access, "first").await;
    app.gql("mutation($id: ID!) { revokeApiKey(id: $id) { id } }", json!({ "id": key }), Some(&owner.access)).await.ok();
    let first = socket.next_message(Duration::from_secs(5)).await.expect("an event");
    let second = socket.next_message(Duration::from_secs(5)).await.expect("a second event");
    assert_eq!(first["type"], "next", "{first}");
    assert_eq!(first["id"], "1");
    assert_eq!(first["payload"]["data"]["auditEvents"]["action"], "api_key.created", "{first}");
    assert_eq!(second["payload"]["data"]["auditEvents"]["action"], "api_key.revoked", "{second}");
}

#[tokio::test]
async fn another_organization_s_events_never_arrive() {
    let app = TestApp::spawn().await;
    let a = app.sign_up("ada@example.com", "Acme").await;
    let b = app.sign_up("bob@example.com", "Bob Co").await;
    let mut socket_b = app.ws_connect(Some(&b.access), None).await.unwrap();
    socket_b.subscribe("b", AUDIT).await;
    prime(&app, &b.access, &mut socket_b).await;
    create_key(&app, &a.access, "a's key").await;
    create_key(&app, &b.access, "b's key").await;
    let got = socket_b.next_message(Duration::from_secs(5)).await.expect("B's own event");
    assert_eq!(got["payload"]["data"]["auditEvents"]["action"], "api_key.created");
    let target = got["payload"]["data"]["auditEvents"]["target"].as_str().unwrap().to_owned();
    // The event B saw is B's: it names B's key, which B can read.
    let key_id = target.strip_prefix("api_key:").unwrap();
    let keys = app.gql("{ organization { apiKeys { edges { node { id name } } } } }", json!({}), Some(&b.access)).await.ok();
    assert!(keys.body.to_string().contains("b's key"));
    assert!(!key_id.is_empty());
    assert!(socket_b.next_message(Duration::from_millis(500)).await.is_none(), "nothing else may arrive");
}

#[tokio::test]
async fn a_connection_without_valid_credentials_is_closed() {
    let app = TestApp::spawn().await;
    // graphql-transport-ws says 4403; async-graphql 7 closes with 1002 and
    // the reason. Either way no connection_ack, and nothing can subscribe.
    match app.ws_connect(None, None).await {
        Err(WsRefused::Closed(code)) => assert!(code == 4403 || code == 1002, "{code}"),
        other => panic!("expected the socket to be closed, got {:?}", other.map(|_| "ack")),
    }
    match app.ws_connect(Some("tfk_not_a_real_key"), None).await {
        Err(WsRefused::Closed(code)) => assert!(code == 4403 || code == 1002, "{code}"),
        other => panic!("expected the socket to be closed, got {:?}", other.map(|_| "ack")),
    }
}

#[tokio::test]
async fn a_foreign_origin_cannot_open_a_socket() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    match app.ws_connect(Some(&owner.access), Some("https://evil.example")).await {
        Err(WsRefused::Handshake(403)) => {}
        other => panic!("expected 403, got {:?}", other.map(|_| "ack")),
    }
}

#[tokio::test]
async fn roles_without_audit_access_get_forbidden() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    let member = app.join(&owner, "bob@example.com", "MEMBER").await;
    let mut socket = app.ws_connect(Some(&member.access), None).await.unwrap();
    socket.subscribe("1", AUDIT).await;
    let msg = socket.next_message(Duration::from_secs(5)).await.expect("an error");
    assert_eq!(forbidden_code(&msg), Some("FORBIDDEN"), "{msg}");
}

/// The error code of a refused subscription: an `error` message, or a
/// `next` whose payload carries only errors (what async-graphql sends when
/// the resolver refuses).
fn forbidden_code(msg: &serde_json::Value) -> Option<&str> {
    match msg["type"].as_str()? {
        "error" => msg["payload"][0]["extensions"]["code"].as_str(),
        "next" if msg["payload"]["data"].is_null() => msg["payload"]["errors"][0]["extensions"]["code"].as_str(),
        _ => None,
    }
}

/// A socket opened with `credential`, subscribed to the audit log and
/// primed (events flow) by `trigger`'s actions.
async fn live_audit_socket(app: &TestApp, credential: &str, trigger: &str) -> tenfold_tests::GqlSocket {
    let mut socket = app.ws_connect(Some(credential), None).await.unwrap();
    socket.subscribe("1", AUDIT).await;
    prime(app, trigger, &mut socket).await;
    socket
}

/// Waits for the server to close the socket; the close code. Events that
/// arrive first fail the test: none may reach a caller whose access ended.
async fn closed_with(socket: &mut tenfold_tests::GqlSocket, within: Duration) -> u64 {
    let msg = socket.next_message(within).await.expect("the server closes the socket");
    assert_eq!(msg["type"], "closed", "no event after access ended: {msg}");
    msg["code"].as_u64().unwrap()
}

#[tokio::test]
async fn a_socket_closes_when_its_credential_stops_working() {
    // A re-check every half second; the per-event check is tested below.
    let app = TestApp::spawn_with(|s| s.graphql.ws_recheck_seconds = 0.5).await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    let admin = app.join(&owner, "bob@example.com", "ADMIN").await;

    // The member is removed: their socket closes with 4401.
    let mut socket = live_audit_socket(&app, &admin.access, &admin.access).await;
    app.gql("mutation($u: ID!) { removeMember(userId: $u) }", json!({ "u": admin.user_id }), Some(&owner.access)).await.ok();
    assert_eq!(closed_with(&mut socket, Duration::from_secs(5)).await, 4401);

    // The API key is revoked.
    let (key_id, key) = app.api_key(&owner, &["audit:read", "org:read"]).await;
    let mut socket = live_audit_socket(&app, &key, &owner.access).await;
    app.gql("mutation($id: ID!) { revokeApiKey(id: $id) { id } }", json!({ "id": key_id }), Some(&owner.access)).await.ok();
    assert_eq!(closed_with(&mut socket, Duration::from_secs(5)).await, 4401);

    // A demotion ends the socket too (it was opened with more power).
    let carol = app.join(&owner, "cy@example.com", "ADMIN").await;
    let mut socket = live_audit_socket(&app, &carol.access, &carol.access).await;
    let change = "mutation($u: ID!, $r: Role!) { changeRole(userId: $u, role: $r) { role } }";
    app.gql(change, json!({ "u": carol.user_id, "r": "VIEWER" }), Some(&owner.access)).await.ok();
    assert_eq!(closed_with(&mut socket, Duration::from_secs(5)).await, 4403);
    // The user signs out.
    let mut socket = live_audit_socket(&app, &owner.access, &owner.access).await;
    app.gql("mutation { logOut }", json!({}), Some(&owner.access)).await.ok();
    assert_eq!(closed_with(&mut socket, Duration::from_secs(5)).await, 4401);
}

#[tokio::test]
async fn no_event_reaches_a_removed_member_even_before_the_timer() {
    // The timer would take an hour: only the check before each event stops it.
    let app = TestApp::spawn_with(|s| s.graphql.ws_recheck_seconds = 3600.0).await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    let admin = app.join(&owner, "bob@example.com", "ADMIN").await;
    let mut socket = live_audit_socket(&app, &admin.access, &admin.access).await;
    // The removal is itself an audit event: it must not be delivered to them.
    app.gql("mutation($u: ID!) { removeMember(userId: $u) }", json!({ "u": admin.user_id }), Some(&owner.access)).await.ok();
    assert_eq!(closed_with(&mut socket, Duration::from_secs(5)).await, 4401);
}

#[tokio::test]
async fn expired_tokens_and_old_sockets_are_closed() {
    let app = TestApp::spawn_with(|s| {
        s.graphql.ws_recheck_seconds = 0.5;
        s.auth.access_token_ttl_seconds = 2;
        s.auth.leeway_seconds = 0;
    })
    .await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    let mut socket = app.ws_connect(Some(&owner.access), None).await.unwrap();
    socket.subscribe("1", AUDIT).await;
    assert_eq!(closed_with(&mut socket, Duration::from_secs(6)).await, 4401, "the access token expired");

    let app = TestApp::spawn_with(|s| s.graphql.ws_max_lifetime_seconds = 1).await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    let (_, key) = app.api_key(&owner, &["audit:read"]).await;
    let mut socket = app.ws_connect(Some(&key), None).await.unwrap();
    socket.subscribe("1", AUDIT).await;
    assert_eq!(closed_with(&mut socket, Duration::from_secs(5)).await, 1001, "going away at the lifetime cap");
}
