use async_graphql::{ComplexObject, Context, Enum, ID, Json, SimpleObject};
use chrono::{DateTime, Utc};
use tenfold_app::{DatasetVersionView, DatasetView};

use crate::context::{GqlResult, app, principal};
use crate::ids::{GlobalId, NodeKind};

/// The kind of model a dataset, job or model version is for.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "tenfold_domain::Family")]
pub enum Family {
    /// A ZIP in ImageFolder layout: `class/file.png`, optionally under train/, val/, test/.
    ImageClassification,
    /// OpenAI chat fine-tuning JSONL, or an intent table (CSV `text,intent[,response]`).
    Chat,
    /// Interactions: CSV/TSV `user_id,item_id[,rating][,timestamp]`.
    Recommendation,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum DatasetStatus {
    /// Stored; validation is running.
    Pending,
    /// Checked completely; jobs may use it.
    Ready,
    /// Refused; `problems` says where and what to fix. Its file was deleted.
    Invalid,
}

/// A named collection of immutable versions; re-uploading under the same
/// name adds a version.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Dataset {
    pub id: ID,
    pub name: String,
    pub family: Family,
    pub created_at: DateTime<Utc>,
    #[graphql(skip)]
    pub raw_id: uuid::Uuid,
}

impl From<DatasetView> for Dataset {
    fn from(d: DatasetView) -> Self {
        Self {
            id: GlobalId::new(NodeKind::Dataset, d.id).to_id(),
            name: d.name,
            family: d.family.into(),
            created_at: d.created_at,
            raw_id: d.id,
        }
    }
}

#[ComplexObject]
impl Dataset {
    /// Every version, oldest first.
    async fn versions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<DatasetVersion>> {
        let rows = app(ctx)?.dataset_versions(principal(ctx)?, self.raw_id).await.gql(ctx)?;
        Ok(rows.into_iter().map(DatasetVersion::from).collect())
    }

    async fn latest_version(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<DatasetVersion>> {
        let rows = app(ctx)?.dataset_versions(principal(ctx)?, self.raw_id).await.gql(ctx)?;
        Ok(rows.into_iter().last().map(DatasetVersion::from))
    }
}

/// One problem found by validation.
#[derive(SimpleObject, Clone, serde::Deserialize)]
pub struct DatasetProblem {
    /// Where: `archive:cats/01.png`, `line 12, column 3`, …
    pub location: String,
    /// Stable code, e.g. `unsafe_path`, `rating_not_a_number`.
    pub code: String,
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct DatasetVersion {
    pub id: ID,
    pub version: i32,
    pub status: DatasetStatus,
    pub file_name: String,
    pub size_bytes: i64,
    /// Hex SHA-256 of the file.
    pub sha256: String,
    /// Family-specific statistics (images per class, users/items, intents…).
    pub stats: Option<Json<serde_json::Value>>,
    /// The first 100 problems; `problemCount` has the total.
    pub problems: Vec<DatasetProblem>,
    pub problem_count: i64,
    /// Findings that do not block use (duplicates, skipped system files).
    pub warnings: Vec<DatasetProblem>,
    /// A look at the data: `thumbnails` per class (re-encoded PNG data URLs),
    /// or the first `rows` / `conversations`. None for an invalid version.
    pub preview: Option<Json<serde_json::Value>>,
    /// The seeded split stored with the version: seed, method, ratios, counts.
    pub splits: Option<Json<serde_json::Value>>,
    /// What opt-in redaction masked before storing: `{emails, phones, cards}`.
    pub redaction: Option<Json<serde_json::Value>>,
    pub created_at: DateTime<Utc>,
    pub validated_at: Option<DateTime<Utc>>,
    #[graphql(skip)]
    pub raw_id: uuid::Uuid,
}

#[ComplexObject]
impl DatasetVersion {
    /// The job that checks this upload (kind VALIDATE, on the workers):
    /// its status, attempts and events say where validation stands.
    async fn validation(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<crate::types::Job>> {
        let job = app(ctx)?.dataset_version_validation(principal(ctx)?, self.raw_id).await.gql(ctx)?;
        Ok(job.map(Into::into))
    }
}

fn problems(v: &serde_json::Value) -> Vec<DatasetProblem> {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

impl From<DatasetVersionView> for DatasetVersion {
    fn from(v: DatasetVersionView) -> Self {
        let status = match v.status.as_str() {
            "READY" => DatasetStatus::Ready,
            "INVALID" => DatasetStatus::Invalid,
            _ => DatasetStatus::Pending,
        };
        Self {
            id: GlobalId::new(NodeKind::DatasetVersion, v.id).to_id(),
            version: v.version,
            status,
            file_name: v.file_name,
            size_bytes: v.size_bytes,
            sha256: v.sha256,
            stats: (!v.stats.is_null()).then_some(Json(v.stats)),
            problems: problems(&v.problems),
            problem_count: v.problem_count,
            warnings: problems(&v.warnings),
            preview: (!v.preview.is_null()).then_some(Json(v.preview)),
            splits: (!v.splits.is_null()).then_some(Json(v.splits)),
            redaction: (!v.redaction.is_null()).then_some(Json(v.redaction)),
            created_at: v.created_at,
            validated_at: v.validated_at,
            raw_id: v.id,
        }
    }
}
