//! Hosted endpoints as values: what a deployment asks for, checked once
//! here so the API, the gateway and the serving runtime agree on bounds.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// The name of an endpoint in `/v2/models/<slug>`: lower-case letters,
/// digits, single hyphens, dots and underscores (what inference clients
/// accept as a model name), 1–64 characters, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EndpointSlug(String);

impl EndpointSlug {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let first_ok = raw.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let ok = first_ok
            && raw.len() <= Self::MAX_LEN
            && raw.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
            && !raw.contains("..");
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(DomainError::invalid(
                "slug",
                "an endpoint slug has 1–64 lower-case letters, digits, '-', '_' or '.', starts with a letter or digit, e.g. \"digits-v1\"",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EndpointSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether an endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EndpointState {
    Active,
    /// Refuses requests (503) and holds no model; its settings are kept.
    Paused,
}

impl EndpointState {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
        }
    }
}

impl FromStr for EndpointState {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(Self::Active),
            "paused" => Ok(Self::Paused),
            other => Err(DomainError::invalid("state", format!("unknown endpoint state {other:?}"))),
        }
    }
}

/// How an endpoint's model is scaled and its requests batched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Scaling {
    /// 0 lets the model unload after `idle_unload_seconds` (scale to zero).
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// Inputs answered together in one call of the model.
    pub max_batch_size: u32,
    /// How long the first request of a batch waits for others.
    pub max_batch_delay_ms: u32,
    /// Idle time before the model is unloaded (only with `min_replicas` 0).
    pub idle_unload_seconds: u32,
}

impl Scaling {
    pub const MAX_REPLICAS: u32 = 16;
    pub const MAX_BATCH_SIZE: u32 = 256;
    pub const MAX_BATCH_DELAY_MS: u32 = 1000;
    pub const MIN_IDLE_UNLOAD_SECONDS: u32 = 1;
    pub const MAX_IDLE_UNLOAD_SECONDS: u32 = 7 * 24 * 3600;

    /// What a deployment gets for each setting it leaves out.
    pub const DEFAULT: Scaling =
        Scaling { min_replicas: 0, max_replicas: 1, max_batch_size: 32, max_batch_delay_ms: 5, idle_unload_seconds: 900 };

    /// Checks every bound; the error names the field and the range.
    pub fn check(self) -> Result<Self, DomainError> {
        let range = |field: &'static str, value: u32, lo: u32, hi: u32| {
            if (lo..=hi).contains(&value) {
                Ok(())
            } else {
                Err(DomainError::invalid(field, format!("must be between {lo} and {hi}, got {value}")))
            }
        };
        range("maxReplicas", self.max_replicas, 1, Self::MAX_REPLICAS)?;
        range("minReplicas", self.min_replicas, 0, self.max_replicas)?;
        range("maxBatchSize", self.max_batch_size, 1, Self::MAX_BATCH_SIZE)?;
        range("maxBatchDelayMs", self.max_batch_delay_ms, 0, Self::MAX_BATCH_DELAY_MS)?;
        range("idleUnloadSeconds", self.idle_unload_seconds, Self::MIN_IDLE_UNLOAD_SECONDS, Self::MAX_IDLE_UNLOAD_SECONDS)?;
        Ok(self)
    }

    pub fn batch_delay(&self) -> Duration {
        Duration::from_millis(u64::from(self.max_batch_delay_ms))
    }

    /// `None` when the model stays loaded (a minimum of one replica).
    pub fn idle_unload(&self) -> Option<Duration> {
        (self.min_replicas == 0).then(|| Duration::from_secs(u64::from(self.idle_unload_seconds)))
    }

    /// Requests that may wait for the model: enough for several full
    /// batches per replica, then 429 (a queue that grows without bound
    /// only turns overload into timeouts).
    pub fn queue_capacity(&self) -> usize {
        (self.max_batch_size as usize * 8 * self.max_replicas as usize).max(64)
    }
}

/// When a canary is rolled back by itself.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryRules {
    /// Roll back when more than this share of the canary's answers are 5xx.
    pub max_error_rate: f64,
    /// Roll back when the canary's p95 latency exceeds this (ms).
    pub max_p95_ms: Option<f64>,
    /// The window the rates are measured over.
    pub window_seconds: u32,
    /// No verdict before the canary has answered this many in the window.
    pub min_requests: u32,
}

impl CanaryRules {
    pub const DEFAULT: CanaryRules = CanaryRules { max_error_rate: 0.05, max_p95_ms: None, window_seconds: 60, min_requests: 20 };

    pub fn check(self) -> Result<Self, DomainError> {
        if !(0.0..=1.0).contains(&self.max_error_rate) {
            return Err(DomainError::invalid("maxErrorRate", "a share between 0 and 1, e.g. 0.05 for 5 %"));
        }
        if self.max_p95_ms.is_some_and(|ms| !(ms.is_finite() && ms > 0.0)) {
            return Err(DomainError::invalid("maxP95Ms", "a latency in milliseconds above 0"));
        }
        if !(5..=3600).contains(&self.window_seconds) {
            return Err(DomainError::invalid("windowSeconds", "between 5 and 3600 seconds"));
        }
        if !(1..=100_000).contains(&self.min_requests) {
            return Err(DomainError::invalid("minRequests", "between 1 and 100000 requests"));
        }
        Ok(self)
    }
}

/// Which share of callers a canary of `percent` takes: a caller (a key)
/// always lands on the same side, so one user never flips between
/// versions; `bucket` is a stable hash of the caller, 0–99.
pub fn canary_takes(percent: u32, bucket: u32) -> bool {
    bucket % 100 < percent.min(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_names_clients_can_put_in_a_path() {
        for good in ["digits", "digits-v1", "a.b_c", "0abc"] {
            assert!(EndpointSlug::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "Digits", "a/b", "a..b", "a b", &"x".repeat(65)] {
            assert!(EndpointSlug::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scaling_bounds_name_the_field() {
        assert!(Scaling::DEFAULT.check().is_ok());
        let err = Scaling { max_batch_size: 0, ..Scaling::DEFAULT }.check().unwrap_err();
        assert_eq!(err.field(), "maxBatchSize");
        let err = Scaling { min_replicas: 3, max_replicas: 2, ..Scaling::DEFAULT }.check().unwrap_err();
        assert_eq!(err.field(), "minReplicas");
        assert_eq!(Scaling { min_replicas: 1, ..Scaling::DEFAULT }.idle_unload(), None);
        assert!(Scaling::DEFAULT.idle_unload().is_some());
    }

    #[test]
    fn a_canary_share_is_a_share_of_buckets() {
        assert_eq!((0..100).filter(|b| canary_takes(10, *b)).count(), 10);
        assert_eq!((0..100).filter(|b| canary_takes(0, *b)).count(), 0);
        assert_eq!((0..100).filter(|b| canary_takes(250, *b)).count(), 100);
    }
}
