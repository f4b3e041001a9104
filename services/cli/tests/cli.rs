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
    assert!(down.contains("m20261128_000002_row_level_security\tPending"), "{down}");
    assert!(down.contains("m20261128_000001_identity\tApplied"), "{down}");
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
