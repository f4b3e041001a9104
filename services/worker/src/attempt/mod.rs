//! One job attempt in its own process, supervised by the worker.
//!
//! A training run that crashes — out of memory, a panic in a kernel, the
//! kernel's OOM killer — takes only its own process down: the worker and
//! the other jobs it runs go on, and only that job is charged an attempt.
//! The child (`tenfold attempt --spec FILE`) runs the family's engine and
//! speaks JSON lines on stdout ([`ChildMessage`]); the worker answers on the
//! child's stdin (`stored` after a checkpoint is in blob storage, `stop` to
//! cancel). Where the OS offers it the child limits its own address space
//! to the job's memory (RLIMIT_AS), so a job that needs more than it was
//! estimated fails alone with OUT_OF_MEMORY. When the worker dies, the
//! child's stdin closes and it stops at its next step.

mod child;
mod parent;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenfold_domain::{FailureCode, Family, Hyperparameters, JobKind};
use tenfold_ml::train::{EpochRecord, StepProgress};

pub use child::child_main;
pub(crate) use child::run_spec;
pub(crate) use parent::run_in_process;

/// Everything the child needs, written by the worker into the attempt's
/// work folder. Paths are local files the worker already downloaded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptSpec {
    pub family: Family,
    pub kind: JobKind,
    pub data: PathBuf,
    pub out: PathBuf,
    /// EVALUATE: the model directory to evaluate.
    pub model: Option<PathBuf>,
    pub architecture: Option<String>,
    pub hyperparameters: Hyperparameters,
    pub base: Option<PathBuf>,
    pub teacher: Option<PathBuf>,
    pub device: String,
    pub checkpoint_dir: PathBuf,
    pub resume: bool,
    /// The address space the child allows itself, in MiB (none: no limit).
    pub memory_limit_mb: Option<u64>,
}

/// What the child says, one JSON object per line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChildMessage {
    Step(StepProgress),
    Epoch(EpochRecord),
    /// A checkpoint folder is complete; the child waits for `stored`.
    Checkpoint {
        epoch: usize,
        dir: PathBuf,
    },
    Trained {
        architecture: String,
        classes: Vec<String>,
        summary: Value,
        text: String,
    },
    Evaluated {
        summary: Value,
        report: Value,
    },
    Failed {
        code: FailureCode,
        message: String,
        permanent: bool,
    },
}

/// The worker's answers on the child's stdin.
pub(crate) const STORED: &str = "stored";
pub(crate) const STOP: &str = "stop";
