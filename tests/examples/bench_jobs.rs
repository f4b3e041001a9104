//! The job queue's benchmark: submit → worker-start latency (p50/p99) and
//! jobs per second through an idle worker pool, plus a no-loss check over
//! many jobs. Workers run the real loops (relay, claims, leases, fenced
//! writes, acknowledgements) with an executor that succeeds at once, so the
//! numbers are the queue's, not the training's.
//!
//!   cargo run -p tenfold-tests --example bench_jobs -- [LATENCY_JOBS] [BULK_JOBS] [WORKERS] [SLOTS]
//!
//! Backends as in the tests: embedded by default (SQLite + in-process
//! broker); `TENFOLD_TEST_DATABASE_URL` / `TENFOLD_TEST_REDIS_URL` for
//! PostgreSQL / Redis. Results go to docs/benchmarks.md.

// A benchmark program: it prints its report and fails loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use tenfold_app::job_worker::Produced;
use tenfold_app::{App, LeasedJob};
use tenfold_tests::{TestApp, mnist_subset};
use tenfold_worker::{Ending, ExecOptions, Executor, Stop, WorkerOptions, written};

/// Succeeds at once: the queue is all that is measured.
struct Instantly;

#[async_trait::async_trait]
impl Executor for Instantly {
    async fn execute(&self, app: &App, lease: &LeasedJob, _stop: &Stop, _opts: &ExecOptions) -> Ending {
        let produced = Produced {
            architecture: "cnn-tiny".into(),
            classes: vec!["0".into(), "1".into()],
            files: Default::default(),
            size_bytes: 0,
            metrics: json!({}),
            compute_seconds: 0.001,
            engine: None,
            training: serde_json::Value::Null,
        };
        written(app.succeed_job(lease, produced).await, Ending::Succeeded)
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn count(app: &TestApp, org: tenfold_domain::OrgId, sql: &str) -> i64 {
    let tx = app.app.store().tenant(org, None).await.unwrap();
    let backend = app.app.store().backend();
    let row = tx.conn().query_one_raw(Statement::from_string(backend, sql.to_owned())).await.unwrap().unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

async fn wait_all(app: &TestApp, org: tenfold_domain::OrgId, n: i64) {
    loop {
        if count(app, org, "SELECT COUNT(*) AS n FROM jobs WHERE status = 'SUCCEEDED'").await >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// (created_at → started_at) of every job, in milliseconds.
async fn start_latencies(app: &TestApp, org: tenfold_domain::OrgId) -> Vec<f64> {
    let tx = app.app.store().tenant(org, None).await.unwrap();
    let backend = app.app.store().backend();
    let rows = tx
        .conn()
        .query_all_raw(Statement::from_string(backend, "SELECT created_at, started_at FROM jobs WHERE started_at IS NOT NULL".to_owned()))
        .await
        .unwrap();
    let mut out: Vec<f64> = rows
        .iter()
        .map(|r| {
            let (c, s): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) =
                (r.try_get("", "created_at").unwrap(), r.try_get("", "started_at").unwrap());
            (s - c).num_microseconds().unwrap() as f64 / 1000.0
        })
        .collect();
    out.sort_by(f64::total_cmp);
    out
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("numbers")).collect();
    let (latency_jobs, bulk_jobs, workers, slots) = (
        args.first().copied().unwrap_or(200),
        args.get(1).copied().unwrap_or(10_000),
        args.get(2).copied().unwrap_or(4),
        args.get(3).copied().unwrap_or(4),
    );
    let app = TestApp::spawn_with(|s| {
        s.database.max_connections = 16;
        s.jobs.lease_seconds = 30.0;
        s.jobs.redispatch_after_seconds = 30.0;
        s.jobs.poll_interval_ms = 1000;
    })
    .await;
    let broker = if tenfold_config::ExposeSecret::expose_secret(&app.settings.redis.url).is_empty() { "in-process" } else { "redis" };
    let database = if app.db.is_postgres() { "postgresql" } else { "sqlite" };
    let owner = app.sign_up("bench@example.com", "Bench").await;
    app.app.set_plan(owner.org(), tenfold_domain::Plan::Enterprise).await.unwrap();
    // Submitted with an API key: no email per job, the queue alone.
    let (_, key) = app.api_key(&owner, &["jobs:write", "jobs:read", "datasets:write", "datasets:read"]).await;
    let data = app.ready_images(&owner.access, "digits", mnist_subset(&["0", "1"], 10)).await;
    let org = owner.org();

    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut pool = Vec::new();
    for w in 0..workers {
        let opts = WorkerOptions {
            id: format!("bench-{w}-{}", std::process::id()),
            slots,
            device: "cpu".into(),
            memory_mb: 8192,
            work_dir: app.settings.storage.data_dir.join(format!("work-{w}")),
        };
        let mut stop = stop_tx.subscribe();
        pool.push(tokio::spawn(tenfold_worker::run_with(app.app.clone(), opts, Arc::new(Instantly), async move {
            let _ = stop.recv().await;
        })));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // 1. Latency through an idle pool: one job at a time.
    for i in 0..latency_jobs {
        let id = app.submit_job(&key, &data, json!({ "idempotencyKey": format!("latency-{i}") })).await.ok().str_at("/submitJob/id");
        loop {
            let s = app.gql("query($id: ID!) { job(id: $id) { status } }", json!({ "id": id }), Some(&key)).await.ok();
            if s.at("/job/status") == "SUCCEEDED" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let lat = start_latencies(&app, org).await;
    let (p50, p99, max) = (percentile(&lat, 0.5), percentile(&lat, 0.99), lat[lat.len() - 1]);

    // 2. Throughput and no loss: a burst of jobs, 16 submitters at once.
    let started = Instant::now();
    let per = bulk_jobs.div_ceil(16);
    let mut submitters = Vec::new();
    for s in 0..16 {
        let (client, url, key, data) = (app.client.clone(), app.url("/graphql"), key.clone(), data.clone());
        let n = per.min(bulk_jobs.saturating_sub(s * per));
        submitters.push(tokio::spawn(async move {
            for _ in 0..n {
                let body = json!({ "query": tenfold_tests::SUBMIT, "variables": { "i": { "kind": "FINE_TUNE", "family": "IMAGE_CLASSIFICATION",
                    "datasetVersionId": data, "architecture": "cnn-tiny", "hyperparameters": { "epochs": 1 } } } });
                let res = client.post(&url).bearer_auth(&key).json(&body).send().await.unwrap();
                let v: serde_json::Value = res.json().await.unwrap();
                assert!(v["errors"].is_null(), "{v}");
            }
        }));
    }
    for s in submitters {
        s.await.unwrap();
    }
    let submitted_in = started.elapsed().as_secs_f64();
    let total = (latency_jobs + bulk_jobs) as i64;
    wait_all(&app, org, total).await;
    let drained_in = started.elapsed().as_secs_f64();
    let _ = stop_tx.send(());
    for w in pool {
        w.await.unwrap().unwrap();
    }

    let succeeded = count(&app, org, "SELECT COUNT(*) AS n FROM jobs WHERE status = 'SUCCEEDED'").await;
    let twice = count(&app, org, "SELECT COUNT(*) AS n FROM jobs WHERE attempt <> 1").await;
    let models = count(&app, org, "SELECT COUNT(*) AS n FROM model_versions").await;
    let ends = count(&app, org, "SELECT COUNT(*) AS n FROM job_events WHERE kind = 'status' AND payload LIKE '%SUCCEEDED%'").await;
    let bulk_lat = start_latencies(&app, org).await;
    let report = json!({
        "database": database, "broker": broker, "workers": workers, "slots_per_worker": slots,
        "idle_latency_ms": { "jobs": latency_jobs, "p50": p50, "p99": p99, "max": max },
        "bulk": { "jobs": bulk_jobs, "submit_per_s": bulk_jobs as f64 / submitted_in, "jobs_per_s": bulk_jobs as f64 / drained_in,
                  "seconds": drained_in, "start_latency_p50_ms": percentile(&bulk_lat, 0.5), "start_latency_p99_ms": percentile(&bulk_lat, 0.99) },
        "no_loss": { "submitted": total, "succeeded": succeeded, "claimed_more_than_once": twice, "model_versions": models, "succeeded_events": ends },
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    assert_eq!((succeeded, twice, models, ends), (total, 0, total, total), "jobs lost or run twice");
}
