//! Validation as a job: every upload queues a VALIDATE job in the same
//! transaction as its PENDING version, and a worker of the validation pool
//! runs it. So a validation survives a restart of any process (the job is
//! in the queue, not in a task), is retried and fenced like training, has a
//! concurrency limit (the pool's slots, and one per organization), and shows
//! its attempts as job events. It is never billed.
//!
//! A validation that cannot finish (its attempts used up, its dataset
//! gone) leaves the version INVALID with a problem that says so, never
//! PENDING for ever.

use chrono::{DateTime, Utc};
use serde_json::json;
use tenfold_datasets::{Outcome, ProblemCode, Problems};
use tenfold_domain::{FailureCode, Family, JobKind, JobStatus, OrgId, UserId, VALIDATION_POOL};
use tenfold_store::Tx;
use tenfold_store::entities::jobs as job_rows;
use tenfold_store::queries::datasets::{self, ValidationResult};
use tenfold_store::queries::dispatch;
use tenfold_store::queries::jobs::{self, Finish, NewEvent};
use tracing::info;
use uuid::Uuid;

use super::views::{JobView, job_view};
use super::worker_api::status_event;
use super::{WAKE_TOPIC, job_topic};
use crate::App;
use crate::error::AppResult;
use crate::principal::{Principal, perms};

/// Memory a validation reserves on its worker: the validators stream and
/// cap every record, and decode one image at a time within the pixel cap.
pub const VALIDATION_MEMORY_MB: i32 = 512;

/// Validations of one organization that run at once: a tenant uploading a
/// hundred files does not hold up everyone else's.
const VALIDATIONS_PER_ORG: i32 = 2;

/// The version's result row, as the validators' outcome gives it.
fn result_of(outcome: &Outcome) -> ValidationResult {
    let valid = outcome.is_valid();
    ValidationResult {
        status: if valid { "READY" } else { "INVALID" },
        stats: outcome.stats.to_string(),
        problems: serde_json::to_string(outcome.errors.first()).unwrap_or_default(),
        warnings: serde_json::to_string(outcome.warnings.first()).unwrap_or_default(),
        // An invalid upload keeps nothing of its content: no preview.
        preview: if valid { outcome.preview.to_string() } else { "null".into() },
        splits: if valid { outcome.splits.to_string() } else { "null".into() },
        problem_count: outcome.errors.total() as i64,
    }
}

/// The outcome of a validation that could not run to its end, in words
/// for the tenant (the job's own error has the details for operators).
fn could_not_validate(code: Option<FailureCode>) -> Outcome {
    let why = match code {
        Some(FailureCode::StorageUnavailable) => "the file could not be read from storage on any attempt",
        Some(FailureCode::WorkerPanic) => "the validator crashed on this file",
        Some(FailureCode::WorkerLost) => "the workers validating it stopped answering on every attempt",
        _ => "validation did not finish",
    };
    let mut problems = Problems::default();
    problems.push("file", ProblemCode::ValidationFailed, format!("the file could not be validated: {why}"), "upload it again");
    Outcome::refused(problems)
}

/// Attempts a validation gets: a storage outage of the length a retry
/// backoff spans (about 40 minutes with the default backoff) must not
/// refuse an upload.
const VALIDATION_ATTEMPTS: u32 = 10;

impl App {
    /// Queues the validation of the version `version` inside the upload's
    /// transaction `tx` (the version and its job commit together).
    pub(crate) async fn enqueue_validation(
        &self,
        tx: &Tx,
        org: OrgId,
        version: Uuid,
        family: Family,
        by: Option<UserId>,
        now: DateTime<Utc>,
    ) -> AppResult<Uuid> {
        let id = Uuid::now_v7();
        let row = job_rows::Model {
            org_id: org.0,
            id,
            kind: JobKind::Validate.as_str().to_owned(),
            family: family.as_str().to_owned(),
            status: JobStatus::Queued.as_str().to_owned(),
            dataset_version_id: version,
            architecture: None,
            base_model_version_id: None,
            teacher_model_version_id: None,
            hyperparameters: "{}".into(),
            // Ahead of the organization's own training (another pool anyway).
            priority: 10,
            idempotency_key: None,
            request_hash: String::new(),
            device: VALIDATION_POOL.to_owned(),
            memory_mb: VALIDATION_MEMORY_MB,
            attempt: 0,
            failures: 0,
            max_attempts: self.inner.settings.jobs.max_attempts.max(VALIDATION_ATTEMPTS) as i32,
            lease_owner: None,
            lease_until: None,
            run_after: now,
            cancel_requested: false,
            event_seq: 0,
            // Not compute the plan counts: never reserved against the quota.
            estimate_seconds: 0,
            compute_seconds: 0.0,
            error_code: None,
            error_message: None,
            dead_lettered: false,
            result: None,
            model_version_id: None,
            model_id: None,
            submitted_by: by.map(|u| u.0),
            created_at: now,
            started_at: None,
            finished_at: None,
        };
        let row = jobs::insert(tx, row).await?;
        dispatch::enqueue(tx, &row, VALIDATIONS_PER_ORG).await?;
        let payload = json!({ "status": "QUEUED", "message": "queued: the upload is checked before it can be trained on" });
        jobs::append_events(tx, org, id, None, vec![NewEvent { kind: "status", payload: payload.to_string() }], now).await?;
        self.publish_after_commit(tx, job_topic(org, id), "1".into());
        self.publish_after_commit(tx, WAKE_TOPIC.into(), VALIDATION_POOL.into());
        Ok(id)
    }

    /// Records a validation's outcome: the version READY or INVALID and the
    /// job SUCCEEDED, in one transaction fenced by the attempt. False: this
    /// attempt lost the job (another one records the outcome).
    #[tracing::instrument(skip_all, fields(org = %lease.org, job = %lease.fence.job, attempt = lease.fence.attempt))]
    pub async fn finish_validation(&self, lease: &super::LeasedJob, outcome: &Outcome) -> AppResult<bool> {
        let (org, fence) = (lease.org, lease.fence);
        let now = Utc::now();
        let tx = self.inner.store.tenant(org, None).await?;
        if !jobs::holds(&tx, org, fence).await? {
            return Ok(false);
        }
        let Some(version) = jobs::get(&tx, org, fence.job).await?.map(|j| j.dataset_version_id) else { return Ok(false) };
        let result = result_of(outcome);
        let valid = result.status == "READY";
        let problems = result.problem_count;
        // Only a PENDING version changes: a version is validated once.
        datasets::finish_validation(&tx, org, version, result, now).await?;
        let end = Finish {
            status: "SUCCEEDED",
            error_code: None,
            error_message: None,
            result: Some(json!({ "valid": valid, "problemCount": problems }).to_string()),
            model_version_id: None,
            dead_lettered: false,
            failed_attempt: false,
        };
        jobs::finish(&tx, org, fence.job, Some(fence), end, now).await?;
        dispatch::remove(&tx, fence.job).await?;
        let message = if valid {
            "the dataset version is READY".to_owned()
        } else {
            format!("the dataset version is INVALID: {problems} problem(s)")
        };
        let event = status_event(JobStatus::Succeeded, message, json!({ "attempt": fence.attempt, "valid": valid }));
        self.append_final_event(&tx, org, fence.job, event, now).await?;
        self.publish_after_commit(&tx, format!("org:{org}:datasets"), version.to_string());
        if !valid {
            self.delete_files_after_commit(&tx, org, vec![lease.dataset_sha256.clone()]);
        }
        tx.commit().await?;
        info!(version = %version, valid, "dataset version validated");
        Ok(true)
    }

    /// A validation job ended without an outcome (failed for good, gave
    /// up, cancelled): its version becomes INVALID with a problem saying
    /// why, inside the transaction `tx` that ends the job.
    pub(super) async fn validation_ended_without_outcome(
        &self,
        tx: &Tx,
        org: OrgId,
        job: &job_rows::Model,
        code: Option<FailureCode>,
    ) -> AppResult<()> {
        let now = Utc::now();
        let Some(version) = datasets::version(tx, org, job.dataset_version_id).await? else { return Ok(()) };
        if datasets::finish_validation(tx, org, version.id, result_of(&could_not_validate(code)), now).await? {
            self.publish_after_commit(tx, format!("org:{org}:datasets"), version.id.to_string());
            self.delete_files_after_commit(tx, org, vec![version.sha256]);
        }
        Ok(())
    }

    /// The validation job of a dataset version (the caller may read datasets).
    #[tracing::instrument(skip_all, fields(org = %p.org, version = %version))]
    pub async fn dataset_version_validation(&self, p: &Principal, version: Uuid) -> AppResult<Option<JobView>> {
        p.require(perms::DATASETS_READ)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let row = jobs::validation_of(&tx, p.org, version).await?;
        tx.commit().await?;
        row.as_ref().map(job_view).transpose()
    }
}
