//! Health, readiness and metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use tenfold_tests::TestApp;

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    let live = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(live.status().as_u16(), 200);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    assert_eq!(ready.json::<serde_json::Value>().await.unwrap()["status"], "ready");
}

#[tokio::test]
async fn metrics_use_the_prefix_base_units_and_route_patterns() {
    let app = TestApp::spawn().await;
    app.gql("{ __typename }", json!({}), None).await.ok();
    app.client.get(app.url("/no/such/path/12345")).send().await.unwrap();
    let body = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("tenfold_http_requests_total{"), "{body}");
    assert!(body.contains("route=\"/graphql\""), "{body}");
    assert!(body.contains("tenfold_http_request_duration_seconds_bucket"), "histograms, not summaries: {body}");
    assert!(body.contains("tenfold_build_info"), "{body}");
    assert!(!body.contains("12345"), "raw paths never become labels");
    for line in body.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        assert!(line.starts_with("tenfold_"), "unprefixed metric: {line}");
    }
}

#[tokio::test]
async fn metrics_can_require_a_token_and_move_to_their_own_port() {
    // Behind a token on the API listener.
    let app = TestApp::spawn_with(|s| s.metrics.token = tenfold_config::SecretString::from("scrape-me".to_owned())).await;
    let get = |auth: Option<&str>| {
        let mut req = app.client.get(app.url("/metrics"));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        req.send()
    };
    assert_eq!(get(None).await.unwrap().status().as_u16(), 401);
    assert_eq!(get(Some("Bearer wrong")).await.unwrap().status().as_u16(), 401);
    let ok = get(Some("Bearer scrape-me")).await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert!(ok.text().await.unwrap().contains("tenfold_build_info"));

    // On its own port: gone from the API listener.
    let app = TestApp::spawn_with(|s| s.metrics.port = Some(0)).await;
    let port = app.metrics_port.expect("a metrics listener");
    assert_eq!(app.client.get(app.url("/metrics")).send().await.unwrap().status().as_u16(), 404);
    let body = app.client.get(format!("http://127.0.0.1:{port}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("tenfold_build_info"), "{body}");
}
