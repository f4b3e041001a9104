//! Signed webhooks for job events. An organization registers endpoints; when
//! a job succeeds or fails, a delivery is written in the same transaction
//! as the job's end (so none is lost or sent for a rolled-back change) and
//! sent by the workers' deliverer, signed like Stripe's:
//! `Tenfold-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`,
//! retried with backoff, every attempt visible.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tenfold_config::WebhookSettings;
use tenfold_domain::{OrgId, is_public_ip};
use tenfold_store::Tx;
use tenfold_store::entities::{webhook_deliveries, webhooks as rows};
use tenfold_store::queries::{Page, webhooks};
use uuid::Uuid;

use crate::App;
use crate::audit_action::AuditAction;
use crate::error::{AppError, AppResult};
use crate::principal::{Principal, perms};
use crate::secrets::random_base62;

/// The events a webhook can receive.
pub const WEBHOOK_EVENTS: [&str; 2] = ["job.succeeded", "job.failed"];
/// Endpoints per organization.
const MAX_WEBHOOKS: u64 = 10;

#[derive(Debug, Clone)]
pub struct WebhookView {
    pub id: Uuid,
    pub org: OrgId,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct DeliveryView {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event: String,
    pub status: String,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub payload: Value,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A delivery to send now, with what signing and sending need.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub org: OrgId,
    pub id: Uuid,
    pub url: String,
    pub secret: String,
    pub event: String,
    pub payload: String,
    pub attempts: i32,
}

/// What one attempt got.
#[derive(Debug, Clone)]
pub enum AttemptResult {
    Delivered { status: u16 },
    Failed { status: Option<u16>, error: String },
}

fn webhook_view(w: &rows::Model) -> WebhookView {
    WebhookView {
        id: w.id,
        org: OrgId(w.org_id),
        url: w.url.clone(),
        events: serde_json::from_str(&w.events).unwrap_or_default(),
        created_at: w.created_at,
    }
}

fn delivery_view(d: &webhook_deliveries::Model) -> DeliveryView {
    DeliveryView {
        id: d.id,
        webhook_id: d.webhook_id,
        event: d.event.clone(),
        status: d.status.clone(),
        attempts: d.attempts,
        last_status: d.last_status,
        last_error: d.last_error.clone(),
        payload: serde_json::from_str(&d.payload).unwrap_or(Value::Null),
        next_attempt_at: d.next_attempt_at,
        created_at: d.created_at,
        delivered_at: d.delivered_at,
    }
}

/// The signature header's value for `body` sent at `timestamp`.
pub fn webhook_signature(secret: &str, timestamp: i64, body: &str) -> String {
    // HMAC takes keys of any length: `new_from_slice` only fails for
    // fixed-size-key MACs, so the empty digest below is never produced.
    let digest: String = match <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(format!("{timestamp}.{body}").as_bytes());
            mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
        }
        Err(_) => String::new(),
    };
    format!("t={timestamp},v1={digest}")
}

/// Refuses URLs a webhook must not call: not HTTPS (unless allowed), with
/// credentials, without a host, or at a private/loopback/metadata address.
/// Host names are checked again at every delivery, after resolving.
pub fn check_webhook_url(raw: &str, settings: &WebhookSettings) -> AppResult<url::Url> {
    let bad = |m: &str| AppError::bad_input("url", m.to_owned());
    if raw.len() > 2048 {
        return Err(bad("the URL is longer than 2048 characters"));
    }
    let url = url::Url::parse(raw.trim()).map_err(|e| bad(&format!("not a URL ({e}); give e.g. https://example.com/hooks/tenfold")))?;
    match url.scheme() {
        "https" => {}
        "http" if settings.allow_http => {}
        _ => return Err(bad("webhooks must use https://")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("put no credentials in the URL; verify our signature instead"));
    }
    let host = url.host().ok_or_else(|| bad("the URL has no host"))?;
    let literal = match host {
        url::Host::Ipv4(ip) => Some(std::net::IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(std::net::IpAddr::V6(ip)),
        // A trailing dot names the same host ("localhost." is localhost).
        url::Host::Domain(d)
            if {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                d == "localhost" || d.ends_with(".localhost")
            } =>
        {
            Some(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
        }
        url::Host::Domain(_) => None,
    };
    if let Some(ip) = literal
        && !settings.allow_private_networks
        && !is_public_ip(ip)
    {
        return Err(bad("webhooks cannot call private, loopback or link-local addresses"));
    }
    Ok(url)
}

impl App {
    /// Registers an endpoint; the signing secret is in the answer only.
    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn create_webhook(&self, p: &Principal, url: &str, events: &[String]) -> AppResult<(WebhookView, String)> {
        p.require(perms::WEBHOOKS_MANAGE)?;
        let url = check_webhook_url(url, &self.inner.settings.webhooks)?;
        if events.is_empty() {
            return Err(AppError::bad_input("events", format!("choose at least one event: {}", WEBHOOK_EVENTS.join(", "))));
        }
        if let Some(e) = events.iter().find(|e| !WEBHOOK_EVENTS.contains(&e.as_str())) {
            return Err(AppError::bad_input("events", format!("unknown event {e:?}; choose from {}", WEBHOOK_EVENTS.join(", "))));
        }
        let mut events = events.to_vec();
        events.sort();
        events.dedup();
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        if webhooks::count(&tx, p.org).await? >= MAX_WEBHOOKS {
            return Err(AppError::quota(format!("an organization can have {MAX_WEBHOOKS} webhooks; delete one first")));
        }
        let secret = format!("whsec_{}", random_base62(32));
        let row = rows::Model {
            org_id: p.org.0,
            id: Uuid::now_v7(),
            url: url.to_string(),
            secret: secret.clone(),
            events: json!(events).to_string(),
            created_by: p.user_id().map(|u| u.0),
            created_at: Utc::now(),
        };
        let row = webhooks::insert(&tx, row).await?;
        self.record(
            &tx,
            p.org,
            Some(p),
            &p.meta,
            AuditAction::WebhookCreated,
            Some(format!("webhook:{}", row.id)),
            json!({ "url": row.url, "events": events }),
        )
        .await?;
        tx.commit().await?;
        Ok((webhook_view(&row), secret))
    }

    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn webhooks(&self, p: &Principal) -> AppResult<Vec<WebhookView>> {
        p.require(perms::WEBHOOKS_MANAGE)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let rows = webhooks::list(&tx, p.org).await?;
        tx.commit().await?;
        Ok(rows.iter().map(webhook_view).collect())
    }

    #[tracing::instrument(skip_all, fields(org = %p.org, id = %id))]
    pub async fn delete_webhook(&self, p: &Principal, id: Uuid) -> AppResult<bool> {
        p.require(perms::WEBHOOKS_MANAGE)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let row = webhooks::get(&tx, p.org, id).await?.ok_or_else(|| AppError::not_found("webhook"))?;
        webhooks::delete(&tx, p.org, id).await?;
        self.record(&tx, p.org, Some(p), &p.meta, AuditAction::WebhookDeleted, Some(format!("webhook:{id}")), json!({ "url": row.url }))
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A webhook's deliveries, newest first, with every attempt's outcome.
    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn webhook_deliveries(
        &self,
        p: &Principal,
        webhook: Uuid,
        before: Option<Uuid>,
        first: Option<i32>,
    ) -> AppResult<Page<DeliveryView>> {
        p.require(perms::WEBHOOKS_MANAGE)?;
        let limit = self.page_size(first)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        webhooks::get(&tx, p.org, webhook).await?.ok_or_else(|| AppError::not_found("webhook"))?;
        let page = webhooks::deliveries(&tx, p.org, webhook, before, limit).await?;
        tx.commit().await?;
        Ok(Page { rows: page.rows.iter().map(delivery_view).collect(), has_next: page.has_next })
    }

    /// Queues `event` for every webhook of `org` that wants it, inside the
    /// transaction that made it happen.
    pub(crate) async fn enqueue_webhooks(&self, tx: &Tx, org: OrgId, event: &str, data: Value) -> AppResult<()> {
        let now = Utc::now();
        for hook in webhooks::list(tx, org).await? {
            if !webhook_view(&hook).events.iter().any(|e| e == event) {
                continue;
            }
            let id = Uuid::now_v7();
            let payload = json!({ "id": id, "type": event, "createdAt": now, "data": data });
            let row = webhook_deliveries::Model {
                org_id: org.0,
                id,
                webhook_id: hook.id,
                event: event.to_owned(),
                payload: payload.to_string(),
                status: "pending".into(),
                attempts: 0,
                last_status: None,
                last_error: None,
                next_attempt_at: now,
                created_at: now,
                delivered_at: None,
            };
            webhooks::enqueue(tx, row).await?;
        }
        Ok(())
    }

    /// Claims deliveries that are due (for the deliverer in the workers).
    #[tracing::instrument(skip_all)]
    pub async fn due_webhook_deliveries(&self, n: u64) -> AppResult<Vec<DueDelivery>> {
        let now = Utc::now();
        let hold = now + chrono::Duration::milliseconds((self.inner.settings.webhooks.timeout_seconds * 3000.0) as i64);
        let tx = self.inner.store.begin().await?;
        let due = webhooks::claim_due(&tx, now, hold, n).await?;
        tx.commit().await?;
        let mut out = Vec::new();
        for (org, id) in due {
            let tx = self.inner.store.tenant(org, None).await?;
            let delivery = webhooks::delivery(&tx, org, id).await?;
            let hook = match &delivery {
                Some(d) => webhooks::get(&tx, org, d.webhook_id).await?,
                None => None,
            };
            match (delivery, hook) {
                (Some(d), Some(h)) if d.status == "pending" => out.push(DueDelivery {
                    org,
                    id,
                    url: h.url,
                    secret: h.secret,
                    event: d.event,
                    payload: d.payload,
                    attempts: d.attempts,
                }),
                _ => webhooks::forget(&tx, id).await?,
            }
            tx.commit().await?;
        }
        Ok(out)
    }

    /// Records an attempt: delivered, or retried with backoff until the
    /// attempts run out.
    #[tracing::instrument(skip_all)]
    pub async fn record_webhook_attempt(&self, d: &DueDelivery, result: AttemptResult) -> AppResult<()> {
        let now = Utc::now();
        let settings = &self.inner.settings.webhooks;
        let tx = self.inner.store.tenant(d.org, None).await?;
        match result {
            AttemptResult::Delivered { status } => {
                webhooks::record_attempt(&tx, d.org, d.id, "delivered", Some(i32::from(status)), None, None, now).await?;
            }
            AttemptResult::Failed { status, error } => {
                let attempts = d.attempts + 1;
                let retry_at = (attempts < settings.max_attempts as i32).then(|| {
                    let jitter = rand::random::<f64>() * 2.0 - 1.0;
                    let wait = crate::jobs::backoff(attempts as u32, settings.backoff_base_seconds, settings.backoff_max_seconds, jitter);
                    now + chrono::Duration::from_std(wait).unwrap_or_default()
                });
                let state = if retry_at.is_some() { "pending" } else { "failed" };
                webhooks::record_attempt(&tx, d.org, d.id, state, status.map(i32::from), Some(error), retry_at, now).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_over_timestamp_and_body() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
        let sig = webhook_signature("whsec_test", 1_700_000_000, r#"{"a":1}"#);
        assert!(sig.starts_with("t=1700000000,v1="), "{sig}");
        assert_eq!(sig.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(sig, webhook_signature("whsec_other", 1_700_000_000, r#"{"a":1}"#));
        assert_ne!(sig, webhook_signature("whsec_test", 1_700_000_001, r#"{"a":1}"#));
    }

    #[test]
    fn urls_that_reach_inside_are_refused() {
        let strict = WebhookSettings::default();
        for bad in [
            "http://example.com/hook",
            "https://user:pw@example.com/hook",
            "https://127.0.0.1/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/hook",
            "https://localhost/hook",
            "ftp://example.com",
            "not a url",
        ] {
            assert!(check_webhook_url(bad, &strict).is_err(), "{bad} must be refused");
        }
        assert!(check_webhook_url("https://hooks.example.com/tenfold", &strict).is_ok());
        let dev = WebhookSettings { allow_http: true, allow_private_networks: true, ..WebhookSettings::default() };
        assert!(check_webhook_url("http://127.0.0.1:9000/hook", &dev).is_ok());
    }
}
