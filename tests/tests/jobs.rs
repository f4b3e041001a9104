//! Job submission and the queue's bookkeeping, without workers: pre-flight
//! checks, idempotency, tenancy, cancellation of queued jobs, positions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use tenfold_tests::{TestApp, mnist_subset};

#[tokio::test]
async fn bad_submissions_get_specific_errors_and_queue_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    let digits = app.ready_images(&owner.access, "digits", mnist_subset(&["0", "1"], 20)).await;
    let ratings = app
        .upload(Some(&owner.access), "ratings", "RECOMMENDATION", "r.csv", b"user_id,item_id,rating\n1,2,5\n2,3,4\n".to_vec())
        .await
        .ok();
    let ratings = ratings.str_at("/uploadDataset/id");
    app.wait_validated(&owner.access, &ratings).await;

    let cases = [
        (
            json!({ "hyperparameters": { "epochs": 0, "learningRate": -1.0, "optimizer": "lion" } }),
            "hyperparameters.epochs",
            vec!["epochs", "learningRate", "optimizer"],
        ),
        (json!({ "architecture": "vgg-19" }), "architecture", vec!["vgg-19", "cnn-small"]),
        (json!({ "datasetVersionId": ratings }), "datasetVersionId", vec!["RECOMMENDATION"]),
        (json!({ "family": "RECOMMENDATION" }), "architecture", vec!["cnn-tiny", "bpr-mf"]),
        (
            json!({ "family": "RECOMMENDATION", "architecture": "bpr-mf" }),
            "datasetVersionId",
            vec!["IMAGE_CLASSIFICATION data, not RECOMMENDATION"],
        ),
        (json!({ "family": "CHAT", "architecture": null }), "baseModelVersionId", vec!["fine-tuned from a pretrained base model"]),
        (json!({ "kind": "DISTILL" }), "teacherModelVersionId", vec!["teacher"]),
        (json!({ "kind": "EVALUATE", "architecture": null }), "baseModelVersionId", vec!["model version to evaluate"]),
        (json!({ "priority": 99 }), "priority", vec!["-10"]),
        (json!({ "hyperparameters": { "split": "90/20/0" } }), "hyperparameters.split", vec!["add up to 100"]),
        (json!({ "idempotencyKey": "" }), "idempotencyKey", vec!["1–255"]),
    ];
    for (input, field, words) in cases {
        let res = app.submit_job(&owner.access, &digits, input.clone()).await;
        assert_eq!(res.first_code(), "BAD_USER_INPUT", "{input}: {:#}", res.body);
        assert_eq!(res.errors()[0]["extensions"]["field"], field, "{input}: {:#}", res.body);
        for w in words {
            assert!(res.first_message().contains(w), "{input}: {:?} lacks {w:?}", res.first_message());
        }
    }
    // Nothing was queued by any of them.
    let jobs = app.gql("{ jobs(first: 10) { edges { node { id } } } }", json!({}), Some(&owner.access)).await.ok();
    assert_eq!(jobs.at("/jobs/edges").as_array().unwrap().len(), 0, "{:#}", jobs.body);

    // A dataset still PENDING or INVALID is refused with its state.
    let invalid = app.upload(Some(&owner.access), "broken", "IMAGE_CLASSIFICATION", "b.zip", b"not a zip".to_vec()).await.ok();
    let invalid = invalid.str_at("/uploadDataset/id");
    app.wait_validated(&owner.access, &invalid).await;
    let res = app.submit_job(&owner.access, &invalid, json!({})).await;
    assert_eq!(res.first_code(), "BAD_USER_INPUT");
    assert!(res.first_message().contains("INVALID"), "{}", res.first_message());
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_same_job_and_a_reused_key_with_other_parameters_is_refused() {
    let app = TestApp::spawn().await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    let digits = app.ready_images(&owner.access, "digits", mnist_subset(&["0", "1"], 20)).await;
    let input = json!({ "idempotencyKey": "retry-me-7f3a" });
    let first = app.submit_job(&owner.access, &digits, input.clone()).await.ok();
    let again = app.submit_job(&owner.access, &digits, input.clone()).await.ok();
    assert_eq!(first.str_at("/submitJob/id"), again.str_at("/submitJob/id"));
    assert_eq!(first.at("/submitJob/status"), "QUEUED");
    assert!(first.at("/submitJob/estimateSeconds").as_i64().unwrap() >= 1);
    assert_eq!(first.at("/submitJob/queuePosition"), 1);
    let other =
        app.submit_job(&owner.access, &digits, json!({ "idempotencyKey": "retry-me-7f3a", "hyperparameters": { "epochs": 2 } })).await;
    assert_eq!(other.first_code(), "CONFLICT");
    assert_eq!(other.errors()[0]["extensions"]["reason"], "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(other.errors()[0]["extensions"]["field"], "idempotencyKey");
    assert!(other.first_message().contains("different request"), "{}", other.first_message());
    // Concurrent retries with one key: still one job.
    let key = json!({ "idempotencyKey": "burst" });
    let results = futures::future::join_all((0..5).map(|_| app.submit_job(&owner.access, &digits, key.clone()))).await;
    let ids: std::collections::HashSet<String> = results.into_iter().map(|r| r.ok().str_at("/submitJob/id")).collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let jobs = app.gql("{ jobs(first: 10) { edges { node { id } } } }", json!({}), Some(&owner.access)).await.ok();
    assert_eq!(jobs.at("/jobs/edges").as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn another_organization_can_neither_see_nor_use_nor_cancel_a_job() {
    let app = TestApp::spawn().await;
    let a = app.sign_up("ada@example.com", "Acme").await;
    let b = app.sign_up("bob@example.com", "Bob Co").await;
    let digits = app.ready_images(&a.access, "digits", mnist_subset(&["0", "1"], 20)).await;
    let job = app.submit_job(&a.access, &digits, json!({})).await.ok().str_at("/submitJob/id");
    // B cannot read it, list it, cancel it, subscribe to it, or submit on A's dataset.
    assert_eq!(app.gql("query($id: ID!) { job(id: $id) { id } }", json!({ "id": job }), Some(&b.access)).await.first_code(), "NOT_FOUND");
    assert_eq!(app.gql("query($id: ID!) { node(id: $id) { id } }", json!({ "id": job }), Some(&b.access)).await.first_code(), "NOT_FOUND");
    let listed = app.gql("{ jobs(first: 10) { edges { node { id } } } }", json!({}), Some(&b.access)).await.ok();
    assert_eq!(listed.at("/jobs/edges").as_array().unwrap().len(), 0);
    let cancel = app.gql("mutation($id: ID!) { cancelJob(id: $id) { id } }", json!({ "id": job }), Some(&b.access)).await;
    assert_eq!(cancel.first_code(), "NOT_FOUND");
    assert_eq!(app.submit_job(&b.access, &digits, json!({})).await.first_code(), "NOT_FOUND");
    let mut socket = app.ws_connect(Some(&b.access), None).await.unwrap();
    socket.subscribe_with("1", "subscription($id: ID!) { jobEvents(jobId: $id) { seq } }", json!({ "id": job })).await;
    let msg = socket.next_message(std::time::Duration::from_secs(5)).await.expect("an answer");
    let code =
        if msg["type"] == "error" { &msg["payload"][0]["extensions"]["code"] } else { &msg["payload"]["errors"][0]["extensions"]["code"] };
    assert_eq!(code, "NOT_FOUND", "{msg}");
    // A's job is untouched.
    let state = app.job_state(&a.access, &job).await;
    assert_eq!(state["status"], "QUEUED");
    assert_eq!(state["cancelRequested"], false);
}

#[tokio::test]
async fn a_queued_job_is_cancelled_at_once_and_positions_follow_fair_share() {
    let app = TestApp::spawn().await;
    let a = app.sign_up("ada@example.com", "Acme").await;
    let b = app.sign_up("bob@example.com", "Bob Co").await;
    let da = app.ready_images(&a.access, "digits", mnist_subset(&["0", "1"], 20)).await;
    let db = app.ready_images(&b.access, "digits", mnist_subset(&["0", "1"], 20)).await;
    let mut a_jobs = Vec::new();
    for _ in 0..4 {
        a_jobs.push(app.submit_job(&a.access, &da, json!({})).await.ok().str_at("/submitJob/id"));
    }
    let b_job = app.submit_job(&b.access, &db, json!({})).await.ok();
    // Round robin: B's only job goes right after A's first.
    assert_eq!(b_job.at("/submitJob/queuePosition"), 2, "{:#}", b_job.body);
    let last = app.job_state(&a.access, a_jobs.last().unwrap()).await;
    assert_eq!(
        app.gql("query($id: ID!) { job(id: $id) { queuePosition } }", json!({ "id": a_jobs[3] }), Some(&a.access))
            .await
            .ok()
            .at("/job/queuePosition"),
        5
    );
    assert_eq!(last["status"], "QUEUED");

    let res = app.gql("mutation($id: ID!) { cancelJob(id: $id) { status } }", json!({ "id": a_jobs[0] }), Some(&a.access)).await.ok();
    assert_eq!(res.at("/cancelJob/status"), "CANCELLED");
    let again = app.gql("mutation($id: ID!) { cancelJob(id: $id) { status } }", json!({ "id": a_jobs[0] }), Some(&a.access)).await;
    assert_eq!(again.first_code(), "BAD_USER_INPUT");
    assert!(again.first_message().contains("already ended"), "{}", again.first_message());
    let b_now = app
        .gql("query($id: ID!) { job(id: $id) { queuePosition } }", json!({ "id": b_job.str_at("/submitJob/id") }), Some(&b.access))
        .await
        .ok();
    assert_eq!(b_now.at("/job/queuePosition"), 2, "still right after A's next job");
}

#[tokio::test]
async fn an_unknown_stored_kind_status_or_family_is_an_internal_error_not_a_default() {
    use sea_orm::{ConnectionTrait, Database};
    let app = TestApp::spawn().await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    let digits = app.ready_images(&owner.access, "digits", mnist_subset(&["0", "1"], 20)).await;
    let id = app.submit_job(&owner.access, &digits, json!({})).await.ok().str_at("/submitJob/id");
    let q = "query($id: ID!) { job(id: $id) { kind status family } }";
    let fine = app.gql(q, json!({ "id": id }), Some(&owner.access)).await.ok();
    assert_eq!(fine.at("/job"), &json!({ "kind": "FINE_TUNE", "status": "QUEUED", "family": "IMAGE_CLASSIFICATION" }));
    let db = Database::connect(app.db.owner_url()).await.unwrap();
    // The old reading turned an unknown kind into FINE_TUNE and an unknown
    // status into PENDING; a value the code does not know is a fault to see.
    for (column, value) in [("kind", "TRAIN"), ("status", "PENDING"), ("family", "VIDEO")] {
        db.execute_unprepared(&format!("UPDATE jobs SET {column} = '{value}'")).await.unwrap();
        let res = app.gql(q, json!({ "id": id }), Some(&owner.access)).await;
        assert_eq!(res.first_code(), "INTERNAL", "{column}: {:#}", res.body);
        assert!(!res.first_message().contains(value), "internal details stay in the log: {}", res.first_message());
        db.execute_unprepared("UPDATE jobs SET kind = 'FINE_TUNE', status = 'QUEUED', family = 'IMAGE_CLASSIFICATION'").await.unwrap();
    }
}
