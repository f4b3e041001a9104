//! What endpoint traffic may spend: request rates (GCRA) and monthly
//! allowances (quotas), atomic across every replica that shares the backend.

use std::time::Duration;

use async_trait::async_trait;

use crate::Result;

/// A rate limit's verdict on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateVerdict {
    pub allowed: bool,
    /// When a refused request may be sent again.
    pub retry_after: Duration,
}

/// A quota reservation's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    pub granted: bool,
    /// What the counter holds after this reservation (or without it, when refused).
    pub used: u64,
}

/// GCRA (the generic cell rate algorithm, as in ATM networks and
/// `governor`): one stored time per key, the "theoretical arrival time";
/// a request is allowed when it comes no earlier than `tat - burst × T`,
/// where `T = 60 s / rate`. Smooth (no window edges to burst across) and one
/// number per key.
pub fn gcra_step(now_us: u64, tat_us: Option<u64>, rate_per_minute: u32, burst: u32) -> (bool, u64, Duration) {
    let interval = 60_000_000 / u64::from(rate_per_minute.max(1));
    let tolerance = interval * u64::from(burst.max(1));
    let tat = tat_us.unwrap_or(now_us).max(now_us);
    let allow_at = (tat + interval).saturating_sub(tolerance);
    if now_us < allow_at {
        return (false, tat, Duration::from_micros(allow_at - now_us));
    }
    (true, tat + interval, Duration::ZERO)
}

#[async_trait]
pub trait Allowance: Send + Sync + 'static {
    /// Counts one request against `rate_per_minute` (bursts of `burst`).
    async fn rate(&self, key: &str, rate_per_minute: u32, burst: u32) -> Result<RateVerdict>;

    /// Adds `amount` to the counter `key` unless that would pass `limit`.
    /// A counter that does not exist yet starts at `seed` (what the
    /// database says was used) and lives for `ttl` (to the month's end);
    /// without a seed, a missing counter answers `None` (read the database,
    /// then call again with the seed), so the database is read once a month
    /// per counter, not per request.
    async fn reserve(&self, key: &str, amount: u64, limit: u64, seed: Option<u64>, ttl: Duration) -> Result<Option<Reservation>>;

    /// Gives back a reservation that was not used (the request failed).
    async fn release(&self, key: &str, amount: u64) -> Result<()>;

    /// True the first time `key` is marked within `ttl` (a notice sent once).
    async fn first_time(&self, key: &str, ttl: Duration) -> Result<bool>;
}
