//! `submitJob`: every check runs before anything is stored or queued.

use chrono::{Datelike, TimeZone, Utc};
use serde_json::json;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tenfold_domain::{
    Catalog, DataStats, DomainError, Estimate, Family, FamilyPlan, Hyperparameters, JobKind, JobShape, JobStatus, OrgId, Quotas,
};
use tenfold_store::Tx;
use tenfold_store::entities::{dataset_versions, jobs as job_rows, model_versions};
use tenfold_store::queries::jobs::{self, NewEvent};
use tenfold_store::queries::{datasets, dispatch, orgs};
use tracing::info;
use uuid::Uuid;

use super::views::JobView;
use super::{WAKE_TOPIC, job_topic};
use crate::App;
use crate::audit_action::AuditAction;
use crate::error::{AppError, AppResult, ConflictReason};
use crate::models::model_for_version;
use crate::principal::{Principal, perms};
use crate::tenancy::org_view;

#[derive(Debug, Clone)]
pub struct SubmitJobInput {
    pub kind: JobKind,
    pub family: Family,
    pub dataset_version_id: Uuid,
    pub architecture: Option<String>,
    pub base_model_version_id: Option<Uuid>,
    pub teacher_model_version_id: Option<Uuid>,
    /// As the caller sent them; checked against the family's schema.
    pub hyperparameters: Map<String, Value>,
    pub priority: i32,
    pub idempotency_key: Option<String>,
    /// `cpu` or `cuda`.
    pub device: String,
    /// The registry model the new version joins (created if new); default:
    /// the dataset's name. EVALUATE jobs make no version.
    pub model: Option<String>,
}

/// A submission whose shape passed every check that needs no database.
struct Checked<'a> {
    kind: JobKind,
    plan: &'a dyn FamilyPlan,
    hyperparameters: Hyperparameters,
}

fn check_key(key: Option<&str>) -> AppResult<Option<String>> {
    match key.map(str::trim) {
        None => Ok(None),
        Some(k) if k.is_empty() || k.len() > 255 || k.chars().any(char::is_control) => {
            Err(AppError::bad_input("idempotencyKey", "give an idempotency key of 1–255 printable characters, e.g. a UUID"))
        }
        Some(k) => Ok(Some(k.to_owned())),
    }
}

/// The request's fingerprint, over the normalised hyperparameters: a
/// reused key with other parameters is refused (Stripe's rule), a retry of
/// the same request gets the same job.
fn request_hash(input: &SubmitJobInput, hyperparameters: &Hyperparameters) -> String {
    let canonical = json!({
        "kind": input.kind, "family": input.family, "dataset": input.dataset_version_id,
        "architecture": input.architecture, "base": input.base_model_version_id,
        "teacher": input.teacher_model_version_id, "hyperparameters": hyperparameters,
        "priority": input.priority, "device": input.device, "model": input.model,
    });
    hex(&Sha256::digest(canonical.to_string().as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn architecture_names(plan: &dyn FamilyPlan, students_only: bool) -> String {
    let names: Vec<&str> = plan.architectures().iter().filter(|a| a.student || !students_only).map(|a| a.name).collect();
    names.join(", ")
}

/// Everything about the submission that needs no database: the family
/// (through the catalog), its kinds, architectures and hyperparameter
/// schema, priority and device.
fn check_shape<'a>(catalog: &'a Catalog, input: &SubmitJobInput) -> AppResult<Checked<'a>> {
    let kind = input.kind;
    let plan = catalog.get(input.family)?;
    if kind == JobKind::Validate {
        return Err(AppError::bad_input(
            "kind",
            "VALIDATE jobs are started by uploads (see DatasetVersion.validation); submit FINE_TUNE, DISTILL or EVALUATE",
        ));
    }
    if !plan.kinds().contains(&kind) {
        return Err(AppError::bad_input("kind", format!("{} models cannot run {kind} jobs yet", input.family)));
    }
    let hyperparameters = match plan.normalise(&input.hyperparameters) {
        Ok(h) => h,
        Err(problems) => {
            let all: Vec<String> = problems.iter().map(ToString::to_string).collect();
            let field = problems.first().map_or("hyperparameters", DomainError::field);
            return Err(AppError::bad_input(field, format!("fix these hyperparameters: {}", all.join("; "))));
        }
    };
    if !(-10..=10).contains(&input.priority) {
        return Err(AppError::bad_input("priority", format!("{} is out of range; use -10 (lowest) to 10 (highest)", input.priority)));
    }
    if !matches!(input.device.as_str(), "cpu" | "cuda") {
        return Err(AppError::bad_input("device", format!("{:?} is not a device type; use cpu or cuda", input.device)));
    }
    if let Some(a) = &input.architecture {
        let arch = plan.architecture(a)?;
        if kind == JobKind::Distill && !arch.student {
            return Err(AppError::bad_input(
                "architecture",
                format!("{a} cannot be a distillation student; choose one of {}", architecture_names(plan, true)),
            ));
        }
    }
    match kind {
        JobKind::FineTune if plan.needs_base() && input.base_model_version_id.is_none() => Err(AppError::bad_input(
            "baseModelVersionId",
            format!("{} models are fine-tuned from a pretrained base model: give baseModelVersionId", input.family),
        )),
        JobKind::FineTune if input.architecture.is_none() && input.base_model_version_id.is_none() => Err(AppError::bad_input(
            "architecture",
            format!("choose an architecture ({}) or a baseModelVersionId to fine-tune", architecture_names(plan, false)),
        )),
        JobKind::Distill if input.teacher_model_version_id.is_none() => {
            Err(AppError::bad_input("teacherModelVersionId", "a DISTILL job needs the teacher's model version"))
        }
        JobKind::Distill if input.architecture.is_none() => {
            Err(AppError::bad_input("architecture", format!("choose the student's architecture: {}", architecture_names(plan, true))))
        }
        JobKind::Evaluate if input.base_model_version_id.is_none() => {
            Err(AppError::bad_input("baseModelVersionId", "an EVALUATE job needs the model version to evaluate"))
        }
        _ => Ok(Checked { kind, plan, hyperparameters }),
    }
}

async fn ready_dataset(tx: &Tx, org: OrgId, input: &SubmitJobInput) -> AppResult<dataset_versions::Model> {
    let version = datasets::version(tx, org, input.dataset_version_id).await?.ok_or_else(|| AppError::not_found("dataset version"))?;
    match version.status.as_str() {
        "READY" => {}
        "INVALID" => {
            return Err(AppError::bad_input(
                "datasetVersionId",
                "this dataset version is INVALID; fix the problems it lists and upload again",
            ));
        }
        other => {
            return Err(AppError::bad_input("datasetVersionId", format!("this dataset version is {other}; submit once it is READY")));
        }
    }
    let dataset = datasets::get(tx, org, version.dataset_id).await?.ok_or_else(|| AppError::not_found("dataset version"))?;
    if dataset.family != input.family.as_str() {
        return Err(AppError::bad_input(
            "datasetVersionId",
            format!("this dataset holds {} data, not {}; choose a dataset of the job's family", dataset.family, input.family),
        ));
    }
    Ok(version)
}

async fn model_of_family(
    tx: &Tx,
    org: OrgId,
    id: Option<Uuid>,
    family: Family,
    field: &'static str,
) -> AppResult<Option<model_versions::Model>> {
    let Some(id) = id else { return Ok(None) };
    let model = jobs::model_version(tx, org, id).await?.ok_or_else(|| AppError::not_found("model version"))?;
    if model.family != family.as_str() {
        return Err(AppError::bad_input(field, format!("this model version is a {} model, not {family}", model.family)));
    }
    Ok(Some(model))
}

fn month_start() -> chrono::DateTime<Utc> {
    let now = Utc::now();
    Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0).single().unwrap_or(now)
}

impl App {
    /// Queues a job after checking everything about it; the same
    /// idempotency key returns the same job.
    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn submit_job(&self, p: &Principal, input: SubmitJobInput) -> AppResult<JobView> {
        p.require(perms::JOBS_WRITE)?;
        let key = check_key(input.idempotency_key.as_deref())?;
        let Checked { kind, plan, hyperparameters } = check_shape(&self.inner.families, &input)?;
        let hash = request_hash(&input, &hyperparameters);
        if let Some(key) = &key
            && let Some(existing) = self.job_by_key(p, key, &hash).await?
        {
            return Ok(existing);
        }

        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        // One submission of the organization at a time past here: the quota
        // check and the insert must not interleave with another's.
        dispatch::lock_org(&tx, p.org).await?;
        let version = ready_dataset(&tx, p.org, &input).await?;
        let base = model_of_family(&tx, p.org, input.base_model_version_id, input.family, "baseModelVersionId").await?;
        // The teacher's classes are checked against the data by the engine
        // (a permanent failure, reported once); here its family.
        model_of_family(&tx, p.org, input.teacher_model_version_id, input.family, "teacherModelVersionId").await?;
        if let (Some(arch), Some(base)) = (&input.architecture, &base)
            && *arch != base.architecture
        {
            return Err(AppError::bad_input(
                "architecture",
                format!(
                    "the base model is a {}; leave architecture out to fine-tune it, or train a {arch} from scratch",
                    base.architecture
                ),
            ));
        }
        let architecture = input.architecture.clone().or_else(|| base.as_ref().map(|b| b.architecture.clone())).unwrap_or_default();
        let data = DataStats {
            bytes: u64::try_from(version.size_bytes).unwrap_or(0),
            raw: version.stats.as_deref().and_then(|s| serde_json::from_str(s).ok()).unwrap_or(Value::Null),
        };
        let shape = JobShape { kind, architecture: &architecture, hyperparameters: &hyperparameters, device: &input.device };
        let Estimate { seconds: estimate, memory_mb } = plan.estimate(&data, &shape);
        let org = orgs::get(&tx, p.org).await?.ok_or_else(|| AppError::not_found("organization"))?;
        let quotas = org_view(&org)?.quotas();
        self.check_compute_quota(&tx, p.org, &quotas, estimate).await?;

        let now = Utc::now();
        let model_id = match kind {
            JobKind::Evaluate | JobKind::Validate => None,
            JobKind::FineTune | JobKind::Distill => {
                let dataset = datasets::get(&tx, p.org, version.dataset_id).await?.ok_or_else(|| AppError::not_found("dataset version"))?;
                let name = input.model.as_deref().unwrap_or(&dataset.name);
                Some(model_for_version(&tx, p.org, name, input.family, p.user_id(), now).await?.id)
            }
        };
        let id = Uuid::now_v7();
        let row = job_rows::Model {
            org_id: p.org.0,
            id,
            kind: kind.as_str().to_owned(),
            family: input.family.as_str().to_owned(),
            status: JobStatus::Queued.as_str().to_owned(),
            dataset_version_id: input.dataset_version_id,
            architecture: (!architecture.is_empty()).then_some(architecture.clone()),
            base_model_version_id: input.base_model_version_id,
            teacher_model_version_id: input.teacher_model_version_id,
            hyperparameters: serde_json::to_string(&hyperparameters).map_err(AppError::internal)?,
            priority: input.priority,
            idempotency_key: key.clone(),
            request_hash: hash.clone(),
            device: input.device.clone(),
            memory_mb,
            attempt: 0,
            failures: 0,
            max_attempts: self.inner.settings.jobs.max_attempts.max(1) as i32,
            lease_owner: None,
            lease_until: None,
            run_after: now,
            cancel_requested: false,
            event_seq: 0,
            estimate_seconds: estimate,
            compute_seconds: 0.0,
            error_code: None,
            error_message: None,
            dead_lettered: false,
            result: None,
            model_version_id: None,
            model_id,
            submitted_by: p.user_id().map(|u| u.0),
            created_at: now,
            started_at: None,
            finished_at: None,
        };
        let inserted = match jobs::insert(&tx, row).await {
            Ok(r) => r,
            Err(e) => {
                drop(tx);
                // Two submissions with one key raced: the other one won.
                if let Some(key) = &key
                    && let Some(existing) = self.job_by_key(p, key, &hash).await?
                {
                    return Ok(existing);
                }
                return Err(e.into());
            }
        };
        dispatch::enqueue(&tx, &inserted, quotas.concurrent_jobs as i32).await?;
        let payload = json!({ "status": "QUEUED", "message": "queued", "estimateSeconds": estimate });
        jobs::append_events(&tx, p.org, id, None, vec![NewEvent { kind: "status", payload: payload.to_string() }], now).await?;
        self.record(
            &tx,
            p.org,
            Some(p),
            &p.meta,
            AuditAction::JobSubmitted,
            Some(format!("job:{id}")),
            json!({ "kind": kind.as_str(), "architecture": architecture }),
        )
        .await?;
        self.publish_after_commit(&tx, job_topic(p.org, id), "1".into());
        self.publish_after_commit(&tx, WAKE_TOPIC.into(), input.device.clone());
        tx.commit().await?;
        info!(job = %id, org = %p.org, kind = kind.as_str(), "job queued");
        self.load_job(p, id).await
    }

    async fn job_by_key(&self, p: &Principal, key: &str, hash: &str) -> AppResult<Option<JobView>> {
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let Some(existing) = jobs::by_idempotency_key(&tx, p.org, key).await? else { return Ok(None) };
        drop(tx);
        if existing.request_hash != hash {
            return Err(AppError::conflict(
                ConflictReason::IdempotencyKeyReused,
                "idempotencyKey",
                "this idempotency key was used for a different request; use a new key for new parameters",
            ));
        }
        Ok(Some(self.load_job(p, existing.id).await?))
    }

    /// QUOTA_EXCEEDED when this month's compute, the estimates of jobs not
    /// yet finished and this job's would pass the plan's monthly compute.
    async fn check_compute_quota(&self, tx: &Tx, org: OrgId, quotas: &Quotas, estimate: i64) -> AppResult<()> {
        let used = jobs::usage_since(tx, org, "compute_seconds", month_start()).await?;
        let pending = jobs::unfinished_estimate(tx, org).await? as f64;
        let limit = quotas.monthly_compute_seconds as f64;
        if used + pending + estimate as f64 > limit {
            return Err(AppError::quota(format!(
                "this job needs about {estimate} compute-seconds; your plan has {limit:.0} a month, {used:.0} are used and {pending:.0} are reserved by unfinished jobs — wait for next month, cancel queued jobs or upgrade the plan"
            )));
        }
        Ok(())
    }
}
