//! One served (endpoint, version): its bounded queue and the thread that
//! holds the model while it is loaded.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use candle_core::Device;
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

pub(crate) struct Host {
    pub(crate) label: String,
    pub(crate) family: Family,
    pub(crate) scaling: Scaling,
    pub(crate) families: Registry,
    pub(crate) device: Device,
    /// The queue's sending side while a thread serves it. Senders hold the
    /// lock while they send, and the thread takes it to decide to unload,
    /// so no request is left in a queue nobody reads.
    pub(crate) queue: Mutex<Option<SyncSender<Work>>>,
    pub(crate) depth: AtomicUsize,
    pub(crate) loaded: AtomicBool,
    /// Set when the host is retired: its thread ends once the queue drains.
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
            loaded: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    pub(crate) fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Relaxed)
    }

    pub(crate) fn queued(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// Drops the sending side: the thread answers what is queued, then ends.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.queue.lock().unwrap_or_else(PoisonError::into_inner).take();
    }

    /// Queues a request, starting the model's thread if none serves it.
    pub(crate) fn submit(
        self: &Arc<Self>,
        inputs: Vec<ServeInput>,
        files: &Arc<dyn ModelFiles>,
        target: &ServeTarget,
    ) -> Result<oneshot::Receiver<Result<Answer, ServeError>>, ServeError> {
        let (tx, rx) = oneshot::channel();
        let work = Work { inputs, reply: tx, enqueued: Instant::now() };
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.is_none() {
            let (sender, receiver) = mpsc::sync_channel(self.scaling.queue_capacity());
            *queue = Some(sender);
            self.loaded.store(false, Ordering::Relaxed);
            self.closed.store(false, Ordering::Relaxed);
            crate::worker::start(self.clone(), receiver, files.clone(), target.org, target.version);
        }
        let Some(sender) = queue.as_ref() else { return Err(ServeError::Internal("no queue".into())) };
        // Counted before it is sent: the thread may take it at once.
        let depth = self.depth.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        match sender.try_send(work) {
            Ok(()) => {
                metrics::gauge!("tenfold_endpoint_queue_depth", "endpoint" => self.label.clone()).set(depth as f64);
                Ok(rx)
            }
            Err(e) => {
                self.depth.fetch_sub(1, Ordering::Relaxed);
                match e {
                    TrySendError::Full(_) => Err(ServeError::Overloaded { retry_after: self.retry_hint() }),
                    TrySendError::Disconnected(_) => {
                        // The thread ended (a failed load); the next request starts another.
                        queue.take();
                        Err(ServeError::Unavailable("the model is restarting; retry shortly".into()))
                    }
                }
            }
        }
    }

    /// A full queue drains in about this long.
    fn retry_hint(&self) -> Duration {
        let batches = (self.scaling.queue_capacity() as u64).div_ceil(u64::from(self.scaling.max_batch_size.max(1)));
        Duration::from_millis((batches * u64::from(self.scaling.max_batch_delay_ms.max(10))).clamp(1000, 30_000))
    }
}
