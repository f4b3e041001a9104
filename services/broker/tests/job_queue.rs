//! The job-queue contract, on the in-process queue always and on Redis when
//! `TENFOLD_TEST_REDIS_URL` is set (the PostgreSQL + Redis pass of .ci/run).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use tenfold_broker::{JobMessage, JobQueue, MemoryJobQueue, RedisBroker, RedisJobQueue};
use tenfold_domain::{JobId, OrgId};

async fn queues() -> Vec<(&'static str, Arc<dyn JobQueue>)> {
    let mut out: Vec<(&'static str, Arc<dyn JobQueue>)> = vec![("memory", Arc::new(MemoryJobQueue::new()))];
    if let Ok(url) = std::env::var("TENFOLD_TEST_REDIS_URL")
        && !url.is_empty()
    {
        let prefix = format!("t:{}:", uuid::Uuid::new_v4().simple());
        let broker = RedisBroker::connect(&url, &prefix).await.expect("redis");
        out.push(("redis", Arc::new(RedisJobQueue::new(broker))));
    }
    out
}

fn message() -> JobMessage {
    JobMessage { org: OrgId::new(), job: JobId::new() }
}

#[tokio::test]
async fn an_entry_goes_to_one_consumer_and_stays_pending_until_acked() {
    for (name, q) in queues().await {
        let m = message();
        q.publish("cpu", m).await.unwrap();
        let got = q.read("cpu", "w1", 10, Duration::from_millis(200)).await.unwrap();
        assert_eq!(got.len(), 1, "{name}");
        assert_eq!(got[0].message.as_ref().unwrap(), &m, "{name}");
        assert_eq!(got[0].deliveries, 1, "{name}");
        // Nobody else gets it, and other devices' streams are separate.
        assert!(q.read("cpu", "w2", 10, Duration::from_millis(50)).await.unwrap().is_empty(), "{name}");
        assert!(q.read("cuda", "w2", 10, Duration::from_millis(50)).await.unwrap().is_empty(), "{name}");
        assert_eq!(q.pending("cpu").await.unwrap(), 1, "{name}");
        q.ack("cpu", &got[0].id).await.unwrap();
        assert_eq!(q.pending("cpu").await.unwrap(), 0, "{name}");
    }
}

#[tokio::test]
async fn a_dead_consumer_s_entry_is_reclaimed_with_its_count_and_a_live_one_s_is_not() {
    for (name, q) in queues().await {
        q.publish("cpu", message()).await.unwrap();
        q.publish("cpu", message()).await.unwrap();
        let dead = q.read("cpu", "dead", 1, Duration::from_millis(200)).await.unwrap();
        let live = q.read("cpu", "live", 1, Duration::from_millis(200)).await.unwrap();
        assert_eq!((dead.len(), live.len()), (1, 1), "{name}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        // The live worker keeps touching its entry; the dead one cannot.
        q.touch("cpu", "live", &live[0].id).await.unwrap();
        let taken = q.reclaim("cpu", "rescuer", Duration::from_millis(250), 10).await.unwrap();
        assert_eq!(taken.len(), 1, "{name}: only the dead consumer's entry");
        assert_eq!(taken[0].id, dead[0].id, "{name}");
        assert_eq!(taken[0].deliveries, 2, "{name}");
        assert_eq!(taken[0].message.as_ref().unwrap(), dead[0].message.as_ref().unwrap(), "{name}");
    }
}

#[tokio::test]
async fn a_blocked_reader_wakes_when_an_entry_arrives() {
    for (name, q) in queues().await {
        let reader = {
            let q = q.clone();
            tokio::spawn(async move { q.read("cpu", "w", 1, Duration::from_secs(5)).await.unwrap() })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = std::time::Instant::now();
        q.publish("cpu", message()).await.unwrap();
        let got = reader.await.unwrap();
        assert_eq!(got.len(), 1, "{name}");
        assert!(started.elapsed() < Duration::from_secs(2), "{name}: the reader waited for its timeout");
    }
}

#[tokio::test]
async fn dead_letters_keep_their_reason_and_leave_the_pending_list() {
    for (name, q) in queues().await {
        let m = message();
        q.publish("cpu", m).await.unwrap();
        let got = q.read("cpu", "w", 1, Duration::from_millis(200)).await.unwrap();
        q.dead_letter("cpu", &got[0], "failed 3 times: disk full").await.unwrap();
        assert_eq!(q.pending("cpu").await.unwrap(), 0, "{name}");
        let dead = q.dead_letters("cpu", 10).await.unwrap();
        assert_eq!(dead.len(), 1, "{name}");
        assert_eq!(dead[0].job.as_deref(), Some(m.job.to_string().as_str()), "{name}");
        assert_eq!(dead[0].reason, "failed 3 times: disk full", "{name}");
        assert!(q.reclaim("cpu", "w2", Duration::ZERO, 10).await.unwrap().is_empty(), "{name}");
    }
}

#[test]
fn malformed_entries_say_what_is_wrong() {
    assert!(JobMessage::parse(None, Some("x")).unwrap_err().contains("no org"));
    assert!(JobMessage::parse(Some("nope"), Some("x")).unwrap_err().contains("not a UUID"));
}
