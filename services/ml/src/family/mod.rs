//! The one extension point for model families.
//!
//! A family is a folder of this crate that implements [`ModelFamily`] (the
//! planning half, [`FamilyPlan`], lives in `tenfold_domain` so that the API
//! process can check and estimate jobs without the engine) and one line in
//! [`Registry::standard`]. The worker, the CLI, submission pre-flight and
//! the GraphQL schema all reach a family through the registry, so nothing
//! else changes when one is added.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use candle_core::Device;
use serde_json::Value;
use tenfold_domain::{Catalog, Family, FamilyPlan, Hyperparameters, JobKind};

use crate::train::Control;
use crate::{MlError, Result};

/// A training job as the engine receives it: hyperparameters already
/// checked against the family's schema, every file on local disk.
#[derive(Debug, Clone)]
pub struct TrainJob<'a> {
    /// `FINE_TUNE` (from scratch or from `base`) or `DISTILL` (from `teacher`).
    pub kind: JobKind,
    /// The dataset file, in the format the family's validator accepts.
    pub data: &'a Path,
    /// The model directory to write: `model.safetensors`, `model.json`, `report.json`.
    pub out: &'a Path,
    /// Required from scratch; taken from the base model when fine-tuning.
    pub architecture: Option<&'a str>,
    pub hyperparameters: &'a Hyperparameters,
    pub base: Option<&'a Path>,
    pub teacher: Option<&'a Path>,
    pub device: &'a Device,
}

/// What a finished training run produced, family-neutral: the whole report
/// is `out/report.json`; `summary` is what the model version shows.
#[derive(Debug, Clone)]
pub struct Trained {
    pub architecture: String,
    /// Output classes (labels, intents, items), when the model has them.
    pub classes: Vec<String>,
    /// The headline metrics, stored on the model version.
    pub summary: Value,
    /// A few lines for a person (the CLI prints them).
    pub text: String,
}

/// An evaluation of a model directory on a dataset.
#[derive(Debug, Clone)]
pub struct Evaluated {
    pub summary: Value,
    /// The whole evaluation (the CLI prints it as JSON).
    pub report: Value,
}

/// A model loaded for answering requests, on its own thread.
pub trait Served: Send {
    /// Answers one batch; each input and output is the family's request
    /// and response value (the serving protocol maps onto them).
    fn predict(&self, inputs: &[ServeInput]) -> Result<Vec<Value>>;
}

/// One request's input to a served model.
#[derive(Debug, Clone)]
pub enum ServeInput {
    /// An encoded file (an image); `name` says which one in messages.
    Bytes { name: String, bytes: Vec<u8> },
    /// A decoded image as channels × height × width values scaled to
    /// [0, 1] (the model's own normalisation is applied by the family).
    Pixels { name: String, shape: [usize; 3], values: Vec<f32> },
    /// Structured input (a conversation, a user id).
    Json(Value),
}

/// The engine half of a model family.
pub trait ModelFamily: FamilyPlan {
    /// Trains (from scratch, from a base model, or by distillation) and
    /// writes the model directory.
    fn train(&self, job: &TrainJob<'_>, control: Control<'_>) -> Result<Trained>;

    /// Evaluates a model directory on a dataset file (its held-out split
    /// when it is the file the model was trained on).
    fn evaluate(&self, model: &Path, data: &Path, device: &Device) -> Result<Evaluated>;

    /// Loads a model directory for serving. Families that do not serve yet
    /// keep the default.
    fn load_for_serving(&self, _model: &Path, _device: &Device) -> Result<Box<dyn Served>> {
        Err(MlError::Unsupported(format!("serving {} models", self.family())))
    }
}

/// The families this build runs, by family.
#[derive(Clone, Default)]
pub struct Registry {
    families: BTreeMap<Family, Arc<dyn ModelFamily>>,
}

impl Registry {
    /// Every family Tenfold ships. Adding one is one line here.
    pub fn standard() -> Self {
        Self::default()
            .with(Arc::new(crate::image::ImageFamily::new()))
            .with(Arc::new(crate::chat::ChatFamily::new()))
            .with(Arc::new(crate::recsys::RecommendationFamily::new()))
    }

    /// Adds (or replaces) a family.
    pub fn with(mut self, family: Arc<dyn ModelFamily>) -> Self {
        self.families.insert(family.family(), family);
        self
    }

    pub fn get(&self, family: Family) -> Result<&dyn ModelFamily> {
        match self.families.get(&family) {
            Some(f) => Ok(f.as_ref()),
            None => Err(MlError::Unsupported(format!("training {family} models"))),
        }
    }

    /// The planning halves, for the API process.
    pub fn catalog(&self) -> Catalog {
        Catalog::new(self.families.values().map(|f| f.clone() as Arc<dyn FamilyPlan>))
    }
}
