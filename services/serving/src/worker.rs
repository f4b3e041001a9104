//! The thread of one served model: load, then answer batches until idle.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use tenfold_domain::{ModelVersionId, OrgId};
use tenfold_ml::MlError;
use tenfold_ml::family::{ServeInput, Served};
use tracing::{info, warn};

use crate::host::{Host, Work};
use crate::{Answer, ModelFiles, ServeError};

/// Fetches the files (async), then loads and serves on a thread of its own.
pub(crate) fn start(host: Arc<Host>, queue: Receiver<Work>, files: Arc<dyn ModelFiles>, org: OrgId, version: ModelVersionId) {
    let started = Instant::now();
    tokio::spawn(async move {
        let dir = files.fetch(org, version).await;
        let spawned = std::thread::Builder::new().name(format!("serve-{}", host.label)).spawn({
            let host = host.clone();
            move || run(&host, &queue, dir, started)
        });
        if let Err(e) = spawned {
            warn!(error = %e, "cannot start a model thread");
            host.queue.lock().unwrap_or_else(PoisonError::into_inner).take();
        }
    });
}

fn run(host: &Host, queue: &Receiver<Work>, dir: Result<PathBuf, String>, started: Instant) {
    let model = dir.map_err(|e| ServeError::Unavailable(format!("the model's files cannot be read: {e}"))).and_then(|dir| {
        let family = host.families.get(host.family).map_err(|e| ServeError::Unavailable(e.to_string()))?;
        family.load_for_serving(&dir, &host.device).map_err(|e| ServeError::Unavailable(format!("the model cannot be loaded: {e}")))
    });
    let model = match model {
        Ok(model) => model,
        Err(e) => {
            warn!(endpoint = %host.label, error = %e, "model load failed");
            // Answer everyone waiting, and let the next request try again.
            host.queue.lock().unwrap_or_else(PoisonError::into_inner).take();
            while let Ok(work) = queue.recv() {
                host.depth.fetch_sub(1, Ordering::Relaxed);
                let _ = work.reply.send(Err(e.clone()));
            }
            return;
        }
    };
    let cold_start = started.elapsed();
    host.loaded.store(true, Ordering::Relaxed);
    metrics::gauge!("tenfold_models_loaded").increment(1.0);
    metrics::histogram!("tenfold_endpoint_cold_start_seconds", "endpoint" => host.label.clone()).record(cold_start.as_secs_f64());
    info!(endpoint = %host.label, ms = cold_start.as_millis() as u64, "model loaded");
    serve(host, queue, model.as_ref(), Some(cold_start));
    host.loaded.store(false, Ordering::Relaxed);
    metrics::gauge!("tenfold_models_loaded").decrement(1.0);
    info!(endpoint = %host.label, "model unloaded");
}

fn serve(host: &Host, queue: &Receiver<Work>, model: &dyn Served, mut cold_start: Option<Duration>) {
    let max = host.scaling.max_batch_size as usize;
    let idle = host.scaling.idle_unload();
    let mut carried: Option<Work> = None;
    loop {
        let first = match carried.take() {
            Some(work) => work,
            None => match next(host, queue, idle) {
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
        answer(host, model, batch, cold_start.take());
    }
}

/// The next request; `None` when the model should unload (idle, or retired
/// and drained).
fn next(host: &Host, queue: &Receiver<Work>, idle: Option<Duration>) -> Option<Work> {
    let got = match idle {
        Some(idle) => queue.recv_timeout(idle),
        None => queue.recv().map_err(|_| RecvTimeoutError::Disconnected),
    };
    match got {
        Ok(work) => Some(work),
        Err(RecvTimeoutError::Disconnected) => None,
        Err(RecvTimeoutError::Timeout) => {
            // Senders send under this lock: with it held and the queue
            // empty, nobody can be waiting in it.
            let mut sender = host.queue.lock().unwrap_or_else(PoisonError::into_inner);
            match queue.try_recv() {
                Ok(work) => Some(work),
                Err(TryRecvError::Empty) => {
                    sender.take();
                    None
                }
                Err(TryRecvError::Disconnected) => None,
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
