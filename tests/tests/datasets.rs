//! Datasets through the API: upload by the GraphQL multipart spec, background
//! validation of real data, hostile files refused with nothing kept,
//! versions, deletion and tenant isolation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Cursor, Write};

use futures::StreamExt;
use serde_json::json;
use tenfold_tests::{Session, TestApp, fixtures_dir};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(name)).unwrap()
}

async fn upload_ready(app: &TestApp, s: &Session, name: &str, family: &str, file: &str, bytes: Vec<u8>) -> serde_json::Value {
    let res = app.upload(Some(&s.access), name, family, file, bytes).await.ok();
    assert_eq!(res.str_at("/uploadDataset/status"), "PENDING");
    let version = app.wait_validated(&s.access, &res.str_at("/uploadDataset/id")).await;
    assert_eq!(version["status"], "READY", "{version:#}");
    version
}

#[tokio::test]
async fn mnist_5k_is_ready_with_ten_classes() {
    let app = TestApp::spawn().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let v = upload_ready(&app, &s, "digits", "IMAGE_CLASSIFICATION", "mnist-5k.zip", fixture("mnist-5k.zip")).await;
    assert_eq!(v["stats"]["images"], 5000);
    assert_eq!(v["stats"]["classes"].as_object().unwrap().len(), 10);
    assert_eq!(v["problemCount"], 0);
    // A stratified, seeded split: 400/50/50 of each class.
    assert_eq!(v["splits"]["method"], "stratified");
    assert_eq!(
        (v["splits"]["counts"]["train"].as_u64(), v["splits"]["counts"]["val"].as_u64(), v["splits"]["counts"]["test"].as_u64()),
        (Some(4000), Some(500), Some(500))
    );
    // Thumbnails per class, re-encoded as PNG.
    let thumbs = v["preview"]["thumbnails"].as_object().unwrap();
    assert_eq!(thumbs.len(), 10);
    assert!(thumbs.values().all(|t| t.as_array().unwrap().len() == 3));
    assert!(thumbs["7"][0]["dataUrl"].as_str().unwrap().starts_with("data:image/png;base64,"));
    assert_eq!(thumbs["7"][0]["width"], 28);
}

#[tokio::test]
async fn movielens_and_chatterbot_are_ready_with_their_counts() {
    let app = TestApp::spawn().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let v = upload_ready(&app, &s, "ml-100k", "RECOMMENDATION", "ml-100k.csv", fixture("ml-100k.csv")).await;
    assert_eq!(
        (v["stats"]["users"].as_u64(), v["stats"]["items"].as_u64(), v["stats"]["interactions"].as_u64()),
        (Some(943), Some(1682), Some(100_000))
    );
    let v = upload_ready(&app, &s, "support", "CHAT", "chatterbot-en.jsonl", fixture("chatterbot-en.jsonl")).await;
    let intents = v["stats"]["intents"].as_object().unwrap();
    assert_eq!(intents.len(), 21);
    assert!(intents.contains_key("greetings") && intents.contains_key("tech support"));
    assert_eq!(v["preview"]["conversations"].as_array().unwrap().len(), 5);
    assert_eq!(v["splits"]["method"], "stratified");
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in entries {
        w.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn png() -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image::GrayImage::from_pixel(4, 4, image::Luma([7])).write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[tokio::test]
async fn a_hostile_upload_is_invalid_with_its_problem_and_its_file_is_gone() {
    let app = TestApp::spawn().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let img = png();
    let slip = zip_of(&[("cats/1.png", &img), ("dogs/1.png", &img[..]), ("../../etc/evil.png", &img)]);
    let res = app.upload(Some(&s.access), "evil", "IMAGE_CLASSIFICATION", "evil.zip", slip).await.ok();
    let v = app.wait_validated(&s.access, &res.str_at("/uploadDataset/id")).await;
    assert_eq!(v["status"], "INVALID");
    assert_eq!(v["problems"][0]["code"], "unsafe_path", "{v:#}");
    assert!(v["problems"][0]["location"].as_str().unwrap().contains("evil.png"));
    assert!(!v["problems"][0]["hint"].as_str().unwrap().is_empty());
    assert!(v["preview"].is_null() && v["splits"].is_null(), "an invalid upload keeps no content: {v:#}");
    // Nothing of it stays in storage.
    let org = s.org();
    let mut keys = app.app.blob_keys(org).await.unwrap();
    for _ in 0..50 {
        if keys.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        keys = app.app.blob_keys(org).await.unwrap();
    }
    assert!(keys.is_empty(), "blobs left: {keys:?}");
}

#[tokio::test]
async fn bad_requests_store_nothing() {
    let app = TestApp::spawn_with(|s| s.graphql.max_upload_bytes = 10_000).await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let csv = b"user_id,item_id\n1,2\n".to_vec();
    // Too large for the server's cap.
    let res = app.upload(Some(&s.access), "big", "RECOMMENDATION", "big.csv", vec![b'x'; 20_000]).await;
    assert_eq!(res.status, 413);
    // Wrong family for the file type: stored, then INVALID with a clear problem.
    let res = app.upload(Some(&s.access), "x", "IMAGE_CLASSIFICATION", "x.csv", csv.clone()).await.ok();
    let v = app.wait_validated(&s.access, &res.str_at("/uploadDataset/id")).await;
    assert_eq!(v["problems"][0]["code"], "unsupported_file_type");
    // No CSRF header: refused before reading the body.
    let operations = json!({ "query": "mutation($input: UploadDatasetInput!) { uploadDataset(input: $input) { id } }", "variables": { "input": { "name": "n", "family": "RECOMMENDATION", "file": null } } });
    let form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", json!({ "0": ["variables.input.file"] }).to_string())
        .part("0", reqwest::multipart::Part::bytes(csv.clone()).file_name("a.csv"));
    let res = app.client.post(app.url("/graphql")).bearer_auth(&s.access).multipart(form).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 400);
    // A family that does not match the existing dataset's.
    upload_ready(&app, &s, "ratings", "RECOMMENDATION", "r.csv", csv.clone()).await;
    let res = app.upload(Some(&s.access), "ratings", "CHAT", "r.jsonl", b"{}".to_vec()).await;
    assert_eq!(res.expect_code("BAD_USER_INPUT").errors()[0]["extensions"]["field"], "family");
    let list = app.gql("{ datasets { edges { node { name versions { version } } } } }", json!({}), Some(&s.access)).await.ok();
    let names: Vec<_> =
        list.at("/datasets/edges").as_array().unwrap().iter().map(|e| e["node"]["name"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names, ["x", "ratings"], "nothing stored for the refused uploads");
}

#[tokio::test]
async fn re_upload_makes_a_version_and_delete_removes_everything() {
    let app = TestApp::spawn().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let v1 = upload_ready(&app, &s, "ratings", "RECOMMENDATION", "r.csv", b"user_id,item_id,rating\n1,2,5\n".to_vec()).await;
    let v2 = upload_ready(&app, &s, "ratings", "RECOMMENDATION", "r.csv", b"user_id,item_id,rating\n1,2,5\n3,4,1\n".to_vec()).await;
    assert_eq!((v1["version"].as_i64(), v2["version"].as_i64()), (Some(1), Some(2)));
    let list = app
        .gql(
            "{ datasets(family: RECOMMENDATION) { edges { node { id versions { version status } latestVersion { version } } } } }",
            json!({}),
            Some(&s.access),
        )
        .await
        .ok();
    let node = &list.at("/datasets/edges")[0]["node"];
    assert_eq!(node["versions"].as_array().unwrap().len(), 2);
    assert_eq!(node["latestVersion"]["version"], 2);
    let id = node["id"].as_str().unwrap().to_owned();
    let org = s.org();
    assert_eq!(app.app.blob_keys(org).await.unwrap().len(), 2);
    app.gql("mutation($id: ID!) { deleteDataset(id: $id) }", json!({ "id": id }), Some(&s.access)).await.ok();
    assert!(app.app.blob_keys(org).await.unwrap().is_empty());
    app.gql("query($id: ID!) { dataset(id: $id) { id } }", json!({ "id": id }), Some(&s.access)).await.expect_code("NOT_FOUND");
}

#[tokio::test]
async fn datasets_are_per_organization_and_per_role() {
    let app = TestApp::spawn().await;
    let a = app.sign_up("ada@example.com", "Acme").await;
    let b = app.sign_up("bob@example.com", "Bob Co").await;
    let v = upload_ready(&app, &a, "ratings", "RECOMMENDATION", "r.csv", b"user_id,item_id\n1,2\n".to_vec()).await;
    let list = app.gql("{ datasets { edges { node { id } } } }", json!({}), Some(&a.access)).await.ok();
    let dataset_id = list.at("/datasets/edges")[0]["node"]["id"].as_str().unwrap().to_owned();
    // Bob sees nothing of it, by any path, and cannot delete it.
    let none = app.gql("{ datasets { edges { node { id } } } }", json!({}), Some(&b.access)).await.ok();
    assert_eq!(none.at("/datasets/edges").as_array().unwrap().len(), 0);
    app.gql("query($id: ID!) { dataset(id: $id) { id } }", json!({ "id": dataset_id }), Some(&b.access)).await.expect_code("NOT_FOUND");
    app.gql("query($id: ID!) { node(id: $id) { id } }", json!({ "id": v["id"] }), Some(&b.access)).await.expect_code("NOT_FOUND");
    app.gql("mutation($id: ID!) { deleteDataset(id: $id) }", json!({ "id": dataset_id }), Some(&b.access)).await.expect_code("NOT_FOUND");
    app.gql("query($id: ID!) { dataset(id: $id) { id } }", json!({ "id": dataset_id }), Some(&a.access)).await.ok();
    // Roles and scopes: a viewer reads but cannot upload; a read-only key likewise.
    let viewer = app.join(&a, "vic@example.com", "VIEWER").await;
    app.gql("{ datasets { edges { node { id } } } }", json!({}), Some(&viewer.access)).await.ok();
    app.upload(Some(&viewer.access), "v", "RECOMMENDATION", "r.csv", b"user_id,item_id\n1,2\n".to_vec()).await.expect_code("FORBIDDEN");
    let (_, key) = app.api_key(&a, &["datasets:read"]).await;
    app.gql("{ datasets { edges { node { id } } } }", json!({}), Some(&key)).await.ok();
    app.upload(Some(&key), "k", "RECOMMENDATION", "r.csv", b"user_id,item_id\n1,2\n".to_vec()).await.expect_code("FORBIDDEN");
    app.upload(None, "anon", "RECOMMENDATION", "r.csv", b"user_id,item_id\n1,2\n".to_vec()).await.expect_code("UNAUTHENTICATED");
}

#[tokio::test]
async fn opt_in_redaction_masks_personal_data_before_storing() {
    let app = TestApp::spawn().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let chat = concat!(
        r#"{"messages":[{"role":"user","content":"I am carol@example.org, call me on +1 415 555 0100"},{"role":"assistant","content":"Thanks Carol."}],"intent":"contact"}"#,
        "\n",
        r#"{"messages":[{"role":"user","content":"Charge card 4111 1111 1111 1111"},{"role":"assistant","content":"Done."}],"intent":"billing"}"#,
        "\n"
    );
    let input = json!({ "name": "support", "family": "CHAT", "file": null, "redact": true });
    let res = app.upload_with(Some(&s.access), input, "support.jsonl", chat.as_bytes().to_vec()).await.ok();
    let v = app.wait_validated(&s.access, &res.str_at("/uploadDataset/id")).await;
    assert_eq!(v["status"], "READY", "{v:#}");
    assert_eq!(v["redaction"], json!({ "emails": 1, "phones": 1, "cards": 1 }));
    let preview = v["preview"].to_string();
    assert!(preview.contains("[EMAIL]") && preview.contains("[PHONE]") && preview.contains("[CARD]"), "{preview}");
    for secret in ["carol@example.org", "555 0100", "4111 1111"] {
        assert!(!preview.contains(secret), "{secret} survived: {preview}");
    }
    // The stored file is the redacted one: its hash is not the original's.
    let original = tenfold_app::secrets::sha256_hex(chat);
    assert_ne!(v["id"], json!(null));
    let version = app
        .gql("query($id: ID!) { node(id: $id) { ... on DatasetVersion { sha256 } } }", json!({ "id": v["id"] }), Some(&s.access))
        .await
        .ok();
    assert_ne!(version.str_at("/node/sha256"), original);
    // Redaction is for chat data only.
    let input = json!({ "name": "ratings", "family": "RECOMMENDATION", "file": null, "redact": true });
    let res = app.upload_with(Some(&s.access), input, "r.csv", b"user_id,item_id\n1,2\n".to_vec()).await;
    assert_eq!(res.expect_code("BAD_USER_INPUT").errors()[0]["extensions"]["field"], "redact");
    // A line past the validators' cap (1 MiB) is refused before anything is
    // stored, and so is an intent table whose quoted field never ends.
    let before = app.gql("{ datasets(first: 10) { edges { node { id } } } }", json!({}), Some(&s.access)).await.ok();
    let long = format!("{}\n", "x".repeat(2 * 1024 * 1024));
    let input = json!({ "name": "huge", "family": "CHAT", "file": null, "redact": true });
    let res = app.upload_with(Some(&s.access), input, "huge.jsonl", long.into_bytes()).await;
    let err = res.expect_code("BAD_USER_INPUT");
    assert!(err.first_message().contains("line 1 is longer than 1048576 bytes"), "{}", err.first_message());
    let endless = format!("text,intent\n\"{}", "call me at ada@example.com\n".repeat(50_000));
    let input = json!({ "name": "endless", "family": "CHAT", "file": null, "redact": true });
    let res = app.upload_with(Some(&s.access), input, "endless.csv", endless.into_bytes()).await;
    let err = res.expect_code("BAD_USER_INPUT");
    assert!(err.first_message().contains("longer than 1048576 bytes"), "{:#}", err.body);
    let after = app.gql("{ datasets(first: 10) { edges { node { id } } } }", json!({}), Some(&s.access)).await.ok();
    assert_eq!(before.at("/datasets/edges"), after.at("/datasets/edges"), "nothing was stored");
}

fn zip_with(build: impl FnOnce(&mut zip::ZipWriter<Cursor<Vec<u8>>>)) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    build(&mut w);
    w.finish().unwrap().into_inner()
}

fn add(w: &mut zip::ZipWriter<Cursor<Vec<u8>>>, name: &str, data: &[u8]) {
    w.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
    w.write_all(data).unwrap();
}

fn jpeg() -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image::RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3])).write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// A 1×1 PNG whose header claims 100000×100000 pixels (CRC fixed up).
fn png_bomb() -> Vec<u8> {
    let mut bytes = png();
    bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    bytes
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[tokio::test]
async fn every_hostile_input_is_refused_with_its_own_error_and_nothing_kept() {
    let app = TestApp::spawn().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let img = png();
    let two = |w: &mut zip::ZipWriter<Cursor<Vec<u8>>>| {
        add(w, "cats/1.png", &img);
        add(w, "dogs/1.png", &png_shade(9));
    };
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "IMAGE_CLASSIFICATION",
            "slip.zip",
            zip_with(|w| {
                two(w);
                add(w, "../../evil.png", &img)
            }),
            "unsafe_path",
        ),
        (
            "IMAGE_CLASSIFICATION",
            "backslash.zip",
            zip_with(|w| {
                two(w);
                add(w, "..\\evil.png", &img)
            }),
            "unsafe_path",
        ),
        (
            "IMAGE_CLASSIFICATION",
            "drive.zip",
            zip_with(|w| {
                two(w);
                add(w, "C:\\win\\evil.png", &img)
            }),
            "unsafe_path",
        ),
        (
            "IMAGE_CLASSIFICATION",
            "link.zip",
            zip_with(|w| {
                two(w);
                w.add_symlink("cats/l.png", "/etc/passwd", zip::write::SimpleFileOptions::default()).unwrap()
            }),
            "symlink",
        ),
        (
            "IMAGE_CLASSIFICATION",
            "bomb.zip",
            zip_with(|w| {
                two(w);
                add(w, "cats/bomb.png", &vec![0u8; 8 << 20])
            }),
            "compression_ratio",
        ),
        (
            "IMAGE_CLASSIFICATION",
            "header-bomb.zip",
            zip_with(|w| {
                two(w);
                add(w, "cats/huge.png", &png_bomb())
            }),
            "image_too_large",
        ),
        (
            "IMAGE_CLASSIFICATION",
            "disguised.zip",
            zip_with(|w| {
                two(w);
                add(w, "cats/x.png", &jpeg())
            }),
            "extension_mismatch",
        ),
        (
            "IMAGE_CLASSIFICATION",
            "html.zip",
            zip_with(|w| {
                two(w);
                add(w, "cats/x.png", b"<html><script>alert(1)</script>")
            }),
            "not_an_image",
        ),
        (
            "IMAGE_CLASSIFICATION",
            "empty-class.zip",
            zip_with(|w| {
                two(w);
                w.add_directory("birds/", zip::write::SimpleFileOptions::default()).unwrap()
            }),
            "empty_class",
        ),
        ("IMAGE_CLASSIFICATION", "one-class.zip", zip_with(|w| add(w, "cats/1.png", &img)), "single_class"),
        ("IMAGE_CLASSIFICATION", "not-a-zip.zip", b"PK but not really".to_vec(), "not_a_zip"),
        ("RECOMMENDATION", "latin1.csv", b"user_id,item_id\n1,caf\xe9\n".to_vec(), "not_utf8"),
        ("RECOMMENDATION", "long.csv", format!("user_id,item_id\n1,{}\n", "9".repeat(1_100_000)).into_bytes(), "line_too_long"),
        ("RECOMMENDATION", "ratings.csv", b"user_id,item_id,rating\n1,2,five\n".to_vec(), "rating_not_a_number"),
        ("CHAT", "deep.jsonl", format!("{}{}\n", "[".repeat(5000), "]".repeat(5000)).into_bytes(), "json_too_deep"),
        (
            "CHAT",
            "roles.jsonl",
            b"{\"messages\":[{\"role\":\"hacker\",\"content\":\"x\"},{\"role\":\"assistant\",\"content\":\"y\"}]}\n".to_vec(),
            "unknown_role",
        ),
    ];
    for (i, (family, file, bytes, code)) in cases.into_iter().enumerate() {
        let res = app.upload(Some(&s.access), &format!("hostile-{i}"), family, file, bytes).await.ok();
        let v = app.wait_validated(&s.access, &res.str_at("/uploadDataset/id")).await;
        assert_eq!(v["status"], "INVALID", "{file}: {v:#}");
        let codes: Vec<&str> = v["problems"].as_array().unwrap().iter().map(|p| p["code"].as_str().unwrap()).collect();
        assert!(codes.contains(&code), "{file}: expected {code}, got {codes:?}");
        assert!(v["preview"].is_null(), "{file}: no content kept");
    }
    // Duplicates are reported, not refused.
    let dup = zip_with(|w| {
        two(w);
        add(w, "dogs/copy.png", &img)
    });
    let res = app.upload(Some(&s.access), "dups", "IMAGE_CLASSIFICATION", "dups.zip", dup).await.ok();
    let v = app.wait_validated(&s.access, &res.str_at("/uploadDataset/id")).await;
    assert_eq!(v["status"], "READY");
    assert_eq!(v["warnings"][0]["code"], "duplicate_image");
    // Of all those uploads, only the valid one's file remains.
    let org = s.org();
    let mut keys = app.app.blob_keys(org).await.unwrap();
    for _ in 0..100 {
        if keys.len() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        keys = app.app.blob_keys(org).await.unwrap();
    }
    assert_eq!(keys.len(), 1, "{keys:?}");
}

fn png_shade(shade: u8) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image::GrayImage::from_pixel(4, 4, image::Luma([shade])).write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A multipart upload whose body never finishes: only a server that
/// answers before reading the body can answer it.
async fn stalled_upload(app: &TestApp, bearer: Option<&str>, declared: u64) -> (u16, serde_json::Value) {
    let operations = json!({ "query": "mutation($input: UploadDatasetInput!) { uploadDataset(input: $input) { id } }",
        "variables": { "input": { "name": "n", "family": "RECOMMENDATION", "file": null } } });
    let head = format!(
        "--XyZ\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{operations}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{{\"0\": [\"variables.input.file\"]}}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"0\"; filename=\"a.csv\"\r\n\r\nuser_id,item_id\r\n"
    );
    let first = futures::stream::once(async move { Ok::<_, std::io::Error>(head.into_bytes()) });
    let body = reqwest::Body::wrap_stream(first.chain(futures::stream::pending()));
    let mut req = app
        .client
        .post(app.url("/graphql"))
        .header("Content-Type", "multipart/form-data; boundary=XyZ")
        .header("Apollo-Require-Preflight", "true")
        .header("Content-Length", declared.to_string())
        .body(body);
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    let res = tokio::time::timeout(std::time::Duration::from_secs(5), req.send())
        .await
        .expect("the server answered without waiting for the body")
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or_default())
}

#[tokio::test]
async fn uploads_are_refused_before_the_body_is_read() {
    // The server takes bodies of up to 10 GiB, so the plan's limit decides.
    let app = TestApp::spawn_with(|s| s.graphql.max_upload_bytes = 10 * 1024 * 1024 * 1024).await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    let viewer = app.join(&owner, "vi@example.com", "VIEWER").await;

    let (status, body) = stalled_upload(&app, None, 10_000_000).await;
    assert_eq!((status, body["errors"][0]["extensions"]["code"].as_str()), (401, Some("UNAUTHENTICATED")), "{body}");
    let (status, body) = stalled_upload(&app, Some(&viewer.access), 10_000_000).await;
    assert_eq!((status, body["errors"][0]["extensions"]["code"].as_str()), (403, Some("FORBIDDEN")), "{body}");
    // Declared larger than the FREE plan's 1 GiB upload limit.
    let (status, body) = stalled_upload(&app, Some(&owner.access), 2 * 1024 * 1024 * 1024).await;
    assert_eq!((status, body["errors"][0]["extensions"]["code"].as_str()), (402, Some("QUOTA_EXCEEDED")), "{body}");
    // Nothing reached storage or the staging folder.
    let files: Vec<_> = walk(&app.settings.storage.data_dir);
    assert!(files.iter().all(|f| !f.to_string_lossy().contains("sha256")), "{files:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Blobs are shared by content: an INVALID upload's file is deleted after
/// validation while the same bytes may be arriving in a valid upload. The
/// deletion and the new use are ordered by the blob's lock, so the valid
/// upload always finds its file (this raced before: "blob not found").
#[tokio::test]
async fn deleting_an_invalid_upload_never_takes_a_new_upload_of_the_same_bytes() {
    let app = TestApp::spawn().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    for round in 0..8 {
        let csv = format!("user_id,item_id\n{round},2\n").into_bytes();
        // Wrong family for a CSV: INVALID, and its blob is deleted...
        let bad = app.upload(Some(&s.access), &format!("bad-{round}"), "IMAGE_CLASSIFICATION", "x.csv", csv.clone()).await.ok();
        let bad_id = bad.str_at("/uploadDataset/id");
        // ...while the same bytes arrive as a valid upload.
        let good = app.upload(Some(&s.access), &format!("good-{round}"), "RECOMMENDATION", "r.csv", csv).await.ok();
        assert_eq!(app.wait_validated(&s.access, &bad_id).await["status"], "INVALID");
        let v = app.wait_validated(&s.access, &good.str_at("/uploadDataset/id")).await;
        assert_eq!(v["status"], "READY", "round {round}: {v:#}");
    }
}
