use std::time::Duration;

use async_trait::async_trait;

use crate::allowance::{Allowance, RateVerdict, Reservation};
use crate::{RedisBroker, Result};

/// Rates and quotas shared by every replica: each decision is one Lua
/// script, so two servers can never both take the last unit.
#[derive(Clone)]
pub struct RedisAllowance {
    broker: RedisBroker,
}

impl RedisAllowance {
    pub fn new(broker: RedisBroker) -> Self {
        Self { broker }
    }
}

/// GCRA on Redis's own clock (`TIME`), so replicas' clocks do not matter.
/// KEYS[1] tat; ARGV rate per minute, burst. Returns {allowed, retry_us}.
const GCRA_SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = math.floor(60000000 / math.max(tonumber(ARGV[1]), 1))
local tolerance = interval * math.max(tonumber(ARGV[2]), 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat + interval - tolerance
if now < allow_at then return {0, allow_at - now} end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return {1, 0}
"#;

/// KEYS[1] counter; ARGV amount, limit, seed ('' for none), ttl ms.
/// Returns {granted, used}, or {-1, 0} for a missing counter without a seed.
const RESERVE_SCRIPT: &str = r#"
if ARGV[3] ~= '' then redis.call('SET', KEYS[1], ARGV[3], 'NX', 'PX', ARGV[4]) end
local current = redis.call('GET', KEYS[1])
if not current then return {-1, 0} end
local used = tonumber(current)
local amount = tonumber(ARGV[1])
if used + amount > tonumber(ARGV[2]) then return {0, used} end
return {1, redis.call('INCRBY', KEYS[1], amount)}
"#;

/// Never below zero (a release after the month's counter was reset).
const RELEASE_SCRIPT: &str = r#"
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used <= 0 then return 0 end
return redis.call('DECRBY', KEYS[1], math.min(used, tonumber(ARGV[1])))
"#;

#[async_trait]
impl Allowance for RedisAllowance {
    async fn rate(&self, key: &str, rate_per_minute: u32, burst: u32) -> Result<RateVerdict> {
        let mut conn = self.broker.connection();
        let (allowed, retry_us): (i64, i64) = redis::Script::new(GCRA_SCRIPT)
            .key(self.broker.key(&format!("gcra:{key}")))
            .arg(rate_per_minute)
            .arg(burst)
            .invoke_async(&mut conn)
            .await?;
        Ok(RateVerdict { allowed: allowed == 1, retry_after: Duration::from_micros(retry_us.max(0) as u64) })
    }

    async fn reserve(&self, key: &str, amount: u64, limit: u64, seed: Option<u64>, ttl: Duration) -> Result<Option<Reservation>> {
        let mut conn = self.broker.connection();
        let (granted, used): (i64, i64) = redis::Script::new(RESERVE_SCRIPT)
            .key(self.broker.key(&format!("quota:{key}")))
            .arg(amount)
            .arg(limit)
            .arg(seed.map(|s| s.to_string()).unwrap_or_default())
            .arg(ttl.as_millis().max(1) as u64)
            .invoke_async(&mut conn)
            .await?;
        if granted < 0 {
            return Ok(None);
        }
        Ok(Some(Reservation { granted: granted == 1, used: used.max(0) as u64 }))
    }

    async fn release(&self, key: &str, amount: u64) -> Result<()> {
        let mut conn = self.broker.connection();
        let _: i64 =
            redis::Script::new(RELEASE_SCRIPT).key(self.broker.key(&format!("quota:{key}"))).arg(amount).invoke_async(&mut conn).await?;
        Ok(())
    }

    async fn first_time(&self, key: &str, ttl: Duration) -> Result<bool> {
        let mut conn = self.broker.connection();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.broker.key(&format!("once:{key}")))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .query_async(&mut conn)
            .await?;
        Ok(set.is_some())
    }
}
