//! Resumable uploads over tus 1.0 (`/v1/uploads`; issue 10, hole 7):
//! protocol conformance, per-PATCH checksums, serialized PATCHes, staged
//! bytes counted against storage, the cap on open uploads, expiry,
//! termination, tenant isolation and bad input. (The real `tuspy` client,
//! with a resume after a dropped connection, is in tests/python.)
//! Before this change `/v1/uploads` spoke a JSON protocol of its own and
//! staged in a local folder: every test here failed against it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use sha2::Digest;
use tenfold_tests::{Session, TestApp, fixtures_dir};

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn metadata(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k} {}", b64(v))).collect::<Vec<_>>().join(",")
}

async fn create(app: &TestApp, token: &str, length: usize, meta: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/uploads"))
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", length.to_string())
        .header("Upload-Metadata", meta)
        .send()
        .await
        .unwrap()
}

async fn create_csv(app: &TestApp, s: &Session, length: usize) -> String {
    let res = create(app, &s.access, length, &metadata(&[("filename", "ml-100k.csv"), ("family", "RECOMMENDATION")])).await;
    assert_eq!(res.status().as_u16(), 201, "{:?}", res.text().await);
    res.headers()["location"].to_str().unwrap().to_owned()
}

async fn patch(app: &TestApp, token: &str, location: &str, offset: u64, chunk: &[u8], checksum: Option<String>) -> reqwest::Response {
    let mut req = app
        .client
        .patch(app.url(location))
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", offset.to_string())
        .header("Content-Type", "application/offset+octet-stream");
    if let Some(c) = checksum {
        req = req.header("Upload-Checksum", c);
    }
    req.body(chunk.to_vec()).send().await.unwrap()
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_header(bytes: &[u8]) -> String {
    format!("sha256 {}", base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes)))
}

async fn head(app: &TestApp, token: &str, location: &str) -> reqwest::Response {
    app.client.head(app.url(location)).bearer_auth(token).header("Tus-Resumable", "1.0.0").send().await.unwrap()
}

fn offset_of(res: &reqwest::Response) -> u64 {
    res.headers()["upload-offset"].to_str().unwrap().parse().unwrap()
}

async fn storage_used(app: &TestApp, s: &Session) -> i64 {
    app.gql("{ organization { storageUsedBytes } }", json!({}), Some(&s.access))
        .await
        .ok()
        .at("/organization/storageUsedBytes")
        .as_f64()
        .unwrap() as i64
}

fn ml100k() -> Vec<u8> {
    std::fs::read(fixtures_dir().join("ml-100k.csv")).unwrap()
}

#[tokio::test]
async fn the_server_speaks_tus_1_0_with_its_extensions() {
    let app = TestApp::spawn().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let res = app.client.request(reqwest::Method::OPTIONS, app.url("/v1/uploads")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 204);
    assert_eq!(res.headers()["tus-version"], "1.0.0");
    let extensions = res.headers()["tus-extension"].to_str().unwrap().to_owned();
    for e in ["creation", "checksum", "termination", "expiration"] {
        assert!(extensions.split(',').any(|x| x == e), "{e} missing from {extensions}");
    }
    assert!(res.headers()["tus-checksum-algorithm"].to_str().unwrap().contains("sha256"));
    // Without Tus-Resumable: 412 and the version we speak.
    let res = app.client.post(app.url("/v1/uploads")).bearer_auth(&s.access).header("Upload-Length", "10").send().await.unwrap();
    assert_eq!(res.status().as_u16(), 412);
    assert_eq!(res.headers()["tus-version"], "1.0.0");
    // Creation answers with Location, Upload-Expires and Tus-Resumable.
    let res = create(&app, &s.access, 10, &metadata(&[("filename", "a.csv"), ("family", "RECOMMENDATION")])).await;
    assert_eq!(res.status().as_u16(), 201);
    assert_eq!(res.headers()["tus-resumable"], "1.0.0");
    assert!(res.headers()["location"].to_str().unwrap().starts_with("/v1/uploads/"));
    assert!(res.headers()["upload-expires"].to_str().unwrap().ends_with("GMT"));
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let h = head(&app, &s.access, &location).await;
    assert_eq!((h.status().as_u16(), offset_of(&h)), (200, 0));
    assert_eq!(h.headers()["upload-length"], "10");
    assert_eq!(h.headers()["cache-control"], "no-store");
    // A PATCH without the tus content type: 415.
    let res = app
        .client
        .patch(app.url(&location))
        .bearer_auth(&s.access)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", "0")
        .body("0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 415);
}

#[tokio::test]
async fn a_file_arrives_in_checksummed_parts_racing_patches_are_serialized_and_it_becomes_a_version() {
    let app = TestApp::spawn().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let file = ml100k();
    let third = file.len() / 3;
    let location = create_csv(&app, &s, file.len()).await;

    let res = patch(&app, &s.access, &location, 0, &file[..third], Some(sha256_header(&file[..third]))).await;
    assert_eq!((res.status().as_u16(), offset_of(&res)), (204, third as u64));
    // A stale offset: 409, told where it stands.
    let res = patch(&app, &s.access, &location, 0, &file[..third], None).await;
    assert_eq!(res.status().as_u16(), 409);
    assert!(res.json::<Value>().await.unwrap()["error"]["message"].as_str().unwrap().contains(&third.to_string()));
    // A body that is not what its checksum says: 460, nothing kept.
    let mut corrupt = file[third..2 * third].to_vec();
    corrupt[10] ^= 0xff;
    let res = patch(&app, &s.access, &location, third as u64, &corrupt, Some(sha256_header(&file[third..2 * third]))).await;
    assert_eq!(res.status().as_u16(), 460);
    assert_eq!(offset_of(&head(&app, &s.access, &location).await), third as u64);
    // An algorithm we do not offer: 400.
    let res = patch(&app, &s.access, &location, third as u64, &file[third..2 * third], Some("md5 AAAA".into())).await;
    assert_eq!(res.status().as_u16(), 400);

    // Eight PATCHes of the same part at once: one wins, the rest get 409,
    // and the upload stands exactly one part further.
    let racing = (0..8).map(|_| patch(&app, &s.access, &location, third as u64, &file[third..2 * third], None));
    let statuses: Vec<u16> = futures::future::join_all(racing).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 204).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 204 || *s == 409), "{statuses:?}");
    assert_eq!(offset_of(&head(&app, &s.access, &location).await), 2 * third as u64);

    let res = patch(&app, &s.access, &location, 2 * third as u64, &file[2 * third..], Some(sha256_header(&file[2 * third..]))).await;
    assert_eq!((res.status().as_u16(), offset_of(&res)), (204, file.len() as u64));
    let version = res.headers()["tenfold-dataset-version"].to_str().unwrap().to_owned();
    let v = app.wait_validated(&s.access, &version).await;
    assert_eq!(v["status"], "READY");
    assert_eq!((v["stats"]["users"].as_u64(), v["stats"]["interactions"].as_u64()), (Some(943), Some(100_000)));
    // The dataset is named after the file; HEAD still tells the version until the upload expires.
    let name = app.gql("{ datasets { edges { node { name } } } }", json!({}), Some(&s.access)).await.ok();
    assert_eq!(name.at("/datasets/edges/0/node/name"), &json!("ml-100k"));
    let h = head(&app, &s.access, &location).await;
    assert_eq!(h.headers()["tenfold-dataset-version"].to_str().unwrap(), version);
    // Only the version's file is left in storage: the parts went.
    let keys = app.app.blob_keys(s.org()).await.unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
}

#[tokio::test]
async fn staged_bytes_count_against_storage_and_termination_gives_them_back() {
    let app = TestApp::spawn().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let file = ml100k();
    let before = storage_used(&app, &s).await;
    let location = create_csv(&app, &s, file.len()).await;
    let res = patch(&app, &s.access, &location, 0, &file[..500_000], None).await;
    assert_eq!(res.status().as_u16(), 204);
    assert_eq!(storage_used(&app, &s).await, before + 500_000, "staged bytes are counted");
    assert_eq!(app.app.blob_keys(s.org()).await.unwrap().len(), 1, "the part is in blob storage");
    let res = app.client.delete(app.url(&location)).bearer_auth(&s.access).header("Tus-Resumable", "1.0.0").send().await.unwrap();
    assert_eq!(res.status().as_u16(), 204);
    assert_eq!(head(&app, &s.access, &location).await.status().as_u16(), 404);
    assert_eq!(storage_used(&app, &s).await, before);
    assert!(app.app.blob_keys(s.org()).await.unwrap().is_empty(), "the staged part was deleted");
}

#[tokio::test]
async fn open_uploads_are_capped_and_abandoned_ones_expire_with_their_parts() {
    let app = TestApp::spawn().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let meta = metadata(&[("filename", "a.csv"), ("family", "RECOMMENDATION")]);
    let mut locations = Vec::new();
    for _ in 0..tenfold_app::MAX_OPEN_UPLOADS {
        let res = create(&app, &s.access, 1000, &meta).await;
        assert_eq!(res.status().as_u16(), 201);
        locations.push(res.headers()["location"].to_str().unwrap().to_owned());
    }
    let res = create(&app, &s.access, 1000, &meta).await;
    assert_eq!(res.status().as_u16(), 402, "one upload too many");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "QUOTA_EXCEEDED");
    assert!(body["error"]["message"].as_str().unwrap().contains("DELETE"), "{body}");

    // One has a staged part; all of them are abandoned and expire.
    let res = patch(&app, &s.access, &locations[0], 0, b"user_id,item_id\n", None).await;
    assert_eq!(res.status().as_u16(), 204);
    assert_eq!(app.app.blob_keys(s.org()).await.unwrap().len(), 1);
    let db = Database::connect(app.db.owner_url()).await.unwrap();
    db.execute_unprepared("UPDATE uploads SET expires_at = '2020-01-01 00:00:00+00:00'").await.unwrap();
    db.execute_unprepared("UPDATE upload_expiry SET expires_at = '2020-01-01 00:00:00+00:00'").await.unwrap();
    assert_eq!(head(&app, &s.access, &locations[0]).await.status().as_u16(), 404, "an expired upload is gone to its client");
    let swept = app.app.sweep_expired_uploads().await.unwrap();
    assert_eq!(swept, tenfold_app::MAX_OPEN_UPLOADS as usize);
    assert!(app.app.blob_keys(s.org()).await.unwrap().is_empty(), "the expired upload's part was deleted");
    assert_eq!(create(&app, &s.access, 1000, &meta).await.status().as_u16(), 201, "room again");
}

#[tokio::test]
async fn uploads_are_per_organization_and_bad_input_stores_nothing() {
    let app = TestApp::spawn().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let eve = app.sign_up("eve@example.com", "Evil").await;
    let location = create_csv(&app, &s, 100).await;
    // Another organization finds nothing, whatever it tries.
    assert_eq!(head(&app, &eve.access, &location).await.status().as_u16(), 404);
    assert_eq!(patch(&app, &eve.access, &location, 0, b"user_id,item_id\n", None).await.status().as_u16(), 404);
    let del = app.client.delete(app.url(&location)).bearer_auth(&eve.access).header("Tus-Resumable", "1.0.0").send().await.unwrap();
    assert_eq!(del.status().as_u16(), 404);
    assert_eq!(head(&app, &s.access, &location).await.status().as_u16(), 200, "still there for its owner");
    // Without a credential: 401 before anything.
    let anon = app.client.head(app.url(&location)).header("Tus-Resumable", "1.0.0").send().await.unwrap();
    assert_eq!(anon.status().as_u16(), 401);

    let cases: Vec<(String, Option<usize>, &str)> = vec![
        (metadata(&[("filename", "a.csv")]), Some(10), "Upload-Metadata.family"),
        (metadata(&[("filename", "a.csv"), ("family", "VIDEO")]), Some(10), "Upload-Metadata.family"),
        (metadata(&[("family", "CHAT")]), Some(10), "Upload-Metadata.filename"),
        ("filename !!!".into(), Some(10), "Upload-Metadata"),
        (metadata(&[("filename", "a.csv"), ("family", "CHAT"), ("sha256", "abc")]), Some(10), "Upload-Metadata.sha256"),
        (metadata(&[("filename", "a.csv"), ("family", "CHAT")]), None, "Upload-Length"),
        (metadata(&[("filename", "a.csv"), ("family", "CHAT")]), Some(0), "Upload-Length"),
    ];
    for (meta, length, field) in cases {
        let mut req = app.client.post(app.url("/v1/uploads")).bearer_auth(&s.access).header("Tus-Resumable", "1.0.0");
        if let Some(n) = length {
            req = req.header("Upload-Length", n.to_string());
        }
        let res = req.header("Upload-Metadata", meta.clone()).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 400, "{meta}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["field"], field, "{meta}: {body}");
    }
    // Larger than the plan takes: refused at creation, before a byte is sent.
    let res = create(&app, &s.access, 10 << 30, &metadata(&[("filename", "big.csv"), ("family", "RECOMMENDATION")])).await;
    assert_eq!(res.status().as_u16(), 402);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "QUOTA_EXCEEDED");
    // A body longer than the upload: 400, nothing kept.
    let res = patch(&app, &s.access, &location, 0, &[b'x'; 101], None).await;
    assert_eq!(res.status().as_u16(), 400);
    assert_eq!(offset_of(&head(&app, &s.access, &location).await), 0);
    // A file whose SHA-256 is not the declared one is discarded at the end.
    let body = b"user_id,item_id\n1,2\n".to_vec();
    let meta = metadata(&[("filename", "x.csv"), ("family", "RECOMMENDATION"), ("sha256", &"0".repeat(64))]);
    let res = create(&app, &s.access, body.len(), &meta).await;
    let loc = res.headers()["location"].to_str().unwrap().to_owned();
    let res = patch(&app, &s.access, &loc, 0, &body, None).await;
    assert_eq!(res.status().as_u16(), 400);
    assert!(res.json::<Value>().await.unwrap()["error"]["message"].as_str().unwrap().contains("discarded"));
    assert_eq!(head(&app, &s.access, &loc).await.status().as_u16(), 404);
    let datasets = app.gql("{ datasets { edges { node { name } } } }", json!({}), Some(&s.access)).await.ok();
    assert_eq!(datasets.at("/datasets/edges"), &json!([]), "nothing was stored");
    assert!(app.app.blob_keys(s.org()).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_fault_while_joining_the_parts_keeps_the_upload_for_a_retry_and_a_stuck_one_is_retracted() {
    let app = TestApp::spawn().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let body = b"user_id,item_id\n1,2\n2,3\n3,1\n".to_vec();
    let half = body.len() / 2;
    let meta = metadata(&[("filename", "r.csv"), ("family", "RECOMMENDATION")]);

    // The first part goes missing from storage: joining fails (our fault,
    // 500), and the upload stays, its last part taken back, for a retry.
    let loc = create(&app, &s.access, body.len(), &meta).await.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(patch(&app, &s.access, &loc, 0, &body[..half], None).await.status().as_u16(), 204);
    let first = hex_of(&sha2::Sha256::digest(&body[..half]));
    app.app.blobs().delete(s.org(), &first).await.unwrap();
    let res = patch(&app, &s.access, &loc, half as u64, &body[half..], None).await;
    assert_eq!(res.status().as_u16(), 500);
    let h = head(&app, &s.access, &loc).await;
    assert_eq!((h.status().as_u16(), offset_of(&h)), (200, half as u64), "the upload is kept, ready for the last PATCH again");
    let del = app.client.delete(app.url(&loc)).bearer_auth(&s.access).header("Tus-Resumable", "1.0.0").send().await.unwrap();
    assert_eq!(del.status().as_u16(), 204);

    // An upload whose process stopped after its last byte (offset = length,
    // no version, last PATCH long ago): HEAD takes the last part back, so a
    // client resends it instead of believing it is done.
    let loc = create(&app, &s.access, body.len(), &meta).await.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(patch(&app, &s.access, &loc, 0, &body[..half], None).await.status().as_u16(), 204);
    let part = hex_of(&sha2::Sha256::digest(&body[..half]));
    let parts = json!([[part, half], [part, body.len() - half]]).to_string();
    let stale = (chrono::Utc::now() + chrono::Duration::hours(24) - chrono::Duration::minutes(11)).format("%Y-%m-%d %H:%M:%S+00:00");
    let db = Database::connect(app.db.owner_url()).await.unwrap();
    let sql = format!("UPDATE uploads SET \"offset\" = length, parts = '{parts}', expires_at = '{stale}' WHERE \"offset\" = {half}");
    db.execute_unprepared(&sql).await.unwrap();
    let h = head(&app, &s.access, &loc).await;
    assert_eq!(offset_of(&h), half as u64, "the stuck last part was taken back");
    let res = patch(&app, &s.access, &loc, half as u64, &body[half..], Some(sha256_header(&body[half..]))).await;
    assert_eq!(res.status().as_u16(), 204);
    let version = res.headers()["tenfold-dataset-version"].to_str().unwrap().to_owned();
    assert_eq!(app.wait_validated(&s.access, &version).await["status"], "READY");

    // The completed upload takes nothing more, and says why.
    let res = patch(&app, &s.access, &loc, body.len() as u64, b"", None).await;
    assert_eq!(res.status().as_u16(), 409);
    assert!(res.json::<Value>().await.unwrap()["error"]["message"].as_str().unwrap().contains("complete"));
    // A checksum header without a digest is malformed (400), not a mismatch (460).
    let loc = create(&app, &s.access, body.len(), &meta).await.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(patch(&app, &s.access, &loc, 0, &body, Some("sha256".into())).await.status().as_u16(), 400);
}
