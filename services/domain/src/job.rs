//! Jobs as the product sees them: what a job does, where it is in its life,
//! and the hyperparameters a user may set, each with its range.

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
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::FineTune => "FINE_TUNE",
            JobKind::Distill => "DISTILL",
            JobKind::Evaluate => "EVALUATE",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        match raw {
            "FINE_TUNE" => Ok(JobKind::FineTune),
            "DISTILL" => Ok(JobKind::Distill),
            "EVALUATE" => Ok(JobKind::Evaluate),
            _ => Err(DomainError::invalid("kind", format!("unknown job kind {raw:?}; use FINE_TUNE, DISTILL or EVALUATE"))),
        }
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

    pub fn parse(raw: &str) -> Option<Self> {
        [JobStatus::Queued, JobStatus::Running, JobStatus::Succeeded, JobStatus::Failed, JobStatus::Cancelled]
            .into_iter()
            .find(|s| s.as_str() == raw)
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

/// The image architectures the engine builds (`tenfold_ml::image::arch`;
/// a worker test checks the two lists agree).
pub const IMAGE_ARCHITECTURES: [&str; 3] = ["cnn-small", "resnet-s", "cnn-tiny"];

/// Training throughput of each architecture on one CPU worker (2 cores) at
/// 28×28 grayscale, samples per second, from docs/benchmarks.md. Used for
/// estimates until the organization has finished jobs of its own to learn from.
pub fn reference_throughput(architecture: &str, device: &str) -> f64 {
    let cpu = match architecture {
        "cnn-small" => 4_400.0,
        "resnet-s" => 900.0,
        "cnn-tiny" => 12_000.0,
        _ => 1_000.0,
    };
    // A GPU is far faster on these small networks; 10× is a conservative guess
    // until GPU jobs have been measured.
    if device.starts_with("cuda") { cpu * 10.0 } else { cpu }
}

/// Hyperparameters of a training job, with their defaults. The same names
/// as the GraphQL input (camelCase), and the ranges the engine accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Hyperparameters {
    pub epochs: u32,
    pub batch_size: u32,
    pub learning_rate: f64,
    /// `adamw` or `sgd`.
    pub optimizer: String,
    /// `constant`, `cosine` or `step`.
    pub schedule: String,
    pub warmup_steps: u32,
    pub clip_grad_norm: Option<f64>,
    /// Stop after this many epochs without improvement.
    pub patience: Option<u32>,
    /// Train/validation/test percentages, e.g. `80/10/10`.
    pub split: String,
    /// `none`, `crop`, `flip` or `crop,flip`.
    pub augment: String,
    pub image_size: Option<u32>,
    pub seed: u64,
    pub freeze_backbone: bool,
    /// Distillation: weight of the label loss (the rest is the teacher's).
    pub alpha: f64,
    /// Distillation: softmax temperature.
    pub temperature: f64,
}

impl Default for Hyperparameters {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 64,
            learning_rate: 0.001,
            optimizer: "adamw".into(),
            schedule: "constant".into(),
            warmup_steps: 0,
            clip_grad_norm: None,
            patience: None,
            split: "80/10/10".into(),
            augment: "none".into(),
            image_size: None,
            seed: 42,
            freeze_backbone: false,
            alpha: 0.5,
            temperature: 4.0,
        }
    }
}

/// The percentages of a `train/val/test` split.
pub fn parse_split(raw: &str) -> Result<[u32; 3], String> {
    let parts: Vec<&str> = raw.split('/').map(str::trim).collect();
    let numbers: Option<Vec<u32>> = parts.iter().map(|p| p.parse().ok()).collect();
    match numbers.as_deref() {
        Some([train, val, test]) if train + val + test == 100 && *train > 0 => Ok([*train, *val, *test]),
        _ => Err(format!("{raw:?} is not a split; give train/validation/test percentages that add up to 100, e.g. 80/10/10")),
    }
}

impl Hyperparameters {
    /// Every value out of range, each named with what to give instead.
    pub fn problems(&self) -> Vec<DomainError> {
        let mut out = Vec::new();
        let mut bad = |field: &'static str, message: String| out.push(DomainError::invalid(field, message));
        if !(1..=1000).contains(&self.epochs) {
            bad("hyperparameters.epochs", format!("{} is out of range; use 1 to 1000", self.epochs));
        }
        if !(1..=4096).contains(&self.batch_size) {
            bad("hyperparameters.batchSize", format!("{} is out of range; use 1 to 4096", self.batch_size));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            bad(
                "hyperparameters.learningRate",
                format!("{} is out of range; use a number above 0 and at most 1, e.g. 0.001", self.learning_rate),
            );
        }
        if !matches!(self.optimizer.as_str(), "adamw" | "sgd") {
            bad("hyperparameters.optimizer", format!("{:?} is not an optimizer; use adamw or sgd", self.optimizer));
        }
        if !matches!(self.schedule.as_str(), "constant" | "cosine" | "step") {
            bad("hyperparameters.schedule", format!("{:?} is not a schedule; use constant, cosine or step", self.schedule));
        }
        if self.warmup_steps > 100_000 {
            bad("hyperparameters.warmupSteps", format!("{} is out of range; use 0 to 100000", self.warmup_steps));
        }
        if let Some(c) = self.clip_grad_norm
            && !(c.is_finite() && c > 0.0)
        {
            bad("hyperparameters.clipGradNorm", format!("{c} is not a positive number; give e.g. 1.0, or leave it out"));
        }
        if let Some(p) = self.patience
            && p > 1000
        {
            bad("hyperparameters.patience", format!("{p} is out of range; use 0 to 1000"));
        }
        if let Err(message) = parse_split(&self.split) {
            bad("hyperparameters.split", message);
        }
        let augment_ok = self.augment.split(',').map(str::trim).all(|a| matches!(a, "none" | "crop" | "flip"));
        if !augment_ok {
            bad("hyperparameters.augment", format!("{:?} is not an augmentation; use none, crop, flip or crop,flip", self.augment));
        }
        if let Some(s) = self.image_size
            && !(8..=256).contains(&s)
        {
            bad("hyperparameters.imageSize", format!("{s} is out of range; use 8 to 256 pixels"));
        }
        if !(self.alpha.is_finite() && (0.0..=1.0).contains(&self.alpha)) {
            bad("hyperparameters.alpha", format!("{} is out of range; use 0 to 1", self.alpha));
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0 && self.temperature <= 100.0) {
            bad(
                "hyperparameters.temperature",
                format!("{} is out of range; use a number above 0 and at most 100, e.g. 4", self.temperature),
            );
        }
        out
    }

    /// The share of the data trained on, from the split.
    pub fn train_fraction(&self) -> f64 {
        parse_split(&self.split).map_or(0.8, |[train, _, _]| f64::from(train) / 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_every_bad_value_is_named() {
        assert!(Hyperparameters::default().problems().is_empty());
        let bad = Hyperparameters {
            epochs: 0,
            batch_size: 5000,
            learning_rate: f64::NAN,
            optimizer: "lion".into(),
            split: "90/20/0".into(),
            augment: "rotate".into(),
            alpha: 1.5,
            temperature: 0.0,
            ..Hyperparameters::default()
        };
        let fields: Vec<&str> = bad.problems().iter().map(DomainError::field).collect();
        assert_eq!(
            fields,
            [
                "hyperparameters.epochs",
                "hyperparameters.batchSize",
                "hyperparameters.learningRate",
                "hyperparameters.optimizer",
                "hyperparameters.split",
                "hyperparameters.augment",
                "hyperparameters.alpha",
                "hyperparameters.temperature"
            ]
        );
    }

    #[test]
    fn unknown_fields_are_refused_and_missing_ones_default() {
        let h: Hyperparameters = serde_json::from_str(r#"{"epochs": 3}"#).unwrap();
        assert_eq!(h.epochs, 3);
        assert_eq!(h.batch_size, 64);
        assert!(serde_json::from_str::<Hyperparameters>(r#"{"epoch": 3}"#).is_err());
        assert_eq!(parse_split("70/15/15"), Ok([70, 15, 15]));
        assert!(parse_split("0/50/50").is_err());
    }

    #[test]
    fn statuses_round_trip_and_know_when_they_are_final() {
        for s in [JobStatus::Queued, JobStatus::Running, JobStatus::Succeeded, JobStatus::Failed, JobStatus::Cancelled] {
            assert_eq!(JobStatus::parse(s.as_str()), Some(s));
        }
        assert!(!JobStatus::Running.is_terminal());
        assert!(JobStatus::Cancelled.is_terminal());
        assert_eq!(JobKind::parse("DISTILL").unwrap(), JobKind::Distill);
        assert!(JobKind::parse("TRAIN").is_err());
    }
}
