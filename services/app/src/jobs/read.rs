//! Reading jobs, their events, checkpoints and models; cancelling; the live
//! event stream behind the `jobEvents` subscription.

use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::json;
use tenfold_domain::{JobKind, JobStatus, OrgId};
use tenfold_store::queries::jobs::{self, Finish, NewEvent};
use tenfold_store::queries::{Page, dispatch};
use uuid::Uuid;

use super::views::{CheckpointView, JobEventView, JobView, UsageView, checkpoint_view, event_view, job_view, usage_view};
use super::{CANCEL_TOPIC, job_topic};
use crate::App;
use crate::audit_action::AuditAction;
use crate::error::{AppError, AppResult};
use crate::models::{ModelVersionView, model_version_view};
use crate::principal::{Principal, perms};

/// Events a subscriber receives per database read.
const EVENT_BATCH: u64 = 100;

impl App {
    #[tracing::instrument(skip_all, fields(org = %p.org, id = %id))]
    pub async fn job(&self, p: &Principal, id: Uuid) -> AppResult<JobView> {
        p.require(perms::JOBS_READ)?;
        self.load_job(p, id).await
    }

    /// The job as its caller sees it, without the read permission: for
    /// answering a write the caller was allowed to make (a key with only
    /// `jobs:write` gets back the job it submitted or cancelled).
    pub(crate) async fn load_job(&self, p: &Principal, id: Uuid) -> AppResult<JobView> {
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let row = jobs::get(&tx, p.org, id).await?.ok_or_else(|| AppError::not_found("job"))?;
        let mut view = job_view(&row)?;
        if view.status == JobStatus::Queued
            && let Some(d) = dispatch::get(&tx, id).await?
        {
            view.queue_position = dispatch::queue_position(&tx, &d).await?;
            let slots = dispatch::live_slots(&tx, &d.device, Utc::now() - chrono::Duration::seconds(60)).await?;
            let mean = dispatch::mean_waiting_estimate(&tx, &d.device).await?.max(1.0);
            view.eta_seconds = view.queue_position.map(|pos| {
                let turns = ((pos.saturating_sub(1)) as f64 / slots.max(1) as f64).ceil();
                let wait = (d.run_after - Utc::now()).num_milliseconds().max(0) as f64 / 1000.0;
                (turns * mean).max(wait)
            });
        }
        tx.commit().await?;
        Ok(view)
    }

    /// The organization's jobs of one kind, newest first; without a kind,
    /// the training work (validations of uploads are asked for by kind).
    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn jobs(
        &self,
        p: &Principal,
        kind: Option<JobKind>,
        status: Option<JobStatus>,
        before: Option<Uuid>,
        first: Option<i32>,
    ) -> AppResult<Page<JobView>> {
        p.require(perms::JOBS_READ)?;
        let limit = self.page_size(first)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let kinds: Vec<&str> = match kind {
            Some(k) => vec![k.as_str()],
            None => [JobKind::FineTune, JobKind::Distill, JobKind::Evaluate].map(JobKind::as_str).to_vec(),
        };
        let page = jobs::list(&tx, p.org, &kinds, status.map(JobStatus::as_str), before, limit).await?;
        tx.commit().await?;
        Ok(Page { rows: page.rows.iter().map(job_view).collect::<AppResult<_>>()?, has_next: page.has_next })
    }

    /// Events after sequence number `after`, oldest first.
    #[tracing::instrument(skip_all, fields(org = %p.org, job = %job))]
    pub async fn job_events(&self, p: &Principal, job: Uuid, after: i64, first: Option<i32>) -> AppResult<Page<JobEventView>> {
        p.require(perms::JOBS_READ)?;
        let limit = self.page_size(first)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        jobs::get(&tx, p.org, job).await?.ok_or_else(|| AppError::not_found("job"))?;
        let page = jobs::events(&tx, p.org, job, after, limit).await?;
        tx.commit().await?;
        Ok(Page { rows: page.rows.iter().map(event_view).collect(), has_next: page.has_next })
    }

    /// Per-epoch metrics, in order (the `epoch` events' payloads).
    #[tracing::instrument(skip_all, fields(org = %p.org, job = %job))]
    pub async fn job_metrics(&self, p: &Principal, job: Uuid) -> AppResult<Vec<serde_json::Value>> {
        p.require(perms::JOBS_READ)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let rows = jobs::events_of_kind(&tx, p.org, job, "epoch").await?;
        tx.commit().await?;
        Ok(rows.iter().map(|e| event_view(e).payload).collect())
    }

    #[tracing::instrument(skip_all, fields(org = %p.org, job = %job))]
    pub async fn job_checkpoints(&self, p: &Principal, job: Uuid) -> AppResult<Vec<CheckpointView>> {
        p.require(perms::JOBS_READ)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let rows = jobs::checkpoints(&tx, p.org, job).await?;
        tx.commit().await?;
        Ok(rows.iter().map(checkpoint_view).collect())
    }

    #[tracing::instrument(skip_all, fields(org = %p.org, job = %job))]
    pub async fn job_usage(&self, p: &Principal, job: Uuid) -> AppResult<Vec<UsageView>> {
        p.require(perms::JOBS_READ)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let rows = jobs::usage_records(&tx, p.org, Some(job)).await?;
        tx.commit().await?;
        Ok(rows.iter().map(usage_view).collect())
    }

    /// Model versions a job produced (one at most; a list so that a test
    /// can see there is never a second).
    #[tracing::instrument(skip_all, fields(org = %p.org, job = %job))]
    pub async fn job_model_versions(&self, p: &Principal, job: Uuid) -> AppResult<Vec<ModelVersionView>> {
        p.require(perms::MODELS_READ)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let rows = jobs::model_versions_of_job(&tx, p.org, job).await?;
        tx.commit().await?;
        rows.iter().map(model_version_view).collect()
    }

    /// Cancels a job: a queued one at once, a running one cooperatively
    /// (its worker stops within a step and keeps the last checkpoint).
    #[tracing::instrument(skip_all, fields(org = %p.org, id = %id))]
    pub async fn cancel_job(&self, p: &Principal, id: Uuid) -> AppResult<JobView> {
        p.require(perms::JOBS_WRITE)?;
        let now = Utc::now();
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let row = jobs::get(&tx, p.org, id).await?.ok_or_else(|| AppError::not_found("job"))?;
        let status = crate::error::stored(JobStatus::parse(&row.status), "job status")?;
        if row.kind == JobKind::Validate.as_str() {
            return Err(AppError::bad_input(
                "id",
                "a validation cannot be cancelled (it takes seconds and the version needs its outcome); delete the dataset to drop the upload",
            ));
        }
        let cancel_queued = || Finish {
            status: "CANCELLED",
            error_code: None,
            error_message: None,
            result: None,
            model_version_id: None,
            dead_lettered: false,
            failed_attempt: false,
        };
        let queued_event = json!({ "status": "CANCELLED", "message": "cancelled before it started" });
        let event = match status {
            JobStatus::Queued => {
                if !jobs::finish(&tx, p.org, id, None, cancel_queued(), now).await? {
                    return Err(AppError::bad_input("id", "a worker took the job meanwhile; cancel it again to stop the run"));
                }
                dispatch::remove(&tx, id).await?;
                self.retire_checkpoints(&tx, p.org, id).await?;
                queued_event
            }
            JobStatus::Running => {
                if jobs::request_cancel(&tx, p.org, id).await? {
                    self.publish_after_commit(&tx, CANCEL_TOPIC.into(), id.to_string());
                    json!({ "status": "RUNNING", "message": "cancellation requested; the worker stops at its next step" })
                } else if jobs::finish(&tx, p.org, id, None, cancel_queued(), now).await? {
                    // Queued again since it was read (a retry or a release).
                    dispatch::remove(&tx, id).await?;
                    self.retire_checkpoints(&tx, p.org, id).await?;
                    queued_event
                } else {
                    return Err(AppError::bad_input("id", "the job ended meanwhile; nothing to cancel"));
                }
            }
            done => return Err(AppError::bad_input("id", format!("the job already ended ({done}); nothing to cancel"))),
        };
        jobs::append_events(&tx, p.org, id, None, vec![NewEvent { kind: "status", payload: event.to_string() }], now).await?;
        self.record(
            &tx,
            p.org,
            Some(p),
            &p.meta,
            AuditAction::JobCancelRequested,
            Some(format!("job:{id}")),
            json!({ "status": status.as_str() }),
        )
        .await?;
        self.publish_after_commit(&tx, job_topic(p.org, id), "0".into());
        tx.commit().await?;
        self.load_job(p, id).await
    }

    /// A job's events from sequence number `after` on, in order, live. The
    /// bus only says "something new"; every event is read from the table,
    /// so none is skipped or reordered even if a notification is lost. The
    /// stream ends after the job's last event.
    #[tracing::instrument(skip_all, fields(org = %p.org, job = %job))]
    pub async fn subscribe_job_events(
        &self,
        p: &Principal,
        job: Uuid,
        after: i64,
    ) -> AppResult<BoxStream<'static, AppResult<JobEventView>>> {
        p.require(perms::JOBS_READ)?;
        {
            let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
            jobs::get(&tx, p.org, job).await?.ok_or_else(|| AppError::not_found("job"))?;
        }
        let wakeups = self.inner.bus.subscribe(&job_topic(p.org, job)).await?;
        let state = Follow {
            app: self.clone(),
            org: p.org,
            user: p.user_id(),
            job,
            last: after,
            wakeups,
            buffer: Vec::new(),
            done: false,
            bus_alive: true,
        };
        Ok(futures::stream::unfold(state, Follow::next).boxed())
    }
}

struct Follow {
    app: App,
    org: OrgId,
    user: Option<tenfold_domain::UserId>,
    job: Uuid,
    last: i64,
    wakeups: BoxStream<'static, String>,
    buffer: Vec<JobEventView>,
    done: bool,
    bus_alive: bool,
}

impl Follow {
    async fn next(mut self) -> Option<(AppResult<JobEventView>, Self)> {
        loop {
            if !self.buffer.is_empty() {
                let event = self.buffer.remove(0);
                self.last = event.seq;
                return Some((Ok(event), self));
            }
            if self.done {
                return None;
            }
            match self.fetch().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    self.done = true;
                    return Some((Err(e), self));
                }
            }
            // Nothing new: wait for a notification, or poll in case one was
            // lost (or the bus went away: then only the poll remains).
            if self.bus_alive {
                if let Ok(None) = tokio::time::timeout(Duration::from_secs(1), self.wakeups.next()).await {
                    self.bus_alive = false;
                }
            } else {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }

    /// Reads the next events; false when there were none.
    async fn fetch(&mut self) -> AppResult<bool> {
        let tx = self.app.inner.store.tenant(self.org, self.user).await?;
        let row = jobs::get(&tx, self.org, self.job).await?.ok_or_else(|| AppError::not_found("job"))?;
        let page = jobs::events(&tx, self.org, self.job, self.last, EVENT_BATCH).await?;
        tx.commit().await?;
        let finished = JobStatus::parse(&row.status).is_ok_and(JobStatus::is_terminal);
        if page.rows.is_empty() {
            // The job's row is read with its events: once it is final and
            // every event up to its counter is delivered, nothing more comes.
            self.done = finished && self.last >= row.event_seq;
            return Ok(false);
        }
        self.buffer = page.rows.iter().map(event_view).collect();
        Ok(true)
    }
}
