//! A version's report (its family reads its `report.json`), comparisons of
//! two versions, and the self-contained HTML page.

use tenfold_domain::OrgId;
use tenfold_domain::compare::{self, Comparison};
use tenfold_domain::report::ModelReport;
use tenfold_store::entities::model_versions;
use tenfold_store::queries::{jobs, models};
use uuid::Uuid;

use super::views::{REPORT_FILE, model_version_view};
use crate::App;
use crate::error::{AppError, AppResult};
use crate::principal::{Principal, perms};

/// Largest `report.json` read (a few hundred KB in practice: outcomes and thumbnails).
const MAX_REPORT_BYTES: u64 = 64 * 1024 * 1024;

impl App {
    /// The version's report, or `None` when it has no `report.json` (an
    /// import without one).
    pub(crate) async fn load_report(&self, org: OrgId, row: &model_versions::Model) -> AppResult<Option<ModelReport>> {
        let files = super::version_files(row)?;
        let Some(sha) = files.get(REPORT_FILE) else { return Ok(None) };
        let bytes = self.inner.blobs.read_small(org, sha, MAX_REPORT_BYTES).await.map_err(AppError::internal)?;
        let family = model_version_view(row)?.family;
        let plan = self.inner.families.get(family)?;
        // Reports are validated when stored (by the engine or the import),
        // so one the family cannot read is our fault.
        let size = u64::try_from(row.size_bytes).unwrap_or(0);
        plan.model_report(&bytes, size).map(Some).map_err(|e| AppError::internal(anyhow::anyhow!("stored report of {}: {e}", row.id)))
    }

    async fn version_row(&self, p: &Principal, id: Uuid) -> AppResult<model_versions::Model> {
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let row = jobs::model_version(&tx, p.org, id).await?.ok_or_else(|| AppError::not_found("model version"))?;
        tx.commit().await?;
        Ok(row)
    }

    #[tracing::instrument(skip_all, fields(org = %p.org, version = %id))]
    pub async fn model_report(&self, p: &Principal, id: Uuid) -> AppResult<Option<ModelReport>> {
        p.require(perms::MODELS_READ)?;
        let row = self.version_row(p, id).await?;
        self.load_report(p.org, &row).await
    }

    /// Version A against version B on the examples both were tested on.
    #[tracing::instrument(skip_all, fields(org = %p.org, a = %a, b = %b))]
    pub async fn compare_model_versions(&self, p: &Principal, a: Uuid, b: Uuid) -> AppResult<Comparison> {
        p.require(perms::MODELS_READ)?;
        let (row_a, row_b) = (self.version_row(p, a).await?, self.version_row(p, b).await?);
        if row_a.family != row_b.family {
            return Err(AppError::bad_input(
                "b",
                format!("A is a {} model and B a {} model; compare versions of one family", row_a.family, row_b.family),
            ));
        }
        let no_report = |which: &'static str| {
            AppError::bad_input(
                which,
                format!("version {which} has no report (it was imported without report.json); it cannot be compared"),
            )
        };
        let report_a = self.load_report(p.org, &row_a).await?.ok_or_else(|| no_report("a"))?;
        let report_b = self.load_report(p.org, &row_b).await?.ok_or_else(|| no_report("b"))?;
        // Resampling is a few million additions: off the async threads.
        let compared = tokio::task::spawn_blocking(move || compare::compare(&report_a, &report_b)).await.map_err(AppError::internal)?;
        Ok(compared?)
    }

    /// The version's report as one self-contained HTML page.
    #[tracing::instrument(skip_all, fields(org = %org, version = %row.id))]
    pub(crate) async fn report_html(&self, org: OrgId, row: &model_versions::Model) -> AppResult<Option<String>> {
        let Some(report) = self.load_report(org, row).await? else { return Ok(None) };
        let tx = self.inner.store.tenant(org, None).await?;
        let model = models::get(&tx, org, row.model_id).await?.ok_or_else(|| AppError::not_found("model"))?;
        tx.commit().await?;
        let view = model_version_view(row)?;
        let l = &view.lineage;
        let mut facts = vec![
            ("Model".to_owned(), format!("{} (version {})", model.name, view.version)),
            ("Family".to_owned(), view.family.to_string()),
            ("Architecture".to_owned(), view.architecture.clone()),
            ("Source".to_owned(), l.source.clone()),
        ];
        let mut fact = |name: &str, value: Option<String>| {
            if let Some(v) = value {
                facts.push((name.to_owned(), v));
            }
        };
        fact("Dataset", l.dataset_name.as_ref().map(|n| format!("{n} (version {})", l.dataset_version.unwrap_or_default())));
        fact("Dataset SHA-256", l.dataset_sha256.clone());
        fact("Job", l.job_id.map(|j| format!("{j} ({})", l.job_kind.clone().unwrap_or_default())));
        fact("Base model version", l.base_model_version_id.map(|v| v.to_string()));
        fact("Teacher model version", l.teacher_model_version_id.map(|v| v.to_string()));
        fact("Split", l.split.as_ref().map(|s| format!("{s}, split seed {}", l.split_seed.unwrap_or_default())));
        fact("Training seed", l.seed.map(|s| s.to_string()));
        fact("Hyperparameters", l.hyperparameters.as_ref().map(ToString::to_string));
        fact("Engine", l.engine.clone());
        fact("Created", Some(view.created_at.to_rfc3339()));
        let page = tenfold_report::html::Page {
            title: format!("{} — version {}", model.name, view.version),
            subtitle: format!("{} · {} · tested on {} {} examples", view.family, view.architecture, report.examples, report.split),
            facts,
            report: &report,
        };
        Ok(Some(tenfold_report::html::render(&page)))
    }
}
