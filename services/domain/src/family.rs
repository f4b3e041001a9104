//! Model families: the one `Family` enum every layer uses, and the planning
//! half of a family (its architectures, hyperparameter schema and estimate)
//! that submission pre-flight needs without loading the ML engine.
//!
//! The engine half (`train`, `evaluate`, `load_for_serving`) extends
//! [`FamilyPlan`] in `tenfold_ml::family`; a family is registered there once
//! and the API process receives the plans as a [`Catalog`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::hyperparameters::{Hyperparameters, ParamSpec};
use crate::report::ModelReport;
use crate::{DomainError, JobKind};

/// The kinds of model Tenfold trains; datasets, jobs and model versions
/// each belong to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Family {
    ImageClassification,
    Chat,
    Recommendation,
}

impl Family {
    pub const ALL: [Family; 3] = [Family::ImageClassification, Family::Chat, Family::Recommendation];

    pub fn as_str(self) -> &'static str {
        match self {
            Family::ImageClassification => "IMAGE_CLASSIFICATION",
            Family::Chat => "CHAT",
            Family::Recommendation => "RECOMMENDATION",
        }
    }

    /// The short name of the command line (`--family image`) and of model
    /// cards (`model.json`).
    pub fn short_name(self) -> &'static str {
        match self {
            Family::ImageClassification => "image",
            Family::Chat => "chat",
            Family::Recommendation => "recommendation",
        }
    }

    pub fn from_short_name(name: &str) -> Result<Self, DomainError> {
        Family::ALL
            .into_iter()
            .find(|f| f.short_name() == name)
            .ok_or_else(|| DomainError::invalid("family", format!("unknown family {name:?}; use image, chat or recommendation")))
    }

    /// File name endings the family's datasets accept, for messages.
    pub fn accepted_files(self) -> &'static str {
        match self {
            Family::ImageClassification => ".zip (ImageFolder: class/file.png)",
            Family::Chat => ".jsonl (chat messages, or text/intent/response objects) or .csv (text,intent[,response])",
            Family::Recommendation => ".csv or .tsv (user_id,item_id[,rating][,timestamp])",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Family {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Family::ALL.into_iter().find(|f| f.as_str() == s).ok_or_else(|| {
            DomainError::invalid("family", format!("unknown family {s:?}; use IMAGE_CLASSIFICATION, CHAT or RECOMMENDATION"))
        })
    }
}

/// One architecture a family builds, as users choose it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Architecture {
    pub name: &'static str,
    pub description: &'static str,
    /// Training samples per second on one CPU worker (2 cores) at the
    /// family's reference input size, from docs/benchmarks.md; estimates use
    /// it until the organization has finished jobs of its own to learn from.
    pub cpu_samples_per_s: f64,
    /// Parameters at the reference input size (for the memory estimate).
    pub parameters: u64,
    /// Activation floats kept per sample for the backward pass at the
    /// reference input size (for the memory estimate).
    pub activations_per_sample: u64,
    /// Usable as a distillation student.
    pub student: bool,
}

/// What the family is told about a dataset version before a job runs: the
/// statistics validation stored with it.
#[derive(Debug, Clone, Default)]
pub struct DataStats {
    /// The dataset file's size.
    pub bytes: u64,
    /// The validator's family-specific statistics.
    pub raw: serde_json::Value,
}

/// What a job will cost: compute time and the memory its process needs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    pub seconds: i64,
    pub memory_mb: i32,
}

/// A job as the family sees it at submission, checked and defaults filled.
#[derive(Debug, Clone)]
pub struct JobShape<'a> {
    pub kind: JobKind,
    pub architecture: &'a str,
    pub hyperparameters: &'a Hyperparameters,
    /// `cpu` or `cuda`.
    pub device: &'a str,
}

/// The planning half of a model family: everything submission pre-flight,
/// the GraphQL schema and the CLI need to know without the engine.
pub trait FamilyPlan: Send + Sync + 'static {
    fn family(&self) -> Family;

    /// The architectures a job may name; the first is the default.
    fn architectures(&self) -> &[Architecture];

    /// Every hyperparameter with its type, range and default. Ranges and
    /// defaults live here and nowhere else.
    fn hyperparameters(&self) -> &[ParamSpec];

    /// The job kinds this family runs.
    fn kinds(&self) -> &[JobKind] {
        &[JobKind::FineTune, JobKind::Distill, JobKind::Evaluate]
    }

    /// Seconds and memory of a job on this data.
    fn estimate(&self, data: &DataStats, job: &JobShape<'_>) -> Estimate;

    /// The named architecture, or an error listing the ones there are.
    fn architecture(&self, name: &str) -> Result<&Architecture, DomainError> {
        self.architectures().iter().find(|a| a.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.architectures().iter().map(|a| a.name).collect();
            DomainError::invalid(
                "architecture",
                format!("unknown architecture {name:?} for {}; choose one of {}", self.family(), known.join(", ")),
            )
        })
    }

    /// Checks the user's hyperparameters against the schema and fills in
    /// the defaults; every problem is named with what to give instead.
    fn normalise(&self, given: &serde_json::Map<String, serde_json::Value>) -> Result<Hyperparameters, Vec<DomainError>> {
        Hyperparameters::normalise(self.family(), self.hyperparameters(), given)
    }

    /// Whether fine-tuning must start from a pretrained base model (there
    /// is no training from scratch: a chat encoder needs pretraining).
    fn needs_base(&self) -> bool {
        false
    }

    /// Whether this build can load the family's models for serving
    /// (deployments of a family that cannot are refused up front).
    fn serves(&self) -> bool {
        false
    }

    /// The headline metrics its reports carry (names promotion rules may use).
    fn report_metrics(&self) -> &[&'static str] {
        &[]
    }

    /// Checks a model directory made elsewhere (an import) as thoroughly as
    /// loading it would: the card, the architecture, every tensor and its
    /// shape. The engine's families implement it (the API process holds
    /// them as plans); it reads files, so call it off the async threads.
    fn check_artifact(&self, dir: &std::path::Path) -> Result<ArtifactInfo, DomainError> {
        let _ = dir;
        Err(DomainError::invalid("family", format!("{} models cannot be imported yet", self.family())))
    }

    /// Reads the family's own `report.json` into the family-neutral report
    /// (reading JSON needs no engine, so the API process can do it).
    /// `size_bytes` is the stored artifact's size.
    fn model_report(&self, report_json: &[u8], size_bytes: u64) -> Result<ModelReport, DomainError> {
        let _ = (report_json, size_bytes);
        Err(DomainError::invalid("report", format!("{} models have no report format yet", self.family())))
    }
}

/// What an artifact check found in a model directory.
#[derive(Debug, Clone, PartialEq)]
pub struct ArtifactInfo {
    pub architecture: String,
    pub classes: Vec<String>,
    pub parameters: u64,
    /// The engine that wrote it, as its card says.
    pub engine: String,
    /// The card's training section (split, seeds, configuration).
    pub training: serde_json::Value,
    /// The card's dataset: file name and SHA-256.
    pub dataset_sha256: Option<String>,
    /// The card's metrics, shown until a report says more.
    pub metrics: serde_json::Value,
}

/// The families the API process can plan jobs for, by family. Built from
/// the engine's registry (`tenfold_ml::family::Registry::catalog`).
#[derive(Clone, Default)]
pub struct Catalog {
    plans: BTreeMap<Family, Arc<dyn FamilyPlan>>,
}

impl Catalog {
    pub fn new(plans: impl IntoIterator<Item = Arc<dyn FamilyPlan>>) -> Self {
        Self { plans: plans.into_iter().map(|p| (p.family(), p)).collect() }
    }

    /// The family's plan, or an error saying which families train today.
    pub fn get(&self, family: Family) -> Result<&dyn FamilyPlan, DomainError> {
        self.plans.get(&family).map(|p| p.as_ref()).ok_or_else(|| {
            let trainable: Vec<&str> = self.plans.keys().map(|f| f.as_str()).collect();
            DomainError::invalid("family", format!("{family} models cannot be trained yet; this release trains {}", trainable.join(", ")))
        })
    }

    pub fn plans(&self) -> impl Iterator<Item = &dyn FamilyPlan> {
        self.plans.values().map(|p| p.as_ref())
    }
}

impl fmt::Debug for Catalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.plans.keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_round_trip_and_unknown_ones_are_errors() {
        for f in Family::ALL {
            assert_eq!(f.as_str().parse::<Family>().unwrap(), f);
        }
        let e = "IMAGE".parse::<Family>().unwrap_err();
        assert!(e.to_string().contains("IMAGE_CLASSIFICATION, CHAT or RECOMMENDATION"), "{e}");
    }
}
