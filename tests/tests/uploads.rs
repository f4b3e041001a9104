//! Resumable chunked uploads (`/v1/uploads`): resume after a dropped
//! connection, checksum verification, tenant isolation, bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use tenfold_tests::{Session, TestApp, fixtures_dir};

async fn create(app: &TestApp, s: &Session, body: Value) -> reqwest::Response {
    app.client.post(app.url("/v1/uploads")).bearer_auth(&s.access).json(&body).send().await.unwrap()
}

async fn patch(app: &TestApp, token: &str, id: &str, offset: u64, chunk: &[u8]) -> reqwest::Response {
    app.client
        .patch(app.url(&format!("/v1/uploads/{id}")))
        .bearer_auth(token)
        .header("Upload-Offset", offset.to_string())
        .header("Content-Type", "application/offset+octet-stream")
        .body(chunk.to_vec())
        .send()
        .await
        .unwrap()
}

fn offset_of(res: &reqwest::Response) -> u64 {
    res.headers()["upload-offset"].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_large_file_arrives_in_chunks_and_resumes_after_a_drop() {
    let app = TestApp::spawn().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let file = std::fs::read(fixtures_dir().join("ml-100k.csv")).unwrap();
    let sha = tenfold_app::secrets::sha256_hex(std::str::from_utf8(&file).unwrap());
    let res = create(
        &app,
        &s,
        json!({ "name": "ml-100k", "family": "RECOMMENDATION", "fileName": "ml-100k.csv", "size": file.len(), "sha256": sha }),
    )
    .await;
    assert_eq!(res.status().as_u16(), 201);
    let id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let third = file.len() / 3;

    let res = patch(&app, &s.access, &id, 0, &file[..third]).await;
    assert_eq!(res.status().as_u16(), 204);
    assert_eq!(offset_of(&res), third as u64);
    // The connection "drops"; the client retries the first chunk: refused,
    // and told where the upload stands.
    let res = patch(&app, &s.access, &id, 0, &file[..third]).await;
    assert_eq!(res.status().as_u16(), 409);
    assert!(res.json::<Value>().await.unwrap()["error"]["message"].as_str().unwrap().contains(&third.to_string()));
    let head = app.client.head(app.url(&format!("/v1/uploads/{id}"))).bearer_auth(&s.access).send().await.unwrap();
    assert_eq!(offset_of(&head), third as u64);
    assert_eq!(head.headers()["upload-length"].to_str().unwrap(), file.len().to_string());
    let res = patch(&app, &s.access, &id, third as u64, &file[third..2 * third]).await;
    assert_eq!(offset_of(&res), 2 * third as u64);
    let res = patch(&app, &s.access, &id, 2 * third as u64, &file[2 * third..]).await;
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["datasetVersion"]["sha256"], json!(sha));
    let v = app.wait_validated(&s.access, body["datasetVersion"]["id"].as_str().unwrap()).await;
    assert_eq!(v["status"], "READY");
    assert_eq!((v["stats"]["users"].as_u64(), v["stats"]["interactions"].as_u64()), (Some(943), Some(100_000)));
    // The session is gone once complete.
    let head = app.client.head(app.url(&format!("/v1/uploads/{id}"))).bearer_auth(&s.access).send().await.unwrap();
    assert_eq!(head.status().as_u16(), 404);
}

#[tokio::test]
async fn a_checksum_mismatch_stores_nothing() {
    let app = TestApp::spawn().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let file = b"user_id,item_id\n1,2\n";
    let res = create(
        &app,
        &s,
        json!({ "name": "r", "family": "RECOMMENDATION", "fileName": "r.csv", "size": file.len(), "sha256": "0".repeat(64) }),
    )
    .await;
    let id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let res = patch(&app, &s.access, &id, 0, file).await;
    assert_eq!(res.status().as_u16(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["field"], "sha256");
    assert!(body["error"]["message"].as_str().unwrap().contains("upload it again"));
    let list = app.gql("{ datasets { edges { node { id } } } }", json!({}), Some(&s.access)).await.ok();
    assert_eq!(list.at("/datasets/edges").as_array().unwrap().len(), 0);
    let staged: Vec<_> = walk(&app.settings.storage.data_dir.join("uploads"));
    assert!(staged.is_empty(), "staging files left: {staged:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries.flatten().flat_map(|e| if e.path().is_dir() { walk(&e.path()) } else { vec![e.path()] }).collect()
}

#[tokio::test]
async fn uploads_are_per_organization_and_refuse_bad_input() {
    let app = TestApp::spawn().await;
    let a = app.sign_up("ada@example.com", "Acme").await;
    let b = app.sign_up("bob@example.com", "Bob Co").await;
    let ok = json!({ "name": "r", "family": "RECOMMENDATION", "fileName": "r.csv", "size": 10, "sha256": "a".repeat(64) });
    let id = create(&app, &a, ok.clone()).await.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    // Another organization's token finds nothing.
    let head = app.client.head(app.url(&format!("/v1/uploads/{id}"))).bearer_auth(&b.access).send().await.unwrap();
    assert_eq!(head.status().as_u16(), 404);
    assert_eq!(patch(&app, &b.access, &id, 0, b"0123456789").await.status().as_u16(), 404);
    let del = app.client.delete(app.url(&format!("/v1/uploads/{id}"))).bearer_auth(&b.access).send().await.unwrap();
    assert_eq!(del.status().as_u16(), 404);
    let head = app.client.head(app.url(&format!("/v1/uploads/{id}"))).bearer_auth(&a.access).send().await.unwrap();
    assert_eq!(head.status().as_u16(), 200, "A's upload is untouched");
    // Past the declared size.
    let res = patch(&app, &a.access, &id, 0, &[b'x'; 11]).await;
    assert_eq!(res.status().as_u16(), 400);
    // Bad sessions are refused with the field named.
    for (body, field) in [
        (json!({ "name": "r", "family": "GAMES", "fileName": "r.csv", "size": 10, "sha256": "a".repeat(64) }), "family"),
        (json!({ "name": "r", "family": "RECOMMENDATION", "fileName": "r.csv", "size": 10, "sha256": "xyz" }), "sha256"),
        (json!({ "name": "r", "family": "RECOMMENDATION", "fileName": "r.csv", "size": 0, "sha256": "a".repeat(64) }), "size"),
        (json!({ "name": "r" }), "body"),
    ] {
        let res = create(&app, &a, body).await;
        assert_eq!(res.status().as_u16(), 400);
        assert_eq!(res.json::<Value>().await.unwrap()["error"]["field"], field);
    }
    // Over the plan's upload size: QUOTA_EXCEEDED before any byte is sent.
    let res = create(
        &app,
        &a,
        json!({ "name": "r", "family": "RECOMMENDATION", "fileName": "r.csv", "size": 1u64 << 40, "sha256": "a".repeat(64) }),
    )
    .await;
    assert_eq!(res.status().as_u16(), 402);
    // Roles and credentials.
    let viewer = app.join(&a, "vic@example.com", "VIEWER").await;
    assert_eq!(create(&app, &viewer, ok.clone()).await.status().as_u16(), 403);
    let anon = app.client.post(app.url("/v1/uploads")).json(&ok).send().await.unwrap();
    assert_eq!(anon.status().as_u16(), 401);
    let del = app.client.delete(app.url(&format!("/v1/uploads/{id}"))).bearer_auth(&a.access).send().await.unwrap();
    assert_eq!(del.status().as_u16(), 204);
}
