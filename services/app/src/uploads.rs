//! Resumable uploads for large files (`/v1/uploads`): create a session
//! with the file's size and SHA-256, send chunks at the current offset,
//! resume after a dropped connection by asking for the offset. The bytes
//! stage in the data dir; when complete and the checksum matches, they
//! become a dataset version exactly like a GraphQL upload.

use std::io::Write;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::App;
use crate::datasets::{DatasetVersionView, UploadInput, check_file_name, check_name, parse_family};
use crate::error::{AppError, AppResult, ConflictReason};
use crate::principal::{Principal, perms};

/// Largest chunk one request may carry; clients send the file in chunks.
pub const MAX_CHUNK_BYTES: usize = 16 * 1024 * 1024;
const SESSION_HOURS: i64 = 24;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewUpload {
    pub name: String,
    pub family: String,
    pub file_name: String,
    pub size: u64,
    /// Hex SHA-256 of the whole file, checked when the last byte arrives.
    pub sha256: String,
    #[serde(default)]
    pub redact: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    upload: NewUpload,
    expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct UploadState {
    pub id: Uuid,
    pub offset: u64,
    pub size: u64,
    pub expires_at: DateTime<Utc>,
}

pub enum Appended {
    Partial(UploadState),
    Complete(Box<DatasetVersionView>),
}

impl App {
    /// The staging folder of one organization: the tenant is part of the
    /// path, so another organization's upload id finds nothing.
    fn staging(&self, p: &Principal) -> PathBuf {
        self.inner.settings.storage.data_dir.join("uploads").join(p.org.to_string())
    }

    fn session_paths(&self, p: &Principal, id: Uuid) -> (PathBuf, PathBuf) {
        let dir = self.staging(p);
        (dir.join(format!("{id}.json")), dir.join(format!("{id}.part")))
    }

    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn create_upload(&self, p: &Principal, upload: NewUpload) -> AppResult<UploadState> {
        p.require(perms::DATASETS_WRITE)?;
        parse_family(&upload.family)?;
        check_name(&upload.name)?;
        check_file_name(&upload.file_name, "fileName")?;
        if upload.sha256.len() != 64 || !upload.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AppError::bad_input("sha256", "give the file's SHA-256 as 64 hex digits (sha256sum FILE)"));
        }
        if upload.size == 0 {
            return Err(AppError::bad_input("size", "the file is empty"));
        }
        self.check_upload_quota(p, upload.size).await?;
        let id = Uuid::now_v7();
        let session = Session {
            upload: NewUpload { sha256: upload.sha256.to_ascii_lowercase(), ..upload },
            expires_at: Utc::now() + chrono::Duration::hours(SESSION_HOURS),
        };
        let (meta, part) = self.session_paths(p, id);
        std::fs::create_dir_all(self.staging(p)).map_err(AppError::internal)?;
        std::fs::write(&meta, serde_json::to_vec(&session).map_err(AppError::internal)?).map_err(AppError::internal)?;
        std::fs::File::create(&part).map_err(AppError::internal)?;
        self.sweep_expired_uploads(p);
        Ok(UploadState { id, offset: 0, size: session.upload.size, expires_at: session.expires_at })
    }

    fn load_session(&self, p: &Principal, id: Uuid) -> AppResult<(Session, PathBuf, PathBuf)> {
        let (meta, part) = self.session_paths(p, id);
        let raw = std::fs::read(&meta).map_err(|_| AppError::not_found("upload"))?;
        let session: Session = serde_json::from_slice(&raw).map_err(AppError::internal)?;
        if session.expires_at <= Utc::now() {
            let _ = std::fs::remove_file(&meta);
            let _ = std::fs::remove_file(&part);
            return Err(AppError::not_found("upload"));
        }
        Ok((session, meta, part))
    }

    #[tracing::instrument(skip_all, fields(org = %p.org, id = %id))]
    pub async fn upload_state(&self, p: &Principal, id: Uuid) -> AppResult<UploadState> {
        p.require(perms::DATASETS_WRITE)?;
        let (session, _, part) = self.load_session(p, id)?;
        let offset = std::fs::metadata(&part).map_err(AppError::internal)?.len();
        Ok(UploadState { id, offset, size: session.upload.size, expires_at: session.expires_at })
    }

    /// Appends `chunk` at `offset`, which must be where the upload stands.
    /// The last chunk completes the upload: checksum, then a dataset version.
    #[tracing::instrument(skip_all, fields(org = %p.org, id = %id))]
    pub async fn append_upload(&self, p: &Principal, id: Uuid, offset: u64, chunk: &[u8]) -> AppResult<Appended> {
        p.require(perms::DATASETS_WRITE)?;
        let (session, meta, part) = self.load_session(p, id)?;
        let mut file = std::fs::OpenOptions::new().append(true).read(true).open(&part).map_err(AppError::internal)?;
        let current = file.metadata().map_err(AppError::internal)?.len();
        if offset != current {
            return Err(AppError::conflict(
                ConflictReason::UploadOffsetMismatch,
                "uploadOffset",
                format!("the upload stands at byte {current}; send the chunk that starts there"),
            ));
        }
        if current + chunk.len() as u64 > session.upload.size {
            return Err(AppError::bad_input("size", format!("the chunk goes past the declared size of {} bytes", session.upload.size)));
        }
        file.write_all(chunk).map_err(AppError::internal)?;
        let offset = current + chunk.len() as u64;
        if offset < session.upload.size {
            return Ok(Appended::Partial(UploadState { id, offset, size: session.upload.size, expires_at: session.expires_at }));
        }
        let (sha, file) = tokio::task::spawn_blocking(move || -> std::io::Result<(String, std::fs::File)> {
            let (sha, _) = tenfold_store::sha256_of(&mut file)?;
            Ok((sha, file))
        })
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)?;
        let _ = std::fs::remove_file(&meta);
        let _ = std::fs::remove_file(&part);
        if sha != session.upload.sha256 {
            return Err(AppError::bad_input(
                "sha256",
                format!(
                    "the file's SHA-256 is {sha}, not the declared {}; the upload was discarded — upload it again",
                    session.upload.sha256
                ),
            ));
        }
        let u = &session.upload;
        let input = UploadInput { name: &u.name, family: &u.family, file_name: &u.file_name, file, redact: u.redact };
        Ok(Appended::Complete(Box::new(self.upload_dataset(p, input).await?)))
    }

    #[tracing::instrument(skip_all, fields(org = %p.org, id = %id))]
    pub async fn cancel_upload(&self, p: &Principal, id: Uuid) -> AppResult<()> {
        p.require(perms::DATASETS_WRITE)?;
        let (_, meta, part) = self.load_session(p, id)?;
        let _ = std::fs::remove_file(meta);
        let _ = std::fs::remove_file(part);
        Ok(())
    }

    /// Removes the organization's expired sessions (cheap: one folder).
    fn sweep_expired_uploads(&self, p: &Principal) {
        let Ok(entries) = std::fs::read_dir(self.staging(p)) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json")
                && let Ok(raw) = std::fs::read(&path)
                && let Ok(session) = serde_json::from_slice::<Session>(&raw)
                && session.expires_at <= Utc::now()
            {
                let _ = std::fs::remove_file(path.with_extension("part"));
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}
