//! Row-level security on PostgreSQL (SECURITY-TESTS §4, M1–M6). These run
//! in the PostgreSQL pass of `.ci/run` (`--run-ignored all`); SQLite has no
//! RLS, and there the app's own scoping is covered by the authorization
//! matrix and the isolation tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use migration::rls::{GLOBAL_TABLES, all_tenant_tables};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use tenfold_tests::TestApp;

async fn seeded() -> (TestApp, DatabaseConnection, String, String) {
    let app = TestApp::spawn().await;
    assert!(app.db.is_postgres(), "set TENFOLD_TEST_DATABASE_URL to run the row-level security tests");
    let a = app.sign_up("ada@example.com", "Acme").await;
    let b = app.sign_up("bob@example.com", "Bob Co").await;
    app.api_key(&a, &["org:read"]).await;
    app.api_key(&b, &["org:read"]).await;
    let conn = Database::connect(app.db.app_url()).await.unwrap();
    let org_a = raw_org(&conn, "ada@example.com").await;
    let org_b = raw_org(&conn, "bob@example.com").await;
    (app, conn, org_a, org_b)
}

/// Finds a user's organization id through the global users table and a
/// user-scoped transaction.
async fn raw_org(conn: &DatabaseConnection, email: &str) -> String {
    let tx = conn.begin().await.unwrap();
    let user = tx
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT id::text AS id FROM users WHERE email = $1",
            [email.into()],
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<String>("", "id")
        .unwrap();
    tx.execute_raw(Statement::from_sql_and_values(DbBackend::Postgres, "SELECT set_config('app.user_id', $1, true)", [user.into()]))
        .await
        .unwrap();
    let org =
        tx.query_one_raw(Statement::from_string(DbBackend::Postgres, "SELECT org_id::text AS id FROM memberships")).await.unwrap().unwrap();
    org.try_get::<String>("", "id").unwrap()
}

async fn count(conn: &impl ConnectionTrait, table: &str) -> i64 {
    let row = conn
        .query_one_raw(Statement::from_string(DbBackend::Postgres, format!("SELECT count(*) AS n FROM {table}")))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

#[tokio::test]
#[ignore = "needs PostgreSQL: runs in the PostgreSQL pass of .ci/run"]
async fn every_tenant_table_has_forced_rls_with_a_policy() {
    let (_app, conn, _, _) = seeded().await;
    let rows = conn
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT c.relname::text AS t, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced, \
             (SELECT count(*) FROM pg_policies p WHERE p.tablename = c.relname AND p.qual IS NOT NULL AND p.with_check IS NOT NULL) AS policies \
             FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid \
             WHERE c.relkind = 'r' AND a.attname = 'org_id' AND c.relnamespace = 'public'::regnamespace",
        ))
        .await
        .unwrap();
    let mut seen = Vec::new();
    for r in rows {
        let table: String = r.try_get("", "t").unwrap();
        seen.push(table.clone());
        if GLOBAL_TABLES.iter().any(|(t, _)| *t == table) {
            continue;
        }
        assert!(
            all_tenant_tables().iter().any(|(t, _, _)| *t == table),
            "{table} has org_id but is in neither TENANT_TABLES nor GLOBAL_TABLES"
        );
        assert!(r.try_get::<bool>("", "rls").unwrap(), "{table}: RLS not enabled");
        assert!(r.try_get::<bool>("", "forced").unwrap(), "{table}: RLS not forced");
        assert!(r.try_get::<i64>("", "policies").unwrap() >= 1, "{table}: no policy with USING and WITH CHECK");
    }
    // organizations is keyed by `id`, not `org_id`.
    for (table, _, _) in all_tenant_tables().iter().filter(|(t, _, _)| *t != "organizations") {
        assert!(seen.contains(&(*table).to_owned()), "{table} has no org_id column?");
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL: runs in the PostgreSQL pass of .ci/run"]
async fn every_table_is_classified_as_tenant_or_global() {
    let (_app, conn, _, _) = seeded().await;
    let rows = conn
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT tablename::text AS t, rowsecurity AS rls, \
             (SELECT relforcerowsecurity FROM pg_class WHERE oid = ('public.' || tablename)::regclass) AS forced \
             FROM pg_tables WHERE schemaname = 'public'",
        ))
        .await
        .unwrap();
    assert!(!rows.is_empty());
    for r in rows {
        let table: String = r.try_get("", "t").unwrap();
        let tenant = all_tenant_tables().iter().any(|(t, _, _)| *t == table);
        let global = GLOBAL_TABLES.iter().any(|(t, _)| *t == table);
        assert!(tenant ^ global, "{table} must be in exactly one of TENANT_TABLES and GLOBAL_TABLES");
        if tenant {
            assert!(
                r.try_get::<bool>("", "rls").unwrap() && r.try_get::<bool>("", "forced").unwrap(),
                "{table}: RLS must be enabled and forced"
            );
        }
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL: runs in the PostgreSQL pass of .ci/run"]
async fn the_app_role_is_neither_superuser_nor_bypassrls() {
    let (_app, conn, _, _) = seeded().await;
    let row = conn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT rolsuper, rolbypassrls, current_user::text AS u FROM pg_roles WHERE rolname = current_user",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<String>("", "u").unwrap(), "tenfold_app");
    assert!(!row.try_get::<bool>("", "rolsuper").unwrap());
    assert!(!row.try_get::<bool>("", "rolbypassrls").unwrap());
}

#[tokio::test]
#[ignore = "needs PostgreSQL: runs in the PostgreSQL pass of .ci/run"]
async fn without_a_tenant_every_tenant_table_is_empty() {
    let (_app, conn, org_a, _) = seeded().await;
    for (table, _, _) in all_tenant_tables() {
        assert_eq!(count(&conn, table).await, 0, "{table} leaked rows with no tenant set");
    }
    // Control: with a tenant set the same queries do see rows.
    let tx = conn.begin().await.unwrap();
    tx.execute_raw(Statement::from_sql_and_values(DbBackend::Postgres, "SELECT set_config('app.org_id', $1, true)", [org_a.into()]))
        .await
        .unwrap();
    for table in ["organizations", "memberships", "api_keys", "audit_events"] {
        assert!(count(&tx, table).await > 0, "{table} should have rows for the tenant");
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL: runs in the PostgreSQL pass of .ci/run"]
async fn a_tenant_sees_and_writes_only_its_own_rows() {
    let (_app, conn, org_a, org_b) = seeded().await;
    let tx = conn.begin().await.unwrap();
    tx.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT set_config('app.org_id', $1, true)",
        [org_a.clone().into()],
    ))
    .await
    .unwrap();
    for (table, _, _) in all_tenant_tables().iter().filter(|(t, _, _)| *t != "organizations") {
        let foreign = tx
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("SELECT count(*) AS n FROM {table} WHERE org_id <> '{org_a}'::uuid"),
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<i64>("", "n")
            .unwrap();
        assert_eq!(foreign, 0, "{table}: another tenant's rows are visible");
    }
    let updated = tx
        .execute_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("UPDATE api_keys SET name = 'pwned' WHERE org_id = '{org_b}'::uuid"),
        ))
        .await
        .unwrap();
    assert_eq!(updated.rows_affected(), 0);
    let insert = tx
        .execute_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("INSERT INTO audit_events (org_id, id, action, details, created_at) VALUES ('{org_b}'::uuid, gen_random_uuid(), 'x', '{{}}', now())"),
        ))
        .await;
    assert!(insert.is_err(), "writing a row of another tenant must fail the policy check");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: runs in the PostgreSQL pass of .ci/run"]
async fn the_tenant_setting_never_outlives_its_transaction() {
    let (_app, _conn, org_a, _) = seeded().await;
    let app_url = _app.db.app_url().to_owned();
    // One connection, so the second transaction reuses the first's session.
    let mut opts = sea_orm::ConnectOptions::new(app_url);
    opts.max_connections(1).min_connections(1);
    let single = Database::connect(opts).await.unwrap();
    let tx = single.begin().await.unwrap();
    tx.execute_raw(Statement::from_sql_and_values(DbBackend::Postgres, "SELECT set_config('app.org_id', $1, true)", [org_a.into()]))
        .await
        .unwrap();
    assert!(count(&tx, "api_keys").await > 0);
    tx.rollback().await.unwrap();
    let row = single
        .query_one_raw(Statement::from_string(DbBackend::Postgres, "SELECT coalesce(current_setting('app.org_id', true), '') AS v"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<String>("", "v").unwrap(), "");
    assert_eq!(count(&single, "api_keys").await, 0);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: runs in the PostgreSQL pass of .ci/run"]
async fn production_refuses_a_runtime_role_that_bypasses_row_level_security() {
    use tenfold_config::{Mode, SecretString};
    let app = TestApp::spawn().await;
    assert!(app.db.is_postgres(), "set TENFOLD_TEST_DATABASE_URL to run the row-level security tests");
    let with = |url: &str, mode: Mode| {
        let mut settings = app.settings.clone();
        settings.database.url = SecretString::from(url.to_owned());
        settings.mode = mode;
        settings
    };
    // The owner here is the server's superuser: production will not run on it.
    let err = tenfold_cli::boot::build_app(with(app.db.owner_url(), Mode::Production)).await.err().expect("refused");
    let message = format!("{err:#}");
    assert!(message.contains("is a superuser: row-level security would not apply"), "{message}");
    assert!(message.contains("tenfold_app"), "the fix is named: {message}");
    // The restricted role starts; outside production the superuser only warns.
    tenfold_cli::boot::build_app(with(app.db.app_url(), Mode::Production)).await.unwrap();
    tenfold_cli::boot::build_app(with(app.db.owner_url(), Mode::Test)).await.unwrap();
    // A role with BYPASSRLS is refused as well.
    let owner = Database::connect(app.db.owner_url()).await.unwrap();
    // (Roles are cluster-wide: an earlier run may have made it.)
    let password = tenfold_tests::APP_ROLE_PASSWORD;
    owner.execute_unprepared(&format!("CREATE ROLE tenfold_bypass_probe LOGIN BYPASSRLS PASSWORD '{password}'")).await.ok();
    let url = app.db.app_url().replacen("tenfold_app:", "tenfold_bypass_probe:", 1);
    assert_ne!(url, app.db.app_url());
    let err = tenfold_cli::boot::build_app(with(&url, Mode::Production)).await.err().expect("refused");
    assert!(format!("{err:#}").contains("has BYPASSRLS"), "{err:#}");
}
