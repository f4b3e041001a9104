//! Automatic canary rollback: every answer of a canary is observed (its
//! status and latency) in a sliding window per endpoint; when the window
//! holds enough answers and the error rate or the p95 latency crosses the
//! endpoint's rules, the canary is removed (audited as
//! `endpoint.canary_rolled_back`, by the system) and its callers are served
//! the stable version from the next request on. Each replica judges the
//! traffic it serves.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tenfold_domain::{CanaryRules, EndpointId, ModelVersionId};
use tenfold_store::queries::endpoints;
use tracing::{info, warn};

use super::invoke::Invocation;
use crate::App;
use crate::error::AppResult;

/// A canary's recent answers: when, whether it failed (5xx), latency in ms.
type Window = VecDeque<(Instant, bool, f64)>;

#[derive(Default)]
pub(crate) struct CanaryWatch {
    windows: Mutex<HashMap<(EndpointId, ModelVersionId), Window>>,
}

/// Why the canary fails its rules, if it does.
pub(crate) fn verdict(window: &Window, rules: &CanaryRules) -> Option<String> {
    let n = window.len();
    if n < rules.min_requests as usize {
        return None;
    }
    let errors = window.iter().filter(|(_, failed, _)| *failed).count();
    let rate = errors as f64 / n as f64;
    if rate > rules.max_error_rate {
        return Some(format!(
            "{errors} of its last {n} answers failed ({:.1} %, over the {:.1} % allowed)",
            rate * 100.0,
            rules.max_error_rate * 100.0
        ));
    }
    if let Some(max) = rules.max_p95_ms {
        let mut latencies: Vec<f64> = window.iter().map(|(_, _, ms)| *ms).collect();
        latencies.sort_by(f64::total_cmp);
        let p95 = latencies[((n as f64 * 0.95).ceil() as usize).clamp(1, n) - 1];
        if p95 > max {
            return Some(format!("its p95 latency over the last {n} answers is {p95:.1} ms, over the {max:.1} ms allowed"));
        }
    }
    None
}

impl App {
    /// Records one answer of a canary and rolls it back when it breaks its rules.
    pub async fn observe_canary(&self, inv: &Invocation, status: u16, latency: Duration) {
        let Some(rules) = inv.canary_rules.filter(|_| inv.canary) else { return };
        let now = Instant::now();
        let window = Duration::from_secs(u64::from(rules.window_seconds));
        let broken = {
            let mut all = self.inner.canaries.windows.lock().unwrap_or_else(PoisonError::into_inner);
            let w = all.entry((inv.endpoint, inv.version)).or_default();
            w.push_back((now, status >= 500, latency.as_secs_f64() * 1000.0));
            while w.front().is_some_and(|(at, _, _)| now.duration_since(*at) > window) {
                w.pop_front();
            }
            let broken = verdict(w, &rules);
            if broken.is_some() {
                all.remove(&(inv.endpoint, inv.version));
            }
            broken
        };
        if let Some(why) = broken
            && let Err(e) = self.roll_back_canary(inv, &why).await
        {
            warn!(error = %e, endpoint = %inv.endpoint, "canary rollback failed");
        }
    }

    async fn roll_back_canary(&self, inv: &Invocation, why: &str) -> AppResult<()> {
        let tx = self.inner.store.tenant(inv.org, None).await?;
        let Some(row) = endpoints::get(&tx, inv.org, inv.endpoint.0).await? else { return Ok(()) };
        // Another replica (or a person) may have ended it already.
        if row.canary_version_id != Some(inv.version.0) {
            return Ok(());
        }
        let reason = format!("canary rolled back automatically: {why}");
        self.end_canary(&tx, inv.org, row, None, Some(reason.clone())).await?;
        tx.commit().await?;
        self.forget_routes();
        info!(endpoint = %inv.endpoint, version = %inv.version, reason, "canary rolled back");
        metrics::counter!("tenfold_endpoint_canary_rollbacks_total").increment(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(outcomes: &[(bool, f64)]) -> Window {
        let now = Instant::now();
        outcomes.iter().map(|(failed, ms)| (now, *failed, *ms)).collect()
    }

    #[test]
    fn a_canary_is_judged_only_on_enough_answers() {
        let rules = CanaryRules { max_error_rate: 0.1, max_p95_ms: Some(50.0), window_seconds: 60, min_requests: 10 };
        assert_eq!(verdict(&window(&[(true, 1.0); 9]), &rules), None, "too few to judge");
        let mut ok = vec![(false, 1.0); 18];
        ok.extend([(true, 1.0); 2]);
        assert_eq!(verdict(&window(&ok), &rules), None, "10 % is allowed");
        ok.push((true, 1.0));
        assert!(verdict(&window(&ok), &rules).unwrap().contains("3 of its last 21"));
        let mut slow = vec![(false, 10.0); 19];
        slow.push((false, 80.0));
        assert_eq!(verdict(&window(&slow), &rules), None, "the p95 of 20 is the 19th (nearest rank)");
        slow.push((false, 80.0));
        assert!(verdict(&window(&slow), &rules).unwrap().contains("p95"));
    }
}
