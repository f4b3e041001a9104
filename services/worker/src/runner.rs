//! The worker process: relay, consumer, rescuer and one task per job.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use tenfold_app::{App, CANCEL_TOPIC, Claimed, FailOutcome, Held, LeasedJob, VALIDATION_MEMORY_MB, WAKE_TOPIC};
use tenfold_broker::{Delivery, JobQueue};
use tenfold_domain::VALIDATION_POOL;
use tenfold_ml::family::Registry;
use tenfold_store::queries::dispatch::Capability;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::{error, info, warn};
use uuid::Uuid;

use crate::execute::{Ending, ExecOptions, Executor, MlExecutor, Stop, StopReason};
use crate::validate::Validator;

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Unique per process; names the consumer in the broker and the lease owner.
    pub id: String,
    /// Jobs run at once.
    pub slots: usize,
    /// `cpu` or `cuda:N`.
    pub device: String,
    /// Memory this worker offers a job; larger jobs are left to others.
    pub memory_mb: i32,
    /// Scratch space for the jobs' files.
    pub work_dir: PathBuf,
}

impl WorkerOptions {
    /// The device type jobs ask for (`cpu`, `cuda`), or the validation pool.
    fn device_type(&self) -> &str {
        if self.device == VALIDATION_POOL {
            VALIDATION_POOL
        } else if self.device.starts_with("cuda") {
            "cuda"
        } else {
            "cpu"
        }
    }

    /// The options of this process's validation pool: `slots` validations
    /// at once, each with the memory a validation reserves.
    pub fn validation(&self, slots: usize) -> WorkerOptions {
        WorkerOptions {
            id: format!("{}-validation", self.id),
            slots,
            device: VALIDATION_POOL.to_owned(),
            memory_mb: VALIDATION_MEMORY_MB.saturating_mul(i32::try_from(slots).unwrap_or(i32::MAX)),
            work_dir: self.work_dir.clone(),
        }
    }
}

/// One queue a process serves: its options (device, slots, memory) and
/// what runs its jobs. A worker serves its training device and the
/// validation pool.
pub struct Pool {
    pub opts: WorkerOptions,
    pub executor: Arc<dyn Executor>,
}

struct Shared {
    app: App,
    executor: Arc<dyn Executor>,
    opts: WorkerOptions,
    queue: Arc<dyn JobQueue>,
    slots: Arc<Semaphore>,
    /// A slot was freed or a job became due: the relay should look again.
    wake: Notify,
    running: Mutex<HashMap<Uuid, Arc<Stop>>>,
    /// The tasks of running jobs, awaited on shutdown.
    jobs: tokio::sync::Mutex<JoinSet<()>>,
    /// Jobs being claimed or run. The consumer holds a slot's permit while
    /// it waits for an entry, so free capacity is counted here instead.
    busy: std::sync::atomic::AtomicUsize,
    /// Memory reserved by the jobs running here (their estimates): a job
    /// is claimed only if it fits in what is left, so one tenant's large
    /// job cannot starve the process of memory the others were promised.
    /// The lock is held across a claim so two claims cannot both take the
    /// last megabytes.
    memory_in_use: tokio::sync::Mutex<i32>,
    /// Set before running jobs are told to stop, so that a job starting
    /// at that moment stops too instead of running past the grace period.
    shutting_down: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// Slots not running a job.
    fn free(&self) -> usize {
        self.opts.slots.max(1).saturating_sub(self.busy.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// Memory not reserved by running jobs (a snapshot, for the relay).
    fn memory_left(&self) -> i32 {
        let in_use = self.memory_in_use.try_lock().map_or(self.opts.memory_mb, |m| *m);
        self.opts.memory_mb.saturating_sub(in_use).max(0)
    }

    fn lease(&self) -> Duration {
        Duration::from_secs_f64(self.app.job_settings().lease_seconds.max(0.1))
    }

    fn device(&self) -> &str {
        self.opts.device_type()
    }

    async fn spawn_job(self: &Arc<Self>, delivery: Delivery, permit: OwnedSemaphorePermit) {
        let mut jobs = self.jobs.lock().await;
        // Forget the tasks that already ended.
        while jobs.try_join_next().is_some() {}
        self.busy.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let shared = self.clone();
        jobs.spawn(async move {
            handle(shared.clone(), delivery, permit).await;
            shared.busy.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            shared.wake.notify_one();
        });
    }

    fn stop_all(&self, reason: StopReason) {
        self.each_running(|stop| stop.request(reason));
    }

    fn each_running(&self, f: impl Fn(&Stop)) {
        for stop in self.running.lock().unwrap_or_else(|p| p.into_inner()).values() {
            f(stop);
        }
    }

    fn stop_job(&self, job: Uuid, reason: StopReason) {
        if let Some(stop) = self.running.lock().unwrap_or_else(|p| p.into_inner()).get(&job) {
            stop.request(reason);
        }
    }
}

/// Runs the worker until `shutdown` completes, then stops taking work,
/// asks running jobs to checkpoint and release their leases, and returns.
/// It serves its training device and, with `jobs.validation_slots` > 0,
/// the validation pool.
pub async fn run(app: App, opts: WorkerOptions, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    // Each attempt in its own process of this binary (`tenfold attempt`).
    let program = std::env::current_exe()?;
    let limit = app.job_settings().attempt_memory_limit_mb;
    let executor = MlExecutor::in_processes(Registry::standard(), program, (limit > 0).then_some(limit));
    let mut pools = vec![Pool { opts: opts.clone(), executor: Arc::new(executor) }];
    let validation_slots = app.job_settings().validation_slots;
    if validation_slots > 0 {
        pools.push(Pool { opts: opts.validation(validation_slots), executor: Arc::new(Validator) });
    }
    run_pools(app, pools, shutdown).await
}

/// [`run`] with another executor and no validation pool (the queue
/// benchmark measures the queue alone with one that finishes at once).
pub async fn run_with(
    app: App,
    opts: WorkerOptions,
    executor: Arc<dyn Executor>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    run_pools(app, vec![Pool { opts, executor }], shutdown).await
}

/// Only the validation pool (an API process that checks its own uploads:
/// the test harness).
pub async fn run_validation(
    app: App,
    id: String,
    slots: usize,
    work_dir: PathBuf,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let base = WorkerOptions { id, slots, device: "cpu".into(), memory_mb: 0, work_dir };
    let pools = vec![Pool { opts: base.validation(slots), executor: Arc::new(Validator) }];
    serve(app, pools, false, shutdown).await
}

/// Serves `pools` until `shutdown`; the loops a process needs once (the
/// rescuer, webhook deliveries) run once.
pub async fn run_pools(app: App, pools: Vec<Pool>, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    serve(app, pools, true, shutdown).await
}

async fn serve(app: App, pools: Vec<Pool>, deliver_webhooks: bool, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    app.ready().await.map_err(|e| anyhow::anyhow!("the worker's backends do not answer: {e}"))?;
    let started = chrono::Utc::now();
    let queue = app.job_queue();
    let mut background = JoinSet::new();
    let mut served = Vec::new();
    for Pool { opts, executor } in pools {
        std::fs::create_dir_all(&opts.work_dir)?;
        let shared = Arc::new(Shared {
            slots: Arc::new(Semaphore::new(opts.slots.max(1))),
            app: app.clone(),
            executor,
            queue: queue.clone(),
            opts: opts.clone(),
            wake: Notify::new(),
            running: Mutex::new(HashMap::new()),
            jobs: tokio::sync::Mutex::new(JoinSet::new()),
            busy: std::sync::atomic::AtomicUsize::new(0),
            memory_in_use: tokio::sync::Mutex::new(0),
            shutting_down: std::sync::atomic::AtomicBool::new(false),
        });
        info!(worker = %opts.id, slots = opts.slots, device = %opts.device, "worker started");
        if served.is_empty() {
            background.spawn(rescuer(shared.clone()));
            if deliver_webhooks {
                background.spawn(crate::webhooks::deliverer(app.clone()));
            }
        }
        background.spawn(registry(shared.clone(), started));
        background.spawn(relay(shared.clone()));
        background.spawn(cancellations(shared.clone()));
        background.spawn(consumer(shared.clone()));
        served.push(shared);
    }

    shutdown.await;
    background.abort_all();
    // Running jobs go on to their next checkpoint, within the grace period.
    let grace = Duration::from_secs_f64(app.job_settings().shutdown_grace_seconds.max(0.0));
    let stopping = served.iter().map(|shared| stop_pool(shared.clone(), grace));
    futures::future::join_all(stopping).await;
    Ok(())
}

/// Stops taking work, lets running jobs release their leases, unregisters.
async fn stop_pool(shared: Arc<Shared>, grace: Duration) {
    let (app, opts) = (&shared.app, &shared.opts);
    info!(worker = %opts.id, "worker stopping: releasing running jobs");
    shared.shutting_down.store(true, std::sync::atomic::Ordering::SeqCst);
    shared.stop_all(StopReason::Shutdown);
    let halt = {
        let shared = shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            shared.each_running(Stop::halt);
        })
    };
    let mut jobs = shared.jobs.lock().await;
    while jobs.join_next().await.is_some() {}
    halt.abort();
    if let Err(e) = app.worker_stopped(&opts.id).await {
        warn!(error = %e, "unregistering the worker failed");
    }
    info!(worker = %opts.id, "worker stopped");
}

/// Keeps the worker's row fresh (capacity for ETAs).
async fn registry(shared: Arc<Shared>, started: chrono::DateTime<chrono::Utc>) {
    loop {
        let o = &shared.opts;
        if let Err(e) = shared.app.worker_alive(&o.id, o.device_type(), o.slots as i32, o.memory_mb, started).await {
            warn!(error = %e, "worker heartbeat failed");
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
}

/// Hands due jobs to the broker whenever this worker has a free slot:
/// woken by submissions (bus), freed slots, and a poll as a fallback.
async fn relay(shared: Arc<Shared>) {
    let mut wakeups: Option<BoxStream<'static, String>> = None;
    let poll = Duration::from_millis(shared.app.job_settings().poll_interval_ms.max(10));
    loop {
        let cap = Capability { device: shared.device().to_owned(), memory_mb: shared.memory_left() };
        if wakeups.is_none() {
            // (Re)subscribe: a Redis restart ends the subscription.
            wakeups = shared.app.bus_subscribe(WAKE_TOPIC).await.ok();
        }
        match shared.app.relay_jobs(&cap, shared.free()).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => warn!(error = %e, "relaying jobs failed; retrying"),
        }
        tokio::select! {
            () = next_wake(&mut wakeups) => {}
            () = shared.wake.notified() => {}
            () = tokio::time::sleep(poll) => {}
        }
    }
}

/// Waits for the next message; a stream that ended is dropped (and the
/// caller polls until it resubscribes).
async fn next_wake(stream: &mut Option<BoxStream<'static, String>>) {
    match stream {
        Some(s) => {
            if s.next().await.is_none() {
                *stream = None;
            }
        }
        None => std::future::pending().await,
    }
}

/// Reads entries while a slot is free; each runs in its own task. Now and
/// then it first takes over an entry of a dead worker (pending longer than
/// a lease) instead.
async fn consumer(shared: Arc<Shared>) {
    let lease = shared.lease();
    let every = (lease / 2).max(Duration::from_millis(200));
    let mut last_reclaim = tokio::time::Instant::now();
    loop {
        let Ok(permit) = shared.slots.clone().acquire_owned().await else { return };
        if last_reclaim.elapsed() >= every {
            last_reclaim = tokio::time::Instant::now();
            match shared.queue.reclaim(shared.device(), &shared.opts.id, lease, 1).await {
                Ok(mut taken) if !taken.is_empty() => {
                    shared.spawn_job(taken.remove(0), permit).await;
                    continue;
                }
                Ok(_) => {}
                Err(e) => warn!(error = %e, "reclaiming entries failed"),
            }
        }
        let read = shared.queue.read(shared.device(), &shared.opts.id, 1, Duration::from_secs(1).min(every)).await;
        match read {
            Ok(mut deliveries) if !deliveries.is_empty() => shared.spawn_job(deliveries.remove(0), permit).await,
            Ok(_) => {}
            Err(e) => {
                warn!(error = %e, "reading from the broker failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Returns to the queue what dead workers and a lost broker left behind,
/// and deletes expired uploads.
async fn rescuer(shared: Arc<Shared>) {
    let every = (shared.lease() / 2).max(Duration::from_millis(200));
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = shared.app.reconcile_jobs().await {
            warn!(error = %e, "reconciling jobs failed");
        }
        // Abandoned resumable uploads and their staged parts.
        if let Err(e) = shared.app.sweep_expired_uploads().await {
            warn!(error = %e, "sweeping expired uploads failed");
        }
    }
}

/// Cancellation requests arrive on the bus so a run stops within a step
/// (the heartbeat notices them too, a little later, if a message is lost).
async fn cancellations(shared: Arc<Shared>) {
    loop {
        if let Ok(mut requests) = shared.app.bus_subscribe(CANCEL_TOPIC).await {
            while let Some(raw) = requests.next().await {
                if let Ok(job) = raw.parse::<Uuid>() {
                    shared.stop_job(job, StopReason::Cancel);
                }
            }
        }
        // The subscription ended (broker restart): subscribe again.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One broker entry, from claim to acknowledgement.
async fn handle(shared: Arc<Shared>, delivery: Delivery, permit: OwnedSemaphorePermit) {
    let device = shared.device().to_owned();
    let queue = shared.queue.clone();
    let message = match &delivery.message {
        Ok(m) => *m,
        Err(reason) => {
            // Retrying cannot fix a malformed entry.
            error!(entry = %delivery.id, reason = %reason, "malformed job entry dead-lettered");
            let _ = queue.dead_letter(&device, &delivery, &format!("malformed entry: {reason}")).await;
            drop(permit);
            return;
        }
    };
    let claimed = {
        let mut in_use = shared.memory_in_use.lock().await;
        let left = shared.opts.memory_mb.saturating_sub(*in_use).max(0);
        match shared.app.claim_job(message, &shared.opts.id, left).await {
            Ok(c) => {
                if let Claimed::Run(lease) = &c {
                    *in_use += lease.job.memory_mb;
                }
                c
            }
            Err(e) => {
                // Left pending: reclaimed after the lease time and tried again.
                warn!(job = %message.job, error = %e, "claiming a job failed");
                return;
            }
        }
    };
    let lease = match claimed {
        Claimed::Skip(why) => {
            info!(job = %message.job, why, "entry acknowledged without running");
            let _ = queue.ack(&device, &delivery.id).await;
            drop(permit);
            return;
        }
        Claimed::GaveUp(reason) => {
            warn!(job = %message.job, reason = %reason, "job dead-lettered");
            let _ = queue.dead_letter(&device, &delivery, &reason).await;
            drop(permit);
            return;
        }
        Claimed::Run(lease) => lease,
    };
    info!(job = %message.job, attempt = lease.fence.attempt, "job started");
    let stop = Arc::new(Stop::default());
    shared.running.lock().unwrap_or_else(|p| p.into_inner()).insert(lease.fence.job, stop.clone());
    if shared.shutting_down.load(std::sync::atomic::Ordering::SeqCst) {
        // Started during shutdown: nothing to save, stop at once.
        stop.request(StopReason::Shutdown);
        stop.halt();
    }
    let heart = tokio::spawn(heartbeat(shared.clone(), (*lease).clone(), delivery.id.clone(), stop.clone()));
    let opts = ExecOptions {
        work_dir: shared.opts.work_dir.clone(),
        device: shared.opts.device.clone(),
        step_event_interval: Duration::from_millis(shared.app.job_settings().step_event_interval_ms),
    };
    let ending = shared.executor.execute(&shared.app, &lease, &stop, &opts).await;
    heart.abort();
    *shared.memory_in_use.lock().await -= lease.job.memory_mb;
    shared.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&lease.fence.job);
    info!(job = %message.job, attempt = lease.fence.attempt, ending = ?ending, "job attempt ended");
    finish_entry(&*queue, &device, &delivery, &lease, ending).await;
    drop(permit);
}

async fn finish_entry(queue: &dyn JobQueue, device: &str, delivery: &Delivery, lease: &LeasedJob, ending: Ending) {
    let result = match ending {
        Ending::Failed(FailOutcome::DeadLettered) => {
            let reason = format!("job {} failed {} times", lease.fence.job, lease.job.failures + 1);
            queue.dead_letter(device, delivery, &reason).await
        }
        // A worker that lost the job never acknowledges: the entry may now
        // be the new owner's (reclaimed), and acking it would drop their claim.
        Ending::Lost => Ok(()),
        _ => queue.ack(device, &delivery.id).await,
    };
    if let Err(e) = result {
        // The database has the outcome; the entry is reclaimed later and
        // its claim finds nothing to do.
        warn!(error = %e, "acknowledging a job entry failed");
    }
}

/// Extends the lease every third of it, keeps the broker entry from
/// looking idle, and stops the run when the lease is lost, when no
/// heartbeat got through for a whole lease (another worker may have taken
/// the job by now), or when the user cancels.
async fn heartbeat(shared: Arc<Shared>, lease: LeasedJob, entry: String, stop: Arc<Stop>) {
    let every = shared.lease() / 3;
    let mut last_held = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(every).await;
        match shared.app.heartbeat_job(&lease).await {
            Ok(Held::Yes { cancel_requested }) => {
                last_held = tokio::time::Instant::now();
                if cancel_requested {
                    stop.request(StopReason::Cancel);
                }
                // Only a holder refreshes its entry: touching it otherwise
                // would take it back from the worker that owns the job now.
                if let Err(e) = shared.queue.touch(shared.device(), &shared.opts.id, &entry).await {
                    warn!(error = %e, "touching the job entry failed");
                }
            }
            Ok(Held::Lost) => {
                warn!(job = %lease.fence.job, attempt = lease.fence.attempt, "lease lost to a newer attempt; stopping");
                stop.request(StopReason::Lost);
                return;
            }
            Err(e) => {
                warn!(job = %lease.fence.job, error = %e, "heartbeat failed");
                if last_held.elapsed() >= shared.lease() {
                    warn!(job = %lease.fence.job, "no heartbeat got through for a whole lease; stopping");
                    stop.request(StopReason::Lost);
                    return;
                }
            }
        }
    }
}
