//! What every architecture of every family provides to the engine.

use candle_core::{Result, Tensor};

pub trait Model: Send + Sync {
    /// Logits for a batch. `train` selects batch statistics (and updates
    /// running ones) in batch-norm layers; evaluation is deterministic.
    fn forward(&self, xs: &Tensor, train: bool) -> Result<Tensor>;
}
