//! A served version's files on local disk: copied once from blob storage
//! into `<data_dir>/serving/<org>/<version>/` (a folder made aside and
//! renamed into place, so a crash never leaves half a model there).

use std::path::PathBuf;

use tenfold_app::App;
use tenfold_domain::{ModelVersionId, OrgId};
use tenfold_serving::ModelFiles;

pub struct BlobModelFiles {
    pub app: App,
}

#[async_trait::async_trait]
impl ModelFiles for BlobModelFiles {
    async fn fetch(&self, org: OrgId, version: ModelVersionId) -> Result<PathBuf, String> {
        let root = self.app.settings().storage.data_dir.join("serving").join(org.to_string());
        let dir = root.join(version.to_string());
        if dir.is_dir() {
            return Ok(dir);
        }
        let files = self.app.serving_files(org, version).await.map_err(|e| e.to_string())?;
        let staging = root.join(format!(".{version}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&staging).map_err(|e| format!("creating {}: {e}", staging.display()))?;
        for (name, sha) in &files {
            // Names come from our own manifests, but never let one leave the folder.
            if name.contains(['/', '\\']) || name.starts_with('.') {
                return Err(format!("unexpected file name {name:?} in a stored manifest"));
            }
            if let Err(e) = self.app.blobs().copy_to(org, sha, &staging.join(name)).await {
                let _ = std::fs::remove_dir_all(&staging);
                return Err(format!("copying {name} (blob {sha}): {e}"));
            }
        }
        match std::fs::rename(&staging, &dir) {
            Ok(()) => Ok(dir),
            // Another request fetched it meanwhile.
            Err(_) if dir.is_dir() => {
                let _ = std::fs::remove_dir_all(&staging);
                Ok(dir)
            }
            Err(e) => Err(format!("moving the model into {}: {e}", dir.display())),
        }
    }
}
