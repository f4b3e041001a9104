//! Resumable uploads, as tus 1.0 defines them (core, creation, checksum,
//! termination, expiration), so that tus-js-client, Uppy and tuspy work
//! unchanged; the HTTP side is `api/src/tus.rs`.
//!
//! An upload is a row (tenant table `uploads`) and its parts: each PATCH's
//! bytes are put into blob storage as one content-addressed part, so any
//! replica can take the next PATCH and staged bytes count against the
//! organization's storage like everything else it keeps. PATCHes of one
//! upload are serialized by the row's offset (a conditional update under
//! the upload's lock): of two racing PATCHes at one offset, one wins, the
//! other gets 409 and its part is dropped. The last byte assembles the
//! parts into a dataset version exactly like a GraphQL upload. Open uploads
//! are capped per organization and expire 24 h after their last PATCH;
//! the workers' sweeper deletes expired ones and their parts.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};

use base64::Engine;
use chrono::{DateTime, Utc};
use sha2::Digest;
use tenfold_domain::OrgId;
use tenfold_store::entities::uploads as upload_rows;
use tenfold_store::queries::{datasets, storage, uploads};
use tracing::{info, warn};
use uuid::Uuid;

use crate::App;
use crate::datasets::{DatasetVersionView, UploadInput, blob_lock, check_file_name, check_name, parse_family};
use crate::error::{AppError, AppResult, ConflictReason, ErrorCode};
use crate::principal::{Principal, perms};
use crate::tenancy::org_view;

/// Uploads an organization may have open at once.
pub const MAX_OPEN_UPLOADS: u64 = 20;
/// An upload expires this long after its creation or its last PATCH.
const UPLOAD_HOURS: i64 = 24;
/// Joining the parts takes seconds; an upload still joining after this
/// long was left behind by a process that stopped.
const STUCK_MINUTES: i64 = 10;
/// The checksum algorithms PATCH takes (`Tus-Checksum-Algorithm`).
pub const CHECKSUM_ALGORITHMS: &str = "sha1,sha256";

/// What a new upload says about itself (`Upload-Length`, `Upload-Metadata`).
pub struct NewUpload<'a> {
    pub length: Option<u64>,
    pub metadata: &'a str,
}

#[derive(Debug, Clone)]
pub struct UploadState {
    pub id: Uuid,
    pub offset: u64,
    pub length: u64,
    pub expires_at: DateTime<Utc>,
    /// The `Upload-Metadata` the client sent, echoed by HEAD.
    pub metadata: String,
    /// The dataset version a completed upload became.
    pub dataset_version: Option<Uuid>,
}

pub enum Appended {
    Partial(UploadState),
    Complete(UploadState, Box<DatasetVersionView>),
}

/// `Upload-Checksum: <algorithm> <base64 digest>` of one PATCH's body.
#[derive(Debug, Clone)]
pub struct Checksum {
    algorithm: &'static str,
    digest: Vec<u8>,
}

impl Checksum {
    /// Parses the header; an algorithm we do not offer is a 400 naming the ones we do.
    pub fn parse(raw: &str) -> AppResult<Self> {
        let (name, b64) = raw.trim().split_once(' ').unwrap_or((raw.trim(), ""));
        let algorithm = match name {
            "sha1" => "sha1",
            "sha256" => "sha256",
            other => {
                return Err(AppError::bad_input(
                    "Upload-Checksum",
                    format!("{other:?} is not a checksum algorithm this server offers; use one of {CHECKSUM_ALGORITHMS}"),
                ));
            }
        };
        let hint = "send `Upload-Checksum: <algorithm> <base64 of the digest>`";
        let digest =
            base64::engine::general_purpose::STANDARD.decode(b64.trim()).map_err(|_| AppError::bad_input("Upload-Checksum", hint))?;
        let expected = if algorithm == "sha1" { 20 } else { 32 };
        if digest.len() != expected {
            return Err(AppError::bad_input("Upload-Checksum", format!("a {algorithm} digest is {expected} bytes; {hint}")));
        }
        Ok(Self { algorithm, digest })
    }

    fn of(&self, file: &mut std::fs::File) -> std::io::Result<Vec<u8>> {
        file.seek(SeekFrom::Start(0))?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut sha1 = sha1::Sha1::new();
        let mut sha256 = sha2::Sha256::new();
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            match self.algorithm {
                "sha1" => sha1.update(&buf[..n]),
                _ => sha256.update(&buf[..n]),
            }
        }
        file.seek(SeekFrom::Start(0))?;
        Ok(if self.algorithm == "sha1" { sha1.finalize().to_vec() } else { sha256.finalize().to_vec() })
    }
}

/// One PATCH's body, received into a local temporary file.
pub struct Chunk {
    pub file: std::fs::File,
    pub len: u64,
    pub checksum: Option<Checksum>,
    /// False when the connection dropped before the body ended: the bytes
    /// that arrived are kept (that is what resuming resumes from), unless a
    /// checksum was promised for the whole body.
    pub whole: bool,
}

/// The dataset an upload becomes, from its metadata.
struct Target {
    dataset: String,
    family: String,
    file_name: String,
    redact: bool,
    sha256: Option<String>,
}

/// Decodes `Upload-Metadata`: comma-separated `key base64(value)` pairs.
fn decode_metadata(raw: &str) -> AppResult<HashMap<String, String>> {
    let mut out = HashMap::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once(' ').unwrap_or((pair, ""));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .map_err(|_| AppError::bad_input("Upload-Metadata", format!("the value of {key:?} is not base64")))?;
        let text =
            String::from_utf8(bytes).map_err(|_| AppError::bad_input("Upload-Metadata", format!("the value of {key:?} is not UTF-8")))?;
        out.insert(key.to_owned(), text);
    }
    Ok(out)
}

/// The metadata keys: `filename` (tus-js-client, tuspy; Uppy also sends
/// `name` as the file's name), `dataset` (the dataset's name; the file's
/// name without its extension when absent), `family`, and optionally
/// `redact` ("true") and `sha256` (hex of the whole file, checked at the end).
fn target(raw: &str) -> AppResult<Target> {
    let meta = decode_metadata(raw)?;
    let hint = "send Upload-Metadata with `filename`, `family` (IMAGE_CLASSIFICATION, CHAT or RECOMMENDATION) and optionally `dataset`";
    let file_name =
        meta.get("filename").or_else(|| meta.get("name")).ok_or_else(|| AppError::bad_input("Upload-Metadata.filename", hint))?;
    let file_name = check_file_name(file_name, "Upload-Metadata.filename")?.to_owned();
    let family = meta.get("family").ok_or_else(|| AppError::bad_input("Upload-Metadata.family", hint))?;
    parse_family(family).map_err(|_| AppError::bad_input("Upload-Metadata.family", "use IMAGE_CLASSIFICATION, CHAT or RECOMMENDATION"))?;
    let stem = file_name.rsplit_once('.').map_or(file_name.as_str(), |(stem, _)| stem).to_owned();
    let dataset = meta.get("dataset").cloned().unwrap_or(stem);
    let dataset = check_name(&dataset).map_err(|_| {
        AppError::bad_input("Upload-Metadata.dataset", "give the dataset a name of 1–100 printable characters, e.g. \"support-chats\"")
    })?;
    let redact = match meta.get("redact").map(String::as_str) {
        None | Some("false") | Some("") => false,
        Some("true") => true,
        Some(other) => return Err(AppError::bad_input("Upload-Metadata.redact", format!("{other:?} is not true or false"))),
    };
    let sha256 = match meta.get("sha256") {
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => Some(h.to_ascii_lowercase()),
        Some(_) => return Err(AppError::bad_input("Upload-Metadata.sha256", "give the file's SHA-256 as 64 hex digits (sha256sum FILE)")),
        None => None,
    };
    Ok(Target { dataset: dataset.to_owned(), family: family.clone(), file_name, redact, sha256 })
}

fn parts_of(row: &upload_rows::Model) -> Vec<(String, u64)> {
    serde_json::from_str(&row.parts).unwrap_or_default()
}

fn state_of(row: &upload_rows::Model) -> UploadState {
    UploadState {
        id: row.id,
        offset: row.offset.max(0) as u64,
        length: row.length.max(0) as u64,
        expires_at: row.expires_at,
        metadata: row.metadata.clone(),
        dataset_version: row.dataset_version_id,
    }
}

fn offset_mismatch(at: i64) -> AppError {
    AppError::conflict(
        ConflictReason::UploadOffsetMismatch,
        "Upload-Offset",
        format!("the upload stands at byte {at}; send the bytes that start there (HEAD tells where an upload stands)"),
    )
}

fn lock(id: Uuid) -> String {
    format!("upload:{id}")
}

impl App {
    /// Creates an upload (tus creation). Everything the dataset needs is
    /// checked now, before a byte is sent: name, family, file name, the
    /// plan's upload size and storage (counting what open uploads still
    /// have to send), and the cap on open uploads.
    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn create_upload(&self, p: &Principal, new: NewUpload<'_>) -> AppResult<UploadState> {
        p.require(perms::DATASETS_WRITE)?;
        let Some(length) = new.length else {
            return Err(AppError::bad_input(
                "Upload-Length",
                "send Upload-Length: the file's size in bytes (deferred lengths are not offered)",
            ));
        };
        if length == 0 {
            return Err(AppError::bad_input("Upload-Length", "the file is empty"));
        }
        let t = target(new.metadata)?;
        let now = Utc::now();
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        // One creation of the organization at a time: the cap and the quota
        // are checked and the row inserted without another interleaving.
        tx.serialize(&format!("uploads:{}", p.org)).await?;
        if uploads::count_open(&tx, p.org, now).await? >= MAX_OPEN_UPLOADS {
            return Err(AppError::quota(format!(
                "{MAX_OPEN_UPLOADS} uploads are open; finish or DELETE one first (an abandoned upload expires {UPLOAD_HOURS} h after its last PATCH)"
            )));
        }
        let org = tenfold_store::queries::orgs::get(&tx, p.org).await?.ok_or_else(|| AppError::not_found("organization"))?;
        let quotas = org_view(&org)?.quotas();
        if length > quotas.max_upload_bytes {
            return Err(AppError::quota(format!(
                "the file is {length} bytes; your plan takes uploads of at most {} bytes — split the data or upgrade the plan",
                quotas.max_upload_bytes
            )));
        }
        let used = storage::used_bytes(&tx, p.org).await?.max(0) as u64;
        let promised = uploads::unsent_bytes(&tx, p.org, now).await?.max(0) as u64;
        if used + promised + length > quotas.storage_bytes {
            return Err(AppError::quota(format!(
                "storing this file would use {} of your {} bytes of storage (counting uploads in progress); delete datasets, DELETE open uploads or upgrade the plan",
                used + promised + length,
                quotas.storage_bytes
            )));
        }
        if let Some(existing) = datasets::by_name(&tx, p.org, &t.dataset).await?
            && existing.family != t.family
        {
            return Err(AppError::bad_input(
                "Upload-Metadata.family",
                format!("the dataset {:?} holds {} data; name another dataset in `dataset`", t.dataset, existing.family),
            ));
        }
        let row = upload_rows::Model {
            org_id: p.org.0,
            id: Uuid::now_v7(),
            name: t.dataset,
            family: t.family,
            file_name: t.file_name,
            redact: t.redact,
            sha256: t.sha256,
            metadata: new.metadata.to_owned(),
            length: length as i64,
            offset: 0,
            parts: "[]".into(),
            dataset_version_id: None,
            created_by: p.user_id().map(|u| u.0),
            created_at: now,
            expires_at: now + chrono::Duration::hours(UPLOAD_HOURS),
        };
        let row = uploads::insert(&tx, row).await?;
        tx.commit().await?;
        Ok(state_of(&row))
    }

    /// The upload of the caller's organization, unless it expired. One
    /// whose last byte arrived long ago without becoming a version (its
    /// process stopped while joining it) gets its last part taken back, so
    /// that the client sends it again instead of believing it is done.
    async fn live_upload(&self, p: &Principal, id: Uuid) -> AppResult<upload_rows::Model> {
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let mut row = uploads::get(&tx, p.org, id).await?.ok_or_else(|| AppError::not_found("upload"))?;
        let now = Utc::now();
        if row.expires_at <= now {
            return Err(AppError::not_found("upload"));
        }
        let last_patch = row.expires_at - chrono::Duration::hours(UPLOAD_HOURS);
        if row.offset == row.length && row.dataset_version_id.is_none() && now - last_patch > chrono::Duration::minutes(STUCK_MINUTES) {
            tx.serialize(&lock(id)).await?;
            let mut parts = parts_of(&row);
            if let Some((_, size)) = parts.pop() {
                let to = row.length - size as i64;
                let json = serde_json::to_string(&parts).map_err(AppError::internal)?;
                if uploads::retract_last_part(&tx, p.org, &row, to, json).await? {
                    warn!(upload = %id, "an upload stuck after its last byte takes its last part back");
                    row = uploads::get(&tx, p.org, id).await?.ok_or_else(|| AppError::not_found("upload"))?;
                }
            }
        }
        tx.commit().await?;
        Ok(row)
    }

    /// Where the upload stands (tus HEAD).
    #[tracing::instrument(skip_all, fields(org = %p.org, id = %id))]
    pub async fn upload_state(&self, p: &Principal, id: Uuid) -> AppResult<UploadState> {
        p.require(perms::DATASETS_WRITE)?;
        Ok(state_of(&self.live_upload(p, id).await?))
    }

    /// What can be refused before a PATCH's body is read: a missing,
    /// expired or finished upload, or an offset that is not where it stands.
    #[tracing::instrument(skip_all, fields(org = %p.org, id = %id))]
    pub async fn precheck_append(&self, p: &Principal, id: Uuid, offset: u64) -> AppResult<UploadState> {
        p.require(perms::DATASETS_WRITE)?;
        let row = self.live_upload(p, id).await?;
        if let Some(version) = row.dataset_version_id {
            return Err(AppError::conflict(
                ConflictReason::UploadOffsetMismatch,
                "Upload-Offset",
                format!("the upload is complete: it became dataset version {version} (HEAD's Tenfold-Dataset-Version); send nothing more"),
            ));
        }
        if row.offset != offset as i64 {
            return Err(offset_mismatch(row.offset));
        }
        Ok(state_of(&row))
    }

    /// Appends one PATCH's bytes at `offset` (tus core + checksum). The
    /// last byte completes the upload: its parts become a dataset version.
    #[tracing::instrument(skip_all, fields(org = %p.org, id = %id))]
    pub async fn append_upload(&self, p: &Principal, id: Uuid, offset: u64, chunk: Chunk) -> AppResult<Appended> {
        let before = self.precheck_append(p, id, offset).await?;
        let Chunk { mut file, len, checksum, whole } = chunk;
        if offset + len > before.length {
            return Err(AppError::bad_input("Upload-Length", format!("the body goes past the upload's length of {} bytes", before.length)));
        }
        if let Some(c) = &checksum {
            if !whole {
                // Only part of a checksummed body arrived: it cannot be verified.
                return Err(AppError::bad_input(
                    "Upload-Checksum",
                    "the body did not arrive whole; nothing of it was kept — send it again",
                ));
            }
            let c2 = c.clone();
            let (digest, back) = tokio::task::spawn_blocking(move || c2.of(&mut file).map(|d| (d, file)))
                .await
                .map_err(AppError::internal)?
                .map_err(AppError::internal)?;
            file = back;
            if digest != c.digest {
                return Err(AppError::conflict(
                    ConflictReason::ChecksumMismatch,
                    "Upload-Checksum",
                    format!("the body's {} is not the one in Upload-Checksum; nothing of it was kept — send it again", c.algorithm),
                ));
            }
        }
        if len == 0 {
            return Ok(Appended::Partial(before));
        }
        file.seek(SeekFrom::Start(0)).map_err(AppError::internal)?;
        // A second handle, to store the part again if a deletion of the
        // same content raced this PATCH (see `record_part`).
        let again = file.try_clone().map_err(AppError::internal)?;
        let (sha, size) = self.inner.blobs.put_file(p.org, file).await.map_err(AppError::internal)?;
        let row = match self.record_part(p, id, offset, (&sha, size), again).await {
            Ok(row) => row,
            Err(e) => {
                self.delete_blob_if_unreferenced(p.org, &sha).await;
                return Err(e);
            }
        };
        if row.offset < row.length {
            return Ok(Appended::Partial(state_of(&row)));
        }
        self.complete_upload(p, row).await
    }

    /// Adds a part under the upload's lock, if the upload still stands at `offset`.
    async fn record_part(
        &self,
        p: &Principal,
        id: Uuid,
        offset: u64,
        (sha, size): (&str, u64),
        again: std::fs::File,
    ) -> AppResult<upload_rows::Model> {
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        tx.serialize(&lock(id)).await?;
        // Parts are blobs shared by content: a deletion of the same content
        // (another upload's part, an INVALID version) may have run since
        // the put. Under the blob's lock the part is recorded, and stored
        // again if it went (as `record_version` does for datasets).
        tx.serialize(&blob_lock(p.org, sha)).await?;
        if !self.inner.blobs.exists(p.org, sha).await {
            let mut again = again;
            again.seek(SeekFrom::Start(0)).map_err(AppError::internal)?;
            self.inner.blobs.put_file(p.org, again).await.map_err(AppError::internal)?;
        }
        let row = uploads::get(&tx, p.org, id).await?.ok_or_else(|| AppError::not_found("upload"))?;
        let mut parts = parts_of(&row);
        parts.push((sha.to_owned(), size));
        let to = offset as i64 + size as i64;
        let expires_at = Utc::now() + chrono::Duration::hours(UPLOAD_HOURS);
        let parts = serde_json::to_string(&parts).map_err(AppError::internal)?;
        if !uploads::advance(&tx, p.org, id, offset as i64, to, parts, expires_at).await? {
            return Err(offset_mismatch(row.offset));
        }
        let row = uploads::get(&tx, p.org, id).await?.ok_or_else(|| AppError::not_found("upload"))?;
        tx.commit().await?;
        Ok(row)
    }

    /// Joins the parts and stores them as a dataset version. A file that
    /// cannot become one (its SHA-256 is not the declared one, the quota
    /// ran out meanwhile) discards the upload: nothing of it is kept.
    async fn complete_upload(&self, p: &Principal, row: upload_rows::Model) -> AppResult<Appended> {
        let result = self.assemble_into_version(p, &row).await;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        tx.serialize(&lock(row.id)).await?;
        let mut parts = parts_of(&row);
        let dropped = match &result {
            Ok(v) => {
                uploads::complete(&tx, p.org, row.id, v.id).await?;
                parts
            }
            // The file cannot become a dataset (a wrong SHA-256, the quota):
            // the upload is discarded, as its message says.
            Err(e) if matches!(e.code, ErrorCode::BadUserInput | ErrorCode::QuotaExceeded) => {
                uploads::delete(&tx, p.org, row.id).await?;
                parts
            }
            // A fault of ours (storage, database): the last part is taken
            // back so that the client's retry of its last PATCH completes it.
            Err(_) => {
                if let Some((_, size)) = parts.pop() {
                    let json = serde_json::to_string(&parts).map_err(AppError::internal)?;
                    uploads::retract_last_part(&tx, p.org, &row, row.length - size as i64, json).await?;
                }
                Vec::new()
            }
        };
        tx.commit().await?;
        for (sha, _) in dropped {
            self.delete_blob_if_unreferenced(p.org, &sha).await;
        }
        let v = result?;
        info!(upload = %row.id, version = %v.id, "resumable upload completed");
        let state = UploadState { offset: row.length as u64, dataset_version: Some(v.id), ..state_of(&row) };
        Ok(Appended::Complete(state, Box::new(v)))
    }

    async fn assemble_into_version(&self, p: &Principal, row: &upload_rows::Model) -> AppResult<DatasetVersionView> {
        // Local copies of the parts (kept until joined: a remote store's
        // copy is removed when its `LocalBlob` drops).
        let mut blobs = Vec::new();
        for (sha, _) in parts_of(row) {
            blobs.push(self.inner.blobs.open_local(p.org, &sha).await.map_err(AppError::internal)?);
        }
        let files = blobs.iter().map(|b| b.file.try_clone()).collect::<std::io::Result<Vec<_>>>().map_err(AppError::internal)?;
        let (whole, actual) = tokio::task::spawn_blocking(move || -> std::io::Result<(std::fs::File, String)> {
            let mut whole = tempfile::tempfile()?;
            for mut part in files {
                part.seek(SeekFrom::Start(0))?;
                std::io::copy(&mut part, &mut whole)?;
            }
            whole.flush()?;
            let (sha, _) = tenfold_store::sha256_of(&mut whole)?;
            whole.seek(SeekFrom::Start(0))?;
            Ok((whole, sha))
        })
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)?;
        drop(blobs);
        if let Some(expected) = &row.sha256
            && &actual != expected
        {
            return Err(AppError::bad_input(
                "Upload-Metadata.sha256",
                format!("the file's SHA-256 is {actual}, not the declared {expected}; the upload was discarded — upload it again"),
            ));
        }
        let input = UploadInput {
            name: &row.name,
            family: &row.family,
            file_name: &row.file_name,
            file: whole,
            redact: row.redact,
            // Its parts are counted as staged until the version replaces them.
            counted_bytes: row.offset.max(0) as u64,
        };
        self.upload_dataset(p, input).await
    }

    /// Deletes an upload and its staged parts (tus termination).
    #[tracing::instrument(skip_all, fields(org = %p.org, id = %id))]
    pub async fn cancel_upload(&self, p: &Principal, id: Uuid) -> AppResult<()> {
        p.require(perms::DATASETS_WRITE)?;
        self.live_upload(p, id).await?;
        self.drop_upload(p.org, id, false).await
    }

    /// Deletes the upload and its parts under its lock; with
    /// `only_if_expired`, only if it is still expired then (a PATCH may have
    /// renewed it since the sweeper looked).
    async fn drop_upload(&self, org: OrgId, id: Uuid, only_if_expired: bool) -> AppResult<()> {
        let tx = self.inner.store.tenant(org, None).await?;
        tx.serialize(&lock(id)).await?;
        let row = match uploads::get(&tx, org, id).await? {
            Some(r) if only_if_expired && r.expires_at > Utc::now() => return Ok(()),
            Some(_) => uploads::delete(&tx, org, id).await?,
            None => {
                uploads::forget_expiry(&tx, id).await?;
                None
            }
        };
        tx.commit().await?;
        for (sha, _) in row.as_ref().map(parts_of).unwrap_or_default() {
            self.delete_blob_if_unreferenced(org, &sha).await;
        }
        Ok(())
    }

    /// Deletes expired uploads of every organization and their parts (the
    /// workers' rescuer calls it); how many it looked at.
    #[tracing::instrument(skip_all)]
    pub async fn sweep_expired_uploads(&self) -> AppResult<usize> {
        let tx = self.inner.store.begin().await?;
        let expired = uploads::expired(&tx, Utc::now(), 100).await?;
        tx.commit().await?;
        for (org, id) in &expired {
            if let Err(e) = self.drop_upload(*org, *id, true).await {
                warn!(upload = %id, error = %e, "deleting an expired upload failed");
            }
        }
        Ok(expired.len())
    }
}
