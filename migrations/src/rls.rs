//! Row-level security on PostgreSQL: the second lock behind the app's own
//! tenant scoping. The app sets `app.org_id` (and `app.user_id`,
//! `app.api_key_lookup` for the two cross-tenant lookups) with
//! `set_config(…, true)`, which lasts only for the current transaction, so a
//! pooled connection never carries one request's tenant into the next.

/// The restricted role the application connects as in production: not the
/// table owner, not a superuser, no BYPASSRLS.
pub const APP_ROLE: &str = "tenfold_app";

/// Every tenant-owned table and its policy (`USING`, `WITH CHECK`).
pub const TENANT_TABLES: &[(&str, &str, &str)] = &[
    (
        "organizations",
        // A user sees the organizations they belong to (for `me`).
        "id = tenfold_org() OR id IN (SELECT m.org_id FROM memberships m WHERE m.user_id = tenfold_user())",
        "id = tenfold_org()",
    ),
    ("memberships", "org_id = tenfold_org() OR user_id = tenfold_user()", "org_id = tenfold_org()"),
    ("invitations", "org_id = tenfold_org()", "org_id = tenfold_org()"),
    // An API key is found by its public lookup id before its tenant is known.
    ("api_keys", "org_id = tenfold_org() OR lookup_id = tenfold_api_key_lookup()", "org_id = tenfold_org()"),
    ("audit_events", "org_id = tenfold_org()", "org_id = tenfold_org()"),
];

/// Tenant tables added by the datasets migration.
pub const DATASET_TABLES: &[(&str, &str, &str)] = &[
    ("datasets", "org_id = tenfold_org()", "org_id = tenfold_org()"),
    ("dataset_versions", "org_id = tenfold_org()", "org_id = tenfold_org()"),
];

/// Tenant tables added by the jobs migration.
pub const JOB_TABLES: &[(&str, &str, &str)] = &[
    ("jobs", "org_id = tenfold_org()", "org_id = tenfold_org()"),
    ("job_events", "org_id = tenfold_org()", "org_id = tenfold_org()"),
    ("job_checkpoints", "org_id = tenfold_org()", "org_id = tenfold_org()"),
    ("model_versions", "org_id = tenfold_org()", "org_id = tenfold_org()"),
    ("usage_records", "org_id = tenfold_org()", "org_id = tenfold_org()"),
];

/// Tenant tables added by the webhooks migration.
pub const WEBHOOK_TABLES: &[(&str, &str, &str)] = &[
    ("webhooks", "org_id = tenfold_org()", "org_id = tenfold_org()"),
    ("webhook_deliveries", "org_id = tenfold_org()", "org_id = tenfold_org()"),
];

/// Tenant tables added by the uploads migration.
pub const UPLOAD_TABLES: &[(&str, &str, &str)] = &[("uploads", "org_id = tenfold_org()", "org_id = tenfold_org()")];

/// Tenant tables added by the model registry migration (which also
/// rebuilds `model_versions`, of `JOB_TABLES`).
pub const REGISTRY_TABLES: &[(&str, &str, &str)] = &[
    ("models", "org_id = tenfold_org()", "org_id = tenfold_org()"),
    ("model_aliases", "org_id = tenfold_org()", "org_id = tenfold_org()"),
];

/// Tenant tables added by the endpoints migration.
pub const ENDPOINT_TABLES: &[(&str, &str, &str)] = &[
    ("endpoints", "org_id = tenfold_org()", "org_id = tenfold_org()"),
    // A customer key is found by its public lookup id before its tenant is known.
    ("customer_keys", "org_id = tenfold_org() OR lookup_id = tenfold_api_key_lookup()", "org_id = tenfold_org()"),
    ("usage_events", "org_id = tenfold_org()", "org_id = tenfold_org()"),
    ("usage_rollups", "org_id = tenfold_org()", "org_id = tenfold_org()"),
];

/// Tenant tables added by the recommendation feedback migration.
pub const FEEDBACK_TABLES: &[(&str, &str, &str)] = &[("recommendation_events", "org_id = tenfold_org()", "org_id = tenfold_org()")];

/// Every tenant table of every migration, for the catalog tests.
pub fn all_tenant_tables() -> Vec<(&'static str, &'static str, &'static str)> {
    TENANT_TABLES
        .iter()
        .chain(DATASET_TABLES)
        .chain(JOB_TABLES)
        .chain(WEBHOOK_TABLES)
        .chain(UPLOAD_TABLES)
        .chain(REGISTRY_TABLES)
        .chain(ENDPOINT_TABLES)
        .chain(FEEDBACK_TABLES)
        .copied()
        .collect()
}

/// Tables deliberately outside row-level security, and why. Every table
/// must be in this list or in `TENANT_TABLES` (a test checks it).
pub const GLOBAL_TABLES: &[(&str, &str)] = &[
    ("users", "a person exists across organizations; found by email at sign-in before any tenant is known"),
    (
        "refresh_tokens",
        "a sign-in belongs to a user; found by the hash of its secret before the tenant is known (org_id names the session's organization, not an owner)",
    ),
    ("email_tokens", "verification and reset links belong to a user, not to an organization"),
    (
        "job_dispatch",
        "the scheduling index workers share across organizations: job and organization ids, priority, device and lease times; no customer data (the job row, under RLS, holds that)",
    ),
    ("job_fair_share", "when each organization last got a worker slot, for fair share across organizations; ids and a time only"),
    (
        "webhook_outbox",
        "which webhook deliveries are due, across organizations, for the deliverer; delivery and organization ids and a time only",
    ),
    (
        "upload_expiry",
        "when each resumable upload expires, across organizations, for the sweeper; upload and organization ids and a time only",
    ),
    ("workers", "the worker processes alive (device, slots, heartbeat); they belong to the platform, not to a tenant"),
    ("seaql_migrations", "the migrator's own bookkeeping; the app role has no access to it"),
];

/// SQL that (re)creates the helper functions and policies for `tables`.
pub fn enable_sql(tables: &[(&str, &str, &str)]) -> String {
    let mut sql = String::from(
        r#"
CREATE OR REPLACE FUNCTION tenfold_org() RETURNS uuid LANGUAGE sql STABLE
  AS $$ SELECT NULLIF(current_setting('app.org_id', true), '')::uuid $$;
CREATE OR REPLACE FUNCTION tenfold_user() RETURNS uuid LANGUAGE sql STABLE
  AS $$ SELECT NULLIF(current_setting('app.user_id', true), '')::uuid $$;
CREATE OR REPLACE FUNCTION tenfold_api_key_lookup() RETURNS text LANGUAGE sql STABLE
  AS $$ SELECT NULLIF(current_setting('app.api_key_lookup', true), '') $$;
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tenfold_app') THEN
    CREATE ROLE tenfold_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;
END $$;
GRANT USAGE ON SCHEMA public TO tenfold_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO tenfold_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO tenfold_app;
REVOKE ALL ON seaql_migrations FROM tenfold_app;
"#,
    );
    for (table, using, check) in tables {
        sql.push_str(&format!(
            "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;\n\
             ALTER TABLE {table} FORCE ROW LEVEL SECURITY;\n\
             DROP POLICY IF EXISTS tenant_isolation ON {table};\n\
             CREATE POLICY tenant_isolation ON {table} USING ({using}) WITH CHECK ({check});\n"
        ));
    }
    sql
}

pub fn disable_sql(tables: &[(&str, &str, &str)]) -> String {
    let mut sql = String::new();
    for (table, _, _) in tables {
        sql.push_str(&format!(
            "DROP POLICY IF EXISTS tenant_isolation ON {table};\n\
             ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY;\n\
             ALTER TABLE {table} DISABLE ROW LEVEL SECURITY;\n"
        ));
    }
    sql
}
