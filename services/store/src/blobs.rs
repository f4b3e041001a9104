//! Blob storage for uploads and, later, model artifacts, through
//! `object_store`: a local folder by default, S3-compatible by config.
//! Blobs are content-addressed per organization
//! (`orgs/<org>/sha256/<hex>`), so the tenant is part of every key and an
//! identical re-upload is stored once.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{GetResultPayload, ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};
use tenfold_domain::OrgId;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob storage: {0}")]
    Store(#[from] object_store::Error),
    #[error("blob file: {0}")]
    Io(#[from] std::io::Error),
    #[error("blob task: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("blob of {size} bytes is over the {max} bytes this read allows")]
    TooLarge { size: u64, max: u64 },
}

/// A blob's bytes, chunk by chunk.
pub type BlobStream = futures::stream::BoxStream<'static, Result<bytes::Bytes, BlobError>>;

#[derive(Clone, Debug)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    /// Where remote blobs are downloaded for synchronous readers.
    scratch: PathBuf,
}

/// A blob readable as a local file; a downloaded copy is removed on drop.
pub struct LocalBlob {
    pub file: std::fs::File,
    temp: Option<PathBuf>,
}

impl Drop for LocalBlob {
    fn drop(&mut self) {
        if let Some(path) = &self.temp {
            let _ = std::fs::remove_file(path);
        }
    }
}

const PART_BYTES: usize = 8 * 1024 * 1024;

/// Where an S3-compatible store is and how to sign for it.
#[derive(Clone)]
pub struct S3Options {
    pub bucket: String,
    /// Empty: AWS itself; otherwise e.g. `http://127.0.0.1:9000` (MinIO, moto…).
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Plain HTTP, for a server on loopback only.
    pub allow_http: bool,
}

/// The hex SHA-256 and size of a whole file, read in 1 MiB steps from the
/// start; the file is left positioned at its start again.
pub fn sha256_of(file: &mut std::fs::File) -> std::io::Result<(String, u64)> {
    file.seek(SeekFrom::Start(0))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1024 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    file.seek(SeekFrom::Start(0))?;
    Ok((hasher.finalize().iter().map(|b| format!("{b:02x}")).collect(), size))
}

impl std::fmt::Debug for S3Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Options")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl BlobStore {
    /// Blobs in an S3-compatible bucket (path-style requests, so MinIO and
    /// moto work as well as AWS). Remote blobs are read through `scratch`.
    pub fn s3(options: &S3Options, scratch: &Path) -> Result<Self, BlobError> {
        // TLS and request signing both use ring (no C toolchain needed);
        // installing the provider twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&options.bucket)
            .with_region(&options.region)
            .with_access_key_id(&options.access_key_id)
            .with_secret_access_key(&options.secret_access_key)
            .with_virtual_hosted_style_request(false)
            .with_allow_http(options.allow_http);
        if !options.endpoint.is_empty() {
            builder = builder.with_endpoint(&options.endpoint);
        }
        std::fs::create_dir_all(scratch)?;
        Ok(Self { store: Arc::new(builder.build()?), scratch: scratch.to_owned() })
    }

    /// Blobs in a local folder (created if missing).
    pub fn local(root: &Path) -> Result<Self, BlobError> {
        std::fs::create_dir_all(root)?;
        let store = LocalFileSystem::new_with_prefix(root)?;
        let scratch = root.join(".scratch");
        std::fs::create_dir_all(&scratch)?;
        Ok(Self { store: Arc::new(store), scratch })
    }

    pub fn key(org: OrgId, sha256: &str) -> ObjectPath {
        ObjectPath::from(format!("orgs/{org}/sha256/{sha256}"))
    }

    /// Hashes a local file (SHA-256, streamed) and stores it under its
    /// hash. Returns the hex digest and the size.
    pub async fn put_file(&self, org: OrgId, file: std::fs::File) -> Result<(String, u64), BlobError> {
        let (sha, size, mut file) = tokio::task::spawn_blocking(move || -> std::io::Result<(String, u64, std::fs::File)> {
            let mut file = file;
            let (sha, size) = sha256_of(&mut file)?;
            Ok((sha, size, file))
        })
        .await??;
        let key = Self::key(org, &sha);
        if self.store.head(&key).await.is_ok() {
            return Ok((sha, size));
        }
        let upload = self.store.put_multipart(&key).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut buf = vec![0u8; 1024 * 1024];
        loop {
            // Reading a local file blocks only briefly per megabyte.
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            writer.wait_for_capacity(4).await?;
            writer.write(&buf[..n]);
        }
        writer.finish().await?;
        Ok((sha, size))
    }

    /// The blob as a local file, for synchronous readers (validation).
    pub async fn open_local(&self, org: OrgId, sha256: &str) -> Result<LocalBlob, BlobError> {
        let result = self.store.get(&Self::key(org, sha256)).await?;
        match result.payload {
            GetResultPayload::File(file, _) => Ok(LocalBlob { file, temp: None }),
            GetResultPayload::Stream(mut stream) => {
                let path = self.scratch.join(uuid::Uuid::new_v4().simple().to_string());
                let mut out = tokio::fs::File::create(&path).await?;
                while let Some(chunk) = stream.next().await {
                    tokio::io::AsyncWriteExt::write_all(&mut out, &chunk?).await?;
                }
                // tokio's File finishes writes in the background: without this
                // flush a reader opening the path may see a truncated file.
                tokio::io::AsyncWriteExt::flush(&mut out).await?;
                drop(out);
                let file = std::fs::File::open(&path)?;
                Ok(LocalBlob { file, temp: Some(path) })
            }
        }
    }

    /// Copies the blob into the file `dest` (created or truncated) and
    /// syncs it: a model's or a job's files laid out on local disk.
    pub async fn copy_to(&self, org: OrgId, sha256: &str, dest: &std::path::Path) -> Result<(), BlobError> {
        let blob = self.open_local(org, sha256).await?;
        let mut source = blob.file.try_clone()?;
        let dest = dest.to_owned();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::{Seek, SeekFrom};
            source.seek(SeekFrom::Start(0))?;
            let mut out = std::fs::File::create(&dest)?;
            std::io::copy(&mut source, &mut out)?;
            out.sync_all()
        })
        .await??;
        // `blob` (and its scratch copy, if the store is remote) lives until here.
        drop(blob);
        Ok(())
    }

    /// A small blob read whole (a report, a model card); larger than `max`
    /// is an error rather than a surprise allocation.
    pub async fn read_small(&self, org: OrgId, sha256: &str, max: u64) -> Result<Vec<u8>, BlobError> {
        let result = self.store.get(&Self::key(org, sha256)).await?;
        if result.meta.size > max {
            return Err(BlobError::TooLarge { size: result.meta.size, max });
        }
        Ok(result.bytes().await?.to_vec())
    }

    /// The blob's size and its bytes as a stream (downloads).
    pub async fn stream(&self, org: OrgId, sha256: &str) -> Result<(u64, BlobStream), BlobError> {
        let result = self.store.get(&Self::key(org, sha256)).await?;
        let size = result.meta.size;
        Ok((size, result.into_stream().map(|chunk| chunk.map_err(BlobError::from)).boxed()))
    }

    pub async fn exists(&self, org: OrgId, sha256: &str) -> bool {
        self.store.head(&Self::key(org, sha256)).await.is_ok()
    }

    pub async fn delete(&self, org: OrgId, sha256: &str) -> Result<(), BlobError> {
        match self.store.delete(&Self::key(org, sha256)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Keys under the organization's prefix (for tests and tenant export).
    pub async fn list(&self, org: OrgId) -> Result<Vec<String>, BlobError> {
        let prefix = ObjectPath::from(format!("orgs/{org}"));
        let mut out = Vec::new();
        let mut stream = self.store.list(Some(&prefix));
        while let Some(meta) = stream.next().await {
            out.push(meta?.location.to_string());
        }
        Ok(out)
    }
}
