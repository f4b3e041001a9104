use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::Result;
use crate::allowance::{Allowance, RateVerdict, Reservation, gcra_step};

/// The embedded backend: this process's memory (one process shares it).
pub struct MemoryAllowance {
    started: Instant,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    tats: HashMap<String, u64>,
    counters: HashMap<String, (u64, Instant)>,
    marks: HashMap<String, Instant>,
}

impl Default for MemoryAllowance {
    fn default() -> Self {
        Self { started: Instant::now(), state: Mutex::new(State::default()) }
    }
}

impl MemoryAllowance {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

#[async_trait]
impl Allowance for MemoryAllowance {
    async fn rate(&self, key: &str, rate_per_minute: u32, burst: u32) -> Result<RateVerdict> {
        Ok(self.with(|s| {
            // Read under the lock: a time read before it could be older than
            // the arrival time another thread just stored.
            let now = self.started.elapsed().as_micros() as u64;
            if s.tats.len() > 100_000 {
                s.tats.retain(|_, tat| *tat > now);
            }
            let (allowed, tat, retry_after) = gcra_step(now, s.tats.get(key).copied(), rate_per_minute, burst);
            if allowed {
                s.tats.insert(key.to_owned(), tat);
            }
            RateVerdict { allowed, retry_after }
        }))
    }

    async fn reserve(&self, key: &str, amount: u64, limit: u64, seed: Option<u64>, ttl: Duration) -> Result<Option<Reservation>> {
        let now = Instant::now();
        Ok(self.with(|s| {
            if s.counters.get(key).is_none_or(|(_, until)| *until <= now) {
                s.counters.insert(key.to_owned(), (seed?, now + ttl));
            }
            let entry = s.counters.get_mut(key)?;
            if entry.0 + amount > limit {
                return Some(Reservation { granted: false, used: entry.0 });
            }
            entry.0 += amount;
            Some(Reservation { granted: true, used: entry.0 })
        }))
    }

    async fn release(&self, key: &str, amount: u64) -> Result<()> {
        self.with(|s| {
            if let Some(entry) = s.counters.get_mut(key) {
                entry.0 = entry.0.saturating_sub(amount);
            }
        });
        Ok(())
    }

    async fn first_time(&self, key: &str, ttl: Duration) -> Result<bool> {
        let now = Instant::now();
        Ok(self.with(|s| match s.marks.get(key) {
            Some(until) if *until > now => false,
            _ => {
                s.marks.insert(key.to_owned(), now + ttl);
                true
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn gcra_allows_the_burst_then_the_rate() {
        let a = MemoryAllowance::new();
        let allowed = {
            let mut n = 0;
            for _ in 0..20 {
                if a.rate("k", 60, 5).await.unwrap().allowed {
                    n += 1;
                }
            }
            n
        };
        assert_eq!(allowed, 5, "a burst of 5 at 60/min");
        let refused = a.rate("k", 60, 5).await.unwrap();
        assert!(!refused.allowed && refused.retry_after > Duration::from_millis(500) && refused.retry_after <= Duration::from_secs(1));
        assert!(a.rate("other", 60, 5).await.unwrap().allowed);
    }

    #[tokio::test]
    async fn reservations_never_pass_the_limit() {
        let a = MemoryAllowance::new();
        let ttl = Duration::from_secs(60);
        assert_eq!(a.reserve("q", 3, 10, None, ttl).await.unwrap(), None, "a new counter needs its seed");
        assert_eq!(a.reserve("q", 3, 10, Some(5), ttl).await.unwrap(), Some(Reservation { granted: true, used: 8 }));
        assert_eq!(a.reserve("q", 3, 10, None, ttl).await.unwrap(), Some(Reservation { granted: false, used: 8 }));
        a.release("q", 3).await.unwrap();
        assert!(a.reserve("q", 5, 10, None, ttl).await.unwrap().unwrap().granted);
        assert!(a.first_time("m", ttl).await.unwrap());
        assert!(!a.first_time("m", ttl).await.unwrap());
    }
}
