//! GraphQL hardening (SECURITY-TESTS §2, G1–G10 and T4): limits, method
//! and content-type rules, and production-mode introspection.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use tenfold_config::Mode;
use tenfold_tests::TestApp;

#[tokio::test]
async fn depth_limit() {
    let app = TestApp::spawn_with(|s| s.graphql.max_depth = 4).await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let deep = "{ me { memberships { organization { members { edges { node { user { id } } } } } } } }";
    let res = app.gql(deep, json!({}), Some(&s.access)).await;
    assert!(res.first_message().contains("nested too deep"), "{:#}", res.body);
    assert!(res.data().is_null());
}

#[tokio::test]
async fn complexity_multiplies_list_fields_by_first() {
    let app = TestApp::spawn_with(|s| s.graphql.max_complexity = 200).await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let small = "{ organization { members(first: 5) { edges { node { user { id email } role } } } } }";
    app.gql(small, json!({}), Some(&s.access)).await.ok();
    let large = "{ organization { members(first: 100) { edges { node { user { id email } role } } } } }";
    let res = app.gql(large, json!({}), Some(&s.access)).await;
    assert!(res.first_message().contains("too complex"), "{:#}", res.body);
}

#[tokio::test]
async fn page_size_is_capped_with_a_clear_error() {
    let app = TestApp::spawn().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let res = app.gql("{ auditLog(first: 1000) { edges { node { id } } } }", json!({}), Some(&s.access)).await;
    let res = res.expect_code("BAD_USER_INPUT");
    assert!(res.first_message().contains("at most 100"), "{}", res.first_message());
    app.gql("{ auditLog(first: 0) { edges { node { id } } } }", json!({}), Some(&s.access)).await.expect_code("BAD_USER_INPUT");
}

#[tokio::test]
async fn cursors_page_through_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    for i in 0..5 {
        app.gql(
            "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }",
            json!({ "i": { "name": format!("k{i}"), "scopes": ["org:read"] } }),
            Some(&s.access),
        )
        .await
        .ok();
    }
    let q = "query($a: String) { organization { apiKeys(first: 2, after: $a) { edges { cursor node { name } } pageInfo { hasNextPage endCursor } } } }";
    let (mut names, mut after) = (Vec::new(), serde_json::Value::Null);
    loop {
        let page = app.gql(q, json!({ "a": after }), Some(&s.access)).await.ok();
        for e in page.at("/organization/apiKeys/edges").as_array().unwrap() {
            names.push(e["node"]["name"].as_str().unwrap().to_owned());
        }
        if page.at("/organization/apiKeys/pageInfo/hasNextPage") != &json!(true) {
            break;
        }
        after = page.at("/organization/apiKeys/pageInfo/endCursor").clone();
    }
    assert_eq!(names, ["k0", "k1", "k2", "k3", "k4"]);
    app.gql(q, json!({ "a": "not-a-cursor" }), Some(&s.access)).await.expect_code("BAD_USER_INPUT");
}

#[tokio::test]
async fn alias_limit() {
    let app = TestApp::spawn_with(|s| s.graphql.max_aliases = 10).await;
    let fields: String = (0..11).map(|i| format!("a{i}: __typename ")).collect();
    let res = app.gql(&format!("{{ {fields} }}"), json!({}), None).await;
    assert!(res.first_message().contains("aliases"), "{:#}", res.body);
    let fields: String = (0..10).map(|i| format!("a{i}: __typename ")).collect();
    app.gql(&format!("{{ {fields} }}"), json!({}), None).await.ok();
}

#[tokio::test]
async fn fragment_cycles_and_directive_floods_are_refused() {
    let app = TestApp::spawn().await;
    let cycle = app.gql("query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }", json!({}), None).await;
    assert!(!cycle.errors().is_empty() && cycle.data().is_null(), "{:#}", cycle.body);
    let directives: String = (0..50).map(|_| "@include(if: true) ").collect();
    let flood = app.gql(&format!("{{ __typename {directives} }}"), json!({}), None).await;
    assert!(!flood.errors().is_empty(), "{:#}", flood.body);
}

#[tokio::test]
async fn batching_is_refused() {
    let app = TestApp::spawn().await;
    let batch: Vec<_> = (0..3).map(|_| json!({ "query": "{ __typename }" })).collect();
    let res = app.client.post(app.url("/graphql")).json(&batch).send().await.unwrap();
    let res = TestApp::read(res).await;
    assert_eq!(res.status, 400);
    assert!(res.first_message().contains("batched"));
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_before_parsing() {
    let app = TestApp::spawn().await;
    let huge = "x".repeat(app.settings.graphql.max_body_bytes + 1);
    let res = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(format!("{{\"query\": \"{huge}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 413);
}

#[tokio::test]
async fn mutations_are_refused_over_get_and_non_json_posts() {
    let app = TestApp::spawn().await;
    let mutation = "mutation { requestPasswordReset(email: \"a@example.com\") }";
    let res = app.client.get(app.url("/graphql")).query(&[("query", mutation)]).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 405);
    assert_eq!(res.headers().get("allow").unwrap(), "POST");
    // Queries over GET still work.
    let res = app.client.get(app.url("/graphql")).query(&[("query", "{ __typename }")]).send().await.unwrap();
    let res = TestApp::read(res).await.ok();
    assert_eq!(res.str_at("/__typename"), "Query");
    // A multipart form could be posted cross-site: it needs a preflight header.
    let res = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "multipart/form-data; boundary=x")
        .body("--x\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{}\r\n--x--\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert!(res.text().await.unwrap().contains("Apollo-Require-Preflight"));
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let res = app
            .client
            .post(app.url("/graphql"))
            .header("content-type", content_type)
            .body(json!({ "query": mutation }).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 415, "{content_type}");
    }
    assert!(app.mailbox.all().is_empty(), "nothing ran");
}

#[tokio::test]
async fn production_mode_hides_the_schema_and_suggestions() {
    let app = TestApp::spawn_with(|s| {
        s.mode = Mode::Production;
        s.graphql.introspection = false;
        s.graphql.graphiql = false;
    })
    .await;
    let res = app.gql("{ __schema { types { name } } }", json!({}), None).await;
    assert!(res.data().get("__schema").is_none_or(|v| v.is_null()), "{:#}", res.body);
    let res = app.gql("{ __type(name: \"Query\") { fields { name } } }", json!({}), None).await;
    assert!(res.data().get("__type").is_none_or(|v| v.is_null()), "{:#}", res.body);
    app.gql("{ __typename }", json!({}), None).await.ok();
    let res = app.gql("{ organizaton { id } }", json!({}), None).await;
    assert!(!res.first_message().contains("Did you mean"), "{}", res.first_message());
    let res = app.client.get(app.url("/graphql")).send().await.unwrap();
    assert_ne!(res.status().as_u16(), 200, "no GraphiQL in production");
    // And dev mode does offer suggestions and GraphiQL (control).
    let dev = TestApp::spawn().await;
    let res = dev.gql("{ organizaton { id } }", json!({}), None).await;
    assert!(res.first_message().contains("Did you mean"), "{}", res.first_message());
    let page = dev.client.get(dev.url("/graphql")).send().await.unwrap();
    assert!(page.text().await.unwrap().contains("graphiql"));
}

#[tokio::test]
async fn unauthenticated_operations_say_how_to_authenticate() {
    let app = TestApp::spawn().await;
    let res = app.gql("{ me { user { id } } }", json!({}), None).await.expect_code("UNAUTHENTICATED");
    assert!(res.first_message().contains("Authorization: Bearer"));
    assert_eq!(res.headers.get("cache-control").unwrap(), "no-store");
}

#[tokio::test]
async fn foreign_origins_get_no_cors_grant() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/graphql"))
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type, authorization")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
    let res = app
        .client
        .post(app.url("/graphql"))
        .header("Origin", "https://evil.example")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn an_oversized_authorization_header_is_refused_quickly() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .post(app.url("/graphql"))
        .header("Authorization", format!("Bearer {}", "a".repeat(64 * 1024)))
        .json(&json!({ "query": "{ me { user { id } } }" }))
        .send()
        .await;
    match res {
        Ok(res) => {
            let status = res.status().as_u16();
            let res = TestApp::read(res).await;
            assert!(status == 431 || status == 400 || res.first_code() == "UNAUTHENTICATED", "status {status}: {:#}", res.body);
        }
        // The server may also drop the connection outright.
        Err(e) => assert!(e.is_request() || e.is_connect() || e.is_body(), "{e}"),
    }
}

#[tokio::test]
async fn internal_errors_are_opaque_to_the_client_and_carry_a_request_id() {
    use sea_orm::{ConnectionTrait, Database};
    let app = TestApp::spawn().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    // Break the database under the running server.
    let db = Database::connect(app.db.owner_url()).await.unwrap();
    db.execute_unprepared("DROP TABLE audit_events").await.unwrap();
    let res = app.gql("{ auditLog { edges { node { id } } } }", json!({}), Some(&s.access)).await.expect_code("INTERNAL");
    let message = res.first_message();
    let request_id = res.errors()[0]["extensions"]["requestId"].as_str().unwrap().to_owned();
    assert!(message.contains(&request_id), "{message}");
    for leak in ["audit_events", "SELECT", "no such table", "relation", "sqlx", "sea_orm"] {
        assert!(!res.body.to_string().contains(leak), "{leak:?} leaked: {:#}", res.body);
    }
}

#[tokio::test]
async fn the_api_limits_requests_per_address_and_per_organization() {
    // Per address: the sixth request in a minute is refused with the wait.
    let app = TestApp::spawn_with(|s| s.rate_limits.ip_per_minute = 5).await;
    for _ in 0..5 {
        app.gql("{ __typename }", json!({}), None).await.ok();
    }
    let res = app.client.post(app.url("/graphql")).json(&json!({ "query": "{ __typename }" })).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 429);
    let wait: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED", "{body}");

    // Per organization, whatever the address: one tenant's burst leaves the
    // others alone, and REST counts as well as GraphQL.
    let app = TestApp::spawn_with(|s| {
        s.rate_limits.org_per_minute = 6;
        s.server.trust_forwarded_for = true;
    })
    .await;
    let a = app.sign_up("ada@example.com", "Acme").await;
    let b = app.sign_up("bob@example.com", "Bob Co").await;
    let from = |ip: &str, bearer: &str| {
        app.client
            .post(app.url("/graphql"))
            .header("X-Forwarded-For", ip)
            .bearer_auth(bearer)
            .json(&json!({ "query": "{ me { user { id } } }" }))
    };
    for i in 0..5 {
        assert_eq!(from(&format!("10.0.0.{i}"), &a.access).send().await.unwrap().status().as_u16(), 200);
    }
    let rest = app
        .client
        .head(app.url("/v1/uploads/00000000-0000-0000-0000-000000000000"))
        .bearer_auth(&a.access)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status().as_u16(), 404, "the sixth request is let through (and finds nothing)");
    let limited = from("10.0.1.1", &a.access).send().await.unwrap();
    assert_eq!(limited.status().as_u16(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(from("10.0.1.1", &b.access).send().await.unwrap().status().as_u16(), 200, "another organization is not limited");
}
