//! A replica: a thread that loads the model, then answers batches from the
//! host's queue until it is idle (or the queue is retired).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use tenfold_domain::{ModelVersionId, OrgId};
use tenfold_ml::MlError;
use tenfold_ml::family::{ServeInput, Served};
use tracing::{info, warn};

use crate::host::{Host, Queue, Work};
use crate::{Answer, ModelFiles, ServeError};

/// One model thread of a host, counted in its queue's `running` until it
/// departs: by choice (idle), because its load failed, or by unwinding
/// (its `Drop`), so the count never outlives the thread.
pub(crate) struct Replica {
    host: Arc<Host>,
    queue: Receiver<Work>,
    running: Arc<AtomicUsize>,
    /// Its load is the endpoint's cold start (the first replica of an opening).
    first: bool,
    gone: bool,
}

impl Replica {
    pub(crate) fn new(host: Arc<Host>, queue: Receiver<Work>, running: Arc<AtomicUsize>, first: bool) -> Self {
        Self { host, queue, running, first, gone: false }
    }

    /// Uncounts this replica (under the queue's lock, held by the caller);
    /// the last of its opening closes the queue, so nothing more is sent
    /// to it. Returns whether it was the last.
    fn depart(&mut self, open: &mut Option<Queue>) -> bool {
        self.gone = true;
        let last = self.running.fetch_sub(1, Ordering::Relaxed) == 1;
        if last && open.as_ref().is_some_and(|q| Arc::ptr_eq(&q.running, &self.running)) {
            open.take();
        }
        last
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if !self.gone {
            let host = self.host.clone();
            self.depart(&mut host.lock_queue());
        }
    }
}

/// Fetches the files (async), then loads and serves on a thread of its own.
pub(crate) fn start(replica: Replica, files: Arc<dyn ModelFiles>, org: OrgId, version: ModelVersionId) {
    let started = Instant::now();
    tokio::spawn(async move {
        let dir = files.fetch(org, version).await;
        let name = format!("serve-{}", replica.host.label);
        // A thread that cannot start drops its replica, which departs.
        if let Err(e) = std::thread::Builder::new().name(name).spawn(move || run(replica, dir, started)) {
            warn!(error = %e, "cannot start a model thread");
        }
    });
}

fn run(mut replica: Replica, dir: Result<PathBuf, String>, started: Instant) {
    let host = replica.host.clone();
    let model = dir.map_err(|e| ServeError::Unavailable(format!("the model's files cannot be read: {e}"))).and_then(|dir| {
        let family = host.families.get(host.family).map_err(|e| ServeError::Unavailable(e.to_string()))?;
        family.load_for_serving(&dir, &host.device).map_err(|e| ServeError::Unavailable(format!("the model cannot be loaded: {e}")))
    });
    let model = match model {
        Ok(model) => model,
        Err(e) => {
            warn!(endpoint = %host.label, error = %e, "model load failed");
            // The only replica answers everyone waiting, and the next
            // request tries again; with others serving, it just leaves.
            let last = replica.depart(&mut host.lock_queue());
            if last {
                while let Ok(work) = replica.queue.recv() {
                    host.depth.fetch_sub(1, Ordering::Relaxed);
                    let _ = work.reply.send(Err(e.clone()));
                }
            }
            return;
        }
    };
    let loaded = started.elapsed();
    host.loaded.fetch_add(1, Ordering::Relaxed);
    metrics::gauge!("tenfold_models_loaded").increment(1.0);
    let cold_start = replica.first.then_some(loaded);
    if cold_start.is_some() {
        metrics::histogram!("tenfold_endpoint_cold_start_seconds", "endpoint" => host.label.clone()).record(loaded.as_secs_f64());
    }
    info!(endpoint = %host.label, ms = loaded.as_millis() as u64, "model loaded");
    serve(&mut replica, model.as_ref(), cold_start);
    host.loaded.fetch_sub(1, Ordering::Relaxed);
    metrics::gauge!("tenfold_models_loaded").decrement(1.0);
    info!(endpoint = %host.label, "model unloaded");
}

fn serve(replica: &mut Replica, model: &dyn Served, mut cold_start: Option<Duration>) {
    let host = replica.host.clone();
    let queue = replica.queue.clone();
    let max = host.scaling.max_batch_size as usize;
    let mut carried: Option<Work> = None;
    loop {
        let first = match carried.take() {
            Some(work) => work,
            None => match next(replica) {
                Some(work) => work,
                None => return,
            },
        };
        // Wait for more until the batch is full or the first request has
        // waited `max_batch_delay_ms`.
        let deadline = first.enqueued + host.scaling.batch_delay();
        let mut size = first.inputs.len();
        let mut batch = vec![first];
        while size < max {
            let wait = deadline.saturating_duration_since(Instant::now());
            let more = if wait.is_zero() { queue.try_recv().ok() } else { queue.recv_timeout(wait).ok() };
            let Some(work) = more else { break };
            if size + work.inputs.len() > max {
                carried = Some(work);
                break;
            }
            size += work.inputs.len();
            batch.push(work);
        }
        host.depth.fetch_sub(batch.len(), Ordering::Relaxed);
        metrics::gauge!("tenfold_endpoint_queue_depth", "endpoint" => host.label.clone()).set(host.depth.load(Ordering::Relaxed) as f64);
        answer(&host, model, batch, cold_start.take());
    }
}

/// The next request; `None` when this replica should leave: idle while
/// more than `min_replicas` run (the last of them, with `min_replicas` 0,
/// unloads the model), or its queue retired and drained.
fn next(replica: &mut Replica) -> Option<Work> {
    let scaling = replica.host.scaling;
    let idle = Duration::from_secs(u64::from(scaling.idle_unload_seconds));
    loop {
        match replica.queue.recv_timeout(idle) {
            Ok(work) => return Some(work),
            Err(RecvTimeoutError::Disconnected) => return None,
            Err(RecvTimeoutError::Timeout) => {
                // Senders send under this lock: with it held and the queue
                // empty, nobody can be waiting in it.
                let host = replica.host.clone();
                let mut open = host.lock_queue();
                let running = replica.running.load(Ordering::Relaxed);
                if running > (scaling.min_replicas as usize).max(1) {
                    replica.depart(&mut open);
                    return None;
                }
                if scaling.min_replicas > 0 {
                    continue;
                }
                match replica.queue.try_recv() {
                    Ok(work) => return Some(work),
                    Err(TryRecvError::Empty) => {
                        replica.depart(&mut open);
                        return None;
                    }
                    Err(TryRecvError::Disconnected) => return None,
                }
            }
        }
    }
}

/// Runs one batch and answers each request with its outputs. A batch
/// refused for one request's input is run again request by request, so
/// one bad input never fails its neighbours.
fn answer(host: &Host, model: &dyn Served, batch: Vec<Work>, cold_start: Option<Duration>) {
    let total: usize = batch.iter().map(|w| w.inputs.len()).sum();
    metrics::histogram!("tenfold_endpoint_batch_size", "endpoint" => host.label.clone()).record(total as f64);
    let inputs: Vec<ServeInput> = batch.iter().flat_map(|w| w.inputs.iter().cloned()).collect();
    let started = Instant::now();
    match model.predict(&inputs) {
        Ok(outputs) if outputs.len() == total => {
            let took = started.elapsed();
            let mut outputs = outputs.into_iter();
            for (i, work) in batch.into_iter().enumerate() {
                let mine: Vec<_> = outputs.by_ref().take(work.inputs.len()).collect();
                let share = took.mul_f64(work.inputs.len() as f64 / total.max(1) as f64);
                let _ = work.reply.send(Ok(Answer {
                    outputs: mine,
                    compute: share,
                    batch_size: total,
                    cold_start: if i == 0 { cold_start } else { None },
                }));
            }
        }
        Ok(outputs) => {
            let e = ServeError::Internal(format!("the model answered {} outputs for {total} inputs", outputs.len()));
            for work in batch {
                let _ = work.reply.send(Err(e.clone()));
            }
        }
        Err(_) if batch.len() > 1 => {
            for work in batch {
                answer(host, model, vec![work], None);
            }
        }
        Err(e) => {
            let e = match e {
                MlError::InvalidArgument { .. } | MlError::Incompatible(_) => ServeError::BadInput(e.to_string()),
                other => ServeError::Internal(other.to_string()),
            };
            for work in batch {
                let _ = work.reply.send(Err(e.clone()));
            }
        }
    }
}
