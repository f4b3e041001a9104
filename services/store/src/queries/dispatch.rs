//! The scheduling index shared by every worker (global tables: ids and
//! scheduling facts only). A `waiting` row is the outbox entry of a job
//! that no worker has yet; the relay picks rows fairly, hands them to the
//! broker and marks them `dispatched`; a claim makes them `running`.
//!
//! Fair share: among organizations with due jobs and room under their
//! concurrency limit, the one with the fewest jobs in flight goes first,
//! then the one served longest ago; within an organization, the highest
//! priority, then the oldest job.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use tenfold_domain::{OrgId, VALIDATION_POOL};
use uuid::Uuid;

use crate::entities::job_dispatch::{self, Entity as Dispatch};
use crate::entities::job_fair_share::{self, Entity as FairShare};
use crate::entities::jobs;
use crate::entities::workers::{self, Entity as Workers};
use crate::{Result, Tx};

pub const WAITING: &str = "waiting";
pub const DISPATCHED: &str = "dispatched";
pub const RUNNING: &str = "running";

/// Puts a just-inserted QUEUED job into the outbox, due at once, under
/// its organization's limit of `concurrency` jobs at once in its pool.
pub async fn enqueue(tx: &Tx, job: &jobs::Model, concurrency: i32) -> Result<()> {
    let row = job_dispatch::Model {
        job_id: job.id,
        org_id: job.org_id,
        state: WAITING.into(),
        priority: job.priority,
        device: job.device.clone(),
        memory_mb: job.memory_mb,
        concurrency,
        estimate_seconds: job.estimate_seconds,
        run_after: job.run_after,
        lease_until: None,
        created_at: job.created_at,
        dispatched_at: None,
    };
    Dispatch::insert(job_dispatch::ActiveModel::from(row)).exec_without_returning(tx.conn()).await?;
    Ok(())
}

/// Back to the outbox, due at `run_after` (a retry, a release, a lost broker entry).
pub async fn set_waiting(tx: &Tx, job: Uuid, run_after: DateTime<Utc>) -> Result<()> {
    Dispatch::update_many()
        .col_expr(job_dispatch::Column::State, Expr::value(WAITING))
        .col_expr(job_dispatch::Column::RunAfter, Expr::value(run_after))
        .col_expr(job_dispatch::Column::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(job_dispatch::Column::DispatchedAt, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(job_dispatch::Column::JobId.eq(job))
        .exec(tx.conn())
        .await?;
    Ok(())
}

pub async fn set_running(tx: &Tx, job: Uuid, lease_until: DateTime<Utc>) -> Result<()> {
    Dispatch::update_many()
        .col_expr(job_dispatch::Column::State, Expr::value(RUNNING))
        .col_expr(job_dispatch::Column::LeaseUntil, Expr::value(lease_until))
        .filter(job_dispatch::Column::JobId.eq(job))
        .exec(tx.conn())
        .await?;
    Ok(())
}

/// Finished jobs leave the index.
pub async fn remove(tx: &Tx, job: Uuid) -> Result<()> {
    Dispatch::delete_many().filter(job_dispatch::Column::JobId.eq(job)).exec(tx.conn()).await?;
    Ok(())
}

pub async fn get(tx: &Tx, job: Uuid) -> Result<Option<job_dispatch::Model>> {
    Ok(Dispatch::find_by_id(job).one(tx.conn()).await?)
}

/// A job chosen for dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Picked {
    pub org: OrgId,
    pub job: Uuid,
}

/// What a relay can run: its device and memory.
#[derive(Debug, Clone)]
pub struct Capability {
    pub device: String,
    pub memory_mb: i32,
}

/// Chooses due jobs fairly for `free` slots and marks them dispatched.
/// Entries dispatched and not yet claimed count against `free` (counted
/// under the lock, so two relays never both see an empty backlog).
pub async fn pick(tx: &Tx, cap: &Capability, free: usize, now: DateTime<Utc>) -> Result<Vec<Picked>> {
    // One relay at a time decides who is next.
    tx.serialize("tenfold:job-dispatch").await?;
    let backlog = dispatched_unclaimed(tx, &cap.device).await? as usize;
    let n = free.saturating_sub(backlog);
    if n == 0 {
        return Ok(Vec::new());
    }
    let due = || {
        Dispatch::find()
            .filter(job_dispatch::Column::State.eq(WAITING))
            .filter(job_dispatch::Column::Device.eq(cap.device.as_str()))
            .filter(job_dispatch::Column::MemoryMb.lte(cap.memory_mb))
            .filter(job_dispatch::Column::RunAfter.lte(now))
    };
    // Organizations with due work: their limit and oldest due job.
    let orgs: Vec<(Uuid, i32, DateTime<Utc>)> = due()
        .select_only()
        .column(job_dispatch::Column::OrgId)
        .column_as(job_dispatch::Column::Concurrency.min(), "c")
        .column_as(job_dispatch::Column::CreatedAt.min(), "t")
        .group_by(job_dispatch::Column::OrgId)
        .into_tuple()
        .all(tx.conn())
        .await?;
    if orgs.is_empty() {
        return Ok(Vec::new());
    }
    // An organization's limit counts its training jobs on every device;
    // validations have a limit of their own, so that an upload is checked
    // while the organization's training runs.
    let same_limit = if cap.device == VALIDATION_POOL {
        job_dispatch::Column::Device.eq(VALIDATION_POOL)
    } else {
        job_dispatch::Column::Device.ne(VALIDATION_POOL)
    };
    let mut in_flight: HashMap<Uuid, i64> = Dispatch::find()
        .select_only()
        .column(job_dispatch::Column::OrgId)
        .column_as(job_dispatch::Column::JobId.count(), "n")
        .filter(job_dispatch::Column::State.is_in([DISPATCHED, RUNNING]))
        .filter(same_limit)
        .group_by(job_dispatch::Column::OrgId)
        .into_tuple::<(Uuid, i64)>()
        .all(tx.conn())
        .await?
        .into_iter()
        .collect();
    let ids: Vec<Uuid> = orgs.iter().map(|o| o.0).collect();
    let mut served: HashMap<Uuid, DateTime<Utc>> = FairShare::find()
        .filter(job_fair_share::Column::OrgId.is_in(ids))
        .all(tx.conn())
        .await?
        .into_iter()
        .map(|r| (r.org_id, r.last_started_at))
        .collect();
    let mut exhausted: Vec<Uuid> = Vec::new();
    let mut picked = Vec::new();
    while picked.len() < n {
        let next = orgs
            .iter()
            .filter(|(org, limit, _)| !exhausted.contains(org) && in_flight.get(org).copied().unwrap_or(0) < i64::from(*limit))
            .min_by_key(|(org, _, oldest)| (in_flight.get(org).copied().unwrap_or(0), served.get(org).copied(), *oldest));
        let Some(&(org, _, _)) = next else { break };
        let job = due()
            .filter(job_dispatch::Column::OrgId.eq(org))
            .order_by_desc(job_dispatch::Column::Priority)
            .order_by_asc(job_dispatch::Column::CreatedAt)
            .order_by_asc(job_dispatch::Column::JobId)
            .one(tx.conn())
            .await?;
        let Some(job) = job else {
            exhausted.push(org);
            continue;
        };
        Dispatch::update_many()
            .col_expr(job_dispatch::Column::State, Expr::value(DISPATCHED))
            .col_expr(job_dispatch::Column::DispatchedAt, Expr::value(now))
            .filter(job_dispatch::Column::JobId.eq(job.job_id))
            .filter(job_dispatch::Column::State.eq(WAITING))
            .exec(tx.conn())
            .await?;
        FairShare::insert(job_fair_share::ActiveModel { org_id: Set(org), last_started_at: Set(now) })
            .on_conflict(OnConflict::column(job_fair_share::Column::OrgId).update_column(job_fair_share::Column::LastStartedAt).to_owned())
            .exec_without_returning(tx.conn())
            .await?;
        *in_flight.entry(org).or_insert(0) += 1;
        served.insert(org, now);
        picked.push(Picked { org: OrgId(org), job: job.job_id });
    }
    Ok(picked)
}

/// Jobs dispatched but not yet claimed, per device (the broker's backlog).
async fn dispatched_unclaimed(tx: &Tx, device: &str) -> Result<u64> {
    use sea_orm::PaginatorTrait;
    Ok(Dispatch::find()
        .filter(job_dispatch::Column::State.eq(DISPATCHED))
        .filter(job_dispatch::Column::Device.eq(device))
        .count(tx.conn())
        .await?)
}

/// Returns to the outbox what the broker lost: running jobs whose lease
/// expired (their worker died) and dispatched entries never claimed.
pub async fn reconcile(tx: &Tx, now: DateTime<Utc>, unclaimed_before: DateTime<Utc>) -> Result<u64> {
    let expired = Dispatch::update_many()
        .col_expr(job_dispatch::Column::State, Expr::value(WAITING))
        .col_expr(job_dispatch::Column::DispatchedAt, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(job_dispatch::Column::State.eq(RUNNING))
        .filter(job_dispatch::Column::LeaseUntil.lt(now))
        .exec(tx.conn())
        .await?;
    let lost = Dispatch::update_many()
        .col_expr(job_dispatch::Column::State, Expr::value(WAITING))
        .col_expr(job_dispatch::Column::DispatchedAt, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(job_dispatch::Column::State.eq(DISPATCHED))
        .filter(job_dispatch::Column::DispatchedAt.lt(unclaimed_before))
        .exec(tx.conn())
        .await?;
    Ok(expired.rows_affected + lost.rows_affected)
}

/// Where a waiting job stands: 1 means next. Round-robin across
/// organizations: another organization can get ahead of this job at most
/// as many turns as this organization has jobs ahead of it, plus one.
pub async fn queue_position(tx: &Tx, job: &job_dispatch::Model) -> Result<Option<u64>> {
    if job.state != WAITING {
        return Ok(None);
    }
    let per_org: Vec<(Uuid, i64)> = Dispatch::find()
        .select_only()
        .column(job_dispatch::Column::OrgId)
        .column_as(job_dispatch::Column::JobId.count(), "n")
        .filter(job_dispatch::Column::State.eq(WAITING))
        .filter(job_dispatch::Column::Device.eq(job.device.as_str()))
        .filter(job_dispatch::Column::JobId.ne(job.job_id))
        .group_by(job_dispatch::Column::OrgId)
        .into_tuple()
        .all(tx.conn())
        .await?;
    use sea_orm::PaginatorTrait;
    let own_ahead = Dispatch::find()
        .filter(job_dispatch::Column::State.eq(WAITING))
        .filter(job_dispatch::Column::OrgId.eq(job.org_id))
        .filter(job_dispatch::Column::Device.eq(job.device.as_str()))
        .filter(
            sea_orm::Condition::any().add(job_dispatch::Column::Priority.gt(job.priority)).add(
                sea_orm::Condition::all()
                    .add(job_dispatch::Column::Priority.eq(job.priority))
                    .add(job_dispatch::Column::CreatedAt.lt(job.created_at)),
            ),
        )
        .count(tx.conn())
        .await?;
    let others: u64 = per_org.iter().filter(|(org, _)| *org != job.org_id).map(|(_, n)| (*n as u64).min(own_ahead + 1)).sum();
    Ok(Some(own_ahead + others + 1))
}

/// Mean estimate of the jobs waiting for a device (for ETAs).
pub async fn mean_waiting_estimate(tx: &Tx, device: &str) -> Result<f64> {
    let rows: Vec<i64> = Dispatch::find()
        .select_only()
        .column(job_dispatch::Column::EstimateSeconds)
        .filter(job_dispatch::Column::Device.eq(device))
        .filter(job_dispatch::Column::State.eq(WAITING))
        .into_tuple()
        .all(tx.conn())
        .await?;
    Ok(if rows.is_empty() { 0.0 } else { rows.iter().sum::<i64>() as f64 / rows.len() as f64 })
}

/// Registers or refreshes a worker.
pub async fn worker_heartbeat(tx: &Tx, row: workers::Model) -> Result<()> {
    Workers::insert(workers::ActiveModel::from(row))
        .on_conflict(
            OnConflict::column(workers::Column::Id)
                .update_columns([workers::Column::HeartbeatAt, workers::Column::Slots, workers::Column::MemoryMb])
                .to_owned(),
        )
        .exec_without_returning(tx.conn())
        .await?;
    Ok(())
}

pub async fn worker_gone(tx: &Tx, id: &str) -> Result<()> {
    Workers::delete_by_id(id.to_owned()).exec(tx.conn()).await?;
    Ok(())
}

/// Slots of the workers for `device` seen since `alive_since`.
pub async fn live_slots(tx: &Tx, device: &str, alive_since: DateTime<Utc>) -> Result<i64> {
    let rows: Vec<i32> = Workers::find()
        .select_only()
        .column(workers::Column::Slots)
        .filter(workers::Column::Device.eq(device))
        .filter(workers::Column::HeartbeatAt.gte(alive_since))
        .into_tuple()
        .all(tx.conn())
        .await?;
    Ok(rows.into_iter().map(i64::from).sum())
}

/// Serialises an organization's submissions (the quota check and the
/// insert must not interleave with another submission's).
pub async fn lock_org(tx: &Tx, org: OrgId) -> Result<()> {
    tx.serialize(&format!("tenfold:job-submit:{org}")).await
}
