//! Whether an inference request may run: rate limits (GCRA, fail open when
//! the backend does not answer: capacity protection must not take the
//! endpoints down with Redis) and monthly quotas (reserved before the
//! model runs, atomic across replicas, fail closed: a quota that cannot be
//! checked is not granted). A reservation a request did not use (any
//! answer but 2xx) is given back.

use std::time::Duration;

use chrono::{DateTime, Datelike, TimeZone, Utc};
use tenfold_domain::{OrgId, Quotas};
use tenfold_mail::Template;
use tenfold_store::queries::{memberships, orgs, usage, users};
use tracing::warn;

use super::invoke::{Caller, Invocation};
use crate::App;
use crate::error::{AppError, AppResult};
use crate::tenancy::org_view;

/// What a request holds until it is answered.
#[derive(Debug, Default)]
pub struct Admission {
    reserved: Vec<(String, u64)>,
}

/// One monthly allowance a request draws on.
struct Allowance {
    key: String,
    amount: u64,
    limit: u64,
    /// Who is told at 80 % and 100 %, in words ("Customer key Acme").
    what: String,
    org: OrgId,
    seed: Seed,
}

enum Seed {
    OrgRequests,
    OrgImages,
    CustomerKey(uuid::Uuid),
}

fn month_start(now: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0).single().unwrap_or(now)
}

fn next_month(now: DateTime<Utc>) -> DateTime<Utc> {
    let (y, m) = if now.month() == 12 { (now.year() + 1, 1) } else { (now.year(), now.month() + 1) };
    Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).single().unwrap_or(now)
}

/// A burst of a sixth of a minute's rate (10 s of traffic), at least one.
fn burst(rate_per_minute: u32) -> u32 {
    (rate_per_minute / 6).max(1)
}

impl App {
    /// The rate limits of a request: the organization's, then its customer
    /// key's. Checked before the body is read; a refused request is not
    /// metered (a flood of them must not turn into database writes).
    #[tracing::instrument(skip_all, fields(org = %inv.org, endpoint = %inv.endpoint))]
    pub async fn check_invocation_rate(&self, inv: &Invocation) -> AppResult<()> {
        let org_rate = u32::try_from(self.inner.settings.rate_limits.org_per_minute).unwrap_or(u32::MAX);
        self.check_rate(&format!("invoke:org:{}", inv.org), org_rate, "your organization's endpoints").await?;
        if let Caller::Customer(grant) = &inv.caller
            && let Some(rate) = grant.rate_per_minute
        {
            self.check_rate(&format!("invoke:ck:{}", grant.id), rate, "this customer key").await?;
        }
        Ok(())
    }

    /// Reserves a request of `images` inputs in every monthly allowance it
    /// draws on (the plan's, the customer key's), or refuses with 402.
    #[tracing::instrument(skip_all, fields(org = %inv.org, endpoint = %inv.endpoint))]
    pub async fn reserve_quotas(&self, inv: &Invocation, images: u32) -> AppResult<Admission> {
        let now = Utc::now();
        let month = now.format("%Y-%m");
        let quotas = self.plan_quotas(inv.org).await?;
        let mut wanted = vec![
            Allowance {
                key: format!("plan:{}:requests:{month}", inv.org),
                amount: 1,
                limit: quotas.monthly_endpoint_requests,
                what: "Your organization's endpoint requests".into(),
                org: inv.org,
                seed: Seed::OrgRequests,
            },
            Allowance {
                key: format!("plan:{}:images:{month}", inv.org),
                amount: u64::from(images),
                limit: quotas.monthly_endpoint_images,
                what: "Your organization's endpoint images".into(),
                org: inv.org,
                seed: Seed::OrgImages,
            },
        ];
        if let Caller::Customer(grant) = &inv.caller
            && let Some(quota) = grant.monthly_quota
        {
            wanted.push(Allowance {
                key: format!("ck:{}:requests:{month}", grant.id),
                amount: 1,
                limit: quota,
                what: format!("Customer key {}", grant.name),
                org: inv.org,
                seed: Seed::CustomerKey(grant.id.0),
            });
        }
        let mut admission = Admission::default();
        for allowance in wanted {
            if allowance.amount == 0 {
                continue;
            }
            match self.reserve(&allowance, now).await {
                Ok(used) => {
                    admission.reserved.push((allowance.key.clone(), allowance.amount));
                    self.notice_thresholds(&allowance, used, now);
                }
                Err(e) => {
                    self.settle(admission, false).await;
                    return Err(e);
                }
            }
        }
        Ok(admission)
    }

    /// Gives back the reservations of a request that was not answered.
    pub async fn settle(&self, admission: Admission, answered: bool) {
        if answered {
            return;
        }
        for (key, amount) in admission.reserved {
            if let Err(e) = self.inner.allowance.release(&key, amount).await {
                warn!(error = %e, key, "a quota reservation could not be given back");
            }
        }
    }

    async fn check_rate(&self, key: &str, rate_per_minute: u32, whose: &str) -> AppResult<()> {
        match self.inner.allowance.rate(key, rate_per_minute, burst(rate_per_minute)).await {
            Ok(v) if v.allowed => Ok(()),
            Ok(v) => {
                let secs = v.retry_after.as_secs_f64().ceil().max(1.0) as u64;
                Err(AppError::rate_limited(format!("{whose} allow {rate_per_minute} requests per minute; retry in {secs} s"), secs))
            }
            Err(e) => {
                warn!(error = %e, key, "rate limit backend unavailable; letting the request through");
                metrics::counter!("tenfold_rate_limit_fail_open_total").increment(1);
                Ok(())
            }
        }
    }

    /// Reserves `a` or refuses with QUOTA_EXCEEDED; the counter after it.
    async fn reserve(&self, a: &Allowance, now: DateTime<Utc>) -> AppResult<u64> {
        let ttl = (next_month(now) - now).to_std().unwrap_or(Duration::from_secs(86_400)) + Duration::from_secs(86_400);
        let unavailable = |e: tenfold_broker::BrokerError| {
            warn!(error = %e, key = a.key, "quota backend unavailable; refusing the request");
            AppError::unavailable("usage quotas cannot be checked right now, so the request is not run; retry shortly", 5)
        };
        let mut got = self.inner.allowance.reserve(&a.key, a.amount, a.limit, None, ttl).await.map_err(unavailable)?;
        if got.is_none() {
            let seed = self.quota_seed(a, now).await?;
            got = self.inner.allowance.reserve(&a.key, a.amount, a.limit, Some(seed), ttl).await.map_err(unavailable)?;
        }
        let r = got.ok_or_else(|| AppError::unavailable("usage quotas cannot be checked right now; retry shortly", 5))?;
        if !r.granted {
            return Err(AppError::quota(format!(
                "{} has used its monthly allowance ({} of {}); it renews on {}",
                a.what,
                r.used,
                a.limit,
                next_month(now).format("%Y-%m-%d")
            )));
        }
        Ok(r.used)
    }

    /// What the database says was used this month (answered requests).
    async fn quota_seed(&self, a: &Allowance, now: DateTime<Utc>) -> AppResult<u64> {
        let since = month_start(now);
        let tx = self.inner.store.tenant(a.org, None).await?;
        let used = match a.seed {
            Seed::OrgRequests => usage::org_totals_since(&tx, a.org, since).await?.requests,
            Seed::OrgImages => usage::org_totals_since(&tx, a.org, since).await?.images,
            Seed::CustomerKey(id) => usage::customer_key_requests_since(&tx, a.org, id, since).await?,
        };
        tx.commit().await?;
        Ok(u64::try_from(used).unwrap_or(0))
    }

    async fn plan_quotas(&self, org: OrgId) -> AppResult<Quotas> {
        if let Some(q) = self.inner.gateway.plan(org) {
            return Ok(q);
        }
        let tx = self.inner.store.tenant(org, None).await?;
        let row = orgs::get(&tx, org).await?.ok_or_else(|| AppError::not_found("organization"))?;
        tx.commit().await?;
        let quotas = org_view(&row)?.quotas();
        self.inner.gateway.remember_plan(org, quotas);
        Ok(quotas)
    }

    /// Emails the organization's owners when an allowance passes 80 % and
    /// when it is used up, once each per month.
    fn notice_thresholds(&self, a: &Allowance, used: u64, now: DateTime<Utc>) {
        let before = used.saturating_sub(a.amount);
        let crossed: Vec<u64> = [80u64, 100]
            .into_iter()
            .filter(|pct| {
                let at = (a.limit * pct).div_ceil(100);
                before < at && used >= at
            })
            .collect();
        for percent in crossed {
            let app = self.clone();
            let (key, what, limit, org) = (format!("notice:{}:{percent}", a.key), a.what.clone(), a.limit, a.org);
            let renews = next_month(now).format("%Y-%m-%d").to_string();
            tokio::spawn(async move {
                match app.inner.allowance.first_time(&key, Duration::from_secs(40 * 86_400)).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => warn!(error = %e, "quota notice not deduplicated; sending it"),
                }
                if let Err(e) = app.mail_owners(org, &Template::QuotaNotice { what: &what, percent, used, limit, renews: &renews }).await {
                    warn!(error = %e, "quota notice not sent");
                }
            });
        }
    }

    async fn mail_owners(&self, org: OrgId, template: &Template<'_>) -> AppResult<()> {
        let tx = self.inner.store.tenant(org, None).await?;
        let owners = memberships::owners_for_update(&tx, org).await?;
        tx.commit().await?;
        for owner in owners {
            let tx = self.inner.store.begin().await?;
            let user = users::by_id(&tx, tenfold_domain::UserId(owner.user_id)).await?;
            tx.commit().await?;
            if let Some(user) = user {
                self.send_mail(template.render(&user.email)).await;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_turn_over_at_utc_midnight() {
        let t = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 0).unwrap();
        assert_eq!(month_start(t), Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap());
        assert_eq!(next_month(t), Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
        assert_eq!(burst(600), 100);
        assert_eq!(burst(3), 1);
    }
}
