//! The webhook deliverer: sends due deliveries, signed, and records each
//! attempt. Host names are resolved here and every address checked before
//! connecting, and the connection is pinned to the checked address, so a
//! DNS answer cannot point a webhook at our own network (rebinding).

use std::net::SocketAddr;
use std::time::Duration;

use tenfold_app::{App, AttemptResult, DueDelivery, webhook_signature};
use tenfold_domain::is_public_ip;
use tracing::{info, warn};

/// Deliveries sent per pass.
const BATCH: u64 = 20;

pub async fn deliverer(app: App) {
    // TLS on ring, as for object storage (no C toolchain needed).
    let _ = rustls::crypto::ring::default_provider().install_default();
    loop {
        match app.due_webhook_deliveries(BATCH).await {
            Ok(due) if !due.is_empty() => {
                // Bounded, so a slow endpoint or DNS server cannot outlast the
                // claim's hold and have the delivery sent twice.
                let limit = Duration::from_secs_f64(app.settings().webhooks.timeout_seconds.max(0.1) * 2.0);
                let app = &app;
                let sends = due.iter().map(|d| async move {
                    let result = match tokio::time::timeout(limit, send(app, d)).await {
                        Ok(r) => r,
                        Err(_) => AttemptResult::Failed { status: None, error: format!("no answer within {} s", limit.as_secs_f64()) },
                    };
                    if let Err(e) = app.record_webhook_attempt(d, result).await {
                        warn!(delivery = %d.id, error = %e, "recording a webhook attempt failed");
                    }
                });
                futures::future::join_all(sends).await;
                continue;
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "reading due webhook deliveries failed"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn resolve(url: &url::Url, allow_private: bool) -> Result<(String, SocketAddr), String> {
    resolve_with(
        url,
        allow_private,
        |host, port| async move { tokio::net::lookup_host((host.as_str(), port)).await.map(Iterator::collect) },
    )
    .await
}

/// Resolves the URL's host with `lookup` and refuses it if *any* address
/// it answers is not public (an attacker's DNS can mix one private address
/// into public ones); the connection is then pinned to the checked address.
async fn resolve_with<F, Fut>(url: &url::Url, allow_private: bool, lookup: F) -> Result<(String, SocketAddr), String>
where
    F: FnOnce(String, u16) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<Vec<SocketAddr>>>,
{
    let host = url.host_str().ok_or("the URL has no host")?.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = url.port_or_known_default().ok_or("the URL has no port")?;
    let addrs: Vec<SocketAddr> = lookup(host.clone(), port).await.map_err(|e| format!("{host} does not resolve: {e}"))?;
    let addr = addrs.first().copied().ok_or_else(|| format!("{host} has no address"))?;
    if !allow_private && let Some(bad) = addrs.iter().find(|a| !is_public_ip(a.ip())) {
        return Err(format!("{host} resolves to {}, a private address; webhooks only call public ones", bad.ip()));
    }
    Ok((host, addr))
}

async fn send(app: &App, d: &DueDelivery) -> AttemptResult {
    let settings = &app.settings().webhooks;
    let failed = |status: Option<u16>, error: String| AttemptResult::Failed { status, error };
    // Checked again: settings may have changed since the webhook was created.
    let url = match tenfold_app::check_webhook_url(&d.url, settings) {
        Ok(u) => u,
        Err(e) => return failed(None, e.message),
    };
    let (host, addr) = match resolve(&url, settings.allow_private_networks).await {
        Ok(r) => r,
        Err(e) => return failed(None, e),
    };
    let client = reqwest013::Client::builder()
        .redirect(reqwest013::redirect::Policy::none())
        // A proxy would resolve the host again, past the address check.
        .no_proxy()
        .timeout(Duration::from_secs_f64(settings.timeout_seconds.max(0.1)))
        .resolve(&host, addr)
        .build();
    let client = match client {
        Ok(c) => c,
        Err(e) => return failed(None, format!("the HTTP client could not be built: {e}")),
    };
    let timestamp = chrono::Utc::now().timestamp();
    let response = client
        .post(url)
        .header("Content-Type", "application/json")
        .header("User-Agent", "Tenfold-Webhooks/1")
        .header("Tenfold-Event", &d.event)
        .header("Tenfold-Delivery", d.id.to_string())
        .header("Tenfold-Signature", webhook_signature(&d.secret, timestamp, &d.payload))
        .body(d.payload.clone())
        .send()
        .await;
    match response {
        Ok(r) if r.status().is_success() => {
            info!(delivery = %d.id, status = r.status().as_u16(), "webhook delivered");
            AttemptResult::Delivered { status: r.status().as_u16() }
        }
        Ok(mut r) => {
            let status = r.status().as_u16();
            // Keep the start of the answer for the delivery log; read no more.
            let mut head = Vec::new();
            while head.len() < 1024 {
                match r.chunk().await {
                    Ok(Some(chunk)) => head.extend_from_slice(&chunk),
                    _ => break,
                }
            }
            let body: String = String::from_utf8_lossy(&head).chars().take(300).collect();
            failed(Some(status), format!("the endpoint answered {status}: {body}"))
        }
        Err(e) => failed(None, format!("the request failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn answers(ips: &'static [&'static str]) -> impl FnOnce(String, u16) -> std::future::Ready<std::io::Result<Vec<SocketAddr>>> {
        move |_, port| std::future::ready(Ok(ips.iter().map(|ip| SocketAddr::new(ip.parse().unwrap(), port)).collect()))
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_a_private_address_is_refused_at_delivery() {
        let url = url::Url::parse("https://hooks.example.com/t").unwrap();
        let err = resolve_with(&url, false, answers(&["10.0.0.5"])).await.unwrap_err();
        assert_eq!(err, "hooks.example.com resolves to 10.0.0.5, a private address; webhooks only call public ones");
        // One private address among public ones is enough to refuse.
        let err = resolve_with(&url, false, answers(&["93.184.216.34", "169.254.169.254"])).await.unwrap_err();
        assert!(err.contains("169.254.169.254"), "{err}");
        let (_, addr) = resolve_with(&url, false, answers(&["93.184.216.34"])).await.unwrap();
        assert_eq!(addr, "93.184.216.34:443".parse().unwrap(), "the connection is pinned to the checked address");
        // Dev and test may allow private networks.
        assert!(resolve_with(&url, true, answers(&["10.0.0.5"])).await.is_ok());
    }

    #[tokio::test]
    async fn the_system_resolver_is_checked_too() {
        // Through getaddrinfo, as deliveries resolve: a name answered with
        // loopback is refused like a literal one.
        let url = url::Url::parse("http://localhost:8080/t").unwrap();
        let err = resolve(&url, false).await.unwrap_err();
        assert!(err.contains("a private address"), "{err}");
    }
}
