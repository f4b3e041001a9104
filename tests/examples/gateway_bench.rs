//! Hosted endpoint benchmarks, side by side in one run (issue 12):
//!
//! 1. gateway overhead: latency through the full path (HTTP, auth, rate
//!    limit, quota reservation, batching queue, metering commit) minus the
//!    bare model call (`Served::predict` on the same input, in process),
//!    at the same load (closed loop, 1 and 4 callers);
//! 2. throughput with dynamic batching (max 32, 2 ms) vs batch 1 on
//!    `cnn-small`, 32 concurrent callers of single-image requests: through
//!    the gateway, and at the serving runtime alone (`Runtime::infer`, the
//!    queue and model threads without HTTP, auth or metering);
//! 3. cold start: a new endpoint's first answer (load from blob storage)
//!    vs a warm answer.
//!
//! ```sh
//! CARGO_PROFILE_DEV_OPT_LEVEL=2 CARGO_PROFILE_DEV_DEBUG_ASSERTIONS=false CARGO_PROFILE_DEV_OVERFLOW_CHECKS=false \
//!   cargo build --workspace --examples --bins
//! $CARGO_TARGET_DIR/debug/examples/gateway_bench [SECONDS_PER_ROW]
//! ```
//! (the `tenfold` binary next to it trains the model; results in docs/benchmarks.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tenfold_domain::{EndpointId, Family, ModelVersionId, OrgId, Scaling};
use tenfold_serving::{Device, ModelFiles, Registry, Runtime, RuntimeOptions, ServeInput, ServeTarget};
use tenfold_tests::{Session, TestApp};

const SIDE: usize = 28;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn image(seed: usize) -> Vec<f32> {
    (0..SIDE * SIDE).map(|i| ((i * 31 + seed * 17) % 255) as f32 / 255.0).collect()
}

fn request_body(seed: usize) -> String {
    json!({ "inputs": [{ "name": "pixels", "shape": [1, 1, SIDE, SIDE], "datatype": "FP32", "data": image(seed) }] }).to_string()
}

async fn deploy(app: &TestApp, s: &Session, version: &str, slug: &str, batch: u32, delay_ms: u32) {
    app.gql(
        "mutation($i: DeployModelInput!) { deployModel(input: $i) { id } }",
        json!({ "i": { "modelVersionId": version, "slug": slug, "maxBatchSize": batch, "maxBatchDelayMs": delay_ms } }),
        Some(&s.access),
    )
    .await
    .ok();
}

/// `callers` closed-loop clients for `window`; every latency and the answered count.
async fn load(app: &TestApp, key: &str, slug: &str, callers: usize, window: Duration) -> (Vec<Duration>, usize) {
    let url = Arc::new(app.url(&format!("/v2/models/{slug}/infer")));
    let until = Instant::now() + window;
    let mut tasks = Vec::new();
    for c in 0..callers {
        let (client, url, key) = (reqwest::Client::new(), url.clone(), key.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0;
            while Instant::now() < until {
                let body = request_body(c * 1000 + n);
                let started = Instant::now();
                let res =
                    client.post(url.as_str()).bearer_auth(&key).header("content-type", "application/json").body(body).send().await.unwrap();
                let status = res.status();
                let _ = res.bytes().await.unwrap();
                assert!(status.is_success(), "{status}");
                latencies.push(started.elapsed());
                n += 1;
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    let n = all.len();
    (all, n)
}

/// The bare model call: the same input through `Served::predict`, from
/// `callers` threads for `window`.
fn bare(model_dir: &std::path::Path, callers: usize, window: Duration) -> Vec<Duration> {
    let until = Instant::now() + window;
    let handles: Vec<_> = (0..callers)
        .map(|c| {
            let dir = model_dir.to_owned();
            std::thread::spawn(move || {
                let family = Registry::standard();
                let served = family.get(Family::ImageClassification).unwrap().load_for_serving(&dir, &Device::Cpu).unwrap();
                let mut latencies = Vec::new();
                let mut n = 0;
                while Instant::now() < until {
                    let input = pixels(c * 1000 + n);
                    let started = Instant::now();
                    served.predict(&[input]).unwrap();
                    latencies.push(started.elapsed());
                    n += 1;
                }
                latencies
            })
        })
        .collect();
    let mut all: Vec<Duration> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    all.sort();
    all
}

/// The model's files, already on local disk.
struct LocalFiles(std::path::PathBuf);

#[async_trait::async_trait]
impl ModelFiles for LocalFiles {
    async fn fetch(&self, _: OrgId, _: ModelVersionId) -> Result<std::path::PathBuf, String> {
        Ok(self.0.clone())
    }
}

/// `callers` tasks calling the serving runtime directly for `window`; the
/// requests answered and the mean batch they were answered in.
async fn runtime_load(dir: &std::path::Path, batch: u32, delay_ms: u32, callers: usize, window: Duration) -> (usize, f64) {
    let runtime = Runtime::new(Registry::standard(), Device::Cpu, Arc::new(LocalFiles(dir.to_owned())), RuntimeOptions::default());
    let version = ModelVersionId::new();
    let scaling = Scaling { max_batch_size: batch, max_batch_delay_ms: delay_ms, ..Scaling::DEFAULT };
    let target = ServeTarget {
        org: OrgId::new(),
        endpoint: EndpointId::new(),
        label: "bench".into(),
        version,
        family: Family::ImageClassification,
        scaling: scaling.check().unwrap(),
        live: vec![version],
    };
    // Loaded before the clock starts.
    runtime.infer(&target, vec![pixels(0)]).await.unwrap();
    let until = Instant::now() + window;
    let tasks: Vec<_> = (0..callers)
        .map(|c| {
            let (runtime, target) = (runtime.clone(), target.clone());
            tokio::spawn(async move {
                let (mut n, mut batched) = (0usize, 0usize);
                while Instant::now() < until {
                    let answer = runtime.infer(&target, vec![pixels(c * 1000 + n)]).await.unwrap();
                    n += 1;
                    batched += answer.batch_size;
                }
                (n, batched)
            })
        })
        .collect();
    let (mut n, mut batched) = (0, 0);
    for t in tasks {
        let (a, b) = t.await.unwrap();
        n += a;
        batched += b;
    }
    runtime.retire(target.endpoint, &[]);
    (n, batched as f64 / n.max(1) as f64)
}

fn pixels(seed: usize) -> ServeInput {
    ServeInput::Pixels { name: "image 0".into(), shape: [1, SIDE, SIDE], values: image(seed) }
}

/// The one model folder the gateway fetched for serving.
fn served_dir(app: &TestApp) -> std::path::PathBuf {
    let root = app.settings.storage.data_dir.join("serving");
    let org = std::fs::read_dir(&root).unwrap().next().unwrap().unwrap().path();
    std::fs::read_dir(org).unwrap().map(|e| e.unwrap().path()).find(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.')).unwrap()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let window = Duration::from_secs(std::env::args().nth(1).map_or(10, |s| s.parse().unwrap()));
    let app = TestApp::spawn_with(|s| {
        s.rate_limits.ip_per_minute = 100_000_000;
        s.rate_limits.org_per_minute = 100_000_000;
        s.server.workers = 2;
    })
    .await;
    let s = app.sign_up("bench@example.com", "Bench").await;
    let worker = app.spawn_worker_with(2, &[]);
    let zip = tenfold_tests::mnist_subset(&["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"], 30);
    let dataset = app.ready_images(&s.access, "digits", zip).await;
    let job = app
        .submit_job(&s.access, &dataset, json!({ "architecture": "cnn-small", "hyperparameters": { "epochs": 1, "batchSize": 32 } }))
        .await
        .ok()
        .str_at("/submitJob/id");
    let done =
        app.wait_job(&s.access, &job, Duration::from_secs(600), |j| matches!(j["status"].as_str(), Some("SUCCEEDED" | "FAILED"))).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done:#}");
    drop(worker);
    let version = done["modelVersionId"].as_str().unwrap().to_owned();
    let (_, key) = app.api_key(&s, &["endpoints:invoke"]).await;

    deploy(&app, &s, &version, "single", 1, 0).await;
    deploy(&app, &s, &version, "batched", 32, 2).await;
    // Warm both (load the model, fill the caches).
    for slug in ["single", "batched"] {
        load(&app, &key, slug, 1, Duration::from_secs(1)).await;
    }
    let dir = served_dir(&app);

    println!("## gateway overhead (window {} s per row)", window.as_secs());
    println!("| callers | path | requests | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|");
    let mut overhead = Vec::new();
    for callers in [1, 4] {
        let (full, n) = load(&app, &key, "single", callers, window).await;
        let dir = dir.clone();
        let model = tokio::task::spawn_blocking(move || bare(&dir, callers, window)).await.unwrap();
        for (name, l, n) in [("full (HTTP → batch 1 endpoint)", &full, n), ("bare model call", &model, model.len())] {
            println!("| {callers} | {name} | {n} | {:.3} | {:.3} |", ms(percentile(l, 0.5)), ms(percentile(l, 0.99)));
        }
        overhead.push((
            callers,
            ms(percentile(&full, 0.5)) - ms(percentile(&model, 0.5)),
            ms(percentile(&full, 0.99)) - ms(percentile(&model, 0.99)),
        ));
    }
    for (callers, p50, p99) in overhead {
        println!("overhead at {callers} caller(s): p50 +{p50:.3} ms, p99 +{p99:.3} ms");
    }

    println!("\n## dynamic batching vs batch 1 (32 callers, single-image requests)");
    println!("| endpoint | requests | requests/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|");
    let mut rates = Vec::new();
    for slug in ["single", "batched", "single", "batched"] {
        let (l, n) = load(&app, &key, slug, 32, window).await;
        let rate = n as f64 / window.as_secs_f64();
        println!("| {slug} | {n} | {rate:.0} | {:.2} | {:.2} |", ms(percentile(&l, 0.5)), ms(percentile(&l, 0.99)));
        rates.push((slug, rate));
    }
    let best = |name: &str| rates.iter().filter(|(s, _)| *s == name).map(|(_, r)| *r).fold(0.0, f64::max);
    println!("batched / batch 1 throughput: {:.2}×", best("batched") / best("single"));

    println!("\n## dynamic batching at the serving runtime (64 callers, single-image requests, no HTTP)");
    println!("| scaling | requests | requests/s | mean batch |");
    println!("|---|---|---|---|");
    let mut runtime_rates = Vec::new();
    for (name, batch, delay) in [("batch 1", 1, 0), ("batch ≤ 32, 2 ms", 32, 2), ("batch 1", 1, 0), ("batch ≤ 32, 2 ms", 32, 2)] {
        let (n, mean_batch) = runtime_load(&dir, batch, delay, 64, window).await;
        let rate = n as f64 / window.as_secs_f64();
        println!("| {name} | {n} | {rate:.0} | {mean_batch:.1} |");
        runtime_rates.push((batch, rate));
    }
    let best = |b: u32| runtime_rates.iter().filter(|(x, _)| *x == b).map(|(_, r)| *r).fold(0.0, f64::max);
    println!("runtime batched / batch 1 throughput: {:.2}×", best(32) / best(1));

    println!("\n## cold start (a new endpoint's first answer vs a warm answer)");
    println!("| round | model files | first answer ms | gateway's coldStartMs | warm answer ms |");
    println!("|---|---|---|---|---|");
    let client = reqwest::Client::new();
    for round in 0..6 {
        let slug = format!("cold-{round}");
        // Half the rounds copy the files from blob storage again (a fresh
        // replica); half find them on local disk (scale-from-zero in place).
        let from_blobs = round % 2 == 0;
        if from_blobs {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        deploy(&app, &s, &version, &slug, 1, 0).await;
        let url = app.url(&format!("/v2/models/{slug}/infer"));
        let mut answers = Vec::new();
        for i in 0..2 {
            let started = Instant::now();
            let res =
                client.post(&url).bearer_auth(&key).header("content-type", "application/json").body(request_body(i)).send().await.unwrap();
            assert!(res.status().is_success());
            let _ = res.bytes().await.unwrap();
            answers.push(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let recorded = app
            .gql("{ endpoints(first: 50) { nodes { slug coldStartMs } } }", json!({}), Some(&s.access))
            .await
            .ok()
            .at("/endpoints/nodes")
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["slug"] == slug.as_str())
            .map(|e| e["coldStartMs"].clone())
            .unwrap();
        let files = if from_blobs { "blob storage" } else { "local disk" };
        println!("| {round} | {files} | {:.1} | {recorded} | {:.2} |", ms(answers[0]), ms(answers[1]));
    }
}
