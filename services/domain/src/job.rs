//! Jobs as the product sees them: what a job does and where it is in its
//! life. Hyperparameters belong to each family (`hyperparameters.rs`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DomainError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobKind {
    /// Train a model on a dataset: from scratch, or from a base model.
    FineTune,
    /// Train a small student model from a teacher model's outputs.
    Distill,
    /// Evaluate an existing model on a dataset's held-out split.
    Evaluate,
    /// Check an uploaded dataset version (started by the upload, never
    /// submitted). Runs on the workers' validation pool, is retried and
    /// fenced like any job, and is never billed.
    Validate,
}

/// The pool (the `device` of a job row) where validation jobs run: its own
/// queue and slots, so an upload is never checked behind hours of training.
pub const VALIDATION_POOL: &str = "validation";

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::FineTune => "FINE_TUNE",
            JobKind::Distill => "DISTILL",
            JobKind::Evaluate => "EVALUATE",
            JobKind::Validate => "VALIDATE",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        match raw {
            "FINE_TUNE" => Ok(JobKind::FineTune),
            "DISTILL" => Ok(JobKind::Distill),
            "EVALUATE" => Ok(JobKind::Evaluate),
            "VALIDATE" => Ok(JobKind::Validate),
            _ => Err(DomainError::invalid("kind", format!("unknown job kind {raw:?}; use FINE_TUNE, DISTILL, EVALUATE or VALIDATE"))),
        }
    }
}

impl JobKind {
    /// Work a user submits (and is billed for), as opposed to the
    /// platform's own checks of their uploads.
    pub fn is_training(self) -> bool {
        !matches!(self, JobKind::Validate)
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `QUEUED → RUNNING → SUCCEEDED | FAILED | CANCELLED`; a RUNNING job whose
/// worker stopped goes back to QUEUED (retry) or on to FAILED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "QUEUED",
            JobStatus::Running => "RUNNING",
            JobStatus::Succeeded => "SUCCEEDED",
            JobStatus::Failed => "FAILED",
            JobStatus::Cancelled => "CANCELLED",
        }
    }

    pub const ALL: [JobStatus; 5] = [JobStatus::Queued, JobStatus::Running, JobStatus::Succeeded, JobStatus::Failed, JobStatus::Cancelled];

    /// A stored or given status; anything else is an error, never a default.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw).ok_or_else(|| {
            DomainError::invalid("status", format!("unknown job status {raw:?}; use QUEUED, RUNNING, SUCCEEDED, FAILED or CANCELLED"))
        })
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_know_when_they_are_final() {
        for s in [JobStatus::Queued, JobStatus::Running, JobStatus::Succeeded, JobStatus::Failed, JobStatus::Cancelled] {
            assert_eq!(JobStatus::parse(s.as_str()).unwrap(), s);
        }
        assert!(!JobStatus::Running.is_terminal());
        assert!(JobStatus::Cancelled.is_terminal());
        assert_eq!(JobKind::parse("DISTILL").unwrap(), JobKind::Distill);
        assert!(JobKind::parse("TRAIN").is_err());
        assert!(JobStatus::parse("PENDING").is_err());
    }
}
