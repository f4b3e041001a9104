//! Blob storage on a real S3-compatible server (moto) on loopback, started
//! by the test: uploads, validation reading back through S3, deletion.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Cursor, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use tenfold_config::SecretString;
use tenfold_tests::{TestApp, fixtures_dir};

struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn moto() -> Moto {
    let default = format!("{}/.cache/tenfold/tools/moto/bin/moto_server", std::env::var("HOME").unwrap());
    let bin = std::env::var("TENFOLD_MOTO_SERVER").unwrap_or(default);
    assert!(std::path::Path::new(&bin).exists(), "moto_server not found at {bin}: run scripts/test-tools");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child =
        Command::new(&bin).args(["-H", "127.0.0.1", "-p", &port.to_string()]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let moto = Moto { child, url };
    for _ in 0..200 {
        if reqwest::get(&moto.url).await.is_ok() {
            return moto;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("moto_server did not start on port {port}");
}

#[tokio::test]
async fn datasets_live_in_the_bucket_and_leave_it_on_delete() {
    let server = moto().await;
    let bucket = "tenfold-test";
    let created = reqwest::Client::new().put(format!("{}/{bucket}", server.url)).send().await.unwrap();
    assert!(created.status().is_success(), "bucket: {}", created.status());
    let endpoint = server.url.clone();
    let app = TestApp::spawn_with(move |s| {
        s.storage.s3_bucket = bucket.into();
        s.storage.s3_endpoint = endpoint;
        s.storage.s3_allow_http = true;
        s.storage.s3_access_key_id = "test".into();
        s.storage.s3_secret_access_key = SecretString::from("test");
    })
    .await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let org = s.org();

    let bytes = std::fs::read(fixtures_dir().join("mnist-5k.zip")).unwrap();
    let res = app.upload(Some(&s.access), "digits", "IMAGE_CLASSIFICATION", "mnist-5k.zip", bytes).await.ok();
    let v = app.wait_validated(&s.access, &res.str_at("/uploadDataset/id")).await;
    assert_eq!(v["status"], "READY", "{v:#}");
    assert_eq!(v["stats"]["images"], 5000);
    let keys = app.app.blob_keys(org).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert!(keys[0].starts_with(&format!("orgs/{org}/sha256/")));
    // The object is really in the bucket, as S3 lists it.
    let listing = reqwest::get(format!("{}/{bucket}?list-type=2", server.url)).await.unwrap().text().await.unwrap();
    assert!(listing.contains(&keys[0]), "{listing}");

    // A hostile upload leaves nothing in the bucket.
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file("../evil.png", zip::write::SimpleFileOptions::default()).unwrap();
    w.write_all(b"x").unwrap();
    let evil = w.finish().unwrap().into_inner();
    let res = app.upload(Some(&s.access), "evil", "IMAGE_CLASSIFICATION", "evil.zip", evil).await.ok();
    let v = app.wait_validated(&s.access, &res.str_at("/uploadDataset/id")).await;
    assert_eq!(v["status"], "INVALID");
    let mut keys = app.app.blob_keys(org).await.unwrap();
    for _ in 0..50 {
        if keys.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        keys = app.app.blob_keys(org).await.unwrap();
    }
    assert_eq!(keys.len(), 1, "{keys:?}");

    let list = app.gql("{ datasets { edges { node { id name } } } }", json!({}), Some(&s.access)).await.ok();
    for edge in list.at("/datasets/edges").as_array().unwrap() {
        app.gql("mutation($id: ID!) { deleteDataset(id: $id) }", json!({ "id": edge["node"]["id"] }), Some(&s.access)).await.ok();
    }
    assert!(app.app.blob_keys(org).await.unwrap().is_empty());
    let listing = reqwest::get(format!("{}/{bucket}?list-type=2", server.url)).await.unwrap().text().await.unwrap();
    assert!(!listing.contains("sha256"), "{listing}");
}
