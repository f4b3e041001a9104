use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;

use crate::{RateDecision, RateLimiter, Result};

/// A Redis connection shared by the Redis backends. Reconnects by itself.
#[derive(Clone)]
pub struct RedisBroker {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
}

impl RedisBroker {
    pub async fn connect(url: &str, prefix: &str) -> Result<Self> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)));
        let conn = ConnectionManager::new_with_config(client.clone(), config).await?;
        Ok(Self { client, conn, prefix: prefix.to_owned() })
    }

    pub(crate) fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub(crate) fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// For connections that cannot be shared (pub/sub subscriptions).
    pub(crate) fn client(&self) -> &redis::Client {
        &self.client
    }
}

/// Rate limits shared by every replica: one atomic script per hit, with the
/// window's expiry set on the first hit (no GET-then-SET race).
#[derive(Clone)]
pub struct RedisRateLimiter {
    broker: RedisBroker,
}

impl RedisRateLimiter {
    pub fn new(broker: RedisBroker) -> Self {
        Self { broker }
    }
}

const HIT_SCRIPT: &str = r#"
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}
"#;

fn decision(count: u64, ttl_ms: i64, limit: u64, window: Duration) -> RateDecision {
    let ttl_ms = if ttl_ms > 0 { ttl_ms as u64 } else { window.as_millis() as u64 };
    RateDecision { allowed: count <= limit, count, retry_after_secs: ttl_ms.div_ceil(1000).max(1) }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn hit(&self, key: &str, limit: u64, window: Duration) -> Result<RateDecision> {
        let mut conn = self.broker.conn.clone();
        let (count, ttl): (u64, i64) = redis::Script::new(HIT_SCRIPT)
            .key(self.broker.key(&format!("rl:{key}")))
            .arg(window.as_millis() as u64)
            .invoke_async(&mut conn)
            .await?;
        Ok(decision(count, ttl, limit, window))
    }

    async fn peek(&self, key: &str, limit: u64, window: Duration) -> Result<RateDecision> {
        let mut conn = self.broker.conn.clone();
        let k = self.broker.key(&format!("rl:{key}"));
        let (count, ttl): (Option<u64>, i64) = redis::pipe().get(&k).pttl(&k).query_async(&mut conn).await?;
        Ok(decision(count.unwrap_or(0), ttl, limit, window))
    }

    async fn reset(&self, key: &str) -> Result<()> {
        let mut conn = self.broker.conn.clone();
        let _: () = redis::cmd("DEL").arg(self.broker.key(&format!("rl:{key}"))).query_async(&mut conn).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        let mut conn = self.broker.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }
}
