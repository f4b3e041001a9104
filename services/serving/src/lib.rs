//! The serving runtime: each (endpoint, version) served by model threads
//! (replicas, `min_replicas`–`max_replicas`, each its own copy of the
//! model) off the async runtime, fed by one bounded queue from which they
//! form batches of up to `max_batch_size` inputs or `max_batch_delay_ms`;
//! unloaded when idle (scale to zero) and loaded again by the next request,
//! which waits for it (bounded). A full queue answers at once with
//! `Overloaded`.
//!
//! The runtime knows nothing of tenants, keys or protocols: the gateway
//! authorizes, meters and speaks HTTP; [`ModelFiles`] brings a version's
//! files to local disk. The cut for separate inference replicas later is
//! [`Runtime::infer`]: a replica process would host a `Runtime` behind a
//! small internal RPC with the same arguments.

mod host;
mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use host::Host;
use serde_json::Value;
use tenfold_domain::{EndpointId, Family, ModelVersionId, OrgId, Scaling};

pub use candle_core::Device;
pub use tenfold_ml::family::{Registry, ServeInput};

/// Where a version's files come from (blob storage, in the platform).
#[async_trait::async_trait]
pub trait ModelFiles: Send + Sync + 'static {
    /// A local folder holding the version's model files.
    async fn fetch(&self, org: OrgId, version: ModelVersionId) -> Result<PathBuf, String>;
}

/// Which model answers a request, and how it is batched.
#[derive(Debug, Clone)]
pub struct ServeTarget {
    pub org: OrgId,
    pub endpoint: EndpointId,
    /// For metrics and logs (the endpoint's slug).
    pub label: String,
    pub version: ModelVersionId,
    pub family: Family,
    pub scaling: Scaling,
    /// Every version the endpoint serves now (its target and canary): the
    /// runtime retires the endpoint's other models.
    pub live: Vec<ModelVersionId>,
}

/// A served request's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// One value per input, in order.
    pub outputs: Vec<Value>,
    /// This request's share of its batch's model time.
    pub compute: Duration,
    /// The inputs of the batch it was answered in.
    pub batch_size: usize,
    /// Set on the first answer after a load: unloaded to answered.
    pub cold_start: Option<Duration>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ServeError {
    /// The endpoint's queue is full: retry after the hint.
    #[error("the endpoint is at capacity; retry in {} ms", retry_after.as_millis())]
    Overloaded { retry_after: Duration },
    /// The request's input does not fit the model (says what to fix).
    #[error("{0}")]
    BadInput(String),
    /// The model cannot answer now (it failed to load, or took too long).
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

/// Runtime-wide settings.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeOptions {
    /// How long a request waits for its model to load before 503.
    pub load_timeout: Duration,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self { load_timeout: Duration::from_secs(60) }
    }
}

/// A loaded model's state, for listings and metrics.
#[derive(Debug, Clone)]
pub struct HostStatus {
    pub org: OrgId,
    pub endpoint: EndpointId,
    pub version: ModelVersionId,
    pub loaded: bool,
    /// Model threads with the model loaded.
    pub replicas: usize,
    pub queued: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct HostKey {
    org: OrgId,
    endpoint: EndpointId,
    version: ModelVersionId,
    scaling: Scaling,
}

/// The models this process serves. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    families: Registry,
    device: Device,
    files: Arc<dyn ModelFiles>,
    options: RuntimeOptions,
    hosts: Mutex<HashMap<HostKey, Arc<Host>>>,
}

impl Runtime {
    pub fn new(families: Registry, device: Device, files: Arc<dyn ModelFiles>, options: RuntimeOptions) -> Self {
        Self { inner: Arc::new(Inner { families, device, files, options, hosts: Mutex::new(HashMap::new()) }) }
    }

    /// Answers `inputs` with the target's model: queued (429 when full),
    /// batched with other requests, loading the model first if needed.
    pub async fn infer(&self, target: &ServeTarget, inputs: Vec<ServeInput>) -> Result<Answer, ServeError> {
        let host = self.host(target)?;
        let reply = host.submit(inputs, &self.inner.files, target)?;
        match tokio::time::timeout(self.inner.options.load_timeout, reply).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(ServeError::Internal("the model's thread ended without answering".into())),
            Err(_) => Err(ServeError::Unavailable(format!(
                "the model did not answer within {} s (it may still be loading); retry shortly",
                self.inner.options.load_timeout.as_secs()
            ))),
        }
    }

    /// Stops serving an endpoint's versions other than `keep` (all of them
    /// when it was paused or deleted): queued requests are answered, then
    /// those models unload.
    pub fn retire(&self, endpoint: EndpointId, keep: &[ModelVersionId]) {
        let mut hosts = self.inner.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        hosts.retain(|key, host| {
            let stays = key.endpoint != endpoint || keep.contains(&key.version);
            if !stays {
                host.close();
            }
            stays
        });
        metrics::gauge!("tenfold_serving_hosts").set(hosts.len() as f64);
    }

    pub fn status(&self) -> Vec<HostStatus> {
        let hosts = self.inner.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        hosts
            .iter()
            .map(|(key, host)| HostStatus {
                org: key.org,
                endpoint: key.endpoint,
                version: key.version,
                loaded: host.is_loaded(),
                replicas: host.loaded_replicas(),
                queued: host.queued(),
            })
            .collect()
    }

    /// The host of a target, created on first use. A new host of an
    /// endpoint retires the endpoint's hosts that are no longer live (an
    /// alias moved, the settings changed): they answer what they hold, then
    /// unload.
    fn host(&self, target: &ServeTarget) -> Result<Arc<Host>, ServeError> {
        let key = HostKey { org: target.org, endpoint: target.endpoint, version: target.version, scaling: target.scaling };
        let mut hosts = self.inner.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(host) = hosts.get(&key) {
            return Ok(host.clone());
        }
        self.inner.families.get(target.family).map_err(|e| ServeError::Unavailable(e.to_string()))?;
        hosts.retain(|k, host| {
            let stale = k.endpoint == target.endpoint && (k.scaling != target.scaling || !target.live.contains(&k.version));
            if stale {
                host.close();
            }
            !stale
        });
        let host = Arc::new(Host::new(target, self.inner.families.clone(), self.inner.device.clone()));
        hosts.insert(key, host.clone());
        metrics::gauge!("tenfold_serving_hosts").set(hosts.len() as f64);
        Ok(host)
    }
}
