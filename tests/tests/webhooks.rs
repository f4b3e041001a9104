//! Webhook endpoints: what may be registered (no server-side request
//! forgery), who may manage them, and that the secret is shown only once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use tenfold_tests::TestApp;

const CREATE: &str = "mutation($i: CreateWebhookInput!) { createWebhook(input: $i) { webhook { id url events } secret } }";

#[tokio::test]
async fn urls_that_reach_our_own_network_are_refused_with_production_settings() {
    let app = TestApp::spawn_with(|s| {
        s.webhooks.allow_http = false;
        s.webhooks.allow_private_networks = false;
    })
    .await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    for (url, words) in [
        ("http://hooks.example.com/x", "https"),
        ("https://127.0.0.1/x", "private"),
        ("https://169.254.169.254/latest/meta-data/", "private"),
        ("https://[::1]:8443/x", "private"),
        ("https://localhost/x", "private"),
        ("https://LocalHost./x", "private"),
        ("https://10.0.0.7/x", "private"),
        ("https://admin:pw@hooks.example.com/x", "credentials"),
        ("hooks.example.com", "not a URL"),
    ] {
        let res = app.gql(CREATE, json!({ "i": { "url": url, "events": ["JOB_SUCCEEDED"] } }), Some(&owner.access)).await;
        assert_eq!(res.first_code(), "BAD_USER_INPUT", "{url}: {:#}", res.body);
        assert_eq!(res.errors()[0]["extensions"]["field"], "url");
        assert!(res.first_message().contains(words), "{url}: {}", res.first_message());
    }
    let res = app.gql(CREATE, json!({ "i": { "url": "https://hooks.example.com/x", "events": [] } }), Some(&owner.access)).await;
    assert_eq!(res.first_code(), "BAD_USER_INPUT");
    assert!(res.first_message().contains("at least one event"));
    // Nothing was stored by any of them.
    let list = app.gql("{ webhooks { id } }", json!({}), Some(&owner.access)).await.ok();
    assert_eq!(list.at("/webhooks").as_array().unwrap().len(), 0);
    // A public HTTPS endpoint is fine; its secret appears in this answer only.
    let ok =
        app.gql(CREATE, json!({ "i": { "url": "https://hooks.example.com/x", "events": ["JOB_FAILED"] } }), Some(&owner.access)).await.ok();
    assert!(ok.str_at("/createWebhook/secret").starts_with("whsec_"));
    let again = app.gql("{ webhooks { id url events } }", json!({}), Some(&owner.access)).await.ok();
    assert!(!again.body.to_string().contains("whsec_"), "the secret is never shown again");
    assert_eq!(again.at("/webhooks/0/events"), &json!(["JOB_FAILED"]));
}
