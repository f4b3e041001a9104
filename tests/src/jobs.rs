//! Jobs from the outside: real image datasets, submissions, and real
//! `tenfold worker` processes that can be killed, paused and resumed.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tenfold_config::ExposeSecret;

use crate::{GqlResponse, TestApp, fixtures_dir};

/// `per_class` real MNIST digits of each of `classes` (e.g. `["0", "1"]`),
/// from the MNIST-5k fixture, as an ImageFolder ZIP.
pub fn mnist_subset(classes: &[&str], per_class: usize) -> Vec<u8> {
    let source = std::fs::File::open(fixtures_dir().join("mnist-5k.zip")).unwrap();
    let mut archive = zip::ZipArchive::new(source).unwrap();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut taken = std::collections::HashMap::<String, usize>::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().unwrap().to_string();
        let Some(class) = name.split('/').rev().nth(1).map(str::to_owned) else { continue };
        if !classes.contains(&class.as_str()) {
            continue;
        }
        let n = taken.entry(class.clone()).or_insert(0);
        if *n >= per_class {
            continue;
        }
        *n += 1;
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        let file = name.rsplit('/').next().unwrap().to_owned();
        out.start_file(format!("{class}/{file}"), zip::write::SimpleFileOptions::default()).unwrap();
        out.write_all(&bytes).unwrap();
    }
    out.finish().unwrap().into_inner()
}

pub const SUBMIT: &str =
    "mutation($i: SubmitJobInput!) { submitJob(input: $i) { id status estimateSeconds queuePosition etaSeconds attempt } }";

pub const JOB: &str = "query($id: ID!) { job(id: $id) { id status attempt failures maxAttempts errorCode errorMessage deadLettered \
    computeSeconds result modelVersionId cancelRequested startedAt finishedAt \
    events(first: 100) { pageInfo { hasNextPage } edges { node { seq attempt kind payload } } } \
    checkpoints { epoch attempt sizeBytes retiredAt } metrics usage { meter device quantity attempt epoch } modelVersions { id architecture classes } } }";

impl TestApp {
    /// Uploads `zip` as an image dataset and waits until it is READY; its version id.
    pub async fn ready_images(&self, bearer: &str, name: &str, zip: Vec<u8>) -> String {
        let res = self.upload(Some(bearer), name, "IMAGE_CLASSIFICATION", "digits.zip", zip).await.ok();
        let id = res.str_at("/uploadDataset/id");
        let version = self.wait_validated(bearer, &id).await;
        assert_eq!(version["status"], "READY", "{version:#}");
        id
    }

    /// Submits a job with `input` merged over a small FINE_TUNE default.
    pub async fn submit_job(&self, bearer: &str, dataset: &str, input: Value) -> GqlResponse {
        let mut i = json!({ "kind": "FINE_TUNE", "family": "IMAGE_CLASSIFICATION", "datasetVersionId": dataset, "architecture": "cnn-tiny",
            "hyperparameters": { "epochs": 1, "batchSize": 32 } });
        if let (Some(base), Some(extra)) = (i.as_object_mut(), input.as_object()) {
            base.extend(extra.clone());
        }
        self.gql(SUBMIT, json!({ "i": i }), Some(bearer)).await
    }

    /// The job with every one of its events (paged through: a slow run
    /// writes more step events than one page holds).
    pub async fn job_state(&self, bearer: &str, id: &str) -> Value {
        let mut job = self.gql(JOB, json!({ "id": id }), Some(bearer)).await.ok().at("/job").clone();
        let more = "query($id: ID!, $after: Int!) { job(id: $id) { events(first: 100, after: $after) { pageInfo { hasNextPage } \
            edges { node { seq attempt kind payload } } } } }";
        while job["events"]["pageInfo"]["hasNextPage"] == true {
            let after = job["events"]["edges"].as_array().and_then(|e| e.last()).and_then(|e| e["node"]["seq"].as_i64()).unwrap_or(0);
            let page = self.gql(more, json!({ "id": id, "after": after }), Some(bearer)).await.ok().at("/job/events").clone();
            let edges = page["edges"].as_array().cloned().unwrap_or_default();
            if edges.is_empty() {
                break;
            }
            job["events"]["edges"].as_array_mut().unwrap().extend(edges);
            job["events"]["pageInfo"] = page["pageInfo"].clone();
        }
        job
    }

    /// Polls the job until `done` holds (up to `within`); the last state.
    pub async fn wait_job(&self, bearer: &str, id: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let job = self.job_state(bearer, id).await;
            if done(&job) {
                return job;
            }
            assert!(tokio::time::Instant::now() < deadline, "job {id} did not reach the expected state in {within:?}: {job:#}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_status(&self, bearer: &str, id: &str, status: &str, within: Duration) -> Value {
        self.wait_job(bearer, id, within, |j| j["status"] == status).await
    }

    /// Starts a real `tenfold worker` process on this test's backends.
    pub fn spawn_worker(&self, slots: usize) -> WorkerProcess {
        WorkerProcess::start(self, slots, &[])
    }

    /// [`Self::spawn_worker`] with more settings in its environment.
    pub fn spawn_worker_with(&self, slots: usize, env: &[(&str, &str)]) -> WorkerProcess {
        WorkerProcess::start(self, slots, env)
    }
}

/// The `tenfold` binary next to this test binary (cargo builds it with the workspace's tests).
pub fn tenfold_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let bin = dir.join("tenfold");
    assert!(bin.exists(), "{} is missing: build it with `cargo build -p tenfold-cli` (cargo test --workspace does)", bin.display());
    bin
}

/// The test's backends (database, Redis, SMTP, storage, secrets) for a
/// `tenfold` process, in its environment.
pub fn process_env(app: &TestApp, cmd: &mut Command) {
    let s = &app.settings;
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("TENFOLD_MODE", "test")
        .env("TENFOLD_DATABASE__URL", s.database.url.expose_secret())
        .env("TENFOLD_DATABASE__MAX_CONNECTIONS", "4")
        .env("TENFOLD_DATABASE__IDLE_IN_TRANSACTION_TIMEOUT_MS", s.database.idle_in_transaction_timeout_ms.to_string())
        .env("TENFOLD_STORAGE__DATA_DIR", &s.storage.data_dir)
        .env("TENFOLD_MAIL__SMTP_HOST", &s.mail.smtp_host)
        .env("TENFOLD_MAIL__SMTP_PORT", s.mail.smtp_port.to_string())
        .env("TENFOLD_MAIL__SMTP_TLS", "none")
        .env("TENFOLD_AUTH__JWT_SECRET", s.auth.jwt_secret.expose_secret())
        .env("TENFOLD_SERVER__PUBLIC_URL", &s.server.public_url)
        .env("TENFOLD_JOBS__LEASE_SECONDS", s.jobs.lease_seconds.to_string())
        .env("TENFOLD_JOBS__MAX_ATTEMPTS", s.jobs.max_attempts.to_string())
        .env("TENFOLD_JOBS__BACKOFF_BASE_SECONDS", s.jobs.backoff_base_seconds.to_string())
        .env("TENFOLD_JOBS__BACKOFF_MAX_SECONDS", s.jobs.backoff_max_seconds.to_string())
        .env("TENFOLD_JOBS__REDISPATCH_AFTER_SECONDS", s.jobs.redispatch_after_seconds.to_string())
        .env("TENFOLD_JOBS__POLL_INTERVAL_MS", s.jobs.poll_interval_ms.to_string())
        .env("TENFOLD_JOBS__STEP_EVENT_INTERVAL_MS", s.jobs.step_event_interval_ms.to_string())
        .env("TENFOLD_JOBS__SHUTDOWN_GRACE_SECONDS", s.jobs.shutdown_grace_seconds.to_string())
        .env("TENFOLD_WEBHOOKS__ALLOW_HTTP", s.webhooks.allow_http.to_string())
        .env("TENFOLD_WEBHOOKS__ALLOW_PRIVATE_NETWORKS", s.webhooks.allow_private_networks.to_string())
        .env("TENFOLD_WEBHOOKS__BACKOFF_BASE_SECONDS", s.webhooks.backoff_base_seconds.to_string())
        .env("TENFOLD_WEBHOOKS__BACKOFF_MAX_SECONDS", s.webhooks.backoff_max_seconds.to_string())
        .env("TENFOLD_WEBHOOKS__MAX_ATTEMPTS", s.webhooks.max_attempts.to_string())
        // Two cores shared by parallel tests: one compute thread per worker.
        .env("RAYON_NUM_THREADS", "1");
    let redis = s.redis.url.expose_secret();
    if !redis.is_empty() {
        cmd.env("TENFOLD_REDIS__URL", redis).env("TENFOLD_REDIS__KEY_PREFIX", &s.redis.key_prefix);
    }
}

/// A worker process; killed when dropped.
pub struct WorkerProcess {
    pub child: Child,
    pub log: PathBuf,
}

impl WorkerProcess {
    fn start(app: &TestApp, slots: usize, env: &[(&str, &str)]) -> Self {
        let log = app.db.files_dir().join(format!("worker-{}.log", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(app.db.files_dir()).unwrap();
        let log_file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(tenfold_binary());
        cmd.args(["worker", "--slots", &slots.to_string(), "--device", "cpu"]);
        process_env(app, &mut cmd);
        cmd.env("TENFOLD_LOG__LEVEL", std::env::var("WORKER_LOG").unwrap_or_else(|_| "info".into()))
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .stdin(Stdio::null());
        cmd.envs(env.iter().copied());
        let child = cmd.spawn().unwrap();
        Self { child, log }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The pid of the attempt process the worker started for `job` (a raw
    /// job id), from its JSON log; waits up to 60 s for it.
    pub async fn attempt_pid(&self, job: uuid::Uuid) -> i32 {
        for _ in 0..600 {
            let found = self
                .log()
                .lines()
                .filter(|l| l.contains("attempt process started") && l.contains(&job.to_string()))
                .find_map(|l| serde_json::from_str::<Value>(l).ok().and_then(|v| v["pid"].as_i64()).map(|p| p as i32));
            if let Some(pid) = found {
                return pid;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("no attempt process for job {job} in the worker's log:\n{}", self.log());
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args([sig, &self.pid().to_string()]).status().unwrap().success();
        assert!(ok, "kill {sig} failed");
    }

    /// `kill -9`: no chance to checkpoint, release or say goodbye.
    pub fn kill9(&mut self) {
        self.signal("-KILL");
        let _ = self.child.wait();
    }

    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// SIGTERM, as Kubernetes sends it; waits for the exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal("-TERM");
        self.child.wait().unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The events of a job state, as (seq, attempt, kind, payload).
pub fn events(job: &Value) -> Vec<(i64, i64, String, Value)> {
    job["events"]["edges"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            let n = &e["node"];
            (n["seq"].as_i64().unwrap(), n["attempt"].as_i64().unwrap(), n["kind"].as_str().unwrap().to_owned(), n["payload"].clone())
        })
        .collect()
}

/// A model version row as a finished job leaves it, in `owner`'s
/// organization (training one would take a worker; the row is what the
/// operations read); its global id.
pub async fn insert_model_version(app: &TestApp, owner: &crate::Session) -> String {
    let org = owner.org();
    let id = uuid::Uuid::now_v7();
    let tx = app.app.store().tenant(org, None).await.unwrap();
    let now = chrono::Utc::now();
    let name = format!("model-{}", &id.simple().to_string()[24..]);
    let model = tenfold_store::queries::models::insert(&tx, org, &name, "IMAGE_CLASSIFICATION", None, now).await.unwrap();
    let row = tenfold_store::entities::model_versions::Model {
        org_id: org.0,
        id,
        model_id: model.id,
        version: 1,
        source: "job".into(),
        job_id: Some(uuid::Uuid::now_v7()),
        lineage: "{\"source\":\"job\"}".into(),
        created_by: None,
        family: "IMAGE_CLASSIFICATION".into(),
        architecture: "cnn-tiny".into(),
        classes: "[\"0\",\"1\"]".into(),
        files: "{}".into(),
        size_bytes: 1,
        metrics: "{}".into(),
        created_at: now,
    };
    tenfold_store::queries::jobs::insert_model_version(&tx, row).await.unwrap();
    tx.commit().await.unwrap();
    tenfold_graphql::GlobalId::new(tenfold_graphql::NodeKind::ModelVersion, id).encode()
}

/// The pretrained all-MiniLM-L6-v2 folder (`scripts/fixtures`) imported
/// through the API as a CHAT base model of `owner`'s organization (model
/// `minilm`); its version's global id.
pub async fn import_chat_base(app: &TestApp, owner: &crate::Session) -> String {
    let dir = fixtures_dir().join("all-minilm-l6-v2");
    let read =
        |name: &str| std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{}: {e}; run scripts/fixtures", dir.join(name).display()));
    let files = vec![
        ("weights", "model.safetensors", read("model.safetensors")),
        ("config", "config.json", read("config.json")),
        ("tokenizer", "tokenizer.json", read("tokenizer.json")),
    ];
    app.import_files(Some(&owner.access), "minilm", "CHAT", files).await.ok().str_at("/importModelVersion/id")
}
