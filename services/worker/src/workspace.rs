//! A job attempt's scratch folder: its inputs fetched from blob storage,
//! its checkpoints, its output. Removed when the attempt ends; everything
//! worth keeping is in blob storage by then.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tenfold_app::App;
use tenfold_domain::OrgId;

pub struct Workspace {
    pub root: PathBuf,
}

impl Workspace {
    pub fn create(base: &Path, job: uuid::Uuid, attempt: i32) -> anyhow::Result<Self> {
        let root = base.join(format!("{job}-{attempt}"));
        if root.exists() {
            std::fs::remove_dir_all(&root)?;
        }
        std::fs::create_dir_all(&root)?;
        Ok(Self { root })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Copies blob `sha256` of `org` to `dest`.
    pub async fn fetch(app: &App, org: OrgId, sha256: &str, dest: &Path) -> anyhow::Result<()> {
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        app.blobs().copy_to(org, sha256, dest).await.map_err(|e| anyhow::anyhow!("blob {sha256} cannot be copied: {e}"))
    }

    /// Copies a set of files (name → sha256) into `dir`.
    pub async fn fetch_all(app: &App, org: OrgId, files: &BTreeMap<String, String>, dir: &Path) -> anyhow::Result<()> {
        for (name, sha) in files {
            // Names come from our own manifests, but never let one leave the folder.
            if name.contains(['/', '\\']) || name.starts_with('.') {
                anyhow::bail!("unexpected file name {name:?} in a stored manifest");
            }
            Self::fetch(app, org, sha, &dir.join(name)).await?;
        }
        Ok(())
    }

    /// Stores every regular file of `dir` in blob storage; returns the
    /// manifest and the total size.
    pub async fn store_all(app: &App, org: OrgId, dir: &Path) -> anyhow::Result<(BTreeMap<String, String>, i64)> {
        let mut files = BTreeMap::new();
        let mut total = 0i64;
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            if !entry.file_type()?.is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let (sha, size) = app.put_job_file(org, &entry.path()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            total += size as i64;
            files.insert(name, sha);
        }
        Ok((files, total))
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
