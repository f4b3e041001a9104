//! Coordination between processes: rate limiting and counters now; job
//! dispatch and event fan-out join when the jobs issue lands. One trait per
//! concern, two backends each: Redis (scaled out) and in-process (embedded).

mod events;
mod memory;
mod rate_limit;
mod redis_backend;

pub use events::{EventBus, MemoryEventBus, RedisEventBus};
pub use memory::MemoryRateLimiter;
pub use rate_limit::{RateDecision, RateLimiter};
pub use redis_backend::{RedisBroker, RedisRateLimiter};

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

pub type Result<T, E = BrokerError> = std::result::Result<T, E>;
