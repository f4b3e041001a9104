//! Importing a model trained elsewhere: in Tenfold's format
//! (`model.safetensors` + `model.json`, optionally `report.json`), or a
//! pretrained base model in Hugging Face's (`model.safetensors`,
//! `config.json`, `tokenizer.json`: the chat family fine-tunes these).
//! Checked by its family as thoroughly as loading it would, before
//! anything is stored; then filed as the next version of a model, like a
//! job's.

use std::io::{Seek, SeekFrom};
use std::path::Path;

use chrono::Utc;
use serde_json::json;
use tenfold_domain::{ArtifactInfo, DomainError, Family};
use tenfold_store::entities::model_versions;
use tenfold_store::queries::models;
use uuid::Uuid;

use super::registry::{check_model_name, file_version, model_for_version};
use super::views::{CARD_FILE, Lineage, ModelVersionView, REPORT_FILE, WEIGHTS_FILE, model_version_view};
use crate::App;
use crate::audit_action::AuditAction;
use crate::error::{AppError, AppResult};
use crate::principal::{Principal, perms};

pub struct ImportInput {
    /// The model the version joins (created if new).
    pub model: String,
    pub family: Family,
    pub weights: std::fs::File,
    /// `model.json`: a Tenfold model's card.
    pub card: Option<std::fs::File>,
    pub report: Option<std::fs::File>,
    /// `config.json` and `tokenizer.json`: a Hugging Face base model's.
    pub config: Option<std::fs::File>,
    pub tokenizer: Option<std::fs::File>,
}

/// A base model's configuration and tokenizer, as Hugging Face names them.
pub const CONFIG_FILE: &str = "config.json";
pub const TOKENIZER_FILE: &str = "tokenizer.json";

impl ImportInput {
    /// The uploads under the names the family reads them by.
    fn files_mut(&mut self) -> impl Iterator<Item = (&'static str, &mut std::fs::File)> {
        [
            (WEIGHTS_FILE, Some(&mut self.weights)),
            (CARD_FILE, self.card.as_mut()),
            (REPORT_FILE, self.report.as_mut()),
            (CONFIG_FILE, self.config.as_mut()),
            (TOKENIZER_FILE, self.tokenizer.as_mut()),
        ]
        .into_iter()
        .filter_map(|(name, file)| Some((name, file?)))
    }
}

fn size(file: &mut std::fs::File) -> AppResult<u64> {
    let n = file.seek(SeekFrom::End(0)).map_err(AppError::internal)?;
    file.seek(SeekFrom::Start(0)).map_err(AppError::internal)?;
    Ok(n)
}

/// Copies the uploads into a folder under their canonical names.
fn stage(dir: &Path, input: &mut ImportInput) -> AppResult<()> {
    for (name, file) in input.files_mut() {
        let mut out = std::fs::File::create(dir.join(name)).map_err(AppError::internal)?;
        std::io::copy(file, &mut out).map_err(AppError::internal)?;
        file.seek(SeekFrom::Start(0)).map_err(AppError::internal)?;
    }
    Ok(())
}

fn bad(e: DomainError) -> AppError {
    let field = match e.field() {
        "weights" => "weights",
        "report" => "report",
        "config" => "config",
        "tokenizer" => "tokenizer",
        _ => "card",
    };
    AppError::bad_input(field, e.message().to_owned())
}

impl App {
    /// Checks and stores an artifact trained elsewhere as the next version
    /// of `model`. Bad files are refused with what is wrong, and nothing is stored.
    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn import_model_version(&self, p: &Principal, mut input: ImportInput) -> AppResult<ModelVersionView> {
        p.require(perms::MODELS_WRITE)?;
        let name = check_model_name(&input.model)?.to_owned();
        // Fails fast for a family this build cannot check.
        self.inner.families.get(input.family)?;
        // The name's family first, so a wrong one costs no upload (filing
        // checks it again under the transaction).
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        if let Some(existing) = models::by_name(&tx, p.org, &name).await?
            && existing.family != input.family.as_str()
        {
            return Err(AppError::bad_input(
                "model",
                format!("the model {name:?} holds {} versions, not {}; choose another model name", existing.family, input.family),
            ));
        }
        tx.commit().await?;
        let mut total = 0u64;
        for (_, file) in input.files_mut() {
            total += size(file)?;
        }
        self.check_upload_quota(p, total, 0).await?;

        // The family reads the files as it would to serve them.
        let scratch = tempfile::tempdir().map_err(AppError::internal)?;
        let dir = scratch.path().to_path_buf();
        let families = self.inner.families.clone();
        let family = input.family;
        stage(&dir, &mut input)?;
        let has_report = input.report.is_some();
        let checked: Result<(ArtifactInfo, Option<serde_json::Value>), DomainError> = tokio::task::spawn_blocking(move || {
            let plan = families.get(family)?;
            let info = plan.check_artifact(&dir)?;
            let summary = if has_report {
                let bytes = std::fs::read(dir.join(REPORT_FILE)).map_err(|e| DomainError::invalid("report", e.to_string()))?;
                let report = plan.model_report(&bytes, total).map_err(|e| DomainError::invalid("report", e.message().to_owned()))?;
                let classes: Vec<&str> = report.per_class.iter().map(|c| c.class.as_str()).collect();
                if !classes.is_empty() && classes != info.classes.iter().map(String::as_str).collect::<Vec<_>>() {
                    return Err(DomainError::invalid(
                        "report",
                        "report.json is about other classes than model.json; import the report of this model",
                    ));
                }
                Some(report.metrics.iter().map(|m| (m.name.clone(), json!(m.value))).collect::<serde_json::Map<_, _>>().into())
            } else {
                None
            };
            Ok((info, summary))
        })
        .await
        .map_err(AppError::internal)?;
        let (info, summary) = checked.map_err(bad)?;

        // Stored only once every check passed.
        let mut files = std::collections::BTreeMap::new();
        let mut stored = Vec::new();
        for (name, file) in input.files_mut() {
            let file = file.try_clone().map_err(AppError::internal)?;
            let (sha, _) = self.inner.blobs.put_file(p.org, file).await.map_err(AppError::internal)?;
            stored.push(sha.clone());
            files.insert(name.to_owned(), sha);
        }
        let filed = self.file_import(p, &name, family, &info, summary, files, total).await;
        if filed.is_err() {
            for sha in stored {
                self.delete_blob_if_unreferenced(p.org, &sha).await;
            }
        }
        filed
    }

    #[allow(clippy::too_many_arguments)]
    async fn file_import(
        &self,
        p: &Principal,
        name: &str,
        family: Family,
        info: &ArtifactInfo,
        summary: Option<serde_json::Value>,
        files: std::collections::BTreeMap<String, String>,
        total: u64,
    ) -> AppResult<ModelVersionView> {
        let now = Utc::now();
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let model = model_for_version(&tx, p.org, name, family, p.user_id(), now).await?;
        let training = &info.training;
        let lineage = Lineage {
            source: "import".into(),
            dataset_sha256: info.dataset_sha256.clone(),
            architecture: Some(info.architecture.clone()),
            hyperparameters: training.get("config").cloned(),
            engine: Some(info.engine.clone()),
            split_seed: training.get("split_seed").or_else(|| training.get("seed")).and_then(serde_json::Value::as_u64),
            seed: training.get("seed").and_then(serde_json::Value::as_u64),
            ..Lineage::default()
        };
        let row = file_version(
            &tx,
            p.org,
            model_versions::Model {
                org_id: p.org.0,
                id: Uuid::now_v7(),
                model_id: model.id,
                version: 0,
                source: "import".into(),
                job_id: None,
                family: family.as_str().to_owned(),
                architecture: info.architecture.clone(),
                classes: json!(info.classes).to_string(),
                files: json!(files).to_string(),
                size_bytes: i64::try_from(total).unwrap_or(i64::MAX),
                metrics: summary.unwrap_or_else(|| info.metrics.clone()).to_string(),
                lineage: serde_json::to_string(&lineage).map_err(AppError::internal)?,
                created_by: p.user_id().map(|u| u.0),
                created_at: now,
            },
        )
        .await?;
        self.record(
            &tx,
            p.org,
            Some(p),
            &p.meta,
            AuditAction::ModelVersionImported,
            Some(format!("model_version:{}", row.id)),
            json!({ "model": name, "version": row.version, "architecture": info.architecture, "bytes": total }),
        )
        .await?;
        tx.commit().await?;
        model_version_view(&row)
    }
}
