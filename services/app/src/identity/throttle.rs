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

    /// The general API limits, per client address and per organization:
    /// one tenant's burst cannot starve the others. RATE_LIMITED carries
    /// the seconds to wait. When the limiter's backend (Redis) does not
    /// answer, requests go through: these limits protect capacity, and a
    /// broker outage must not take the whole API down with it (the sign-in
    /// and email throttles, which protect accounts, still fail closed).
    #[tracing::instrument(skip_all)]
    pub async fn admit_request(&self, meta: &crate::RequestMeta, principal: Option<&crate::Principal>) -> AppResult<()> {
        let limits = &self.inner.settings.rate_limits;
        let minute = Duration::from_secs(60);
        let mut checks = Vec::with_capacity(2);
        if let Some(ip) = &meta.ip {
            checks.push((format!("api:ip:{ip}"), limits.ip_per_minute, "requests from your address"));
        }
        if let Some(p) = principal {
            checks.push((format!("api:org:{}", p.org), limits.org_per_minute, "requests for your organization"));
        }
        for (key, limit, what) in checks {
            match self.throttle(&key, limit, minute, what).await {
                Err(e) if e.code == crate::ErrorCode::Internal => {
                    tracing::warn!(error = %e, "the rate limiter does not answer; letting the request through");
                }
                other => other?,
            }
        }
        Ok(())
    }
}
