//! Job dispatch on Redis Streams: one stream per device type, one consumer
//! group of workers. `XREADGROUP` delivers an entry to one worker and keeps
//! it in the group's pending list until `XACK`; `XAUTOCLAIM` hands the
//! entries of a dead worker to a live one; a worker on a long job re-claims
//! its own entry (`XCLAIM … JUSTID`) to reset the idle time without bumping
//! the delivery count. Acknowledged entries are deleted (`XDEL`), so the
//! stream holds only live work and is never trimmed below its pending list.
//! After a restart without persistence the stream and group are recreated
//! on first use; the database reconciler re-dispatches what was lost.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamPendingCountReply, StreamRangeReply, StreamReadReply};
use tokio::sync::Mutex;

use crate::jobs::{DeadLetter, Delivery, JobMessage, JobQueue};
use crate::{RedisBroker, Result};

const GROUP: &str = "workers";
const DLQ_MAX: u64 = 10_000;

pub struct RedisJobQueue {
    broker: RedisBroker,
    /// Blocking reads get their own connection: `XREADGROUP BLOCK` would
    /// stall every other command on the shared multiplexed one.
    reader: Mutex<Option<MultiplexedConnection>>,
}

impl RedisJobQueue {
    pub fn new(broker: RedisBroker) -> Self {
        Self { broker, reader: Mutex::new(None) }
    }

    fn stream(&self, device: &str) -> String {
        self.broker.key(&format!("jobs:{device}"))
    }

    fn dlq(&self, device: &str) -> String {
        self.broker.key(&format!("jobs:{device}:dlq"))
    }

    async fn ensure_group(&self, device: &str) -> Result<()> {
        let mut conn = self.broker.connection();
        let res: redis::RedisResult<()> =
            redis::cmd("XGROUP").arg("CREATE").arg(self.stream(device)).arg(GROUP).arg("0").arg("MKSTREAM").query_async(&mut conn).await;
        match res {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn delivery(entry: &StreamId, deliveries: u64) -> Delivery {
        let field = |name: &str| entry.get::<String>(name);
        let message = JobMessage::parse(field("org").as_deref(), field("job").as_deref());
        Delivery { id: entry.id.clone(), message, deliveries }
    }

    async fn read_once(&self, device: &str, consumer: &str, count: usize, block: Duration) -> redis::RedisResult<Vec<Delivery>> {
        let mut guard = self.reader.lock().await;
        if guard.is_none() {
            let config = redis::AsyncConnectionConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(2)))
                .set_response_timeout(Some(block + Duration::from_secs(5)));
            *guard = Some(self.broker.client().get_multiplexed_async_connection_with_config(&config).await?);
        }
        let Some(conn) = guard.as_mut() else { return Ok(Vec::new()) };
        let reply: redis::RedisResult<Option<StreamReadReply>> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(block.as_millis() as u64)
            .arg("STREAMS")
            .arg(self.stream(device))
            .arg(">")
            .query_async(conn)
            .await;
        match reply {
            Ok(reply) => {
                Ok(reply.map_or_else(Vec::new, |r| r.keys.iter().flat_map(|k| k.ids.iter().map(|e| Self::delivery(e, 1))).collect()))
            }
            Err(e) => {
                // A broken connection is rebuilt on the next read.
                if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
                    *guard = None;
                }
                Err(e)
            }
        }
    }
}

#[async_trait]
impl JobQueue for RedisJobQueue {
    async fn publish(&self, device: &str, message: JobMessage) -> Result<String> {
        let mut conn = self.broker.connection();
        let fields = message.fields();
        let id: String = redis::cmd("XADD")
            .arg(self.stream(device))
            .arg("*")
            .arg(fields[0].0)
            .arg(&fields[0].1)
            .arg(fields[1].0)
            .arg(&fields[1].1)
            .query_async(&mut conn)
            .await?;
        Ok(id)
    }

    async fn read(&self, device: &str, consumer: &str, count: usize, block: Duration) -> Result<Vec<Delivery>> {
        match self.read_once(device, consumer, count, block).await {
            Err(e) if e.code() == Some("NOGROUP") => {
                // First use, or Redis restarted without its data.
                self.ensure_group(device).await?;
                Ok(self.read_once(device, consumer, count, block).await?)
            }
            other => Ok(other?),
        }
    }

    async fn reclaim(&self, device: &str, consumer: &str, min_idle: Duration, count: usize) -> Result<Vec<Delivery>> {
        let mut conn = self.broker.connection();
        let reply: redis::RedisResult<StreamAutoClaimReply> = redis::cmd("XAUTOCLAIM")
            .arg(self.stream(device))
            .arg(GROUP)
            .arg(consumer)
            .arg(min_idle.as_millis() as u64)
            .arg("0-0")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut conn)
            .await;
        let reply = match reply {
            Err(e) if e.code() == Some("NOGROUP") => {
                self.ensure_group(device).await?;
                return Ok(Vec::new());
            }
            other => other?,
        };
        if reply.claimed.is_empty() {
            return Ok(Vec::new());
        }
        // XAUTOCLAIM bumped the delivery counts; read each one back.
        let mut out = Vec::with_capacity(reply.claimed.len());
        for entry in &reply.claimed {
            let pending: StreamPendingCountReply = redis::cmd("XPENDING")
                .arg(self.stream(device))
                .arg(GROUP)
                .arg(&entry.id)
                .arg(&entry.id)
                .arg(1)
                .query_async(&mut conn)
                .await?;
            let deliveries = pending.ids.first().map_or(1, |p| p.times_delivered as u64);
            out.push(Self::delivery(entry, deliveries));
        }
        Ok(out)
    }

    async fn touch(&self, device: &str, consumer: &str, id: &str) -> Result<()> {
        let mut conn = self.broker.connection();
        let _: redis::Value = redis::cmd("XCLAIM")
            .arg(self.stream(device))
            .arg(GROUP)
            .arg(consumer)
            .arg(0)
            .arg(id)
            .arg("JUSTID")
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    async fn ack(&self, device: &str, id: &str) -> Result<()> {
        let mut conn = self.broker.connection();
        let stream = self.stream(device);
        let _: (i64, i64) = redis::pipe()
            .atomic()
            .cmd("XACK")
            .arg(&stream)
            .arg(GROUP)
            .arg(id)
            .cmd("XDEL")
            .arg(&stream)
            .arg(id)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    async fn dead_letter(&self, device: &str, delivery: &Delivery, reason: &str) -> Result<()> {
        let mut conn = self.broker.connection();
        let stream = self.stream(device);
        let (org, job) = match &delivery.message {
            Ok(m) => (m.org.to_string(), m.job.to_string()),
            Err(_) => (String::new(), String::new()),
        };
        let _: (String, i64, i64) = redis::pipe()
            .atomic()
            .cmd("XADD")
            .arg(self.dlq(device))
            // The dead-letter stream is a log for people: keep the newest ~10,000.
            .arg("MAXLEN")
            .arg("~")
            .arg(DLQ_MAX)
            .arg("*")
            .arg("org")
            .arg(org)
            .arg("job")
            .arg(job)
            .arg("reason")
            .arg(reason)
            .arg("deliveries")
            .arg(delivery.deliveries)
            .arg("entry")
            .arg(&delivery.id)
            .cmd("XACK")
            .arg(&stream)
            .arg(GROUP)
            .arg(&delivery.id)
            .cmd("XDEL")
            .arg(&stream)
            .arg(&delivery.id)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    async fn dead_letters(&self, device: &str, count: usize) -> Result<Vec<DeadLetter>> {
        let mut conn = self.broker.connection();
        let reply: StreamRangeReply =
            redis::cmd("XRANGE").arg(self.dlq(device)).arg("-").arg("+").arg("COUNT").arg(count).query_async(&mut conn).await?;
        Ok(reply
            .ids
            .iter()
            .map(|e| {
                let text = |name: &str| e.get::<String>(name).filter(|s| !s.is_empty());
                DeadLetter {
                    id: e.id.clone(),
                    org: text("org"),
                    job: text("job"),
                    reason: text("reason").unwrap_or_default(),
                    deliveries: e.get::<u64>("deliveries").unwrap_or(0),
                }
            })
            .collect())
    }

    async fn pending(&self, device: &str) -> Result<u64> {
        let mut conn = self.broker.connection();
        let reply: redis::RedisResult<redis::Value> =
            redis::cmd("XPENDING").arg(self.stream(device)).arg(GROUP).query_async(&mut conn).await;
        match reply {
            Ok(redis::Value::Array(items)) => Ok(match items.first() {
                Some(redis::Value::Int(n)) => *n as u64,
                _ => 0,
            }),
            Ok(_) => Ok(0),
            Err(e) if e.code() == Some("NOGROUP") => Ok(0),
            Err(e) => Err(e.into()),
        }
    }
}
