//! The `tenfold` binary as an operator runs it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn tenfold() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenfold"));
    // Start from a clean environment of our own settings.
    for (key, _) in std::env::vars() {
        if key.starts_with("TENFOLD_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("TENFOLD_LOG__LEVEL", "warn");
    cmd
}

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tenfold-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn schema_prints_the_sdl() {
    let out = tenfold().arg("schema").output().unwrap();
    assert!(out.status.success());
    let sdl = String::from_utf8(out.stdout).unwrap();
    for expected in ["type Query", "signUp(input: SignUpInput!): AuthPayload!", "type Subscription", "interface Node"] {
        assert!(sdl.contains(expected), "{expected:?} missing from the SDL");
    }
}

#[test]
fn production_refuses_a_short_jwt_secret_and_introspection() {
    let dir = temp_dir();
    let db = format!("sqlite://{}?mode=rwc", dir.join("t.db").display());
    let out = tenfold()
        .args(["migrate", "status"])
        .env("TENFOLD_MODE", "production")
        .env("TENFOLD_DATABASE__URL", &db)
        .env("TENFOLD_AUTH__JWT_SECRET", "too-short")
        .env("TENFOLD_GRAPHQL__INTROSPECTION", "false")
        .env("TENFOLD_GRAPHQL__GRAPHIQL", "false")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at least 32"), "{err}");

    let out = tenfold()
        .args(["migrate", "status"])
        .env("TENFOLD_MODE", "production")
        .env("TENFOLD_DATABASE__URL", &db)
        .env("TENFOLD_AUTH__JWT_SECRET", "x".repeat(40))
        .env("TENFOLD_GRAPHQL__GRAPHIQL", "false")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("introspection"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn migrate_up_status_and_down() {
    let dir = temp_dir();
    let db = format!("sqlite://{}?mode=rwc", dir.join("t.db").display());
    let run = |args: &[&str]| {
        let out = tenfold().args(args).env("TENFOLD_DATABASE__URL", &db).env("TENFOLD_STORAGE__DATA_DIR", &dir).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let before = run(&["migrate", "status"]);
    assert!(before.contains("m20261128_000001_identity\tPending"), "{before}");
    run(&["migrate", "up"]);
    let after = run(&["migrate", "status"]);
    assert!(after.contains("m20261128_000001_identity\tApplied"), "{after}");
    assert!(after.contains("m20261128_000002_row_level_security\tApplied"), "{after}");
    run(&["migrate", "down"]);
    let down = run(&["migrate", "status"]);
    assert!(down.contains("m20261202_000010_recommendation_feedback\tPending"), "{down}");
    assert!(down.contains("m20261201_000009_endpoints\tApplied"), "{down}");
    run(&["migrate", "up"]);
    assert!(run(&["migrate", "status"]).contains("m20261202_000010_recommendation_feedback\tApplied"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn admin_set_plan_names_what_is_wrong() {
    let out = tenfold()
        .args(["admin", "set-plan", "--org", "acme", "--plan", "PRO"])
        .env("TENFOLD_STORAGE__DATA_DIR", temp_dir())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("UUID"));
    let out = tenfold()
        .args(["admin", "set-plan", "--org", &uuid::Uuid::new_v4().to_string(), "--plan", "GOLD"])
        .env("TENFOLD_STORAGE__DATA_DIR", temp_dir())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("FREE, PRO or ENTERPRISE"));
}

/// A free port on loopback (bound, read, released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn dev_serves_then_shuts_down_gracefully_on_sigterm() {
    let dir = temp_dir();
    let port = free_port();
    let mut child = tenfold()
        .args(["dev", "--port", &port.to_string(), "--data-dir", dir.to_str().unwrap()])
        .env("TENFOLD_LOG__FORMAT", "json")
        .env("TENFOLD_LOG__LEVEL", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..200 {
        if http_get(port, "/readyz").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
            up = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(up, "tenfold dev did not become ready");
    // A credential in a URL is refused, and must not reach the logs either.
    http_get(port, "/graphql?query=%7B__typename%7D&access_token=leaked-secret-value").unwrap();
    assert!(dir.join("tenfold.db").exists(), "SQLite database in the data dir");
    assert!(dir.join("jwt-secret").exists(), "a generated dev JWT secret");
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let started = std::time::Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "no exit within 20 s of SIGTERM");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(exit.success(), "exit status {exit:?}");
    let mut logs = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut logs).unwrap();
    // JSON logs: one object per line, the request id on request spans.
    let lines: Vec<serde_json::Value> = logs.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(!lines.is_empty(), "no JSON log lines: {logs}");
    assert!(logs.contains("request_id"), "request ids are logged: {logs}");
    assert!(logs.contains("\"http.route\":\"/readyz\""), "an access log line per request: {logs}");
    assert!(!logs.contains("leaked-secret-value"), "query strings never reach the logs");
    std::fs::remove_dir_all(dir).unwrap();
}
