//! Dataset validation as a job (issue 10, hole 4): each upload queues a
//! VALIDATE job in its own transaction, and only a worker's validation pool
//! runs it. These tests run the API without a validation pool
//! (`jobs.validation_slots = 0`), so an upload is checked only when a real
//! `tenfold worker` process comes, as after a restart of the API.
//! Before this change validation was a task of the API process: a version
//! was READY with no worker at all, and one whose task died stayed PENDING.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tenfold_tests::{Session, TestApp, mnist_subset};

const VERSION: &str = "query($id: ID!) { node(id: $id) { ... on DatasetVersion { id status problemCount problems { code message } \
    validation { id kind status attempt failures maxAttempts errorCode result startedAt finishedAt computeSeconds \
    usage { quantity } events(first: 50) { edges { node { attempt payload } } } } } } }";

const VALIDATIONS: &str = "query($kind: JobKind) { jobs(first: 50, kind: $kind) { edges { node { id kind status } } } }";

async fn api_only() -> TestApp {
    TestApp::spawn_with(|s| s.jobs.validation_slots = 0).await
}

async fn version(app: &TestApp, s: &Session, id: &str) -> Value {
    app.gql(VERSION, json!({ "id": id }), Some(&s.access)).await.ok().at("/node").clone()
}

async fn wait_version(app: &TestApp, s: &Session, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let v = version(app, s, id).await;
        if done(&v) {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "version {id} did not get there: {v:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn upload_digits(app: &TestApp, s: &Session, name: &str) -> String {
    let zip = mnist_subset(&["0", "1"], 12);
    app.upload(Some(&s.access), name, "IMAGE_CLASSIFICATION", "digits.zip", zip).await.ok().str_at("/uploadDataset/id")
}

#[tokio::test]
async fn an_upload_waits_for_a_worker_as_a_queued_validate_job_and_a_worker_validates_it() {
    let app = api_only().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let other = app.sign_up("eve@example.com", "Evil").await;
    let id = upload_digits(&app, &s, "digits").await;

    // No validation pool anywhere: the version waits, its job queued.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let v = version(&app, &s, &id).await;
    assert_eq!(v["status"], "PENDING", "{v:#}");
    assert_eq!((v["validation"]["kind"].as_str(), v["validation"]["status"].as_str()), (Some("VALIDATE"), Some("QUEUED")));
    let job = v["validation"]["id"].as_str().unwrap().to_owned();

    // Visible by kind, to its organization only; not among training jobs.
    let listed = app.gql(VALIDATIONS, json!({ "kind": "VALIDATE" }), Some(&s.access)).await.ok();
    assert_eq!(listed.at("/jobs/edges/0/node/id"), &json!(job));
    let training = app.gql(VALIDATIONS, json!({}), Some(&s.access)).await.ok();
    assert_eq!(training.at("/jobs/edges"), &json!([]), "a validation is not training work");
    let theirs = app.gql(VALIDATIONS, json!({ "kind": "VALIDATE" }), Some(&other.access)).await.ok();
    assert_eq!(theirs.at("/jobs/edges"), &json!([]), "another organization sees none of it");
    let peek = app.gql("query($id: ID!) { job(id: $id) { id } }", json!({ "id": job }), Some(&other.access)).await;
    assert_eq!(peek.first_code(), "NOT_FOUND");

    // It is the platform's job: it cannot be submitted or cancelled.
    let submitted = app.submit_job(&s.access, &id, json!({ "kind": "VALIDATE" })).await;
    assert_eq!(submitted.first_code(), "BAD_USER_INPUT");
    assert!(submitted.first_message().contains("started by uploads"), "{}", submitted.first_message());
    let cancel = app.gql("mutation($id: ID!) { cancelJob(id: $id) { id } }", json!({ "id": job }), Some(&s.access)).await;
    assert_eq!(cancel.first_code(), "BAD_USER_INPUT");

    // A worker process comes: it validates the upload.
    let _worker = app.spawn_worker(1);
    let v = wait_version(&app, &s, &id, |v| v["status"] != "PENDING").await;
    assert_eq!(v["status"], "READY", "{v:#}");
    let done = wait_version(&app, &s, &id, |v| v["validation"]["status"] == "SUCCEEDED").await["validation"].clone();
    assert_eq!(done["attempt"], 1);
    assert_eq!(done["result"], json!({ "valid": true, "problemCount": 0 }));
    // Never billed.
    assert_eq!(done["usage"], json!([]));
    assert_eq!(done["computeSeconds"], 0.0);
    let messages: Vec<String> = done["events"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["payload"]["message"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(messages.iter().any(|m| m.contains("started on")), "{messages:?}");
    assert!(messages.iter().any(|m| m.contains("READY")), "{messages:?}");
}

#[tokio::test]
async fn a_validation_that_cannot_read_its_upload_is_retried_then_leaves_the_version_invalid_not_pending() {
    let app = api_only().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let id = upload_digits(&app, &s, "digits").await;
    // The upload's file goes missing from storage before any worker reads it.
    for key in app.app.blob_keys(s.org()).await.unwrap() {
        let sha = key.rsplit('/').next().unwrap().to_owned();
        app.app.blobs().delete(s.org(), &sha).await.unwrap();
    }
    let _worker = app.spawn_worker(1);
    let v = wait_version(&app, &s, &id, |v| v["status"] != "PENDING").await;
    assert_eq!(v["status"], "INVALID", "{v:#}");
    assert_eq!(v["problems"][0]["code"], "validation_failed");
    assert!(v["problems"][0]["message"].as_str().unwrap().contains("could not be validated"), "{v:#}");
    let job = &v["validation"];
    assert_eq!(job["status"], "FAILED");
    assert_eq!(job["errorCode"], "STORAGE_UNAVAILABLE");
    let max = job["maxAttempts"].as_i64().unwrap();
    assert_eq!((job["attempt"].as_i64(), job["failures"].as_i64()), (Some(max), Some(max)), "retried up to its attempts: {job:#}");
    // The version cannot be trained on.
    let submitted = app.submit_job(&s.access, &id, json!({})).await;
    assert_eq!(submitted.first_code(), "BAD_USER_INPUT");
}

/// When each attempt of a validation ran: from its RUNNING event to the
/// next status event (its end, or the next attempt taking over).
fn attempt_spans(version: &Value) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let statuses: Vec<(DateTime<Utc>, String)> = version["validation"]["events"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .filter(|n| n["kind"] == "status")
        .map(|n| (n["createdAt"].as_str().unwrap().parse().unwrap(), n["payload"]["status"].as_str().unwrap().to_owned()))
        .collect();
    statuses.windows(2).filter(|w| w[0].1 == "RUNNING").map(|w| (w[0].0, w[1].0)).collect()
}

/// Uploads `n` files with no validation pool, starts a worker with
/// `slots` validation slots, and returns when each validation attempt ran.
async fn validation_spans(n: usize, slots: &str) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let app = api_only().await;
    let s = app.sign_up("ada@example.com", "Acme").await;
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(upload_digits(&app, &s, &format!("digits-{i}")).await);
    }
    let _worker = app.spawn_worker_with(1, &[("TENFOLD_JOBS__VALIDATION_SLOTS", slots)]);
    let q = "query($id: ID!) { node(id: $id) { ... on DatasetVersion { status \
        validation { status events(first: 50) { edges { node { kind createdAt payload } } } } } } }";
    let mut spans = Vec::new();
    for id in &ids {
        wait_version(&app, &s, id, |v| v["validation"]["status"] == "SUCCEEDED").await;
        let v = app.gql(q, json!({ "id": id }), Some(&s.access)).await.ok().at("/node").clone();
        assert_eq!(v["status"], "READY");
        spans.extend(attempt_spans(&v));
    }
    assert!(spans.len() >= n, "every validation ran: {spans:?}");
    spans.sort();
    spans
}

/// The most attempts that ran at one moment.
fn most_at_once(spans: &[(DateTime<Utc>, DateTime<Utc>)]) -> usize {
    spans.iter().map(|(start, _)| spans.iter().filter(|(s, e)| s <= start && start < e).count()).max().unwrap_or(0)
}

#[tokio::test]
async fn a_worker_runs_at_most_its_validation_slots_at_once() {
    let spans = validation_spans(4, "1").await;
    assert_eq!(most_at_once(&spans), 1, "two validations overlapped on a one-slot pool: {spans:?}");
}

#[tokio::test]
async fn an_organization_runs_at_most_two_validations_at_once_however_many_slots_there_are() {
    let spans = validation_spans(6, "6").await;
    assert!(most_at_once(&spans) <= 2, "more than two of one organization's validations ran at once: {spans:?}");
}
