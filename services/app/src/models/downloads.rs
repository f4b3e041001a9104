//! Artifact downloads by signed, expiring URL.
//!
//! The URL is the credential (like an S3 presigned URL), so `curl`, a
//! browser or a deployment script can fetch the files without an API
//! token: `…/v1/downloads/model-versions/<id>/<file>?org=<org>&expires=<unix>&signature=<hex>`.
//! The signature is HMAC-SHA256 over the organization, version, file and
//! expiry with a key derived from the server's JWT secret (its own purpose
//! string, so a signature is never a valid token and the reverse). A
//! changed character or a passed expiry is refused before any database
//! read; the tenant is the signed one, so no URL reaches another
//! organization's files.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;
use tenfold_domain::OrgId;
use tenfold_store::BlobError;
use tenfold_store::blobs::BlobStream;
use tenfold_store::queries::jobs;
use uuid::Uuid;

use super::views::{CARD_FILE, REPORT_FILE, WEIGHTS_FILE};
use crate::App;
use crate::error::{AppError, AppResult};
use crate::principal::{Principal, perms};

/// Default and longest lifetime of a download URL.
pub const DEFAULT_LINK_SECONDS: i64 = 15 * 60;
pub const MAX_LINK_SECONDS: i64 = 7 * 24 * 3600;

/// The files of a version one can download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactFile {
    Weights,
    Card,
    Report,
    /// The report rendered as one self-contained page.
    ReportHtml,
}

impl ArtifactFile {
    pub const ALL: [ArtifactFile; 4] = [ArtifactFile::Weights, ArtifactFile::Card, ArtifactFile::Report, ArtifactFile::ReportHtml];

    pub fn file_name(self) -> &'static str {
        match self {
            ArtifactFile::Weights => WEIGHTS_FILE,
            ArtifactFile::Card => CARD_FILE,
            ArtifactFile::Report => REPORT_FILE,
            ArtifactFile::ReportHtml => "report.html",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ArtifactFile::Weights => "application/octet-stream",
            ArtifactFile::Card | ArtifactFile::Report => "application/json",
            ArtifactFile::ReportHtml => "text/html; charset=utf-8",
        }
    }
}

impl FromStr for ArtifactFile {
    type Err = AppError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ArtifactFile::ALL.into_iter().find(|f| f.file_name() == s).ok_or_else(|| AppError::not_found("file"))
    }
}

#[derive(Debug, Clone)]
pub struct SignedUrl {
    /// Absolute, on the server's public URL.
    pub url: String,
    /// The path and query alone (for clients that know the server).
    pub path: String,
    pub expires_at: DateTime<Utc>,
}

/// A download, ready to send.
pub enum Download {
    Bytes { file: ArtifactFile, name: String, bytes: Vec<u8> },
    Stream { file: ArtifactFile, name: String, size: u64, stream: BlobStream },
}

/// The query of a signed URL, as received.
#[derive(Debug, Clone)]
pub struct SignedQuery {
    pub org: String,
    pub expires: String,
    pub signature: String,
}

/// HMAC takes keys of any length, so this never fails in practice.
fn hmac(key: &[u8]) -> AppResult<Hmac<Sha256>> {
    <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(AppError::internal)
}

fn signing_key(secret: &[u8]) -> AppResult<Vec<u8>> {
    let mut mac = hmac(secret)?;
    mac.update(b"tenfold download links v1");
    Ok(mac.finalize().into_bytes().to_vec())
}

fn mac(key: &[u8], org: OrgId, version: Uuid, file: ArtifactFile, expires: i64) -> AppResult<Hmac<Sha256>> {
    let mut mac = hmac(key)?;
    mac.update(format!("{org}\n{version}\n{}\n{expires}", file.file_name()).as_bytes());
    Ok(mac)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

fn tampered() -> AppError {
    AppError::forbidden(
        "this download link is not valid (it was changed or not issued by us); ask for a new one with modelVersion { downloadUrl }",
    )
}

impl App {
    fn download_key(&self) -> AppResult<Vec<u8>> {
        signing_key(self.inner.settings.auth.jwt_secret.expose_secret().as_bytes())
    }

    /// A URL that downloads `file` of the version until it expires.
    #[tracing::instrument(skip_all, fields(org = %p.org, version = %version))]
    pub async fn download_url(&self, p: &Principal, version: Uuid, file: ArtifactFile, expires_in: Option<i64>) -> AppResult<SignedUrl> {
        p.require(perms::MODELS_READ)?;
        let seconds = expires_in.unwrap_or(DEFAULT_LINK_SECONDS);
        if !(1..=MAX_LINK_SECONDS).contains(&seconds) {
            return Err(AppError::bad_input(
                "expiresInSeconds",
                format!("{seconds} is out of range; use 1 to {MAX_LINK_SECONDS} (7 days)"),
            ));
        }
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let row = jobs::model_version(&tx, p.org, version).await?.ok_or_else(|| AppError::not_found("model version"))?;
        tx.commit().await?;
        let files = super::version_files(&row)?;
        let needs = if file == ArtifactFile::ReportHtml { REPORT_FILE } else { file.file_name() };
        if !files.contains_key(needs) {
            return Err(AppError::bad_input("file", format!("version {} has no {needs}", row.version)));
        }
        let expires_at = Utc::now() + chrono::Duration::seconds(seconds);
        let expires = expires_at.timestamp();
        let signature = hex(&mac(&self.download_key()?, p.org, version, file, expires)?.finalize().into_bytes());
        let path =
            format!("/v1/downloads/model-versions/{version}/{}?org={}&expires={expires}&signature={signature}", file.file_name(), p.org);
        let base = self.inner.settings.server.public_url.trim_end_matches('/');
        Ok(SignedUrl { url: format!("{base}{path}"), path, expires_at: Utc.timestamp_opt(expires, 0).single().unwrap_or(expires_at) })
    }

    /// Serves a signed URL: the signature, then the expiry, then the file.
    #[tracing::instrument(skip_all, fields(version = %version))]
    pub async fn download(&self, version: Uuid, file: &str, q: &SignedQuery) -> AppResult<Download> {
        let file: ArtifactFile = file.parse()?;
        let org = OrgId(q.org.parse::<Uuid>().map_err(|_| tampered())?);
        let expires: i64 = q.expires.parse().map_err(|_| tampered())?;
        let given = unhex(&q.signature).ok_or_else(tampered)?;
        // Constant-time comparison (Mac::verify_slice).
        mac(&self.download_key()?, org, version, file, expires)?.verify_slice(&given).map_err(|_| tampered())?;
        if Utc::now().timestamp() > expires {
            let at = Utc.timestamp_opt(expires, 0).single().map(|t| t.to_rfc3339()).unwrap_or_default();
            return Err(AppError::forbidden(format!(
                "this download link expired at {at}; ask for a new one with modelVersion {{ downloadUrl }}"
            )));
        }
        let tx = self.inner.store.tenant(org, None).await?;
        let row = jobs::model_version(&tx, org, version).await?.ok_or_else(|| AppError::not_found("model version"))?;
        tx.commit().await?;
        let prefix = format!("model-v{}", row.version);
        let name = format!("{prefix}-{}", file.file_name());
        if file == ArtifactFile::ReportHtml {
            let html = self.report_html(org, &row).await?.ok_or_else(|| AppError::not_found("report"))?;
            return Ok(Download::Bytes { file, name, bytes: html.into_bytes() });
        }
        let files = super::version_files(&row)?;
        let sha = files.get(file.file_name()).ok_or_else(|| AppError::not_found("file"))?;
        let (size, stream) = self.inner.blobs.stream(org, sha).await.map_err(|e: BlobError| AppError::internal(e))?;
        Ok(Download::Stream { file, name, size, stream })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_every_part_of_the_link() {
        let key = signing_key(b"0123456789abcdef0123456789abcdef").unwrap();
        let (org, version) = (OrgId(Uuid::now_v7()), Uuid::now_v7());
        let sig = |o: OrgId, v: Uuid, f: ArtifactFile, e: i64| mac(&key, o, v, f, e).unwrap().finalize().into_bytes().to_vec();
        let base = sig(org, version, ArtifactFile::Weights, 100);
        assert_eq!(base, sig(org, version, ArtifactFile::Weights, 100));
        assert_ne!(base, sig(OrgId(Uuid::now_v7()), version, ArtifactFile::Weights, 100));
        assert_ne!(base, sig(org, Uuid::now_v7(), ArtifactFile::Weights, 100));
        assert_ne!(base, sig(org, version, ArtifactFile::Card, 100));
        assert_ne!(base, sig(org, version, ArtifactFile::Weights, 101));
        assert_eq!(unhex(&hex(&base)), Some(base));
        assert_eq!(unhex("zz"), None);
    }
}
