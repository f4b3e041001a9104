use std::time::Duration;

use async_trait::async_trait;

use crate::Result;

/// The outcome of counting one hit against a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    /// Hits counted in the current window, this one included.
    pub count: u64,
    /// Seconds until the window resets; what `Retry-After` says.
    pub retry_after_secs: u64,
}

/// Fixed-window counters keyed by strings such as `login:ip:1.2.3.4`.
///
/// Fixed windows are enough for brute-force throttling, where the point is a
/// ceiling on attempts per account and per address. Keys always expire, so
/// memory stays bounded however many distinct keys attackers invent.
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Counts one hit; `allowed` is false once `count` exceeds `limit`.
    async fn hit(&self, key: &str, limit: u64, window: Duration) -> Result<RateDecision>;
    /// Reads the counter without counting.
    async fn peek(&self, key: &str, limit: u64, window: Duration) -> Result<RateDecision>;
    /// Forgets the key (e.g. failures after a successful sign-in).
    async fn reset(&self, key: &str) -> Result<()>;
    /// Whether the backend answers (for `/readyz`).
    async fn ping(&self) -> Result<()>;
}
