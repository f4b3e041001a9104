//! Jobs: submission with pre-flight checks, the queue's state machine as
//! the workers drive it (claims, fenced progress, retries, cancellation),
//! job events live and stored, and the usage a job meters.
//!
//! The job row is the truth. A `job_dispatch` row written in the same
//! transaction is the outbox: the relay (in every worker) hands due jobs to
//! the broker fairly, and a worker claims a job by bumping its attempt, the
//! fencing token every later write must carry.

mod notify;
mod read;
mod submit;
mod validation;
mod views;
pub(crate) mod worker_api;

pub use submit::SubmitJobInput;
pub use validation::VALIDATION_MEMORY_MB;
pub use views::{CheckpointView, JobEventView, JobView, UsageView};
pub use worker_api::{Claimed, FailOutcome, Held, LeasedJob, backoff};

use tenfold_domain::OrgId;

/// The bus topic of one job's events (payload: the event's sequence number).
pub(crate) fn job_topic(org: OrgId, job: uuid::Uuid) -> String {
    format!("org:{org}:job:{job}")
}

/// The bus topic that wakes relays: a job became due (payload: its device).
pub const WAKE_TOPIC: &str = "jobs:wake";

/// The bus topic of cancellation requests (payload: the job id), so a
/// worker stops within a step instead of at its next heartbeat.
pub const CANCEL_TOPIC: &str = "jobs:cancel";
