//! Redis restarted mid-run without persistence: every dispatch entry and
//! pending list is gone. The database still has every job, so the
//! reconciler dispatches them again and each finishes exactly once. The
//! test starts its own `redis-server` so it can kill it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::json;
use tenfold_tests::{RedisServer, TestApp, free_port, mnist_subset};

#[tokio::test]
async fn a_redis_restart_mid_run_loses_no_job_and_runs_none_twice() {
    let port = free_port();
    let mut redis = RedisServer::start(port);
    let app = TestApp::spawn_with(|s| {
        s.redis.url = tenfold_config::SecretString::from(format!("redis://127.0.0.1:{port}"));
        s.redis.key_prefix = "restart:".into();
    })
    .await;
    let owner = app.sign_up("ada@example.com", "Acme").await;
    app.app.set_plan(owner.org(), tenfold_domain::Plan::Enterprise).await.unwrap();
    let data = app.ready_images(&owner.access, "digits", mnist_subset(&["0", "1"], 150)).await;
    let input = json!({ "architecture": "cnn-small", "hyperparameters": { "epochs": 6, "batchSize": 16 } });
    let mut jobs = Vec::new();
    for _ in 0..6 {
        jobs.push(app.submit_job(&owner.access, &data, input.clone()).await.ok().str_at("/submitJob/id"));
    }
    let _worker = app.spawn_worker(2);
    app.wait_status(&owner.access, &jobs[0], "SUCCEEDED", Duration::from_secs(120)).await;

    redis.kill();
    let mut unfinished = 0;
    for id in &jobs {
        if app.job_state(&owner.access, id).await["finishedAt"].is_null() {
            unfinished += 1;
        }
    }
    assert!(unfinished >= 2, "Redis must go away mid-run; only {unfinished} jobs were left");
    // Submitted while Redis is down: the row commits, the wake-up is lost.
    let late = app.submit_job(&owner.access, &data, input.clone()).await.ok().str_at("/submitJob/id");
    jobs.push(late);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _redis = RedisServer::start(redis.port);

    for id in &jobs {
        let job = app.wait_job(&owner.access, id, Duration::from_secs(180), |j| j["status"] != "QUEUED" && j["status"] != "RUNNING").await;
        assert_eq!(job["status"], "SUCCEEDED", "{job:#}");
        // Run once: no attempt was lost or repeated because the broker was.
        assert_eq!(job["attempt"], 1, "{job:#}");
        assert_eq!(job["failures"], 0, "{job:#}");
        assert_eq!(job["modelVersions"].as_array().unwrap().len(), 1, "one model version: {job:#}");
        let ends = tenfold_tests::events(&job).iter().filter(|e| e.3["status"] == "SUCCEEDED").count();
        assert_eq!(ends, 1, "{job:#}");
    }
}
