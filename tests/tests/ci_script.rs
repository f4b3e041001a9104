//! `.ci/run` must not pass without the second pass: with `CI=true` and
//! PostgreSQL or Redis not answering, it fails at once, before any test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn ci_run(port_var: &str) -> std::process::Output {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // Port 1 on loopback: nothing listens there.
    Command::new("bash").arg(".ci/run").current_dir(root).env("CI", "true").env(port_var, "1").output().unwrap()
}

#[test]
fn ci_fails_when_postgresql_or_redis_is_missing() {
    for var in ["TENFOLD_CI_PG_PORT", "TENFOLD_CI_REDIS_PORT"] {
        let out = ci_run(var);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{var}: {stderr}");
        assert!(stderr.contains("does not answer; CI needs both for the second pass"), "{var}: {stderr}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("1/4"), "{var}: it stopped before the first pass");
    }
}
