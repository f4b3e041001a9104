use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use tenfold_broker::{Allowance, EventBus, JobQueue, RateLimiter};
use tenfold_config::Settings;
use tenfold_domain::Catalog;
use tenfold_mail::{Mailer, OutgoingMail};
use tenfold_store::{BlobStore, Store};
use tracing::error;

use crate::error::{AppError, AppResult};
use crate::jwt::AccessTokens;
use crate::passwords::PasswordHasher;

/// The backends a deployment chose: embedded or scaled out, same use cases.
pub struct Backends {
    pub store: Store,
    pub limiter: Arc<dyn RateLimiter>,
    /// Endpoint rates (GCRA) and monthly quotas.
    pub allowance: Arc<dyn Allowance>,
    pub bus: Arc<dyn EventBus>,
    pub queue: Arc<dyn JobQueue>,
    pub mailer: Arc<dyn Mailer>,
    pub blobs: BlobStore,
    /// The model families jobs may use: their planning halves, from the
    /// engine's registry (`tenfold_ml::family::Registry::catalog`).
    pub families: Catalog,
}

/// The application: every use case hangs off it. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub settings: Settings,
    pub store: Store,
    pub limiter: Arc<dyn RateLimiter>,
    pub allowance: Arc<dyn Allowance>,
    pub bus: Arc<dyn EventBus>,
    pub queue: Arc<dyn JobQueue>,
    pub mailer: Arc<dyn Mailer>,
    pub blobs: BlobStore,
    pub families: Catalog,
    pub tokens: AccessTokens,
    pub hasher: PasswordHasher,
    /// The inference gateway's short-lived caches of keys and routes.
    pub gateway: crate::endpoints::GatewayCache,
    /// Sliding windows of canary answers, for automatic rollback.
    pub canaries: crate::endpoints::CanaryWatch,
    /// The usage writer, started by the first metered request.
    pub meter: crate::endpoints::Meter,
}

impl App {
    /// `settings.auth.jwt_secret` must already hold the key to sign with
    /// (the CLI generates one for dev when none is configured).
    pub fn new(settings: Settings, backends: Backends) -> AppResult<Self> {
        let secret = settings.auth.jwt_secret.expose_secret().as_bytes().to_vec();
        if secret.len() < 32 {
            return Err(AppError::internal(anyhow::anyhow!("the JWT secret must be at least 32 bytes")));
        }
        let tokens = AccessTokens::new(&settings.auth, &secret);
        let hasher = PasswordHasher::new(settings.auth.argon2_memory_kib, settings.auth.argon2_iterations)?;
        Ok(Self {
            inner: Arc::new(Inner {
                tokens,
                hasher,
                store: backends.store,
                limiter: backends.limiter,
                allowance: backends.allowance,
                bus: backends.bus,
                queue: backends.queue,
                mailer: backends.mailer,
                blobs: backends.blobs,
                families: backends.families,
                gateway: Default::default(),
                canaries: Default::default(),
                meter: Default::default(),
                settings,
            }),
        })
    }

    /// The families jobs may use (for the schema and the CLI's listings).
    pub fn families(&self) -> &Catalog {
        &self.inner.families
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// For `/readyz`: the database and the broker answer.
    #[tracing::instrument(skip_all)]
    pub async fn ready(&self) -> AppResult<()> {
        self.inner.store.ping().await?;
        self.inner.limiter.ping().await?;
        Ok(())
    }

    /// Clamps a requested page size to the configured maximum, refusing
    /// nonsense with a message that names the limit.
    pub fn page_size(&self, first: Option<i32>) -> AppResult<u64> {
        let max = self.inner.settings.graphql.max_page_size;
        match first {
            None => Ok(u64::from(max.min(20))),
            Some(n) if n < 1 => Err(AppError::bad_input("first", "`first` must be at least 1")),
            Some(n) if n as u32 > max => Err(AppError::bad_input("first", format!("`first` must be at most {max}"))),
            Some(n) => Ok(n as u64),
        }
    }

    /// Sends an email after the transaction that asked for it committed.
    /// A failure is logged, not returned: the action itself succeeded and
    /// the user can ask for the email again.
    pub(crate) async fn send_mail(&self, mail: OutgoingMail) {
        let to = mail.to.clone();
        match tokio::time::timeout(Duration::from_secs(15), self.inner.mailer.send(mail)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => error!(error = %err, to = %to, "sending email failed"),
            Err(_) => error!(to = %to, "sending email timed out"),
        }
    }

    pub(crate) fn link(&self, path: &str, token: &str) -> String {
        format!("{}/{path}?token={token}", self.inner.settings.server.public_url.trim_end_matches('/'))
    }
}
