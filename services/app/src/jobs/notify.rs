//! Telling people a job ended: an email to whoever submitted it.

use tenfold_domain::{OrgId, UserId};
use tenfold_mail::Template;
use tenfold_store::queries::{jobs, users};
use tracing::warn;
use uuid::Uuid;

use crate::App;

impl App {
    /// Emails the submitter that the job succeeded (key metrics, a link) or
    /// failed (the error in plain words). Failures to send are logged: the
    /// job's state is already recorded.
    pub(crate) async fn notify_job_finished(&self, org: OrgId, job: Uuid) {
        if let Err(e) = self.try_notify_job_finished(org, job).await {
            warn!(job = %job, error = %e, "job notification failed");
        }
    }

    async fn try_notify_job_finished(&self, org: OrgId, job: Uuid) -> crate::AppResult<()> {
        let tx = self.inner.store.tenant(org, None).await?;
        let Some(row) = jobs::get(&tx, org, job).await? else { return Ok(()) };
        drop(tx);
        // A validation's outcome is on the dataset version, not in a mail.
        if row.kind == tenfold_domain::JobKind::Validate.as_str() {
            return Ok(());
        }
        let Some(user) = row.submitted_by else { return Ok(()) };
        let tx = self.inner.store.begin().await?;
        let Some(user) = users::by_id(&tx, UserId(user)).await? else { return Ok(()) };
        drop(tx);
        let link = format!("{}/jobs/{job}", self.inner.settings.server.public_url.trim_end_matches('/'));
        let what = format!("{} {}", row.kind.to_lowercase().replace('_', "-"), row.architecture.as_deref().unwrap_or("model"));
        let mail = match row.status.as_str() {
            "SUCCEEDED" => {
                let result: serde_json::Value = row.result.as_deref().and_then(|r| serde_json::from_str(r).ok()).unwrap_or_default();
                let metrics = ["accuracy", "macro_f1", "ece"]
                    .iter()
                    .filter_map(|k| result.get(k).and_then(serde_json::Value::as_f64).map(|v| format!("{k}: {v:.4}")))
                    .collect::<Vec<_>>()
                    .join("\n");
                Template::JobSucceeded { what: &what, metrics: &metrics, link: &link, compute_seconds: row.compute_seconds }
                    .render(&user.email)
            }
            "FAILED" => {
                let error = row.error_message.as_deref().unwrap_or("the job failed without a message");
                Template::JobFailed { what: &what, error, link: &link }.render(&user.email)
            }
            _ => return Ok(()),
        };
        self.send_mail(mail).await;
        Ok(())
    }
}
