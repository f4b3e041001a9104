//! One served (endpoint, version): its bounded queue and the model threads
//! (replicas) that answer it while the model is loaded.
//!
//! Replicas: the first request starts `max(min_replicas, 1)` threads, each
//! with its own copy of the model, all taking batches from the one queue.
//! When more requests wait than the running replicas can take in one batch
//! each, another starts, up to `max_replicas`. A replica idle for
//! `idle_unload_seconds` leaves while more than `min_replicas` run; with
//! `min_replicas` 0 the last one leaves too and the model is unloaded
//! (scale to zero) until the next request.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use candle_core::Device;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use tenfold_domain::{Family, Scaling};
use tenfold_ml::family::{Registry, ServeInput};
use tokio::sync::oneshot;

use crate::{Answer, ModelFiles, ServeError, ServeTarget};

/// One request waiting in a queue.
pub(crate) struct Work {
    pub inputs: Vec<ServeInput>,
    pub reply: oneshot::Sender<Result<Answer, ServeError>>,
    pub enqueued: Instant,
}

/// The queue while replicas serve it. The host keeps a receiver to hand to
/// replicas it starts later; it is dropped with the sender when the last
/// replica leaves, so nothing is ever sent into a queue nobody reads.
pub(crate) struct Queue {
    pub tx: Sender<Work>,
    pub rx: Receiver<Work>,
    /// The replicas of this opening of the queue (loading or serving);
    /// changed under the host's queue lock. A replica of an earlier
    /// opening (retired, then reopened) counts in its own.
    pub running: Arc<AtomicUsize>,
}

pub(crate) struct Host {
    pub(crate) label: String,
    pub(crate) family: Family,
    pub(crate) scaling: Scaling,
    pub(crate) families: Registry,
    pub(crate) device: Device,
    /// Senders hold this lock while they send, and a replica takes it to
    /// decide to leave, so no request is left in a queue nobody reads.
    pub(crate) queue: Mutex<Option<Queue>>,
    pub(crate) depth: AtomicUsize,
    /// Replicas with the model loaded.
    pub(crate) loaded: AtomicUsize,
    /// Set when the host is retired: its replicas end once the queue drains.
    pub(crate) closed: AtomicBool,
}

impl Host {
    pub(crate) fn new(target: &ServeTarget, families: Registry, device: Device) -> Self {
        Self {
            label: target.label.clone(),
            family: target.family,
            scaling: target.scaling,
            families,
            device,
            queue: Mutex::new(None),
            depth: AtomicUsize::new(0),
            loaded: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        }
    }

    pub(crate) fn lock_queue(&self) -> MutexGuard<'_, Option<Queue>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn is_loaded(&self) -> bool {
        self.loaded_replicas() > 0
    }

    pub(crate) fn loaded_replicas(&self) -> usize {
        self.loaded.load(Ordering::Relaxed)
    }

    pub(crate) fn queued(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// Drops the queue: the replicas answer what is queued, then end.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.lock_queue().take();
    }

    /// Queues a request, starting the model's replicas if none serves it,
    /// or one more if the queue outgrows those running.
    pub(crate) fn submit(
        self: &Arc<Self>,
        inputs: Vec<ServeInput>,
        files: &Arc<dyn ModelFiles>,
        target: &ServeTarget,
    ) -> Result<oneshot::Receiver<Result<Answer, ServeError>>, ServeError> {
        let (tx, rx) = oneshot::channel();
        let work = Work { inputs, reply: tx, enqueued: Instant::now() };
        let mut queue = self.lock_queue();
        if queue.is_none() {
            let (tx, rx) = crossbeam_channel::bounded(self.scaling.queue_capacity());
            let open = Queue { tx, rx, running: Arc::new(AtomicUsize::new(0)) };
            self.closed.store(false, Ordering::Relaxed);
            for i in 0..self.scaling.min_replicas.max(1) {
                self.start_replica(&open, files, target, i == 0);
            }
            *queue = Some(open);
        }
        let Some(open) = queue.as_ref() else { return Err(ServeError::Internal("no queue".into())) };
        // Counted before it is sent: a replica may take it at once.
        let depth = self.depth.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        match open.tx.try_send(work) {
            Ok(()) => {
                metrics::gauge!("tenfold_endpoint_queue_depth", "endpoint" => self.label.clone()).set(depth as f64);
                let running = open.running.load(Ordering::Relaxed);
                if running < self.scaling.max_replicas as usize && depth > running * self.scaling.max_batch_size as usize {
                    self.start_replica(open, files, target, false);
                }
                Ok(rx)
            }
            Err(e) => {
                self.depth.fetch_sub(1, Ordering::Relaxed);
                match e {
                    TrySendError::Full(_) => Err(ServeError::Overloaded { retry_after: self.retry_hint() }),
                    TrySendError::Disconnected(_) => {
                        queue.take();
                        Err(ServeError::Unavailable("the model is restarting; retry shortly".into()))
                    }
                }
            }
        }
    }

    /// Starts a replica (under the queue's lock). `first`: the one whose
    /// load is the endpoint's cold start.
    fn start_replica(self: &Arc<Self>, open: &Queue, files: &Arc<dyn ModelFiles>, target: &ServeTarget, first: bool) {
        open.running.fetch_add(1, Ordering::Relaxed);
        let replica = crate::worker::Replica::new(self.clone(), open.rx.clone(), open.running.clone(), first);
        crate::worker::start(replica, files.clone(), target.org, target.version);
    }

    /// A full queue drains in about this long.
    fn retry_hint(&self) -> Duration {
        let batches = (self.scaling.queue_capacity() as u64).div_ceil(u64::from(self.scaling.max_batch_size.max(1)));
        let per_replica = batches / u64::from(self.scaling.max_replicas.max(1));
        Duration::from_millis((per_replica * u64::from(self.scaling.max_batch_delay_ms.max(10))).clamp(1000, 30_000))
    }
}
