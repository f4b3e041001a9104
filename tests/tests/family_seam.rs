//! The family seam: a model family defined here, in the test suite, and
//! registered once goes through submission (schema, ranges, estimate),
//! the worker, the model version's report and the CLI without any other
//! crate knowing it. It takes the RECOMMENDATION slot (registering it
//! replaces the engine's own recommendation family): a popularity ranking
//! of the interactions file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use serde_json::{Value, json};
use tenfold_domain::{Architecture, DataStats, Estimate, Family, FamilyPlan, JobShape, ParamSpec};
use tenfold_ml::family::{Evaluated, ModelFamily, Registry, TrainJob, Trained};
use tenfold_ml::train::Control;
use tenfold_ml::{Device, MlError};
use tenfold_tests::{SUBMIT, TestApp};
use tenfold_worker::{MlExecutor, WorkerOptions};

struct Popularity {
    architectures: Vec<Architecture>,
    hyperparameters: Vec<ParamSpec>,
}

impl Popularity {
    fn new() -> Self {
        Self {
            architectures: vec![Architecture {
                name: "popularity",
                description: "items ranked by how many interactions they have",
                cpu_samples_per_s: 1e6,
                parameters: 0,
                activations_per_sample: 0,
                student: false,
            }],
            hyperparameters: vec![
                ParamSpec::integer("topK", 1, 100, Some(10), "items kept in the ranking"),
                ParamSpec::integer("reserveMb", 16, 100_000, Some(64), "memory the job reserves"),
                ParamSpec::integer("holdMs", 0, 10_000, Some(0), "how long training takes"),
            ],
        }
    }
}

impl FamilyPlan for Popularity {
    fn family(&self) -> Family {
        Family::Recommendation
    }
    fn architectures(&self) -> &[Architecture] {
        &self.architectures
    }
    fn hyperparameters(&self) -> &[ParamSpec] {
        &self.hyperparameters
    }
    fn kinds(&self) -> &[tenfold_domain::JobKind] {
        &[tenfold_domain::JobKind::FineTune]
    }
    fn estimate(&self, data: &DataStats, job: &JobShape<'_>) -> Estimate {
        let interactions = data.raw["interactions"].as_u64().unwrap_or(0);
        let hold = job.hyperparameters.int("holdMs").unwrap() / 1000;
        Estimate { seconds: 3 + hold + interactions as i64 / 1000, memory_mb: job.hyperparameters.int("reserveMb").unwrap() as i32 }
    }
}

/// Item ids by interaction count, most first (ties by id).
fn ranking(csv: &str) -> Vec<(String, u64)> {
    let mut counts = BTreeMap::<String, u64>::new();
    for line in csv.lines().skip(1) {
        if let Some(item) = line.split(',').nth(1) {
            *counts.entry(item.trim().to_owned()).or_default() += 1;
        }
    }
    let mut ranked: Vec<(String, u64)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked
}

impl ModelFamily for Popularity {
    fn train(&self, job: &TrainJob<'_>, control: Control<'_>) -> tenfold_ml::Result<Trained> {
        let csv = std::fs::read_to_string(job.data).map_err(MlError::io(job.data))?;
        std::thread::sleep(Duration::from_millis(job.hyperparameters.int("holdMs").unwrap() as u64));
        if control.cancel.is_some_and(|c| c.load(std::sync::atomic::Ordering::SeqCst)) {
            return Err(MlError::Cancelled);
        }
        let mut top = ranking(&csv);
        top.truncate(job.hyperparameters.int("topK").unwrap() as usize);
        std::fs::create_dir_all(job.out).map_err(MlError::io(job.out))?;
        let report = json!({ "family": "recommendation", "architecture": "popularity", "top": top });
        std::fs::write(job.out.join("report.json"), report.to_string()).map_err(MlError::io(job.out))?;
        let items: Vec<String> = top.iter().map(|(item, _)| item.clone()).collect();
        Ok(Trained {
            architecture: "popularity".into(),
            classes: items.clone(),
            summary: json!({ "top_items": items }),
            text: format!("top items: {}\n", items.join(", ")),
        })
    }

    fn evaluate(&self, _model: &Path, _data: &Path, _device: &Device) -> tenfold_ml::Result<Evaluated> {
        Err(MlError::Unsupported("evaluating popularity rankings".into()))
    }
}

fn families() -> Registry {
    Registry::standard().with(Arc::new(Popularity::new()))
}

const INTERACTIONS: &str = "user_id,item_id,rating\n1,10,5\n2,10,4\n3,10,3\n1,20,2\n2,20,5\n4,30,1\n5,40,4\n5,10,2\n";

async fn ready_interactions(app: &TestApp, bearer: &str) -> String {
    let res = app.upload(Some(bearer), "ratings", "RECOMMENDATION", "r.csv", INTERACTIONS.as_bytes().to_vec()).await.ok();
    let id = res.str_at("/uploadDataset/id");
    assert_eq!(app.wait_validated(bearer, &id).await["status"], "READY");
    id
}

fn submit_input(dataset: &str, hyperparameters: Value) -> Value {
    json!({ "i": { "kind": "FINE_TUNE", "family": "RECOMMENDATION", "datasetVersionId": dataset,
        "architecture": "popularity", "hyperparameters": hyperparameters } })
}

/// An in-process worker with the test's families, until the returned sender is dropped or fired.
fn start_worker(app: &TestApp, slots: usize, memory_mb: i32) -> tokio::sync::oneshot::Sender<()> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let opts = WorkerOptions {
        id: format!("seam-{}", uuid::Uuid::new_v4().simple()),
        slots,
        device: "cpu".into(),
        memory_mb,
        work_dir: app.settings.storage.data_dir.join("work"),
    };
    let executor = Arc::new(MlExecutor::new(families()));
    tokio::spawn(tenfold_worker::run_with(app.app.clone(), opts, executor, async move {
        let _ = stopped.await;
    }));
    stop
}

const FAMILIES: &str = "{ families { family kinds architectures { name } hyperparameters { name type default min max } } }";
const MODEL: &str = "query($id: ID!) { modelVersion(id: $id) { family architecture classes metrics } }";

#[tokio::test]
async fn a_family_registered_in_the_test_suite_is_planned_run_reported_and_trained_from_the_cli() {
    let app = TestApp::spawn_with_families(&families(), |_| {}).await;
    let owner = app.sign_up("ada@example.com", "Acme").await;

    // The schema shows the family as its plan declares it.
    let listed = app.gql(FAMILIES, json!({}), Some(&owner.access)).await.ok();
    let recommendation = listed.at("/families").as_array().unwrap().iter().find(|f| f["family"] == "RECOMMENDATION").unwrap().clone();
    assert_eq!(recommendation["architectures"], json!([{ "name": "popularity" }]));
    assert_eq!(recommendation["kinds"], json!(["FINE_TUNE"]));
    let top_k = recommendation["hyperparameters"].as_array().unwrap().iter().find(|h| h["name"] == "topK").unwrap().clone();
    assert_eq!(top_k, json!({ "name": "topK", "type": "INTEGER", "default": 10, "min": 1.0, "max": 100.0 }));

    // Its ranges are checked as sent, nothing is queued for a bad value.
    let dataset = ready_interactions(&app, &owner.access).await;
    let bad = app.gql(SUBMIT, submit_input(&dataset, json!({ "topK": -1, "epochs": 3 })), Some(&owner.access)).await;
    assert_eq!(bad.first_code(), "BAD_USER_INPUT", "{:#}", bad.body);
    assert_eq!(bad.errors()[0]["extensions"]["field"], "hyperparameters.topK");
    assert!(bad.first_message().contains("-1 is out of range; use 1 to 100"), "{}", bad.first_message());
    assert!(bad.first_message().contains("\"epochs\" is not a hyperparameter of RECOMMENDATION"), "{}", bad.first_message());
    let some_model = tenfold_graphql::GlobalId::new(tenfold_graphql::NodeKind::ModelVersion, uuid::Uuid::now_v7()).encode();
    let evaluate =
        json!({ "i": { "kind": "EVALUATE", "family": "RECOMMENDATION", "datasetVersionId": dataset, "baseModelVersionId": some_model } });
    let refused = app.gql(SUBMIT, evaluate, Some(&owner.access)).await;
    assert!(refused.first_message().contains("cannot run EVALUATE jobs"), "{:#}", refused.body);
    let jobs = app.gql("{ jobs(first: 5) { edges { node { id } } } }", json!({}), Some(&owner.access)).await.ok();
    assert_eq!(jobs.at("/jobs/edges").as_array().unwrap().len(), 0);

    // Its estimate prices the job; its defaults fill the hyperparameters.
    let queued = app.gql(SUBMIT, submit_input(&dataset, json!({ "topK": 2 })), Some(&owner.access)).await.ok();
    assert_eq!(queued.at("/submitJob/estimateSeconds"), 3);
    let job_id = queued.str_at("/submitJob/id");

    // A worker runs it through the family; the model version carries its report.
    let _worker = start_worker(&app, 1, 4096);
    let done = app.wait_status(&owner.access, &job_id, "SUCCEEDED", Duration::from_secs(30)).await;
    let hyper = app.gql("query($id: ID!) { job(id: $id) { hyperparameters } }", json!({ "id": job_id }), Some(&owner.access)).await.ok();
    assert_eq!(hyper.at("/job/hyperparameters"), &json!({ "topK": 2, "reserveMb": 64, "holdMs": 0 }));
    let version = app.gql(MODEL, json!({ "id": done["modelVersionId"] }), Some(&owner.access)).await.ok();
    let expected: Vec<String> = ranking(INTERACTIONS).into_iter().take(2).map(|(item, _)| item).collect();
    assert_eq!(expected, ["10", "20"]);
    assert_eq!(version.at("/modelVersion/family"), "RECOMMENDATION");
    assert_eq!(version.at("/modelVersion/architecture"), "popularity");
    assert_eq!(version.at("/modelVersion/metrics"), &json!({ "top_items": expected }));

    // The CLI trains it from the same registry, with the same checks.
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        train: tenfold_cli::ml::TrainArgs,
    }
    let dir = tempfile_dir();
    let data = dir.join("ratings.csv");
    std::fs::write(&data, INTERACTIONS).unwrap();
    let out = dir.join("model");
    let args = |top: &str| {
        Cli::try_parse_from(
            ["train", "--family", "recommendation", "--arch", "popularity", "--param", top, "--data"].iter().copied().chain([
                data.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ]),
        )
        .unwrap()
    };
    let err = tenfold_cli::ml::train(&families(), &args("topK=0").train).unwrap_err();
    assert_eq!(err.to_string(), "--param: 0 is out of range; use 1 to 100");
    assert!(!out.exists(), "nothing is written for a bad value");
    tenfold_cli::ml::train(&families(), &args("topK=3").train).unwrap();
    let report: Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["top"], json!([["10", 4], ["20", 2], ["30", 1]]));

    // Without the registration the slot is the engine's own family, which has no such architecture.
    let unknown = tenfold_cli::ml::train(&Registry::standard(), &args("topK=3").train).unwrap_err();
    assert!(unknown.to_string().contains("unknown architecture \"popularity\" for RECOMMENDATION"), "{unknown}");
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tenfold-seam-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// When: (started, finished) of a finished job.
async fn span(app: &TestApp, bearer: &str, id: &str) -> (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) {
    let job = app.wait_status(bearer, id, "SUCCEEDED", Duration::from_secs(30)).await;
    let at = |k: &str| job[k].as_str().unwrap().parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    (at("startedAt"), at("finishedAt"))
}

#[tokio::test]
async fn a_worker_claims_only_the_jobs_that_fit_the_memory_it_has_left() {
    let app = TestApp::spawn_with_families(&families(), |_| {}).await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    app.app.set_plan(owner.org(), tenfold_domain::Plan::Pro).await.unwrap();
    let dataset = ready_interactions(&app, &owner.access).await;
    let submit = |reserve: i64| {
        let input = submit_input(&dataset, json!({ "reserveMb": reserve, "holdMs": 1500 }));
        let (app, bearer) = (&app, owner.access.clone());
        async move { app.gql(SUBMIT, input, Some(&bearer)).await.ok().str_at("/submitJob/id") }
    };
    // Two slots and 1000 MB: two 400 MB jobs run side by side…
    let (a, b) = (submit(400).await, submit(400).await);
    let worker = start_worker(&app, 2, 1000);
    let ((a0, a1), (b0, b1)) = (span(&app, &owner.access, &a).await, span(&app, &owner.access, &b).await);
    assert!(a0 < b1 && b0 < a1, "jobs that fit together overlap: {a0}–{a1} and {b0}–{b1}");
    drop(worker);

    // …two 700 MB jobs never do, though a slot is free.
    let (c, d) = (submit(700).await, submit(700).await);
    let _worker = start_worker(&app, 2, 1000);
    let ((c0, c1), (d0, d1)) = (span(&app, &owner.access, &c).await, span(&app, &owner.access, &d).await);
    assert!(c1 <= d0 || d1 <= c0, "jobs that do not fit together ran at once: {c0}–{c1} and {d0}–{d1}");
}
