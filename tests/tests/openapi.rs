//! The REST routes' OpenAPI document (`/v1/openapi.json`) against the live
//! server: the real `schemathesis` (PyPI) generates requests from the
//! document, valid and invalid, with a real credential and a deployed
//! endpoint, and checks that no answer is a 5xx and every answer fits the
//! document (status, content type, headers, body schema).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};
use tenfold_tests::TestApp;

fn schemathesis() -> String {
    let default = format!("{}/.cache/tenfold/tools/schemathesis/bin/st", std::env::var("HOME").unwrap());
    let st = std::env::var("TENFOLD_SCHEMATHESIS").unwrap_or(default);
    assert!(std::path::Path::new(&st).exists(), "{st} not found: run scripts/test-tools");
    st
}

#[tokio::test]
async fn the_document_lists_every_route_the_server_mounts() {
    let app = TestApp::spawn().await;
    let res = app.client.get(app.url("/v1/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    let mut operations: Vec<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| ops.as_object().unwrap().keys().map(move |m| format!("{} {path}", m.to_uppercase())))
        .collect();
    operations.sort();
    let expected = [
        "DELETE /v1/uploads/{id}",
        "GET /graphql",
        "GET /healthz",
        "GET /metrics",
        "GET /readyz",
        "GET /v1/downloads/model-versions/{id}/{file}",
        "GET /v1/models",
        "GET /v1/models/{model}",
        "GET /v1/openapi.json",
        "GET /v1/usage.csv",
        "GET /v2",
        "GET /v2/health/live",
        "GET /v2/health/ready",
        "GET /v2/models/{slug}",
        "GET /v2/models/{slug}/ready",
        "HEAD /v1/uploads/{id}",
        "OPTIONS /v1/uploads",
        "OPTIONS /v1/uploads/{id}",
        "PATCH /v1/uploads/{id}",
        "POST /graphql",
        "POST /v1/chat/completions",
        "POST /v1/endpoints/{slug}/events",
        "POST /v1/endpoints/{slug}/recommendations",
        "POST /v1/endpoints/{slug}/similar-items",
        "POST /v1/uploads",
        "POST /v2/models/{slug}/infer",
    ];
    assert_eq!(operations, expected);
    // Every documented operation is served: none falls through to the
    // catch-all 404 that names no route.
    for op in &operations {
        let (method, path) = op.split_once(' ').unwrap();
        let path = path
            .replace("{id}", "00000000-0000-0000-0000-000000000000")
            .replace("{file}", "card")
            .replace("{slug}", "none")
            .replace("{model}", "none");
        let req = app.client.request(method.parse().unwrap(), app.url(&path)).header("Tus-Resumable", "1.0.0");
        let res = req.send().await.unwrap();
        let body = res.text().await.unwrap();
        assert!(!body.contains("no route"), "{op} is documented but not served: {body}");
    }
    // And an unknown route says so in the REST error shape.
    let res = app.client.get(app.url("/v1/nothing-here")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "NOT_FOUND");
    assert!(body["error"]["message"].as_str().unwrap().contains("/v1/openapi.json"));
}

#[tokio::test]
async fn must_show_schemathesis_finds_no_5xx_and_no_answer_outside_the_document() {
    let app = TestApp::spawn_with(|s| {
        // Fuzzing sends hundreds of requests a minute: limits would only
        // turn them into (documented) 429s.
        s.rate_limits.ip_per_minute = 1_000_000;
        s.rate_limits.org_per_minute = 1_000_000;
    })
    .await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    // A served endpoint for the documented example slug, so that the
    // model routes answer 200 too, not only errors.
    let _worker = app.spawn_worker_with(2, &[]);
    let zip = tenfold_tests::mnist_subset(&["0", "1", "2"], 12);
    let dataset = app.ready_images(&s.access, "digits", zip).await;
    let job = app
        .submit_job(
            &s.access,
            &dataset,
            json!({ "architecture": "cnn-tiny", "model": "digits", "hyperparameters": { "epochs": 1, "batchSize": 32 } }),
        )
        .await
        .ok()
        .str_at("/submitJob/id");
    let done =
        app.wait_job(&s.access, &job, Duration::from_secs(240), |j| matches!(j["status"].as_str(), Some("SUCCEEDED" | "FAILED"))).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done:#}");
    app.gql(
        "mutation($i: DeployModelInput!) { deployModel(input: $i) { id } }",
        json!({ "i": { "modelVersionId": done["modelVersionId"], "slug": "digits" } }),
        Some(&s.access),
    )
    .await
    .ok();
    // And a recommender for the recommendation routes' example slug.
    let mut ratings = String::from("user_id,item_id\n");
    let items = ["50", "100", "181", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    for (u, user) in ["196", "1", "2", "3", "4", "5", "6", "7", "8", "9"].iter().enumerate() {
        for k in 0..6 {
            ratings.push_str(&format!("{user},{}\n", items[(u * 5 + k * 7) % items.len()]));
        }
    }
    let upload = app.upload(Some(&s.access), "ratings", "RECOMMENDATION", "ratings.csv", ratings.into_bytes()).await.ok();
    let ratings = upload.str_at("/uploadDataset/id");
    assert_eq!(app.wait_validated(&s.access, &ratings).await["status"], "READY");
    let input = json!({ "family": "RECOMMENDATION", "architecture": "bpr-mf", "model": "movies", "hyperparameters": { "epochs": 5 } });
    let job = app.submit_job(&s.access, &ratings, input).await.ok().str_at("/submitJob/id");
    let trained =
        app.wait_job(&s.access, &job, Duration::from_secs(240), |j| matches!(j["status"].as_str(), Some("SUCCEEDED" | "FAILED"))).await;
    assert_eq!(trained["status"], "SUCCEEDED", "{trained:#}");
    app.gql(
        "mutation($i: DeployModelInput!) { deployModel(input: $i) { id } }",
        json!({ "i": { "modelVersionId": trained["modelVersionId"], "slug": "movies" } }),
        Some(&s.access),
    )
    .await
    .ok();
    let (_, key) =
        app.api_key(&s, &["datasets:read", "datasets:write", "models:read", "endpoints:read", "endpoints:invoke", "usage:read"]).await;

    // Real identifiers for the routes that name stored things, so their
    // answers are not all 404s: an upload under way, a signed download link.
    let b64 = |v: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, v);
    let created = app
        .client
        .post(app.url("/v1/uploads"))
        .bearer_auth(&key)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", "1000")
        .header("Upload-Metadata", format!("filename {},family {}", b64("ratings.csv"), b64("RECOMMENDATION")))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let upload = created.headers()["location"].to_str().unwrap().rsplit('/').next().unwrap().to_owned();
    let link = app
        .gql(
            "query($id: ID!) { modelVersion(id: $id) { downloadUrl(file: MODEL_CARD) { url } } }",
            json!({ "id": done["modelVersionId"] }),
            Some(&s.access),
        )
        .await
        .ok()
        .str_at("/modelVersion/downloadUrl/url");
    let link = reqwest::Url::parse(&link).unwrap();
    let segments: Vec<&str> = link.path_segments().unwrap().collect();
    let query: std::collections::HashMap<_, _> = link.query_pairs().into_owned().collect();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[operations]]
include-path = "/v1/uploads/{{id}}"
parameters = {{ "path.id" = "{upload}" }}

[[operations]]
include-path-regex = "^/v2/models/"
parameters = {{ "path.slug" = "digits" }}

[[operations]]
include-path-regex = "^/v1/endpoints/"
parameters = {{ "path.slug" = "movies" }}

[[operations]]
include-path = "/v1/downloads/model-versions/{{id}}/{{file}}"
parameters = {{ "path.id" = "{}", "path.file" = "{}", "query.org" = "{}", "query.expires" = "{}", "query.signature" = "{}" }}
"#,
            segments[3], segments[4], query["org"], query["expires"], query["signature"]
        ),
    )
    .unwrap();
    let hooks = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/schemathesis_hooks.py");

    let report = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(schemathesis());
    cmd.arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(app.url("/v1/openapi.json"))
        .args(["--url", &app.address])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance",
        ])
        .args(["--header", &format!("Authorization: Bearer {key}")])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", "40", "--seed", "20261201", "--workers", "2"])
        .args(["--request-timeout", "20", "--suppress-health-check", "all"])
        .args(["--report", "junit", "--report-dir"])
        .arg(report.path())
        // It keeps a cache in its working directory.
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_HOOKS", &hooks);
    // Off the test's runtime: the server's connections are driven there.
    let run = tokio::task::spawn_blocking(move || cmd.output().unwrap());
    let out = tokio::time::timeout(Duration::from_secs(420), run).await.expect("schemathesis finished within 7 minutes").unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "schemathesis found failures:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("{stdout}");
    // It ran every operation through every phase asked for, not nothing.
    let count = |label: &str| -> String {
        let line = stdout.lines().find_map(|l| l.trim().strip_prefix(label)).unwrap_or_else(|| panic!("no {label} in:\n{stdout}"));
        line.trim().to_owned()
    };
    let (selected, tested) = (count("Selected:"), count("Tested:"));
    let (chosen, total) = selected.split_once('/').unwrap();
    assert!(chosen == total && tested == total, "operations left untested ({selected}, tested {tested}):\n{stdout}");
    assert!(total.parse::<usize>().unwrap() >= 19, "{stdout}");
    for phase in ["✅ Examples", "✅ Coverage", "✅ Fuzzing"] {
        assert!(stdout.contains(phase), "{phase} missing:\n{stdout}");
    }
}
