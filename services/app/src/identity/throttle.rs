//! Brute-force and cost throttles built on the broker's rate limiter.

use std::time::Duration;

use crate::App;
use crate::error::{AppError, AppResult};

impl App {
    /// Counts one hit on `key`; RATE_LIMITED with `Retry-After` past `limit`.
    pub(crate) async fn throttle(&self, key: &str, limit: u64, window: Duration, what: &str) -> AppResult<()> {
        let decision = self.inner.limiter.hit(key, limit, window).await?;
        if decision.allowed {
            Ok(())
        } else {
            Err(AppError::rate_limited(
                format!("too many {what}; try again in {} seconds", decision.retry_after_secs),
                decision.retry_after_secs,
            ))
        }
    }

    /// RATE_LIMITED when `key` already reached `limit`, without counting.
    pub(crate) async fn throttle_check(&self, key: &str, limit: u64, window: Duration, what: &str) -> AppResult<()> {
        let decision = self.inner.limiter.peek(key, limit, window).await?;
        if decision.count >= limit {
            Err(AppError::rate_limited(
                format!("too many {what}; try again in {} seconds", decision.retry_after_secs),
                decision.retry_after_secs,
            ))
        } else {
            Ok(())
        }
    }
}
