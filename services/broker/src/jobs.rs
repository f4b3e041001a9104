//! Job dispatch: a stream of "this job is yours to claim" wake-ups with
//! at-least-once delivery. The database row stays the truth: an entry only
//! tells a worker which job to claim, and the claim (fenced by the job's
//! attempt) decides. An entry read but not acknowledged stays pending on
//! its consumer; a worker that dies leaves its entries to be reclaimed by
//! another after `min_idle`; an entry that keeps failing goes to the
//! dead-letter stream with its reason.

use std::time::Duration;

use async_trait::async_trait;
use tenfold_domain::{JobId, OrgId};

use crate::Result;

/// What a dispatch entry carries: ids only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobMessage {
    pub org: OrgId,
    pub job: JobId,
}

impl JobMessage {
    pub fn fields(&self) -> [(&'static str, String); 2] {
        [("org", self.org.to_string()), ("job", self.job.to_string())]
    }

    /// Parses an entry's fields; `Err` names what is wrong (such an entry
    /// is dead-lettered at once: retrying cannot fix it).
    pub fn parse(org: Option<&str>, job: Option<&str>) -> Result<Self, String> {
        let org = org.ok_or("the entry has no org field")?.parse().map_err(|_| "the org field is not a UUID".to_owned())?;
        let job = job.ok_or("the entry has no job field")?.parse().map_err(|_| "the job field is not a UUID".to_owned())?;
        Ok(Self { org, job })
    }
}

/// One entry handed to a consumer.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub message: Result<JobMessage, String>,
    /// How many times the entry has been delivered, this time included.
    pub deliveries: u64,
}

/// An entry in the dead-letter stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub id: String,
    pub org: Option<String>,
    pub job: Option<String>,
    pub reason: String,
    pub deliveries: u64,
}

#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    /// Appends an entry for the workers of `device`.
    async fn publish(&self, device: &str, message: JobMessage) -> Result<String>;
    /// Up to `count` entries never delivered before, waiting up to `block`.
    async fn read(&self, device: &str, consumer: &str, count: usize, block: Duration) -> Result<Vec<Delivery>>;
    /// Entries pending on any consumer for longer than `min_idle` (their
    /// worker died), now `consumer`'s, with their delivery count bumped.
    async fn reclaim(&self, device: &str, consumer: &str, min_idle: Duration, count: usize) -> Result<Vec<Delivery>>;
    /// `consumer` still works on `id`: reset its idle time, so that a long
    /// job is never reclaimed while its worker is alive.
    async fn touch(&self, device: &str, consumer: &str, id: &str) -> Result<()>;
    /// Done with `id` (finished, or not claimable): remove it.
    async fn ack(&self, device: &str, id: &str) -> Result<()>;
    /// Moves `delivery` to the dead-letter stream with `reason`, and acks it.
    async fn dead_letter(&self, device: &str, delivery: &Delivery, reason: &str) -> Result<()>;
    async fn dead_letters(&self, device: &str, count: usize) -> Result<Vec<DeadLetter>>;
    /// Entries delivered and not yet acknowledged.
    async fn pending(&self, device: &str) -> Result<u64>;
}
