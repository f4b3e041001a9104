use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One process, embedded backends, GraphiQL on.
    #[default]
    Dev,
    /// Black-box tests: like dev, but quieter and faster hashing.
    Test,
    /// Refuses unsafe settings at start.
    Production,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct Settings {
    pub mode: Mode,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub storage: StorageSettings,
    pub mail: MailSettings,
    pub auth: AuthSettings,
    pub graphql: GraphqlSettings,
    pub log: LogSettings,
    pub jobs: JobSettings,
    pub webhooks: WebhookSettings,
    pub metrics: MetricsSettings,
    pub rate_limits: RateLimitSettings,
}

/// Requests per minute on the API (GraphQL and REST), fixed one-minute
/// windows, shared across replicas through Redis. Sign-in and email flows
/// have their own, stricter limits on top.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RateLimitSettings {
    /// Per client address (every request, signed in or not).
    pub ip_per_minute: u64,
    /// Per organization (every authenticated request, all its members and keys).
    pub org_per_minute: u64,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self { ip_per_minute: 1200, org_per_minute: 3000 }
    }
}

/// Where `/metrics` is served. It tells anyone who reads it the traffic,
/// errors and routes of every tenant, so production never serves it openly
/// on the API listener: give it its own port (reachable only by the
/// scraper, e.g. a Kubernetes pod port without a Service), a bearer token,
/// or both.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MetricsSettings {
    /// Serve `/metrics` on this port (0: any free port) instead of the API
    /// listener; unset: on the API listener.
    pub port: Option<u16>,
    /// The address of the metrics listener.
    pub host: String,
    /// When set, `/metrics` answers only `Authorization: Bearer <token>`.
    pub token: SecretString,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self { port: None, host: "127.0.0.1".into(), token: SecretString::from(String::new()) }
    }
}

/// Outgoing webhooks. Safe by default: HTTPS only, public addresses only
/// (dev and test turn both on to reach a receiver on loopback).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WebhookSettings {
    pub allow_http: bool,
    pub allow_private_networks: bool,
    pub timeout_seconds: f64,
    /// Attempts per delivery before it is marked failed.
    pub max_attempts: u32,
    /// Retry backoff `base × 2^(attempts-1)`, capped, ±20 % jitter.
    pub backoff_base_seconds: f64,
    pub backoff_max_seconds: f64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_http: false,
            allow_private_networks: false,
            timeout_seconds: 10.0,
            max_attempts: 8,
            backoff_base_seconds: 30.0,
            backoff_max_seconds: 3600.0,
        }
    }
}

/// The job queue's timing. Defaults suit production; tests shorten them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct JobSettings {
    /// A worker's lease on a job; it heartbeats every third of it. A worker
    /// silent for this long is presumed dead and its job is taken over.
    pub lease_seconds: f64,
    /// Attempts before a job that keeps failing transiently is dead-lettered.
    pub max_attempts: u32,
    /// Retry backoff: `base × 2^(failures-1)`, capped, with ±20 % jitter.
    pub backoff_base_seconds: f64,
    pub backoff_max_seconds: f64,
    /// A dispatched entry nobody claimed for this long was lost by the
    /// broker (a Redis restart without persistence): dispatch it again.
    pub redispatch_after_seconds: f64,
    /// How often the relay looks for work when nothing wakes it.
    pub poll_interval_ms: u64,
    /// At most one progress event per step this often (plus every epoch end).
    pub step_event_interval_ms: u64,
    /// On SIGTERM, running jobs go on to their next checkpoint for at most
    /// this long, then stop; either way they are released for another worker.
    /// Keep it under the orchestrator's termination grace (Kubernetes: 30 s).
    pub shutdown_grace_seconds: f64,
    /// The address space every attempt process may use, in MiB; 0: each
    /// job's own memory estimate with headroom (the default).
    pub attempt_memory_limit_mb: u64,
    /// Dataset validations a worker runs at once, beside its training
    /// slots (its validation pool). 0: this process runs none (an API-only
    /// process in tests; a worker needs at least one).
    pub validation_slots: usize,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            lease_seconds: 30.0,
            max_attempts: 3,
            backoff_base_seconds: 10.0,
            backoff_max_seconds: 600.0,
            redispatch_after_seconds: 15.0,
            poll_interval_ms: 1000,
            step_event_interval_ms: 1000,
            shutdown_grace_seconds: 20.0,
            attempt_memory_limit_mb: 0,
            validation_slots: 2,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// Base URL users reach the dashboard at; used in email links.
    pub public_url: String,
    /// Seconds in-flight requests get to finish on shutdown.
    pub shutdown_grace_seconds: u64,
    /// Number of actix worker threads; 0 means one per core.
    pub workers: usize,
    /// Trust `X-Forwarded-For` for the client IP (only behind our own proxy).
    pub trust_forwarded_for: bool,
    /// The built dashboard (`web/dist`), served at `/`; empty: none.
    pub dashboard_dir: String,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            public_url: "http://127.0.0.1:8080".into(),
            shutdown_grace_seconds: 20,
            workers: 0,
            trust_forwarded_for: false,
            dashboard_dir: "web/dist".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// `sqlite://path?mode=rwc` or `postgres://…`. Empty: SQLite in the data dir.
    pub url: SecretString,
    /// Owner connection for migrations when the app runs as a restricted role
    /// (PostgreSQL row-level security). Empty: use `url`.
    pub migration_url: SecretString,
    pub max_connections: u32,
    /// Server-side statement timeout on PostgreSQL, in milliseconds.
    pub statement_timeout_ms: u64,
    /// PostgreSQL ends a session that sits in an open transaction this long
    /// (a paused or hung process must not hold row locks that a job's new
    /// owner needs). Our transactions do no outside I/O, so they never idle long.
    pub idle_in_transaction_timeout_ms: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from(""),
            migration_url: SecretString::from(""),
            max_connections: 16,
            statement_timeout_ms: 15_000,
            idle_in_transaction_timeout_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct RedisSettings {
    /// `redis://host:port/db`. Empty: the in-process broker.
    pub url: SecretString,
    /// Prefix of every key, so that several deployments can share a Redis.
    pub key_prefix: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StorageSettings {
    /// Where the embedded backends keep their files (database, blobs, outbox).
    pub data_dir: PathBuf,
    /// An S3-compatible bucket for blobs; empty: `<data_dir>/blobs`.
    pub s3_bucket: String,
    /// Empty: AWS; otherwise the server's URL (MinIO, Ceph, moto…).
    pub s3_endpoint: String,
    pub s3_region: String,
    pub s3_access_key_id: String,
    pub s3_secret_access_key: SecretString,
    /// Allow plain HTTP to the endpoint (loopback test servers only).
    pub s3_allow_http: bool,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            s3_bucket: String::new(),
            s3_endpoint: String::new(),
            s3_region: "us-east-1".into(),
            s3_access_key_id: String::new(),
            s3_secret_access_key: SecretString::from(""),
            s3_allow_http: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MailSettings {
    pub from: String,
    /// SMTP server; empty: write `.eml` files to `outbox_dir`.
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_username: String,
    pub smtp_password: SecretString,
    pub smtp_tls: SmtpTls,
    /// Empty: `<data_dir>/outbox`.
    pub outbox_dir: PathBuf,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            from: "Tenfold <no-reply@tenfold.local>".into(),
            smtp_host: String::new(),
            smtp_port: 587,
            smtp_username: String::new(),
            smtp_password: SecretString::from(""),
            smtp_tls: SmtpTls::StartTls,
            outbox_dir: PathBuf::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP: only for a capture server on loopback.
    None,
    StartTls,
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AuthSettings {
    /// HS256 key for access tokens: at least 32 random bytes in production.
    pub jwt_secret: SecretString,
    /// Key id written in the JWT header, so keys can be rotated.
    pub jwt_kid: String,
    /// Previous keys still accepted for verification during a rotation.
    pub retired_keys: Vec<RetiredKey>,
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl_seconds: u64,
    /// Absolute lifetime of a refresh-token family (a sign-in).
    pub refresh_token_ttl_seconds: u64,
    /// A refresh token unused for this long expires.
    pub refresh_idle_ttl_seconds: u64,
    pub leeway_seconds: u64,
    pub email_verification_ttl_seconds: u64,
    pub password_reset_ttl_seconds: u64,
    pub invitation_ttl_seconds: u64,
    /// Failed sign-ins per account allowed in `login_window_seconds`.
    pub login_max_failures_per_account: u32,
    /// Sign-in attempts per client IP allowed in `login_window_seconds`.
    pub login_max_attempts_per_ip: u32,
    pub login_window_seconds: u64,
    /// Emails (invitations, resets, verifications) one organization or
    /// address may trigger per hour.
    pub emails_per_hour: u32,
    /// argon2 memory in KiB; the default follows OWASP (19 MiB, 2 passes).
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RetiredKey {
    pub kid: String,
    pub secret: SecretString,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_secret: SecretString::from(""),
            jwt_kid: "k1".into(),
            retired_keys: Vec::new(),
            issuer: "tenfold".into(),
            audience: "tenfold-api".into(),
            access_token_ttl_seconds: 15 * 60,
            refresh_token_ttl_seconds: 30 * 24 * 3600,
            refresh_idle_ttl_seconds: 7 * 24 * 3600,
            leeway_seconds: 10,
            email_verification_ttl_seconds: 24 * 3600,
            password_reset_ttl_seconds: 30 * 60,
            invitation_ttl_seconds: 7 * 24 * 3600,
            login_max_failures_per_account: 5,
            login_max_attempts_per_ip: 30,
            login_window_seconds: 15 * 60,
            emails_per_hour: 50,
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct GraphqlSettings {
    pub introspection: bool,
    /// GraphiQL on `GET /graphql`; dev only.
    pub graphiql: bool,
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_aliases: usize,
    pub max_directives: usize,
    pub max_page_size: u32,
    /// Bytes of a `/graphql` request body, checked before parsing.
    pub max_body_bytes: usize,
    /// Bytes of a GraphQL multipart upload (dataset files).
    pub max_upload_bytes: u64,
    /// Seconds one operation may run.
    pub timeout_seconds: u64,
    /// A subscription socket's credential is checked again this often (and
    /// before each event it delivers); the socket closes when it fails.
    pub ws_recheck_seconds: f64,
    /// A subscription socket closes after this long (1001, going away);
    /// clients reconnect with a fresh credential.
    pub ws_max_lifetime_seconds: u64,
}

impl Default for GraphqlSettings {
    fn default() -> Self {
        Self {
            introspection: true,
            graphiql: true,
            max_depth: 16,
            max_complexity: 2_000,
            max_aliases: 30,
            max_directives: 10,
            max_page_size: 100,
            max_body_bytes: 256 * 1024,
            max_upload_bytes: 1024 * 1024 * 1024,
            timeout_seconds: 30,
            ws_recheck_seconds: 15.0,
            ws_max_lifetime_seconds: 4 * 3600,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LogSettings {
    /// `json` (default) or `pretty`.
    pub format: String,
    /// An `EnvFilter` directive, e.g. `info,tenfold=debug`.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { format: "json".into(), level: "info".into() }
    }
}
