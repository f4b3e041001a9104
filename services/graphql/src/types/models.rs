//! The model registry in GraphQL: models, versions with their lineage,
//! aliases, promotion rules, downloads.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Json, SimpleObject};
use chrono::{DateTime, Utc};
use tenfold_app::{AliasMove, AliasView, ArtifactFile as AppFile, Lineage as AppLineage, ModelVersionView, ModelView, SignedUrl};
use tenfold_domain::gate::{MetricThreshold as DomainThreshold, PromotionRules as DomainRules, RuleVerdict as DomainVerdict};

use super::{Family, ModelReport};
use crate::context::{GqlResult, app, principal};
use crate::ids::{GlobalId, NodeKind};

fn id_of(kind: NodeKind, id: uuid::Uuid) -> ID {
    GlobalId::new(kind, id).to_id()
}

/// A named line of versions of one family (`digits`, `support-bot`).
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Model {
    pub id: ID,
    pub name: String,
    pub family: Family,
    /// The ship gate: what a version must meet before `production` moves to it.
    pub promotion_rules: PromotionRules,
    pub created_at: DateTime<Utc>,
    #[graphql(skip)]
    pub raw_id: uuid::Uuid,
}

impl From<ModelView> for Model {
    fn from(m: ModelView) -> Self {
        Self {
            id: id_of(NodeKind::Model, m.id),
            name: m.name,
            family: m.family.into(),
            promotion_rules: m.promotion_rules.into(),
            created_at: m.created_at,
            raw_id: m.id,
        }
    }
}

#[ComplexObject]
impl Model {
    /// Versions, newest first.
    #[graphql(complexity = "first.unwrap_or(20).clamp(1, crate::MAX_PAGE_SIZE) as usize * child_complexity")]
    async fn versions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, ModelVersion>> {
        let before = match after.as_deref() {
            Some(c) => Some(c.parse::<i32>().map_err(|_| tenfold_app::AppError::bad_input("after", "not a cursor of this list")).gql(ctx)?),
            None => None,
        };
        let page = app(ctx)?.model_versions(principal(ctx)?, self.raw_id, before, first).await.gql(ctx)?;
        let mut conn = Connection::new(before.is_some(), page.has_next);
        conn.edges.extend(page.rows.into_iter().map(|v| Edge::new(v.version.to_string(), ModelVersion::from(v))));
        Ok(conn)
    }

    /// One version by number, or by alias (`latest` is always the newest).
    async fn version(&self, ctx: &Context<'_>, number: Option<i32>, alias: Option<String>) -> async_graphql::Result<Option<ModelVersion>> {
        let v = app(ctx)?.model_version_by_ref(principal(ctx)?, self.raw_id, number, alias.as_deref()).await.gql(ctx)?;
        Ok(v.map(ModelVersion::from))
    }

    async fn aliases(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ModelAlias>> {
        Ok(app(ctx)?.model_aliases(principal(ctx)?, self.raw_id).await.gql(ctx)?.into_iter().map(ModelAlias::from).collect())
    }
}

/// An immutable version of a model: its artifact files, metrics, lineage and report.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct ModelVersion {
    pub id: ID,
    pub model_id: ID,
    /// 1, 2, … within the model.
    pub version: i32,
    pub family: Family,
    pub architecture: String,
    pub classes: Vec<String>,
    pub size_bytes: f64,
    /// The evaluation summary (the report has everything, typed).
    pub metrics: Json<serde_json::Value>,
    /// The job that trained it; none for an import.
    pub job_id: Option<ID>,
    pub lineage: Lineage,
    pub created_at: DateTime<Utc>,
    #[graphql(skip)]
    pub raw_id: uuid::Uuid,
    #[graphql(skip)]
    pub raw_model_id: uuid::Uuid,
}

impl From<ModelVersionView> for ModelVersion {
    fn from(m: ModelVersionView) -> Self {
        Self {
            id: id_of(NodeKind::ModelVersion, m.id),
            model_id: id_of(NodeKind::Model, m.model_id),
            version: m.version,
            family: m.family.into(),
            architecture: m.architecture,
            classes: m.classes,
            size_bytes: m.size_bytes as f64,
            metrics: Json(m.metrics),
            job_id: m.job_id.map(|j| id_of(NodeKind::Job, j)),
            lineage: m.lineage.into(),
            created_at: m.created_at,
            raw_id: m.id,
            raw_model_id: m.model_id,
        }
    }
}

#[ComplexObject]
impl ModelVersion {
    async fn model(&self, ctx: &Context<'_>) -> async_graphql::Result<Model> {
        Ok(app(ctx)?.model(principal(ctx)?, self.raw_model_id).await.gql(ctx)?.into())
    }

    /// The aliases that point at this version.
    async fn aliases(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<String>> {
        Ok(app(ctx)?.version_aliases(principal(ctx)?, self.raw_id).await.gql(ctx)?.into_iter().map(|a| a.alias).collect())
    }

    /// The evaluation report, typed section by section (none for an import without report.json).
    async fn report(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ModelReport>> {
        Ok(app(ctx)?.model_report(principal(ctx)?, self.raw_id).await.gql(ctx)?.map(ModelReport::from))
    }

    /// A URL that downloads one of its files without a token until it
    /// expires (default 15 minutes, at most 7 days).
    async fn download_url(
        &self,
        ctx: &Context<'_>,
        file: ArtifactFile,
        expires_in_seconds: Option<i32>,
    ) -> async_graphql::Result<DownloadUrl> {
        let url = app(ctx)?.download_url(principal(ctx)?, self.raw_id, file.into(), expires_in_seconds.map(i64::from)).await.gql(ctx)?;
        Ok(url.into())
    }
}

/// Where a version came from; written once.
#[derive(SimpleObject, Clone)]
pub struct Lineage {
    /// `job` or `import`.
    pub source: String,
    pub job_id: Option<ID>,
    pub job_kind: Option<String>,
    pub dataset_id: Option<ID>,
    pub dataset_name: Option<String>,
    pub dataset_version_id: Option<ID>,
    pub dataset_version: Option<i32>,
    pub dataset_sha256: Option<String>,
    pub architecture: Option<String>,
    /// With the family's defaults filled in.
    pub hyperparameters: Option<Json<serde_json::Value>>,
    pub base_model_version_id: Option<ID>,
    pub teacher_model_version_id: Option<ID>,
    pub engine: Option<String>,
    /// Train/validation/test percentages, e.g. `80/10/10`.
    pub split: Option<String>,
    /// Seeds the split: versions with the same split seed were tested on the same examples.
    pub split_seed: Option<f64>,
    /// Seeds initialisation, shuffling and augmentation.
    pub seed: Option<f64>,
}

impl From<AppLineage> for Lineage {
    fn from(l: AppLineage) -> Self {
        Self {
            source: l.source,
            job_id: l.job_id.map(|j| id_of(NodeKind::Job, j)),
            job_kind: l.job_kind,
            dataset_id: l.dataset_id.map(|d| id_of(NodeKind::Dataset, d)),
            dataset_name: l.dataset_name,
            dataset_version_id: l.dataset_version_id.map(|d| id_of(NodeKind::DatasetVersion, d)),
            dataset_version: l.dataset_version,
            dataset_sha256: l.dataset_sha256,
            architecture: l.architecture,
            hyperparameters: l.hyperparameters.map(Json),
            base_model_version_id: l.base_model_version_id.map(|v| id_of(NodeKind::ModelVersion, v)),
            teacher_model_version_id: l.teacher_model_version_id.map(|v| id_of(NodeKind::ModelVersion, v)),
            engine: l.engine,
            split: l.split,
            split_seed: l.split_seed.map(|s| s as f64),
            seed: l.seed.map(|s| s as f64),
        }
    }
}

#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct ModelAlias {
    pub alias: String,
    pub model_version_id: ID,
    pub moved_at: DateTime<Utc>,
    #[graphql(skip)]
    pub raw_version: uuid::Uuid,
}

impl From<AliasView> for ModelAlias {
    fn from(a: AliasView) -> Self {
        Self {
            alias: a.alias,
            model_version_id: id_of(NodeKind::ModelVersion, a.model_version_id),
            moved_at: a.moved_at,
            raw_version: a.model_version_id,
        }
    }
}

#[ComplexObject]
impl ModelAlias {
    async fn model_version(&self, ctx: &Context<'_>) -> async_graphql::Result<ModelVersion> {
        Ok(app(ctx)?.model_version(principal(ctx)?, self.raw_version).await.gql(ctx)?.into())
    }
}

/// The files of a version.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ArtifactFile {
    /// `model.safetensors`: every weight by name.
    ModelWeights,
    /// `model.json`: what the weights mean (family, architecture, classes, preprocessing).
    ModelCard,
    /// `report.json`: the engine's whole evaluation.
    ReportJson,
    /// The report as one self-contained HTML page (charts inline, prints well).
    ReportHtml,
}

impl From<ArtifactFile> for AppFile {
    fn from(f: ArtifactFile) -> Self {
        match f {
            ArtifactFile::ModelWeights => AppFile::Weights,
            ArtifactFile::ModelCard => AppFile::Card,
            ArtifactFile::ReportJson => AppFile::Report,
            ArtifactFile::ReportHtml => AppFile::ReportHtml,
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct DownloadUrl {
    /// Absolute, on the server's public URL; no token needed.
    pub url: String,
    /// The same, without scheme and host.
    pub path: String,
    pub expires_at: DateTime<Utc>,
}

impl From<SignedUrl> for DownloadUrl {
    fn from(u: SignedUrl) -> Self {
        Self { url: u.url, path: u.path, expires_at: u.expires_at }
    }
}

/// A threshold on one of the report's headline metrics (names as in `report { metrics { name } }`).
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "MetricThresholdInput")]
pub struct MetricThreshold {
    pub metric: String,
    pub at_least: Option<f64>,
    pub at_most: Option<f64>,
}

/// What a version must meet before `production` moves to it.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "PromotionRulesInput")]
pub struct PromotionRules {
    #[graphql(default)]
    pub metrics: Vec<MetricThreshold>,
    /// No class's recall may fall more than this many points against the current production version.
    pub max_class_recall_drop_points: Option<f64>,
    /// p95 latency per example at batch 1, in milliseconds.
    pub max_latency_p95_ms: Option<f64>,
    /// Artifact size in MB (10⁶ bytes).
    pub max_size_mb: Option<f64>,
    /// Every baseline of the report must be beaten.
    #[graphql(default)]
    pub must_beat_baselines: bool,
}

impl From<DomainRules> for PromotionRules {
    fn from(r: DomainRules) -> Self {
        Self {
            metrics: r
                .metrics
                .into_iter()
                .map(|t| MetricThreshold { metric: t.metric, at_least: t.at_least, at_most: t.at_most })
                .collect(),
            max_class_recall_drop_points: r.max_class_recall_drop_points,
            max_latency_p95_ms: r.max_latency_p95_ms,
            max_size_mb: r.max_size_mb,
            must_beat_baselines: r.must_beat_baselines,
        }
    }
}

impl From<PromotionRules> for DomainRules {
    fn from(r: PromotionRules) -> Self {
        Self {
            metrics: r
                .metrics
                .into_iter()
                .map(|t| DomainThreshold { metric: t.metric, at_least: t.at_least, at_most: t.at_most })
                .collect(),
            max_class_recall_drop_points: r.max_class_recall_drop_points,
            max_latency_p95_ms: r.max_latency_p95_ms,
            max_size_mb: r.max_size_mb,
            must_beat_baselines: r.must_beat_baselines,
        }
    }
}

/// One promotion rule's outcome.
#[derive(SimpleObject, Clone)]
pub struct RuleVerdict {
    /// As people read it: `accuracy ≥ 0.9`.
    pub rule: String,
    pub passed: bool,
    pub value: Option<f64>,
    pub threshold: f64,
    pub message: String,
}

impl From<DomainVerdict> for RuleVerdict {
    fn from(v: DomainVerdict) -> Self {
        Self { rule: v.rule, passed: v.passed, value: v.value, threshold: v.threshold, message: v.message }
    }
}

#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct SetAliasPayload {
    /// False when the ship gate refused: nothing changed.
    pub moved: bool,
    pub alias: String,
    /// Every rule's verdict (moves of `production` only).
    pub verdicts: Vec<RuleVerdict>,
    /// Rules failed and an owner moved it anyway (audited with the reason).
    pub overridden: bool,
    pub message: String,
    pub previous_version_id: Option<ID>,
    #[graphql(skip)]
    pub raw_version: uuid::Uuid,
}

impl From<AliasMove> for SetAliasPayload {
    fn from(m: AliasMove) -> Self {
        Self {
            moved: m.moved,
            alias: m.alias,
            verdicts: m.verdicts.into_iter().map(RuleVerdict::from).collect(),
            overridden: m.overridden,
            message: m.message,
            previous_version_id: m.previous_version_id.map(|v| id_of(NodeKind::ModelVersion, v)),
            raw_version: m.model_version_id,
        }
    }
}

#[ComplexObject]
impl SetAliasPayload {
    /// The version asked for.
    async fn model_version(&self, ctx: &Context<'_>) -> async_graphql::Result<ModelVersion> {
        Ok(app(ctx)?.model_version(principal(ctx)?, self.raw_version).await.gql(ctx)?.into())
    }
}

#[derive(InputObject)]
pub struct SetAliasInput {
    /// The version to point at; its model is the one whose alias moves.
    pub model_version_id: ID,
    /// `production` (checked by the ship gate), `staging`, or your own.
    pub alias: String,
    /// Owners only: move `production` although rules failed; kept in the audit log.
    pub override_reason: Option<String>,
}

#[derive(InputObject)]
pub struct SetPromotionRulesInput {
    pub model_id: ID,
    pub rules: PromotionRules,
}
