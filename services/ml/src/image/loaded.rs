//! An image model read back from its directory, checked against its card.

use std::path::Path;

use candle_core::{Device, Tensor};

use super::arch;
use super::data::Preprocess;
use crate::artifact::{self, ModelCard};
use crate::params::{Params, Part, load_tensors};
use crate::{MlError, Model, Result};

/// More classes than any image dataset we accept can have.
const MAX_CLASSES: usize = 10_000;

pub struct LoadedModel {
    pub card: ModelCard,
    pub preprocess: Preprocess,
    pub params: Params,
    pub model: Box<dyn Model>,
}

impl LoadedModel {
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let card = artifact::read_card(dir)?;
        artifact::expect_family(dir, &card, "image")?;
        arch::check_architecture(&card.architecture)
            .map_err(|e| MlError::InvalidModel { path: dir.into(), reason: format!("model.json names {e}") })?;
        let preprocess: Preprocess = serde_json::from_value(card.preprocessing.clone())
            .map_err(|e| MlError::InvalidModel { path: dir.into(), reason: format!("model.json's preprocessing is incomplete ({e})") })?;
        // A card can claim any size; building the network allocates for it.
        if !matches!(preprocess.channels, 1 | 3) || !(8..=512).contains(&preprocess.height) || !(8..=512).contains(&preprocess.width) {
            return Err(MlError::InvalidModel {
                path: dir.into(),
                reason: format!(
                    "model.json's input is {}×{}×{}; image models take 1 or 3 channels of 8 to 512 pixels a side",
                    preprocess.channels, preprocess.height, preprocess.width
                ),
            });
        }
        if card.classes.len() > MAX_CLASSES {
            return Err(MlError::InvalidModel { path: dir.into(), reason: format!("model.json lists more than {MAX_CLASSES} classes") });
        }
        if preprocess.mean.len() != preprocess.channels
            || preprocess.std.len() != preprocess.channels
            || preprocess.std.iter().any(|s| *s <= 0.0)
        {
            return Err(MlError::InvalidModel {
                path: dir.into(),
                reason: "model.json's normalisation does not match its channels".into(),
            });
        }
        let mut params = Params::new(0, device);
        let model = arch::build(&card.architecture, preprocess.shape(), card.classes.len(), &mut params)?;
        let weights = load_tensors(&dir.join(artifact::WEIGHTS), device)?;
        params.assign(&weights, &[Part::Backbone, Part::Head]).map_err(|e| MlError::InvalidModel {
            path: dir.into(),
            reason: format!("model.safetensors does not fit the {} described in model.json: {e}", card.architecture),
        })?;
        Ok(Self { card, preprocess, params, model })
    }

    /// Class probabilities for a normalised batch (evaluation mode).
    pub fn probabilities(&self, xs: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::softmax_last_dim(&self.model.forward(xs, false)?)?)
    }
}
