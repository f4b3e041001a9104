//! Jobs, their events, checkpoints, model versions and usage (tenant tables).
//!
//! Every write a worker makes names the attempt it holds (`Fence`) and only
//! changes a RUNNING job of that attempt: a worker that lost its lease (a
//! paused "zombie", a partitioned node) has each late write refused.

use chrono::{DateTime, Utc};

type DateTimeUtc = DateTime<Utc>;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use tenfold_domain::OrgId;
use uuid::Uuid;

use super::Page;
use crate::entities::job_checkpoints::{self, Entity as Checkpoints};
use crate::entities::job_events::{self, Entity as Events};
use crate::entities::jobs::{self, Entity as Jobs};
use crate::entities::model_versions::{self, Entity as ModelVersions};
use crate::entities::usage_records::{self, Entity as Usage};
use crate::{Result, Tx};

/// The attempt a worker holds: its writes apply only while it still holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence {
    pub job: Uuid,
    pub attempt: i32,
}

pub async fn insert(tx: &Tx, row: jobs::Model) -> Result<jobs::Model> {
    Ok(jobs::ActiveModel::from(row).insert(tx.conn()).await?)
}

pub async fn get(tx: &Tx, org: OrgId, id: Uuid) -> Result<Option<jobs::Model>> {
    Ok(Jobs::find().filter(jobs::Column::OrgId.eq(org.0)).filter(jobs::Column::Id.eq(id)).one(tx.conn()).await?)
}

pub async fn by_idempotency_key(tx: &Tx, org: OrgId, key: &str) -> Result<Option<jobs::Model>> {
    Ok(Jobs::find().filter(jobs::Column::OrgId.eq(org.0)).filter(jobs::Column::IdempotencyKey.eq(key)).one(tx.conn()).await?)
}

/// Newest first, like every job list users know.
/// The organization's jobs of `kinds`, newest first.
pub async fn list(
    tx: &Tx,
    org: OrgId,
    kinds: &[&str],
    status: Option<&str>,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Page<jobs::Model>> {
    let mut q = Jobs::find().filter(jobs::Column::OrgId.eq(org.0)).filter(jobs::Column::Kind.is_in(kinds.iter().copied()));
    if let Some(status) = status {
        q = q.filter(jobs::Column::Status.eq(status));
    }
    if let Some(before) = before {
        q = q.filter(jobs::Column::Id.lt(before));
    }
    let rows = q.order_by_desc(jobs::Column::Id).limit(limit + 1).all(tx.conn()).await?;
    Ok(Page::from_overfetch(rows, limit))
}

/// The validation job of a dataset version (the latest, if ever more than one).
pub async fn validation_of(tx: &Tx, org: OrgId, version: Uuid) -> Result<Option<jobs::Model>> {
    Ok(Jobs::find()
        .filter(jobs::Column::OrgId.eq(org.0))
        .filter(jobs::Column::DatasetVersionId.eq(version))
        .filter(jobs::Column::Kind.eq("VALIDATE"))
        .order_by_desc(jobs::Column::Id)
        .one(tx.conn())
        .await?)
}

/// Estimated seconds of the organization's unfinished jobs (for the quota).
pub async fn unfinished_estimate(tx: &Tx, org: OrgId) -> Result<i64> {
    let rows: Vec<i64> = Jobs::find()
        .select_only()
        .column(jobs::Column::EstimateSeconds)
        .filter(jobs::Column::OrgId.eq(org.0))
        .filter(jobs::Column::Status.is_in(["QUEUED", "RUNNING"]))
        .into_tuple()
        .all(tx.conn())
        .await?;
    Ok(rows.into_iter().sum())
}

fn job_filter<E: EntityTrait>(q: sea_orm::UpdateMany<E>, org: OrgId, id: Uuid) -> sea_orm::UpdateMany<E>
where
    E::Column: ColumnTrait,
{
    q.filter(Expr::col("org_id").eq(org.0)).filter(Expr::col("id").eq(id))
}

/// How a claim went.
pub enum Claim {
    /// The job was QUEUED (or its last worker's lease expired: `took_over`).
    Claimed { job: Box<jobs::Model>, took_over: bool },
    /// Finished, cancelled, running under a live lease, or not due yet.
    NotClaimable,
}

/// Takes a job for `owner` until `lease_until`, bumping the attempt (the
/// fencing token). A RUNNING job whose lease expired is taken over, and its
/// lost attempt counts as a failure.
pub async fn claim(tx: &Tx, org: OrgId, id: Uuid, owner: &str, lease_until: DateTimeUtc, now: DateTimeUtc) -> Result<Claim> {
    let set = |q: sea_orm::UpdateMany<Jobs>| {
        q.col_expr(jobs::Column::Status, Expr::value("RUNNING"))
            .col_expr(jobs::Column::Attempt, Expr::col(jobs::Column::Attempt).add(1))
            .col_expr(jobs::Column::LeaseOwner, Expr::value(owner))
            .col_expr(jobs::Column::LeaseUntil, Expr::value(lease_until))
            .col_expr(jobs::Column::StartedAt, Expr::col(jobs::Column::StartedAt).if_null(now))
    };
    let fresh = set(job_filter(Jobs::update_many(), org, id))
        .filter(jobs::Column::Status.eq("QUEUED"))
        .filter(jobs::Column::RunAfter.lte(now))
        .exec(tx.conn())
        .await?;
    let took_over = if fresh.rows_affected == 1 {
        false
    } else {
        let stale = set(job_filter(Jobs::update_many(), org, id))
            .col_expr(jobs::Column::Failures, Expr::col(jobs::Column::Failures).add(1))
            .filter(jobs::Column::Status.eq("RUNNING"))
            .filter(jobs::Column::LeaseUntil.lt(now))
            .exec(tx.conn())
            .await?;
        if stale.rows_affected != 1 {
            return Ok(Claim::NotClaimable);
        }
        true
    };
    match get(tx, org, id).await? {
        Some(job) => Ok(Claim::Claimed { job: Box::new(job), took_over }),
        None => Ok(Claim::NotClaimable),
    }
}

fn fenced(org: OrgId, fence: Fence) -> sea_orm::UpdateMany<Jobs> {
    job_filter(Jobs::update_many(), org, fence.job)
        .filter(jobs::Column::Attempt.eq(fence.attempt))
        .filter(jobs::Column::Status.eq("RUNNING"))
}

/// Extends the lease. `None`: the attempt is no longer this worker's.
/// `Some(true)`: the user asked to cancel.
pub async fn heartbeat(tx: &Tx, org: OrgId, fence: Fence, lease_until: DateTimeUtc) -> Result<Option<bool>> {
    let res = fenced(org, fence).col_expr(jobs::Column::LeaseUntil, Expr::value(lease_until)).exec(tx.conn()).await?;
    if res.rows_affected != 1 {
        return Ok(None);
    }
    Ok(get(tx, org, fence.job).await?.map(|j| j.cancel_requested))
}

/// Whether `fence` still holds the job (for writes that touch other tables).
pub async fn holds(tx: &Tx, org: OrgId, fence: Fence) -> Result<bool> {
    // A no-op update takes the row lock, so the answer stays true until commit.
    let res = fenced(org, fence).col_expr(jobs::Column::Attempt, Expr::value(fence.attempt)).exec(tx.conn()).await?;
    Ok(res.rows_affected == 1)
}

/// One event to append.
pub struct NewEvent {
    pub kind: &'static str,
    pub payload: String,
}

/// Appends events with the next sequence numbers. With a fence, only while
/// that attempt holds the job; returns the numbers given, `None` if refused.
pub async fn append_events(
    tx: &Tx,
    org: OrgId,
    job: Uuid,
    fence: Option<Fence>,
    events: Vec<NewEvent>,
    now: DateTimeUtc,
) -> Result<Option<Vec<i64>>> {
    let n = events.len() as i64;
    if n == 0 {
        return Ok(Some(Vec::new()));
    }
    let q = match fence {
        Some(f) => fenced(org, f),
        None => job_filter(Jobs::update_many(), org, job),
    };
    // The counter on the job row hands out numbers under its row lock, so
    // concurrent writers (a worker, a cancel) never share one.
    let res = q.col_expr(jobs::Column::EventSeq, Expr::col(jobs::Column::EventSeq).add(n)).exec(tx.conn()).await?;
    if res.rows_affected != 1 {
        return Ok(None);
    }
    let Some(row) = get(tx, org, job).await? else { return Ok(None) };
    let attempt = fence.map_or(row.attempt, |f| f.attempt);
    let first = row.event_seq - n + 1;
    let rows: Vec<job_events::ActiveModel> = events
        .into_iter()
        .enumerate()
        .map(|(i, e)| job_events::ActiveModel {
            org_id: Set(org.0),
            job_id: Set(job),
            seq: Set(first + i as i64),
            attempt: Set(attempt),
            kind: Set(e.kind.to_owned()),
            payload: Set(e.payload),
            created_at: Set(now),
        })
        .collect();
    Events::insert_many(rows).exec(tx.conn()).await?;
    Ok(Some((first..=row.event_seq).collect()))
}

pub async fn events(tx: &Tx, org: OrgId, job: Uuid, after_seq: i64, limit: u64) -> Result<Page<job_events::Model>> {
    let rows = Events::find()
        .filter(job_events::Column::OrgId.eq(org.0))
        .filter(job_events::Column::JobId.eq(job))
        .filter(job_events::Column::Seq.gt(after_seq))
        .order_by_asc(job_events::Column::Seq)
        .limit(limit + 1)
        .all(tx.conn())
        .await?;
    Ok(Page::from_overfetch(rows, limit))
}

/// Events of some kinds, in order (metrics history).
pub async fn events_of_kind(tx: &Tx, org: OrgId, job: Uuid, kind: &str) -> Result<Vec<job_events::Model>> {
    Ok(Events::find()
        .filter(job_events::Column::OrgId.eq(org.0))
        .filter(job_events::Column::JobId.eq(job))
        .filter(job_events::Column::Kind.eq(kind))
        .order_by_asc(job_events::Column::Seq)
        .all(tx.conn())
        .await?)
}

/// How a job ends, as one fenced write.
pub struct Finish<'a> {
    pub status: &'static str,
    pub error_code: Option<&'a str>,
    pub error_message: Option<&'a str>,
    pub result: Option<String>,
    pub model_version_id: Option<Uuid>,
    pub dead_lettered: bool,
    /// Counted only when the failure is the attempt's own (not a cancel).
    pub failed_attempt: bool,
}

/// Ends the job of `fence`, or without a fence a QUEUED job (cancelled
/// before any worker took it: a RUNNING one is only ever ended by its
/// attempt). False: refused, nothing written.
pub async fn finish(tx: &Tx, org: OrgId, job: Uuid, fence: Option<Fence>, end: Finish<'_>, now: DateTimeUtc) -> Result<bool> {
    let q = match fence {
        Some(f) => fenced(org, f),
        None => job_filter(Jobs::update_many(), org, job).filter(jobs::Column::Status.eq("QUEUED")),
    };
    let mut q = q
        .col_expr(jobs::Column::Status, Expr::value(end.status))
        .col_expr(jobs::Column::ErrorCode, Expr::value(end.error_code.map(str::to_owned)))
        .col_expr(jobs::Column::ErrorMessage, Expr::value(end.error_message.map(str::to_owned)))
        .col_expr(jobs::Column::Result, Expr::value(end.result))
        .col_expr(jobs::Column::ModelVersionId, Expr::value(end.model_version_id))
        .col_expr(jobs::Column::DeadLettered, Expr::value(end.dead_lettered))
        .col_expr(jobs::Column::LeaseOwner, Expr::value(Option::<String>::None))
        .col_expr(jobs::Column::LeaseUntil, Expr::value(Option::<DateTimeUtc>::None))
        .col_expr(jobs::Column::FinishedAt, Expr::value(now));
    if end.failed_attempt {
        q = q.col_expr(jobs::Column::Failures, Expr::col(jobs::Column::Failures).add(1));
    }
    Ok(q.exec(tx.conn()).await?.rows_affected == 1)
}

/// Puts the job of `fence` back in the queue, due at `run_after`:
/// a retry after a transient failure (`failed`), or a release on shutdown.
pub async fn requeue(tx: &Tx, org: OrgId, fence: Fence, run_after: DateTimeUtc, failed: Option<(&str, &str)>) -> Result<bool> {
    let mut q = fenced(org, fence)
        .col_expr(jobs::Column::Status, Expr::value("QUEUED"))
        .col_expr(jobs::Column::RunAfter, Expr::value(run_after))
        .col_expr(jobs::Column::LeaseOwner, Expr::value(Option::<String>::None))
        .col_expr(jobs::Column::LeaseUntil, Expr::value(Option::<DateTimeUtc>::None));
    if let Some((code, message)) = failed {
        q = q
            .col_expr(jobs::Column::Failures, Expr::col(jobs::Column::Failures).add(1))
            .col_expr(jobs::Column::ErrorCode, Expr::value(code))
            .col_expr(jobs::Column::ErrorMessage, Expr::value(message));
    }
    Ok(q.exec(tx.conn()).await?.rows_affected == 1)
}

/// Adds compute time to the job (fenced).
pub async fn add_compute_seconds(tx: &Tx, org: OrgId, fence: Fence, seconds: f64) -> Result<bool> {
    let res = fenced(org, fence)
        .col_expr(jobs::Column::ComputeSeconds, Expr::col(jobs::Column::ComputeSeconds).add(seconds))
        .exec(tx.conn())
        .await?;
    Ok(res.rows_affected == 1)
}

/// Marks a RUNNING job for cancellation; the worker stops at its next step.
pub async fn request_cancel(tx: &Tx, org: OrgId, id: Uuid) -> Result<bool> {
    let res = job_filter(Jobs::update_many(), org, id)
        .col_expr(jobs::Column::CancelRequested, Expr::value(true))
        .filter(jobs::Column::Status.eq("RUNNING"))
        .exec(tx.conn())
        .await?;
    Ok(res.rows_affected == 1)
}

pub async fn upsert_checkpoint(tx: &Tx, row: job_checkpoints::Model) -> Result<()> {
    Checkpoints::insert(job_checkpoints::ActiveModel::from(row))
        .on_conflict(
            OnConflict::columns([job_checkpoints::Column::OrgId, job_checkpoints::Column::JobId, job_checkpoints::Column::Epoch])
                .update_columns([job_checkpoints::Column::Attempt, job_checkpoints::Column::Files, job_checkpoints::Column::SizeBytes])
                .to_owned(),
        )
        .exec_without_returning(tx.conn())
        .await?;
    Ok(())
}

/// The checkpoint of one epoch, if the job has one.
pub async fn checkpoint(tx: &Tx, org: OrgId, job: Uuid, epoch: i32) -> Result<Option<job_checkpoints::Model>> {
    Ok(Checkpoints::find_by_id((org.0, job, epoch)).one(tx.conn()).await?)
}

/// Marks the job's live checkpoints retired (the job ended); their file
/// maps, whose blobs the caller deletes once nothing else names them.
pub async fn retire_checkpoints(tx: &Tx, org: OrgId, job: Uuid, now: DateTime<Utc>) -> Result<Vec<String>> {
    let live: Vec<String> = Checkpoints::find()
        .select_only()
        .column(job_checkpoints::Column::Files)
        .filter(job_checkpoints::Column::OrgId.eq(org.0))
        .filter(job_checkpoints::Column::JobId.eq(job))
        .filter(job_checkpoints::Column::RetiredAt.is_null())
        .into_tuple()
        .all(tx.conn())
        .await?;
    Checkpoints::update_many()
        .col_expr(job_checkpoints::Column::RetiredAt, Expr::value(Some(now)))
        .filter(job_checkpoints::Column::OrgId.eq(org.0))
        .filter(job_checkpoints::Column::JobId.eq(job))
        .filter(job_checkpoints::Column::RetiredAt.is_null())
        .exec(tx.conn())
        .await?;
    Ok(live)
}

pub async fn checkpoints(tx: &Tx, org: OrgId, job: Uuid) -> Result<Vec<job_checkpoints::Model>> {
    Ok(Checkpoints::find()
        .filter(job_checkpoints::Column::OrgId.eq(org.0))
        .filter(job_checkpoints::Column::JobId.eq(job))
        .order_by_asc(job_checkpoints::Column::Epoch)
        .all(tx.conn())
        .await?)
}

pub async fn insert_model_version(tx: &Tx, row: model_versions::Model) -> Result<()> {
    model_versions::ActiveModel::from(row).insert(tx.conn()).await?;
    Ok(())
}

pub async fn model_version(tx: &Tx, org: OrgId, id: Uuid) -> Result<Option<model_versions::Model>> {
    Ok(ModelVersions::find()
        .filter(model_versions::Column::OrgId.eq(org.0))
        .filter(model_versions::Column::Id.eq(id))
        .one(tx.conn())
        .await?)
}

pub async fn model_versions_of_job(tx: &Tx, org: OrgId, job: Uuid) -> Result<Vec<model_versions::Model>> {
    Ok(ModelVersions::find()
        .filter(model_versions::Column::OrgId.eq(org.0))
        .filter(model_versions::Column::JobId.eq(job))
        .all(tx.conn())
        .await?)
}

/// Records a metered quantity once per `source_key`; false if it already was.
pub async fn record_usage(tx: &Tx, row: usage_records::Model) -> Result<bool> {
    let n = Usage::insert(usage_records::ActiveModel::from(row))
        .on_conflict(OnConflict::columns([usage_records::Column::OrgId, usage_records::Column::SourceKey]).do_nothing().to_owned())
        .exec_without_returning(tx.conn())
        .await?;
    Ok(n == 1)
}

pub async fn usage_records(tx: &Tx, org: OrgId, job: Option<Uuid>) -> Result<Vec<usage_records::Model>> {
    let mut q = Usage::find().filter(usage_records::Column::OrgId.eq(org.0));
    if let Some(job) = job {
        q = q.filter(usage_records::Column::JobId.eq(job));
    }
    Ok(q.order_by_asc(usage_records::Column::Id).all(tx.conn()).await?)
}

/// The sum of a meter since `since` (the month's compute, for the quota).
pub async fn usage_since(tx: &Tx, org: OrgId, meter: &str, since: DateTime<Utc>) -> Result<f64> {
    let rows: Vec<f64> = Usage::find()
        .select_only()
        .column(usage_records::Column::Quantity)
        .filter(usage_records::Column::OrgId.eq(org.0))
        .filter(usage_records::Column::Meter.eq(meter))
        .filter(usage_records::Column::CreatedAt.gte(since))
        .into_tuple()
        .all(tx.conn())
        .await?;
    Ok(rows.into_iter().sum())
}

/// A meter's records in `[from, to)`, oldest first (the usage view).
pub async fn usage_records_between(
    tx: &Tx,
    org: OrgId,
    meter: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<usage_records::Model>> {
    Ok(Usage::find()
        .filter(usage_records::Column::OrgId.eq(org.0))
        .filter(usage_records::Column::Meter.eq(meter))
        .filter(usage_records::Column::CreatedAt.gte(from))
        .filter(usage_records::Column::CreatedAt.lt(to))
        .order_by_asc(usage_records::Column::CreatedAt)
        .all(tx.conn())
        .await?)
}
