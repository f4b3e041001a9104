//! Exact usage metering. Every answered request's event is written to the
//! database before its answer leaves (the handler waits for it), by one
//! writer task that commits whatever has queued up meanwhile in one
//! transaction per organization (group commit): durability without a
//! round trip per request. The event id is the dedupe key: a request
//! retried with the same `Idempotency-Key` is counted once.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use sha2::{Digest, Sha256};
use tenfold_domain::{EndpointId, ModelVersionId, OrgId};
use tenfold_store::entities::usage_events;
use tenfold_store::queries::usage;
use tokio::sync::{mpsc, oneshot};
use tracing::error;
use uuid::Uuid;

use super::invoke::{Caller, Invocation};
use crate::App;
use crate::error::{AppError, AppResult};

/// Events committed together at most.
const MAX_GROUP: usize = 1024;

/// What one answered request used.
#[derive(Debug, Clone)]
pub struct UsageEvent {
    pub id: Uuid,
    pub org: OrgId,
    pub endpoint: EndpointId,
    pub version: ModelVersionId,
    pub caller: Caller,
    pub images: u32,
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub compute: Duration,
    /// The HTTP status answered.
    pub status: u16,
}

impl UsageEvent {
    /// The event of `inv`'s request; `idempotency_key` (the client's) makes
    /// its id the same on every retry with the same outcome: retries that
    /// are answered count once, and a failed attempt never uses up the id
    /// of the answer that follows it.
    pub fn of(inv: &Invocation, idempotency_key: Option<&str>, status: u16) -> Self {
        let id = match idempotency_key {
            Some(key) => {
                let digest = Sha256::new()
                    .chain_update(inv.org.0.as_bytes())
                    .chain_update(inv.caller.id().as_bytes())
                    .chain_update(inv.endpoint.0.as_bytes())
                    .chain_update([u8::try_from(status / 100).unwrap_or(5)])
                    .chain_update(key.as_bytes())
                    .finalize();
                let mut bytes = [0u8; 16];
                bytes.copy_from_slice(&digest[..16]);
                uuid::Builder::from_custom_bytes(bytes).into_uuid()
            }
            None => Uuid::now_v7(),
        };
        Self {
            id,
            org: inv.org,
            endpoint: inv.endpoint,
            version: inv.version,
            caller: inv.caller.clone(),
            images: 0,
            input_tokens: 0,
            output_tokens: 0,
            compute: Duration::ZERO,
            status,
        }
    }

    fn row(&self) -> usage_events::Model {
        let (api_key, customer_key) = match &self.caller {
            Caller::ApiKey(id) => (Some(id.0), None),
            Caller::Customer(grant) => (None, Some(grant.id.0)),
            Caller::User(_) => (None, None),
        };
        let int = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        usage_events::Model {
            org_id: self.org.0,
            id: self.id,
            endpoint_id: self.endpoint.0,
            model_version_id: self.version.0,
            api_key_id: api_key,
            customer_key_id: customer_key,
            requests: 1,
            images: int(self.images),
            input_tokens: int(self.input_tokens),
            output_tokens: int(self.output_tokens),
            compute_ms: i64::try_from(self.compute.as_millis()).unwrap_or(i64::MAX),
            status_class: i16::try_from(self.status / 100).unwrap_or(5),
            created_at: Utc::now(),
        }
    }
}

/// Whether an event was new (false: a retry of a counted request).
pub type Metered = bool;

type Pending = (UsageEvent, oneshot::Sender<AppResult<Metered>>);

/// The writer task's queue; started by the first metered request and
/// started again if its runtime went away.
#[derive(Default)]
pub(crate) struct Meter {
    queue: std::sync::Mutex<Option<mpsc::UnboundedSender<Pending>>>,
}

impl Meter {
    fn sender(&self, app: &App) -> mpsc::UnboundedSender<Pending> {
        let mut queue = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match queue.as_ref() {
            Some(tx) if !tx.is_closed() => tx.clone(),
            _ => {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(write_loop(app.clone(), rx));
                *queue = Some(tx.clone());
                tx
            }
        }
    }
}

async fn write_loop(app: App, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let mut group: Vec<Pending> = Vec::with_capacity(MAX_GROUP);
    while rx.recv_many(&mut group, MAX_GROUP).await > 0 {
        let mut by_org: BTreeMap<OrgId, Vec<Pending>> = BTreeMap::new();
        for pending in group.drain(..) {
            by_org.entry(pending.0.org).or_default().push(pending);
        }
        for (org, pending) in by_org {
            match write(&app, org, &pending).await {
                Ok(new) => {
                    for ((_, reply), new) in pending.into_iter().zip(new) {
                        let _ = reply.send(Ok(new));
                    }
                }
                Err(e) => {
                    error!(error = %e, %org, events = pending.len(), "usage events could not be written");
                    for (_, reply) in pending {
                        let _ = reply.send(Err(AppError::unavailable("usage could not be recorded, so the answer is withheld; retry", 1)));
                    }
                }
            }
        }
    }
}

async fn write(app: &App, org: OrgId, pending: &[Pending]) -> AppResult<Vec<bool>> {
    let tx = app.inner.store.tenant(org, None).await?;
    let mut new = Vec::with_capacity(pending.len());
    for (event, _) in pending {
        new.push(usage::record(&tx, event.row()).await?);
    }
    tx.commit().await?;
    Ok(new)
}

impl App {
    /// Records a request's usage durably; returns once it is committed.
    pub async fn meter_request(&self, event: UsageEvent) -> AppResult<Metered> {
        let (tx, rx) = oneshot::channel();
        self.inner.meter.sender(self).send((event, tx)).map_err(|_| AppError::unavailable("the usage writer stopped; retry", 1))?;
        rx.await.map_err(|_| AppError::unavailable("the usage writer stopped; retry", 1))?
    }
}
