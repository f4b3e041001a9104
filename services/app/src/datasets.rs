//! Datasets: upload, versions, hard delete.
//!
//! The upload is stored under its SHA-256 and a PENDING version row is
//! committed with its validation job (`jobs/validation.rs`), which a
//! worker runs. An INVALID version keeps only its problem list: its file is
//! deleted, so nothing of a refused upload stays in storage.

use chrono::Utc;
use serde_json::json;
use tenfold_datasets::redact::{self, RedactionCounts};
use tenfold_datasets::{Family, Limits};
use tenfold_domain::OrgId;
use tenfold_store::entities::{dataset_versions, datasets as dataset_rows};
use tenfold_store::queries::datasets::{self, NewVersion};
use tenfold_store::queries::{Page, orgs, storage};
use tracing::error;
use uuid::Uuid;

use crate::App;
use crate::audit_action::AuditAction;
use crate::error::{AppError, AppResult, stored};
use crate::principal::{Principal, perms};
use crate::tenancy::org_view;

pub struct UploadInput<'a> {
    pub name: &'a str,
    pub family: &'a str,
    pub file_name: &'a str,
    /// The uploaded bytes, already on local disk (a multipart temp file).
    pub file: std::fs::File,
    /// Mask emails, phone numbers and card numbers before storing (chat only).
    pub redact: bool,
    /// Bytes of this file the storage quota already counts (the staged
    /// parts of a resumable upload), so that they are not counted twice.
    pub counted_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct DatasetView {
    pub id: Uuid,
    pub org: OrgId,
    pub name: String,
    pub family: Family,
    pub created_at: chrono::DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct DatasetVersionView {
    pub id: Uuid,
    pub dataset_id: Uuid,
    pub version: i32,
    pub status: String,
    pub file_name: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub stats: serde_json::Value,
    pub problems: serde_json::Value,
    pub warnings: serde_json::Value,
    pub preview: serde_json::Value,
    pub splits: serde_json::Value,
    pub redaction: serde_json::Value,
    pub problem_count: i64,
    pub created_at: chrono::DateTime<Utc>,
    pub validated_at: Option<chrono::DateTime<Utc>>,
}

fn dataset_view(d: &dataset_rows::Model) -> AppResult<DatasetView> {
    let family = stored(d.family.parse::<Family>(), "dataset family")?;
    Ok(DatasetView { id: d.id, org: OrgId(d.org_id), name: d.name.clone(), family, created_at: d.created_at })
}

fn json_or_null(raw: &Option<String>) -> serde_json::Value {
    raw.as_deref().and_then(|s| serde_json::from_str(s).ok()).unwrap_or(serde_json::Value::Null)
}

fn version_view(v: &dataset_versions::Model) -> DatasetVersionView {
    DatasetVersionView {
        id: v.id,
        dataset_id: v.dataset_id,
        version: v.version,
        status: v.status.clone(),
        file_name: v.file_name.clone(),
        size_bytes: v.size_bytes,
        sha256: v.sha256.clone(),
        stats: json_or_null(&v.stats),
        problems: json_or_null(&v.problems),
        warnings: json_or_null(&v.warnings),
        preview: json_or_null(&v.preview),
        splits: json_or_null(&v.splits),
        redaction: json_or_null(&v.redaction),
        problem_count: v.problem_count,
        created_at: v.created_at,
        validated_at: v.validated_at,
    }
}

pub(crate) fn check_name(name: &str) -> AppResult<&str> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AppError::bad_input("name", "give the dataset a name of 1–100 printable characters, e.g. \"support-chats\""));
    }
    Ok(name)
}

pub(crate) fn parse_family(raw: &str) -> AppResult<Family> {
    raw.parse::<Family>().map_err(|_| AppError::bad_input("family", "use IMAGE_CLASSIFICATION, CHAT or RECOMMENDATION"))
}

/// The file's base name; `field` names the input it came in.
pub(crate) fn check_file_name<'a>(name: &'a str, field: &'static str) -> AppResult<&'a str> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("").trim();
    if base.is_empty() || base.len() > 255 || base.chars().any(char::is_control) {
        return Err(AppError::bad_input(field, "the file needs a name of 1–255 characters with its extension, e.g. digits.zip"));
    }
    Ok(base)
}

/// A file just put into blob storage, and a handle to put it again.
struct StoredFile<'a> {
    sha256: &'a str,
    size: u64,
    again: std::fs::File,
}

/// The lock that orders deleting a blob and recording a new use of it.
pub(crate) fn blob_lock(org: OrgId, sha256: &str) -> String {
    format!("blob:{org}:{sha256}")
}

/// Writes a redacted copy of a chat file to an unnamed temporary file.
async fn redacted(family: Family, file_name: &str, file: std::fs::File) -> AppResult<(std::fs::File, Option<RedactionCounts>)> {
    if family != Family::Chat {
        return Err(AppError::bad_input("redact", "redaction applies to CHAT datasets only; upload without it"));
    }
    let lower = file_name.to_ascii_lowercase();
    let jsonl = lower.ends_with(".jsonl");
    if !jsonl && !lower.ends_with(".csv") {
        return Err(AppError::bad_input("redact", "redaction reads .jsonl chats and .csv intent tables"));
    }
    // Off the async runtime, in the validators' caps: one line (or CSV
    // record) at a time, so memory stays flat whatever the file holds.
    let limits = Limits::default();
    let redacted = tokio::task::spawn_blocking(move || -> Result<(std::fs::File, Option<RedactionCounts>), redact::RedactError> {
        use std::io::{Seek, SeekFrom};
        let mut file = file;
        file.seek(SeekFrom::Start(0))?;
        let mut out = tempfile::tempfile()?;
        let input = std::io::BufReader::new(file);
        let counts = {
            let writer = std::io::BufWriter::new(&mut out);
            if jsonl { redact::redact_chat_jsonl(input, writer, &limits)? } else { redact::redact_intents_csv(input, writer, &limits)? }
        };
        out.seek(SeekFrom::Start(0))?;
        Ok((out, Some(counts)))
    })
    .await
    .map_err(AppError::internal)?;
    match redacted {
        Ok(done) => Ok(done),
        Err(redact::RedactError::Io(e)) => Err(AppError::internal(e)),
        // A file that breaks a cap is refused whole: nothing unredacted is kept.
        Err(e) => Err(AppError::bad_input("file", e.to_string())),
    }
}

impl App {
    /// What can be checked of an upload before its body is read: the
    /// permission, and the declared size against the plan and the storage
    /// left (the body's length, a little more than the file's).
    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn precheck_upload(&self, p: &Principal, declared_bytes: Option<u64>) -> AppResult<()> {
        // Files come in for datasets and for model imports; each operation
        // checks its own permission again.
        p.require(perms::DATASETS_WRITE).or_else(|_| p.require(perms::MODELS_WRITE))?;
        if let Some(size) = declared_bytes {
            self.check_upload_quota(p, size, 0).await?;
        }
        Ok(())
    }

    /// QUOTA_EXCEEDED unless the plan takes an upload of `size` bytes and
    /// has room for it in storage.
    pub(crate) async fn check_upload_quota(&self, p: &Principal, size: u64, counted: u64) -> AppResult<()> {
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let org = orgs::get(&tx, p.org).await?.ok_or_else(|| AppError::not_found("organization"))?;
        let quotas = org_view(&org)?.quotas();
        if size > quotas.max_upload_bytes {
            return Err(AppError::quota(format!(
                "the file is {size} bytes; your plan takes uploads of at most {} bytes — split the data or upgrade the plan",
                quotas.max_upload_bytes
            )));
        }
        let used = (storage::used_bytes(&tx, p.org).await?.max(0) as u64).saturating_sub(counted);
        if used + size > quotas.storage_bytes {
            return Err(AppError::quota(format!(
                "storing this file would use {} of your {} bytes of storage; delete datasets or upgrade the plan",
                used + size,
                quotas.storage_bytes
            )));
        }
        Ok(())
    }

    /// Stores an upload as a new version of the dataset `name` (created on
    /// first upload) and starts its validation. Quotas and names are
    /// checked before anything is stored.
    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn upload_dataset(&self, p: &Principal, input: UploadInput<'_>) -> AppResult<DatasetVersionView> {
        p.require(perms::DATASETS_WRITE)?;
        let name = check_name(input.name)?;
        let family = parse_family(input.family)?;
        let file_name = check_file_name(input.file_name, "file")?;
        let size = input.file.metadata().map_err(AppError::internal)?.len();

        self.check_upload_quota(p, size, input.counted_bytes).await?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        if let Some(existing) = datasets::by_name(&tx, p.org, name).await?
            && existing.family != family.as_str()
        {
            return Err(AppError::bad_input(
                "family",
                format!("the dataset {name:?} holds {} data; give the upload another name", existing.family),
            ));
        }
        drop(tx);

        let (file, redaction) = if input.redact { redacted(family, file_name, input.file).await? } else { (input.file, None) };
        // A second handle on the same file, to store it again if a deletion
        // of the same content raced this upload (see `record_version`).
        let again = file.try_clone().map_err(AppError::internal)?;
        let (sha256, size) = self.inner.blobs.put_file(p.org, file).await.map_err(AppError::internal)?;
        let stored = StoredFile { sha256: &sha256, size, again };
        let version = match self.record_version(p, name, family, file_name, stored, redaction).await {
            Ok(v) => v,
            Err(e) => {
                self.delete_blob_if_unreferenced(p.org, &sha256).await;
                return Err(e);
            }
        };
        Ok(version)
    }

    #[allow(clippy::too_many_arguments)]
    async fn record_version(
        &self,
        p: &Principal,
        name: &str,
        family: Family,
        file_name: &str,
        stored: StoredFile<'_>,
        redaction: Option<RedactionCounts>,
    ) -> AppResult<DatasetVersionView> {
        let StoredFile { sha256, size, again } = stored;
        let now = Utc::now();
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        // Blobs are shared by content: a deletion of the same content (an
        // earlier INVALID upload of these bytes) may have run between our
        // store and this row. Under the blob's lock, the row goes in and the
        // blob is stored again if it went.
        tx.serialize(&blob_lock(p.org, sha256)).await?;
        if !self.inner.blobs.exists(p.org, sha256).await {
            let mut again = again;
            std::io::Seek::seek(&mut again, std::io::SeekFrom::Start(0)).map_err(AppError::internal)?;
            self.inner.blobs.put_file(p.org, again).await.map_err(AppError::internal)?;
        }
        let dataset = match datasets::by_name(&tx, p.org, name).await? {
            Some(d) => d,
            None => datasets::insert(&tx, p.org, Uuid::now_v7(), name, family.as_str(), p.user_id(), now).await?,
        };
        let number = datasets::next_version_number(&tx, p.org, dataset.id).await?;
        let new = NewVersion {
            id: Uuid::now_v7(),
            dataset_id: dataset.id,
            version: number,
            file_name,
            size_bytes: size as i64,
            sha256,
            created_by: p.user_id(),
            redaction: redaction.map(|r| json!(r).to_string()),
        };
        let row = datasets::insert_version(&tx, p.org, new, now).await?;
        // In the same transaction: no version without its validation.
        self.enqueue_validation(&tx, p.org, row.id, family, p.user_id(), now).await?;
        self.record(
            &tx,
            p.org,
            Some(p),
            &p.meta,
            AuditAction::DatasetUploaded,
            Some(format!("dataset:{}", dataset.id)),
            json!({ "version": number, "file": file_name, "bytes": size }),
        )
        .await?;
        tx.commit().await?;
        Ok(version_view(&row))
    }

    /// Deletes a blob that no dataset, model or live checkpoint of the
    /// organization names any more (best effort: a failure leaves it). The
    /// check and the deletion hold the blob's lock, so an upload of the same
    /// content either is counted or finds the blob gone and stores it again.
    pub(crate) async fn delete_blob_if_unreferenced(&self, org: OrgId, sha256: &str) {
        let Ok(tx) = self.inner.store.tenant(org, None).await else { return };
        if tx.serialize(&blob_lock(org, sha256)).await.is_err() {
            return;
        }
        if storage::blob_references(&tx, org, sha256).await.unwrap_or(1) == 0
            && let Err(e) = self.inner.blobs.delete(org, sha256).await
        {
            error!(error = %e, "deleting a blob failed");
        }
        let _ = tx.commit().await;
    }

    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn datasets(
        &self,
        p: &Principal,
        family: Option<&str>,
        after: Option<Uuid>,
        first: Option<i32>,
    ) -> AppResult<Page<DatasetView>> {
        p.require(perms::DATASETS_READ)?;
        if let Some(f) = family {
            parse_family(f)?;
        }
        let limit = self.page_size(first)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let page = datasets::list(&tx, p.org, family, after, limit).await?;
        tx.commit().await?;
        Ok(Page { rows: page.rows.iter().map(dataset_view).collect::<AppResult<_>>()?, has_next: page.has_next })
    }

    #[tracing::instrument(skip_all, fields(org = %p.org, id = %id))]
    pub async fn dataset(&self, p: &Principal, id: Uuid) -> AppResult<DatasetView> {
        p.require(perms::DATASETS_READ)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let row = datasets::get(&tx, p.org, id).await?.ok_or_else(|| AppError::not_found("dataset"))?;
        tx.commit().await?;
        dataset_view(&row)
    }

    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn dataset_versions(&self, p: &Principal, dataset: Uuid) -> AppResult<Vec<DatasetVersionView>> {
        p.require(perms::DATASETS_READ)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let rows = datasets::versions(&tx, p.org, dataset).await?;
        tx.commit().await?;
        Ok(rows.iter().map(version_view).collect())
    }

    #[tracing::instrument(skip_all, fields(org = %p.org, id = %id))]
    pub async fn dataset_version(&self, p: &Principal, id: Uuid) -> AppResult<DatasetVersionView> {
        p.require(perms::DATASETS_READ)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let row = datasets::version(&tx, p.org, id).await?.ok_or_else(|| AppError::not_found("dataset version"))?;
        tx.commit().await?;
        Ok(version_view(&row))
    }

    /// Deletes a dataset, its versions and every blob no other version of
    /// the organization still uses.
    #[tracing::instrument(skip_all, fields(org = %p.org, id = %id))]
    pub async fn delete_dataset(&self, p: &Principal, id: Uuid) -> AppResult<bool> {
        p.require(perms::DATASETS_WRITE)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let dataset = datasets::get(&tx, p.org, id).await?.ok_or_else(|| AppError::not_found("dataset"))?;
        let shas: Vec<String> = datasets::versions(&tx, p.org, id).await?.into_iter().map(|v| v.sha256).collect();
        datasets::delete(&tx, p.org, id).await?;
        self.record(
            &tx,
            p.org,
            Some(p),
            &p.meta,
            AuditAction::DatasetDeleted,
            Some(format!("dataset:{id}")),
            json!({ "name": dataset.name }),
        )
        .await?;
        tx.commit().await?;
        for sha in shas {
            self.delete_blob_if_unreferenced(p.org, &sha).await;
        }
        Ok(true)
    }

    /// Keys of the organization's blobs (tests and tenant export).
    /// Bytes the caller's organization keeps, as the storage quota counts them.
    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn storage_used(&self, p: &Principal) -> AppResult<u64> {
        p.require(perms::ORG_READ)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        Ok(storage::used_bytes(&tx, p.org).await?.max(0) as u64)
    }

    #[tracing::instrument(skip_all, fields(org = %org))]
    pub async fn blob_keys(&self, org: OrgId) -> AppResult<Vec<String>> {
        self.inner.blobs.list(org).await.map_err(AppError::internal)
    }
}
