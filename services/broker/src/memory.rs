use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::{RateDecision, RateLimiter, Result};

/// The embedded backend: counters in this process's memory.
#[derive(Default)]
pub struct MemoryRateLimiter {
    windows: Mutex<HashMap<String, Window>>,
}

#[derive(Clone, Copy)]
struct Window {
    started: Instant,
    length: Duration,
    count: u64,
}

impl MemoryRateLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    fn with_windows<T>(&self, f: impl FnOnce(&mut HashMap<String, Window>) -> T) -> T {
        // A poisoned lock only means another thread panicked mid-update of a
        // counter; the map is still usable, so recover rather than fail.
        let mut guard = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    fn decide(window: &Window, limit: u64, now: Instant) -> RateDecision {
        let elapsed = now.saturating_duration_since(window.started);
        let left = window.length.saturating_sub(elapsed);
        RateDecision { allowed: window.count <= limit, count: window.count, retry_after_secs: left.as_secs().max(1) }
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn hit(&self, key: &str, limit: u64, window: Duration) -> Result<RateDecision> {
        let now = Instant::now();
        Ok(self.with_windows(|windows| {
            // Sweep expired windows now and then so memory stays bounded.
            if windows.len() > 10_000 {
                windows.retain(|_, w| now.saturating_duration_since(w.started) < w.length);
            }
            let entry = windows.entry(key.to_owned()).or_insert(Window { started: now, length: window, count: 0 });
            if now.saturating_duration_since(entry.started) >= entry.length {
                *entry = Window { started: now, length: window, count: 0 };
            }
            entry.count += 1;
            Self::decide(entry, limit, now)
        }))
    }

    async fn peek(&self, key: &str, limit: u64, window: Duration) -> Result<RateDecision> {
        let now = Instant::now();
        Ok(self.with_windows(|windows| match windows.get(key) {
            Some(w) if now.saturating_duration_since(w.started) < w.length => Self::decide(w, limit, now),
            _ => RateDecision { allowed: true, count: 0, retry_after_secs: window.as_secs().max(1) },
        }))
    }

    async fn reset(&self, key: &str) -> Result<()> {
        self.with_windows(|windows| windows.remove(key));
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_up_to_the_limit_then_refuses() {
        let l = MemoryRateLimiter::new();
        let w = Duration::from_secs(60);
        for i in 1..=3 {
            let d = l.hit("k", 3, w).await.unwrap();
            assert!(d.allowed, "hit {i}");
        }
        let d = l.hit("k", 3, w).await.unwrap();
        assert!(!d.allowed);
        assert_eq!(d.count, 4);
        assert!(d.retry_after_secs >= 1 && d.retry_after_secs <= 60);
        assert!(l.hit("other", 3, w).await.unwrap().allowed, "keys are independent");
        l.reset("k").await.unwrap();
        assert!(l.hit("k", 3, w).await.unwrap().allowed);
    }

    #[tokio::test]
    async fn window_expires() {
        let l = MemoryRateLimiter::new();
        let w = Duration::from_millis(50);
        l.hit("k", 1, w).await.unwrap();
        assert!(!l.hit("k", 1, w).await.unwrap().allowed);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(l.hit("k", 1, w).await.unwrap().allowed);
    }
}
