//! Coordination between processes: rate limiting, event fan-out and job
//! dispatch. One trait per concern, two backends each: Redis (scaled out)
//! and in-process (embedded).

mod allowance;
mod events;
mod jobs;
mod memory;
mod memory_allowance;
mod memory_jobs;
mod rate_limit;
mod redis_allowance;
mod redis_backend;
mod redis_jobs;

pub use allowance::{Allowance, RateVerdict, Reservation, gcra_step};
pub use events::{EventBus, MemoryEventBus, RedisEventBus};
pub use jobs::{DeadLetter, Delivery, JobMessage, JobQueue};
pub use memory::MemoryRateLimiter;
pub use memory_allowance::MemoryAllowance;
pub use memory_jobs::MemoryJobQueue;
pub use rate_limit::{RateDecision, RateLimiter};
pub use redis_allowance::RedisAllowance;
pub use redis_backend::{RedisBroker, RedisRateLimiter};
pub use redis_jobs::RedisJobQueue;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

pub type Result<T, E = BrokerError> = std::result::Result<T, E>;
