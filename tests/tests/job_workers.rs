//! The queue with real `tenfold worker` processes: a job runs once and
//! reports live; a worker killed with -9 or paused past its lease loses the
//! job to another that resumes from the checkpoint, and the old one's late
//! writes are refused; poison jobs are dead-lettered; one organization's
//! backlog does not starve another's job; cancellation stops a run.
//! Runs on the embedded backends and again on PostgreSQL + Redis.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};
use tenfold_tests::{Session, TestApp, events, mnist_subset};

const LONG: Duration = Duration::from_secs(120);

/// A job long enough to interrupt: cnn-small on 2 × 400 digits, 12 epochs.
async fn long_job(app: &TestApp, owner: &Session) -> String {
    let data = app.ready_images(&owner.access, "digits", mnist_subset(&["3", "7"], 400)).await;
    let input = json!({ "architecture": "cnn-small", "hyperparameters": { "epochs": 12, "batchSize": 32, "split": "80/10/10" } });
    app.submit_job(&owner.access, &data, input).await.ok().str_at("/submitJob/id")
}

/// Pauses `worker`. SQLite has one write lock per database file, and a
/// process stopped while holding it blocks every other writer for as long
/// as it stays stopped — a property of SQLite (the embedded, one-machine
/// backend), not of the queue; PostgreSQL ends such a session after
/// `idle_in_transaction_timeout_ms`. So on SQLite the worker is paused at a
/// moment it holds no write lock: if a write cannot get the lock, it is let
/// go on for a moment and paused again.
async fn pause_outside_a_write(app: &TestApp, worker: &tenfold_tests::WorkerProcess) {
    use sea_orm::ConnectionTrait;
    if app.db.is_postgres() {
        worker.pause();
        return;
    }
    let mut options = sea_orm::ConnectOptions::new(app.db.app_url().to_owned());
    options.max_connections(1).sqlx_logging(false);
    let probe = sea_orm::Database::connect(options).await.unwrap();
    probe.execute_unprepared("PRAGMA busy_timeout = 300").await.unwrap();
    for _ in 0..100 {
        worker.pause();
        if probe.execute_unprepared("BEGIN IMMEDIATE").await.is_ok() {
            probe.execute_unprepared("ROLLBACK").await.unwrap();
            return;
        }
        worker.resume();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("the worker always held the SQLite write lock");
}

fn has_checkpoint(job: &Value, attempt: i64) -> bool {
    job["checkpoints"].as_array().is_some_and(|c| c.iter().any(|c| c["attempt"] == attempt))
}

fn assert_succeeded_once(job: &Value) {
    assert_eq!(job["status"], "SUCCEEDED", "{job:#}");
    assert_eq!(job["modelVersions"].as_array().unwrap().len(), 1, "exactly one model version: {job:#}");
    let ends = events(job).iter().filter(|e| e.2 == "status" && e.3["status"] == "SUCCEEDED").count();
    assert_eq!(ends, 1, "one SUCCEEDED event: {job:#}");
    let seqs: Vec<i64> = events(job).iter().map(|e| e.0).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "events numbered 1..n without gaps");
}

#[tokio::test]
async fn a_job_runs_once_with_live_events_checkpoints_usage_and_an_email() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    let other = app.sign_up("bob@example.com", "Bob Co").await;
    let data = app.ready_images(&owner.access, "digits", mnist_subset(&["0", "1"], 60)).await;
    let job = app
        .submit_job(&owner.access, &data, json!({ "hyperparameters": { "epochs": 3, "batchSize": 16 } }))
        .await
        .ok()
        .str_at("/submitJob/id");

    // Subscribed before any worker exists: the stream starts at the first event.
    let mut socket = app.ws_connect(Some(&owner.access), None).await.unwrap();
    socket.subscribe_with("1", "subscription($id: ID!) { jobEvents(jobId: $id) { seq attempt kind payload } }", json!({ "id": job })).await;
    let _worker = app.spawn_worker(1);

    let mut live = Vec::new();
    loop {
        let msg = socket.next_message(LONG).await.expect("the stream went quiet");
        if msg["type"] == "complete" {
            break;
        }
        assert_eq!(msg["type"], "next", "{msg}");
        live.push(msg["payload"]["data"]["jobEvents"].clone());
    }
    let state = app.job_state(&owner.access, &job).await;
    assert_succeeded_once(&state);
    // The live stream is exactly the stored one, in order.
    let stored: Vec<i64> = events(&state).iter().map(|e| e.0).collect();
    let streamed: Vec<i64> = live.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(streamed, stored);
    let statuses: Vec<String> =
        events(&state).iter().filter(|e| e.2 == "status").map(|e| e.3["status"].as_str().unwrap().to_owned()).collect();
    assert_eq!(statuses, ["QUEUED", "RUNNING", "SUCCEEDED"]);
    assert_eq!(state["metrics"].as_array().unwrap().len(), 3, "one metrics entry per epoch");
    assert_eq!(state["checkpoints"].as_array().unwrap().len(), 3);
    assert_eq!(state["attempt"], 1);
    assert!(state["result"]["accuracy"].as_f64().unwrap() > 0.9, "0 vs 1 is easy: {:#}", state["result"]);
    // Billed per finished epoch, then the rest (evaluation, artifacts): no
    // piece twice, together the job's compute time.
    let usage = state["usage"].as_array().unwrap();
    let pieces: Vec<(i64, Option<i64>)> = usage.iter().map(|u| (u["attempt"].as_i64().unwrap(), u["epoch"].as_i64())).collect();
    assert_eq!(pieces, [(1, Some(1)), (1, Some(2)), (1, Some(3)), (1, None)], "{usage:?}");
    assert!(usage.iter().all(|u| u["device"] == "cpu" && u["quantity"].as_f64().unwrap() > 0.0), "{usage:?}");
    let billed: f64 = usage.iter().map(|u| u["quantity"].as_f64().unwrap()).sum();
    assert!((billed - state["computeSeconds"].as_f64().unwrap()).abs() < 1e-6, "{billed} vs {}", state["computeSeconds"]);
    // The checkpoints were working files: retired with the job, their blobs
    // gone; what stays in storage is the dataset and the model.
    assert!(state["checkpoints"].as_array().unwrap().iter().all(|c| !c["retiredAt"].is_null()), "{:#}", state["checkpoints"]);
    let org = owner.org();
    let model_files = {
        let tx = app.app.store().tenant(org, None).await.unwrap();
        let id = tenfold_graphql::GlobalId::decode(state["modelVersionId"].as_str().unwrap(), "model version").unwrap().id;
        let row = tenfold_store::queries::jobs::model_version(&tx, org, id).await.unwrap().unwrap();
        serde_json::from_str::<std::collections::BTreeMap<String, String>>(&row.files).unwrap()
    };
    let mut expected: Vec<String> = model_files.values().cloned().collect();
    let mut blobs = Vec::new();
    for _ in 0..50 {
        blobs = app.app.blob_keys(org).await.unwrap();
        if blobs.len() == expected.len() + 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    expected.sort();
    let models_and_data: Vec<&String> = blobs.iter().filter(|b| expected.iter().any(|e| b.ends_with(e.as_str()))).collect();
    assert_eq!(models_and_data.len(), expected.len(), "{blobs:?}");
    assert_eq!(blobs.len(), expected.len() + 1, "the dataset and the model's files only: {blobs:?}");
    // Storage counts the model's artifacts beside the data (checkpoints only while they live).
    let sizes = app
        .gql(
            "query($d: ID!, $m: ID!) { organization { storageUsedBytes } node(id: $d) { ... on DatasetVersion { sizeBytes } } modelVersion(id: $m) { sizeBytes } }",
            json!({ "d": data, "m": state["modelVersionId"] }),
            Some(&owner.access),
        )
        .await
        .ok();
    let (used, data_bytes, model_bytes) =
        (sizes.at("/organization/storageUsedBytes"), sizes.at("/node/sizeBytes"), sizes.at("/modelVersion/sizeBytes"));
    assert!(model_bytes.as_f64().unwrap() > 0.0);
    assert_eq!(used.as_f64().unwrap(), data_bytes.as_f64().unwrap() + model_bytes.as_f64().unwrap(), "{:#}", sizes.body);
    // The submitter hears about it, with the accuracy.
    let mail = app.mailbox.wait_for("ada@example.com", "succeeded").await;
    assert!(mail.data.contains("accuracy"), "{}", mail.data);
    // Another organization's socket is refused the job.
    let mut spy = app.ws_connect(Some(&other.access), None).await.unwrap();
    spy.subscribe_with("2", "subscription($id: ID!) { jobEvents(jobId: $id) { seq } }", json!({ "id": job })).await;
    let refused = spy.next_message(Duration::from_secs(5)).await.unwrap();
    assert!(refused.to_string().contains("NOT_FOUND"), "{refused}");
}

#[tokio::test]
async fn a_worker_killed_with_sigkill_loses_the_job_to_another_that_resumes_from_the_checkpoint() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    let job = long_job(&app, &owner).await;
    let mut first = app.spawn_worker(1);
    app.wait_job(&owner.access, &job, LONG, |j| has_checkpoint(j, 1)).await;
    first.kill9();
    let killed_at = app.job_state(&owner.access, &job).await;
    assert_eq!(killed_at["status"], "RUNNING", "killed mid-job: {killed_at:#}");

    let _second = app.spawn_worker(1);
    let done = app.wait_job(&owner.access, &job, LONG, |j| j["status"] != "RUNNING" && j["status"] != "QUEUED").await;
    assert_succeeded_once(&done);
    assert_eq!(done["attempt"], 2, "{done:#}");
    assert_eq!(done["failures"], 1, "the lost attempt counts as a failure");
    let resumed = events(&done).into_iter().find(|e| e.1 == 2 && e.3["status"] == "RUNNING").expect("attempt 2 started");
    let from = resumed.3["resumeFromEpoch"].as_i64().expect("attempt 2 resumed from a checkpoint");
    assert!(from >= 1, "{resumed:?}");
    assert_eq!(done["result"]["resumed_from_epoch"], from, "the engine resumed where the checkpoint said");
    // The killed attempt's finished epochs are billed, once; its unfinished
    // one is not; no (attempt, epoch) is billed twice.
    let usage = done["usage"].as_array().unwrap();
    let pieces: Vec<(i64, Option<i64>)> = usage.iter().map(|u| (u["attempt"].as_i64().unwrap(), u["epoch"].as_i64())).collect();
    assert!(pieces.iter().any(|(a, e)| *a == 1 && e.is_some()), "attempt 1's epochs are billed: {pieces:?}");
    assert!(!pieces.contains(&(1, None)), "the killed attempt never ended: {pieces:?}");
    assert!(pieces.contains(&(2, None)), "{pieces:?}");
    let unique: std::collections::BTreeSet<_> = pieces.iter().collect();
    assert_eq!(unique.len(), pieces.len(), "billed twice: {pieces:?}");
}

#[tokio::test]
async fn a_paused_worker_s_late_writes_are_refused() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    let job = long_job(&app, &owner).await;
    let zombie = app.spawn_worker(1);
    app.wait_job(&owner.access, &job, LONG, |j| has_checkpoint(j, 1)).await;
    pause_outside_a_write(&app, &zombie).await;
    // What the zombie had checkpointed when it stopped (on a loaded machine
    // it may have got past epoch 1 before the pause).
    let paused = app.job_state(&owner.access, &job).await;
    let zombie_epochs = paused["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["attempt"] == 1)
        .filter_map(|c| c["epoch"].as_i64())
        .max()
        .unwrap_or(1);
    // Another worker takes over once the paused one's lease runs out.
    let _fresh = app.spawn_worker(1);
    app.wait_job(&owner.access, &job, LONG, |j| j["attempt"] == 2).await;
    let takeover = app.job_state(&owner.access, &job).await;
    let first_of_2 = events(&takeover).iter().find(|e| e.1 == 2).map(|e| e.0).unwrap();
    // The zombie wakes up and tries to go on writing progress.
    zombie.resume();
    let done = app.wait_job(&owner.access, &job, LONG, |j| j["status"] == "SUCCEEDED" || j["status"] == "FAILED").await;
    assert_succeeded_once(&done);
    assert_eq!(done["attempt"], 2);
    let late: Vec<_> = events(&done).into_iter().filter(|e| e.1 == 1 && e.0 > first_of_2).collect();
    assert!(late.is_empty(), "attempt 1 wrote after attempt 2 took over: {late:?}");
    let checkpoints = done["checkpoints"].as_array().unwrap();
    assert!(
        checkpoints.iter().filter(|c| c["epoch"].as_i64() > Some(zombie_epochs)).all(|c| c["attempt"] == 2),
        "attempt 1 checkpointed past epoch {zombie_epochs} after it was paused: {checkpoints:?}"
    );
    // The zombie noticed: its heartbeat or its next write was refused.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    // (JSON log lines: a refused heartbeat says "lease lost"; a refused
    // write ends the attempt as Lost.)
    let noticed = |log: &str| log.contains("lease lost") || log.contains(r#""ending":"Lost""#);
    while !noticed(&zombie.log()) {
        assert!(tokio::time::Instant::now() < deadline, "the paused worker never noticed; its log:\n{}", zombie.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_poison_job_is_dead_lettered_with_its_error_and_other_jobs_keep_flowing() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    // The poison: its dataset's file vanished from storage after validation.
    let poison_data = app.ready_images(&owner.access, "lost", mnist_subset(&["4", "9"], 30)).await;
    let sha = app
        .gql("query($id: ID!) { node(id: $id) { ... on DatasetVersion { sha256 } } }", json!({ "id": poison_data }), Some(&owner.access))
        .await
        .ok()
        .str_at("/node/sha256");
    app.app.blobs().delete(owner.org(), &sha).await.unwrap();
    let poison = app.submit_job(&owner.access, &poison_data, json!({})).await.ok().str_at("/submitJob/id");
    // A job whose data is not a dataset at all fails once: retrying cannot help.
    let bad_data = app.ready_images(&owner.access, "garbled", mnist_subset(&["5", "6"], 30)).await;
    let bad_sha = app
        .gql("query($id: ID!) { node(id: $id) { ... on DatasetVersion { sha256 } } }", json!({ "id": bad_data }), Some(&owner.access))
        .await
        .ok()
        .str_at("/node/sha256");
    let blob = app.settings.storage.data_dir.join("blobs").join(format!("orgs/{}/sha256/{bad_sha}", owner.org()));
    if blob.exists() {
        std::fs::write(&blob, b"these bytes are not a zip archive").unwrap();
    }
    let doomed = app.submit_job(&owner.access, &bad_data, json!({})).await.ok().str_at("/submitJob/id");
    let good_data = app.ready_images(&owner.access, "fine", mnist_subset(&["0", "1"], 30)).await;
    let good = app.submit_job(&owner.access, &good_data, json!({})).await.ok().str_at("/submitJob/id");
    let _worker = app.spawn_worker(1);

    let good_done = app.wait_job(&owner.access, &good, LONG, |j| j["status"] != "QUEUED" && j["status"] != "RUNNING").await;
    assert_succeeded_once(&good_done);
    let dead = app.wait_job(&owner.access, &poison, LONG, |j| j["status"] == "FAILED").await;
    assert_eq!(dead["deadLettered"], true, "{dead:#}");
    assert_eq!(dead["failures"], 3, "max_attempts transient failures: {dead:#}");
    assert_eq!(dead["errorCode"], "STORAGE_UNAVAILABLE");
    assert!(dead["errorMessage"].as_str().unwrap().contains("gave up after 3 attempts"), "{dead:#}");
    let retries = events(&dead).iter().filter(|e| e.2 == "status" && e.3["retryInSeconds"].is_number()).count();
    assert_eq!(retries, 2, "retried twice with backoff before giving up");
    if blob.exists() {
        let failed = app.wait_job(&owner.access, &doomed, LONG, |j| j["status"] == "FAILED").await;
        assert_eq!(failed["attempt"], 1, "a permanent error is not retried: {failed:#}");
        assert_eq!(failed["deadLettered"], false);
        assert_eq!(failed["errorCode"], "INVALID_DATASET", "{failed:#}");
        let mail = app.mailbox.wait_for("ada@example.com", "failed").await;
        assert!(mail.data.contains("What went wrong"), "{}", mail.data);
    }
    // On Redis the entry itself sits in the dead-letter stream with the reason.
    if !tenfold_config::ExposeSecret::expose_secret(&app.settings.redis.url).is_empty() {
        // The job row is written first, then the entry is moved: wait for it.
        let raw = poison_raw(&poison);
        let mut letter = None;
        for _ in 0..100 {
            let letters = app.app.job_queue().dead_letters("cpu", 100).await.unwrap();
            letter = letters.into_iter().find(|l| l.job.as_deref() == Some(raw.as_str()));
            if letter.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let letter = letter.expect("the poison job in the dead-letter stream");
        assert!(letter.reason.contains("failed 3 times") || letter.reason.contains("gave up"), "{letter:?}");
    }
}

fn poison_raw(global: &str) -> String {
    tenfold_graphql::GlobalId::decode(global, "job").unwrap().id.to_string()
}

#[tokio::test]
async fn one_organization_s_backlog_does_not_starve_another_s_job() {
    let app = TestApp::spawn().await;
    let a = app.sign_up("ada@example.com", "Acme").await;
    let b = app.sign_up("bob@example.com", "Bob Co").await;
    // A may run many jobs at once; its backlog is 50 deep.
    app.app.set_plan(a.org(), tenfold_domain::Plan::Enterprise).await.unwrap();
    let da = app.ready_images(&a.access, "digits", mnist_subset(&["0", "1"], 20)).await;
    let db = app.ready_images(&b.access, "digits", mnist_subset(&["0", "1"], 20)).await;
    let mut a_jobs = Vec::new();
    for _ in 0..50 {
        a_jobs.push(app.submit_job(&a.access, &da, json!({})).await.ok().str_at("/submitJob/id"));
    }
    let b_job = app.submit_job(&b.access, &db, json!({})).await.ok().str_at("/submitJob/id");
    // One slot: every start is a slot turn.
    let _worker = app.spawn_worker(1);
    let b_started = app.wait_job(&b.access, &b_job, LONG, |j| !j["startedAt"].is_null()).await["startedAt"].as_str().unwrap().to_owned();
    let mut a_before = 0;
    for id in &a_jobs {
        let started = app.job_state(&a.access, id).await["startedAt"].as_str().map(str::to_owned);
        if started.is_some_and(|s| s < b_started) {
            a_before += 1;
        }
    }
    assert!(a_before <= 1, "B's job waited for {a_before} of A's jobs; fair share allows one turn at most");
}

#[tokio::test]
async fn cancelling_a_running_job_stops_it_within_a_step_and_keeps_its_checkpoint() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    let job = long_job(&app, &owner).await;
    let _worker = app.spawn_worker(1);
    app.wait_job(&owner.access, &job, LONG, |j| has_checkpoint(j, 1)).await;
    let res = app
        .gql("mutation($id: ID!) { cancelJob(id: $id) { status cancelRequested } }", json!({ "id": job }), Some(&owner.access))
        .await
        .ok();
    assert_eq!(res.at("/cancelJob/cancelRequested"), true);
    let done = app.wait_job(&owner.access, &job, Duration::from_secs(30), |j| j["status"] == "CANCELLED").await;
    let checkpoints = done["checkpoints"].as_array().unwrap();
    assert!(!checkpoints.is_empty() && checkpoints.iter().all(|c| !c["retiredAt"].is_null()), "recorded, then retired: {checkpoints:?}");
    assert!(done["modelVersions"].as_array().unwrap().is_empty());
    let epochs = done["metrics"].as_array().unwrap().len();
    assert!(epochs < 12, "it stopped early ({epochs} epochs)");
    let usage = done["usage"].as_array().unwrap();
    assert!(usage.iter().any(|u| u["epoch"].is_null()) && usage.iter().any(|u| u["epoch"] == 1), "the time it ran is metered: {usage:?}");
}

#[tokio::test]
async fn sigterm_releases_the_job_and_the_next_worker_resumes_it() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    let job = long_job(&app, &owner).await;
    let mut first = app.spawn_worker(1);
    app.wait_job(&owner.access, &job, LONG, |j| has_checkpoint(j, 1)).await;
    let before = app.job_state(&owner.access, &job).await;
    let epochs_before = before["checkpoints"].as_array().unwrap().iter().map(|c| c["epoch"].as_i64().unwrap()).max().unwrap();
    let status = first.terminate();
    assert!(status.success(), "graceful exit: {status:?}\n{}", first.log());
    let released = app.job_state(&owner.access, &job).await;
    assert_eq!(released["status"], "QUEUED", "released, not left RUNNING: {released:#}");
    assert_eq!(released["failures"], 0, "a release is not a failure");
    // It went on to the end of its epoch and checkpointed before letting go.
    let saved = released["checkpoints"].as_array().unwrap().iter().map(|c| c["epoch"].as_i64().unwrap()).max().unwrap();
    assert!(saved > epochs_before, "a checkpoint was written on the way out ({epochs_before} → {saved})");
    let _second = app.spawn_worker(1);
    let done = app.wait_job(&owner.access, &job, LONG, |j| j["status"] == "SUCCEEDED" || j["status"] == "FAILED").await;
    assert_succeeded_once(&done);
    assert_eq!(done["result"]["resumed_from_epoch"], saved, "the next attempt resumed from that checkpoint");
}

/// HMAC-SHA256 over "<t>.<body>", computed here independently of the server.
fn expected_signature(secret: &str, t: &str, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn webhooks_are_signed_retried_and_their_deliveries_visible() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    // The receiver fails the first attempt, then accepts.
    let receiver = tenfold_tests::Receiver::start(vec![500, 200]).await;
    let created = app
        .gql(
            "mutation($i: CreateWebhookInput!) { createWebhook(input: $i) { webhook { id url events } secret } }",
            json!({ "i": { "url": receiver.url, "events": ["JOB_SUCCEEDED", "JOB_FAILED"] } }),
            Some(&owner.access),
        )
        .await
        .ok();
    let secret = created.str_at("/createWebhook/secret");
    let hook = created.str_at("/createWebhook/webhook/id");
    assert!(secret.starts_with("whsec_"));
    let data = app.ready_images(&owner.access, "digits", mnist_subset(&["0", "1"], 30)).await;
    let job = app.submit_job(&owner.access, &data, json!({})).await.ok().str_at("/submitJob/id");
    let _worker = app.spawn_worker(1);
    app.wait_status(&owner.access, &job, "SUCCEEDED", LONG).await;

    let got = receiver.wait_for(2).await;
    assert_eq!(got[0].body, got[1].body, "a retry sends the same body");
    for r in &got {
        assert_eq!(r.path, "/hooks/tenfold");
        assert_eq!(r.header("tenfold-event"), Some("job.succeeded"));
        let sig = r.header("tenfold-signature").expect("signed");
        let (t, v1) = sig.split_once(',').unwrap();
        let t = t.strip_prefix("t=").unwrap();
        assert_eq!(v1.strip_prefix("v1=").unwrap(), expected_signature(&secret, t, &r.body), "the signature verifies");
        let age = chrono::Utc::now().timestamp() - t.parse::<i64>().unwrap();
        assert!((0..300).contains(&age), "fresh timestamp");
        assert_ne!(v1.strip_prefix("v1=").unwrap(), expected_signature("whsec_wrong", t, &r.body));
    }
    let body: Value = serde_json::from_str(&got[1].body).unwrap();
    assert_eq!(body["type"], "job.succeeded");
    assert_eq!(body["data"]["job"]["id"], job, "the job's global id, usable with job(id:)");
    assert_eq!(body["data"]["job"]["status"], "SUCCEEDED");
    assert!(body["data"]["job"]["result"]["accuracy"].is_number());
    assert_eq!(got[1].header("tenfold-delivery"), body["id"].as_str(), "the delivery id deduplicates");
    // Every attempt is visible.
    let q = "query { webhooks { id deliveries(first: 10) { edges { node { event status attempts lastStatus lastError } } } } }";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let res = app.gql(q, json!({}), Some(&owner.access)).await.ok();
        let d = res.at("/webhooks/0/deliveries/edges/0/node").clone();
        if d["status"] == "DELIVERED" {
            assert_eq!(res.at("/webhooks/0/id"), &json!(hook));
            assert_eq!(d["attempts"], 2, "{d}");
            assert_eq!(d["lastStatus"], 200);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "delivery not recorded: {d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_plan_s_concurrency_limit_and_a_job_s_device_are_respected() {
    let app = TestApp::spawn().await;
    // FREE: one job at a time, whatever the workers could take.
    let owner = app.sign_up("ada@example.com", "Acme").await;
    let data = app.ready_images(&owner.access, "digits", mnist_subset(&["0", "1"], 60)).await;
    let input = json!({ "hyperparameters": { "epochs": 3, "batchSize": 16 } });
    let first = app.submit_job(&owner.access, &data, input.clone()).await.ok().str_at("/submitJob/id");
    let second = app.submit_job(&owner.access, &data, input.clone()).await.ok().str_at("/submitJob/id");
    // A GPU job: a CPU worker must never take it.
    let mut gpu = input.clone();
    gpu["device"] = json!("CUDA");
    let on_gpu = app.submit_job(&owner.access, &data, gpu).await.ok().str_at("/submitJob/id");
    let _worker = app.spawn_worker(2);
    let a = app.wait_status(&owner.access, &first, "SUCCEEDED", LONG).await;
    let b = app.wait_status(&owner.access, &second, "SUCCEEDED", LONG).await;
    let (a_end, b_start) = (a["finishedAt"].as_str().unwrap().to_owned(), b["startedAt"].as_str().unwrap().to_owned());
    assert!(b_start >= a_end, "the FREE plan runs one job at a time: second started {b_start}, first ended {a_end}");
    let waiting = app.job_state(&owner.access, &on_gpu).await;
    assert_eq!(waiting["status"], "QUEUED", "a CPU worker took a CUDA job: {waiting:#}");
    assert_eq!(waiting["attempt"], 0);
}

fn raw_id(global: &str) -> uuid::Uuid {
    tenfold_graphql::GlobalId::decode(global, "job").unwrap().id
}

#[tokio::test]
async fn a_crashed_attempt_costs_only_its_own_job_an_attempt() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    app.app.set_plan(owner.org(), tenfold_domain::Plan::Pro).await.unwrap();
    let a = long_job(&app, &owner).await;
    let b = long_job(&app, &owner).await;
    let mut worker = app.spawn_worker(2);
    app.wait_job(&owner.access, &a, LONG, |j| has_checkpoint(j, 1)).await;
    app.wait_job(&owner.access, &b, LONG, |j| j["status"] == "RUNNING").await;
    // What the kernel's out-of-memory killer does to the biggest process.
    let victim = worker.attempt_pid(raw_id(&b)).await;
    assert_ne!(victim, worker.pid(), "the attempt runs in its own process");
    assert!(std::process::Command::new("kill").args(["-KILL", &victim.to_string()]).status().unwrap().success());
    let a_done = app.wait_job(&owner.access, &a, LONG, |j| j["status"] != "RUNNING" && j["status"] != "QUEUED").await;
    assert_succeeded_once(&a_done);
    assert_eq!((a_done["attempt"].as_i64(), a_done["failures"].as_i64()), (Some(1), Some(0)), "the other job never noticed: {a_done:#}");
    let b_done = app.wait_job(&owner.access, &b, LONG, |j| j["status"] != "RUNNING" && j["status"] != "QUEUED").await;
    assert_succeeded_once(&b_done);
    assert_eq!(b_done["failures"], 1, "the crash cost its own job one attempt: {b_done:#}");
    let crash = events(&b_done).into_iter().find(|e| e.3["errorCode"] == "WORKER_PANIC").expect("the crash is on record");
    assert!(crash.3["message"].as_str().unwrap().contains("signal 9"), "{crash:?}");
    assert!(worker.alive(), "the worker survived the crash:\n{}", worker.log());
}

#[tokio::test]
async fn an_attempt_over_its_memory_fails_alone_with_out_of_memory() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    let data = app.ready_images(&owner.access, "digits", mnist_subset(&["3", "7"], 100)).await;
    // 128-pixel inputs in batches of 512: gigabytes of activations.
    let input = json!({ "architecture": "cnn-small", "hyperparameters": { "epochs": 1, "batchSize": 512, "imageSize": 128 } });
    let job = app.submit_job(&owner.access, &data, input).await.ok().str_at("/submitJob/id");
    // Every attempt of this worker may map 100 MiB more than it starts with,
    // so the allocation that crosses it is refused and the process aborts.
    let mut worker = app.spawn_worker_with(1, &[("TENFOLD_JOBS__ATTEMPT_MEMORY_LIMIT_MB", "100")]);
    let done = app.wait_job(&owner.access, &job, LONG, |j| j["status"] == "FAILED").await;
    assert_eq!(done["errorCode"], "OUT_OF_MEMORY", "{done:#}");
    assert_eq!(done["failures"], 1, "permanent: the same job would run out again");
    assert_eq!(done["deadLettered"], false);
    assert!(done["errorMessage"].as_str().unwrap().contains("more than the 100 MiB"), "{done:#}");
    assert!(worker.alive(), "the worker survived:\n{}", worker.log());
}
