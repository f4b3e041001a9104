//! Turning settings into running backends. Embedded defaults fill in what
//! is not configured: SQLite in the data dir, the in-process broker, an
//! email outbox folder and, in dev, a generated JWT secret kept on disk.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tenfold_app::{App, Backends};
use tenfold_broker::{
    Allowance, EventBus, JobQueue, MemoryAllowance, MemoryEventBus, MemoryJobQueue, MemoryRateLimiter, RateLimiter, RedisAllowance,
    RedisBroker, RedisEventBus, RedisJobQueue, RedisRateLimiter,
};
use tenfold_config::{ExposeSecret, Mode, SecretString, Settings, SmtpTls};
use tenfold_mail::{Mailer, OutboxMailer, SmtpMailer, SmtpSecurity};
use tenfold_ml::family::Registry;
use tenfold_store::{BlobStore, ConnectOptions, S3Options, Store};
use tracing::{info, warn};

/// Fills in embedded defaults. Production gets none: there every backend
/// must be configured explicitly (checked by `Settings::validate`).
pub fn resolve_defaults(settings: &mut Settings) -> anyhow::Result<()> {
    let data_dir = settings.storage.data_dir.clone();
    if settings.database.url.expose_secret().is_empty() {
        if settings.mode == Mode::Production {
            anyhow::bail!("database.url (TENFOLD_DATABASE__URL) must be set in production");
        }
        std::fs::create_dir_all(&data_dir).with_context(|| format!("creating the data dir {}", data_dir.display()))?;
        let path = data_dir.join("tenfold.db");
        settings.database.url = SecretString::from(format!("sqlite://{}?mode=rwc", path.display()));
    }
    if settings.mail.outbox_dir.as_os_str().is_empty() {
        settings.mail.outbox_dir = data_dir.join("outbox");
    }
    if settings.auth.jwt_secret.expose_secret().is_empty() {
        if settings.mode == Mode::Production {
            anyhow::bail!("auth.jwt_secret (TENFOLD_AUTH__JWT_SECRET) must be set in production");
        }
        settings.auth.jwt_secret = SecretString::from(dev_secret(&data_dir)?);
    }
    Ok(())
}

/// A random secret kept in `<data_dir>/jwt-secret` (mode 0600), so dev
/// sign-ins survive a restart without anyone choosing a weak key.
fn dev_secret(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("jwt-secret");
    if let Ok(existing) = std::fs::read_to_string(&path)
        && existing.trim().len() >= 32
    {
        return Ok(existing.trim().to_owned());
    }
    std::fs::create_dir_all(data_dir)?;
    let secret = tenfold_app::secrets::random_base62(48);
    std::fs::write(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(secret)
}

pub async fn connect_store(settings: &Settings, for_migrations: bool) -> anyhow::Result<Store> {
    let migration_url = settings.database.migration_url.expose_secret();
    let url = if for_migrations && !migration_url.is_empty() { migration_url } else { settings.database.url.expose_secret() };
    Store::connect(&ConnectOptions {
        url: url.to_owned(),
        max_connections: settings.database.max_connections,
        statement_timeout_ms: settings.database.statement_timeout_ms,
        idle_in_transaction_timeout_ms: settings.database.idle_in_transaction_timeout_ms,
    })
    .await
    .context("connecting to the database")
}

pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let store = connect_store(settings, true).await?;
    store.migrate().await.context("running migrations")?;
    store.close().await?;
    Ok(())
}

/// The broker's three services, from one backend.
pub struct BrokerBackends {
    pub limiter: Arc<dyn RateLimiter>,
    pub allowance: Arc<dyn Allowance>,
    pub bus: Arc<dyn EventBus>,
    pub queue: Arc<dyn JobQueue>,
}

/// The broker backends: Redis when configured, in-process otherwise.
pub async fn broker(settings: &Settings) -> anyhow::Result<BrokerBackends> {
    let url = settings.redis.url.expose_secret();
    if url.is_empty() {
        return Ok(BrokerBackends {
            limiter: Arc::new(MemoryRateLimiter::new()),
            allowance: Arc::new(MemoryAllowance::new()),
            bus: Arc::new(MemoryEventBus::new()),
            queue: Arc::new(MemoryJobQueue::new()),
        });
    }
    let broker = RedisBroker::connect(url, &settings.redis.key_prefix).await.context("connecting to Redis")?;
    Ok(BrokerBackends {
        limiter: Arc::new(RedisRateLimiter::new(broker.clone())),
        allowance: Arc::new(RedisAllowance::new(broker.clone())),
        bus: Arc::new(RedisEventBus::new(broker.clone())),
        queue: Arc::new(RedisJobQueue::new(broker)),
    })
}

pub fn mailer(settings: &Settings) -> anyhow::Result<Arc<dyn Mailer>> {
    let mail = &settings.mail;
    if mail.smtp_host.is_empty() {
        info!(dir = %mail.outbox_dir.display(), "emails are written to the outbox folder");
        return Ok(Arc::new(OutboxMailer::new(mail.outbox_dir.clone(), &mail.from)?));
    }
    let security = match mail.smtp_tls {
        SmtpTls::None => SmtpSecurity::None,
        SmtpTls::StartTls => SmtpSecurity::StartTls,
        SmtpTls::Tls => SmtpSecurity::Tls,
    };
    let credentials = (!mail.smtp_username.is_empty()).then(|| (mail.smtp_username.clone(), mail.smtp_password.expose_secret().to_owned()));
    Ok(Arc::new(SmtpMailer::new(&mail.smtp_host, mail.smtp_port, security, credentials, &mail.from)?))
}

/// An S3-compatible bucket when configured, else a folder in the data dir.
pub fn blob_store(settings: &Settings) -> anyhow::Result<BlobStore> {
    let storage = &settings.storage;
    let scratch = storage.data_dir.join("scratch");
    if storage.s3_bucket.is_empty() {
        return BlobStore::local(&storage.data_dir.join("blobs")).context("opening the blob folder");
    }
    let options = S3Options {
        bucket: storage.s3_bucket.clone(),
        endpoint: storage.s3_endpoint.clone(),
        region: storage.s3_region.clone(),
        access_key_id: storage.s3_access_key_id.clone(),
        secret_access_key: storage.s3_secret_access_key.expose_secret().to_owned(),
        allow_http: storage.s3_allow_http,
    };
    BlobStore::s3(&options, &scratch).context("configuring S3 blob storage")
}

/// Builds the application on the configured backends, with every family
/// this build ships.
pub async fn build_app(settings: Settings) -> anyhow::Result<App> {
    build_app_with(settings, &Registry::standard()).await
}

/// [`build_app`] with the given families (tests register their own).
pub async fn build_app_with(settings: Settings, families: &Registry) -> anyhow::Result<App> {
    let store = connect_store(&settings, false).await?;
    check_row_level_security(&store, settings.mode).await?;
    let BrokerBackends { limiter, allowance, bus, queue } = broker(&settings).await?;
    let mailer = mailer(&settings)?;
    let blobs = blob_store(&settings)?;
    let families = families.catalog();
    App::new(settings, Backends { store, limiter, allowance, bus, queue, mailer, blobs, families }).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Row-level security is the second lock on every tenant table; a runtime
/// role that escapes it (a superuser, BYPASSRLS) silently leaves only the
/// first. Production refuses to start on such a role; elsewhere a warning.
pub async fn check_row_level_security(store: &Store, mode: Mode) -> anyhow::Result<()> {
    let Some(why) = store.rls_bypass().await.context("checking the database role")? else { return Ok(()) };
    let fix = "connect the app as the restricted role tenfold_app (TENFOLD_DATABASE__URL) and run migrations as the owner (TENFOLD_DATABASE__MIGRATION_URL)";
    if mode == Mode::Production {
        anyhow::bail!("{why}: row-level security would not apply to it; {fix}");
    }
    warn!("{why}: row-level security does not apply to it; {fix}");
    Ok(())
}

/// A worker id unique across machines and restarts: host, process, random.
pub fn worker_id() -> String {
    let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "worker".into());
    format!("{host}-{}-{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8])
}
