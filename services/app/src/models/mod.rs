//! The model registry: models (a named line of versions per organization,
//! one family each), immutable numbered versions with their lineage,
//! aliases that move (through the ship gate for `production`), reports and
//! comparisons, signed downloads, imports and guarded deletes.

mod downloads;
mod import;
mod promote;
mod registry;
mod reports;
mod views;

pub use downloads::{ArtifactFile, DEFAULT_LINK_SECONDS, Download, MAX_LINK_SECONDS, SignedQuery, SignedUrl};
pub use import::ImportInput;
pub use promote::{AliasMove, PRODUCTION, SetAliasInput};
pub use registry::LATEST;
pub(crate) use registry::{check_alias, file_version, model_for_version};
pub use views::{AliasView, Lineage, ModelVersionView, ModelView};
pub(crate) use views::{CARD_FILE, model_version_view};

use std::collections::BTreeMap;

use tenfold_store::entities::model_versions;

use crate::error::{AppError, AppResult};

/// A stored version's files, name → sha256 (its `files` column, written
/// only by us: a parse failure is an internal error).
pub(crate) fn version_files(row: &model_versions::Model) -> AppResult<BTreeMap<String, String>> {
    serde_json::from_str(&row.files).map_err(AppError::internal)
}
