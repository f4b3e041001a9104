//! The dashboard from the server's side: its built files at `/` with the
//! client router's pages falling back to `index.html`, nothing outside its
//! folder reachable, the API's own 404s untouched; and the schema the
//! dashboard's typed operations are generated from is the server's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tenfold_tests::TestApp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A GET with the path exactly as given, over a bare connection.
async fn raw_get(address: &str, path: &str) -> String {
    let host = address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

#[test]
fn the_committed_schema_is_the_one_the_server_serves() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../web/schema.graphql")).unwrap();
    let served = tenfold_graphql::sdl();
    assert!(
        committed == served,
        "web/schema.graphql is stale: run `cargo run --bin tenfold -- schema > web/schema.graphql && (cd web && npm run codegen)`"
    );
}

#[tokio::test]
async fn built_files_and_pages_are_served_and_nothing_else() {
    let dist = tempfile::tempdir().unwrap();
    std::fs::create_dir(dist.path().join("assets")).unwrap();
    std::fs::write(dist.path().join("index.html"), "<!doctype html><div id=root></div>").unwrap();
    std::fs::write(dist.path().join("assets/index-abc123.js"), "console.log(1)").unwrap();
    // A secret beside the folder, which no path may reach.
    let outside = dist.path().parent().unwrap().join(format!("{}-private.txt", dist.path().file_name().unwrap().to_string_lossy()));
    std::fs::write(&outside, "TOP-SECRET-CONTENT").unwrap();
    let dir = dist.path().to_string_lossy().into_owned();
    let app = TestApp::spawn_with(|s| s.server.dashboard_dir = dir).await;
    let get = |path: &str| app.client.get(format!("{}{path}", app.address)).send();

    let root = get("/").await.unwrap();
    assert_eq!(root.status(), 200);
    assert!(root.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert_eq!(root.headers()["cache-control"], "no-cache");
    let csp = root.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(root.headers()["x-content-type-options"], "nosniff");
    assert!(root.text().await.unwrap().contains("id=root"));
    // A page of the client router is index.html.
    let page = get("/datasets/abc").await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("id=root"));
    // A built asset: its type, cached for good (its name is its content).
    let js = get("/assets/index-abc123.js").await.unwrap();
    assert_eq!(js.status(), 200);
    assert!(js.headers()["content-type"].to_str().unwrap().contains("javascript"));
    assert!(js.headers()["cache-control"].to_str().unwrap().contains("immutable"));

    // Missing files, hidden names, unknown API paths: the API's 404.
    for path in ["/assets/missing.js", "/.env", "/v1/no-such-route"] {
        let res = get(path).await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "NOT_FOUND", "{path}: {body}");
    }
    // Escapes, sent as written (an HTTP client would resolve the dots
    // itself): never the file beside the folder.
    let name = outside.file_name().unwrap().to_string_lossy().into_owned();
    for path in
        [format!("/../{name}"), format!("/%2e%2e/{name}"), format!("/assets/..%2f..%2f{name}"), format!("/assets/%2e%2e/%2e%2e/{name}")]
    {
        let answer = raw_get(&app.address, &path).await;
        assert!(answer.starts_with("HTTP/1.1 404") || answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
        assert!(!answer.contains("TOP-SECRET-CONTENT"), "{path}: {answer}");
    }
    // Only reads: a POST to a page path is not a page.
    let post = app.client.post(format!("{}/datasets", app.address)).send().await.unwrap();
    assert_eq!(post.status(), 404);
    std::fs::remove_file(outside).unwrap();
}
