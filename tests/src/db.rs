//! A fresh database per test: a SQLite file, or a new PostgreSQL database
//! that the app reaches as the restricted `tenfold_app` role (so row-level
//! security applies to it, as in production).

use sea_orm::{ConnectionTrait, Database};

pub const APP_ROLE_PASSWORD: &str = "tenfold_app_test";

pub enum TestDb {
    Sqlite { dir: std::path::PathBuf, url: String },
    Postgres { admin_url: String, name: String, owner_url: String, app_url: String, dir: std::path::PathBuf },
}

/// Replaces the database name in a PostgreSQL URL.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{}", &base[..path_start], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Replaces the user (and password) in a PostgreSQL URL.
fn with_user(url: &str, user: &str, password: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[scheme_end..];
    let host_part = rest.split_once('@').map_or(rest, |(_, h)| h);
    format!("{}{user}:{password}@{host_part}", &url[..scheme_end])
}

impl TestDb {
    pub async fn create() -> Self {
        match std::env::var("TENFOLD_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) {
            Some(admin_url) => Self::create_postgres(admin_url).await,
            None => {
                let dir = std::env::temp_dir().join(format!("tenfold-test-{}", uuid::Uuid::new_v4().simple()));
                std::fs::create_dir_all(&dir).unwrap();
                let url = format!("sqlite://{}?mode=rwc", dir.join("tenfold.db").display());
                TestDb::Sqlite { dir, url }
            }
        }
    }

    async fn create_postgres(admin_url: String) -> Self {
        let name = format!("tenfold_t_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(&admin_url).await.expect("connect to the PostgreSQL admin URL");
        admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await.unwrap();
        // Roles are cluster-wide and tests run in parallel: create the app
        // role up front, tolerating a concurrent creator.
        let create_role = format!(
            "DO $$ BEGIN CREATE ROLE tenfold_app LOGIN PASSWORD '{APP_ROLE_PASSWORD}' NOSUPERUSER NOBYPASSRLS; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        );
        admin.execute_unprepared(&create_role).await.unwrap();
        admin.execute_unprepared(&format!("ALTER ROLE tenfold_app LOGIN PASSWORD '{APP_ROLE_PASSWORD}'")).await.ok();
        admin.close().await.ok();
        let owner_url = with_database(&admin_url, &name);
        let app_url = with_user(&owner_url, "tenfold_app", APP_ROLE_PASSWORD);
        let dir = std::env::temp_dir().join(format!("tenfold-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        TestDb::Postgres { admin_url, name, owner_url, app_url, dir }
    }

    /// A folder of this test's own for files (blobs, outbox).
    pub fn files_dir(&self) -> std::path::PathBuf {
        match self {
            TestDb::Sqlite { dir, .. } | TestDb::Postgres { dir, .. } => dir.join("files"),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, TestDb::Postgres { .. })
    }

    /// The URL the application connects with.
    pub fn app_url(&self) -> &str {
        match self {
            TestDb::Sqlite { url, .. } => url,
            TestDb::Postgres { app_url, .. } => app_url,
        }
    }

    /// The URL migrations run with (the table owner).
    pub fn owner_url(&self) -> &str {
        match self {
            TestDb::Sqlite { url, .. } => url,
            TestDb::Postgres { owner_url, .. } => owner_url,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match self {
            TestDb::Sqlite { dir, .. } => {
                let _ = std::fs::remove_dir_all(dir);
            }
            TestDb::Postgres { admin_url, name, dir, .. } => {
                let _ = std::fs::remove_dir_all(dir.as_path());
                // Drop runs outside any async context we can rely on: use a
                // thread with its own runtime. FORCE ends the app's connections.
                let (admin_url, name) = (admin_url.clone(), name.clone());
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                    rt.block_on(async {
                        let admin = Database::connect(&admin_url).await.ok()?;
                        admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await.ok()?;
                        admin.close().await.ok()
                    })
                })
                .join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_rewriting() {
        assert_eq!(with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"), "postgres://postgres@127.0.0.1:5432/x");
        assert_eq!(with_database("postgres://u:p@h/db?sslmode=disable", "x"), "postgres://u:p@h/x?sslmode=disable");
        assert_eq!(with_user("postgres://postgres@h:5432/x", "a", "b"), "postgres://a:b@h:5432/x");
        assert_eq!(with_user("postgres://u:p@h/x", "a", "b"), "postgres://a:b@h/x");
    }
}
