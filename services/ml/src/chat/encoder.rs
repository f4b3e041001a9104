//! Our training copy of a BERT encoder, over [`Params`] named exactly as the
//! Hugging Face checkpoint names its tensors.
//!
//! Why not candle-transformers' `BertModel` for training: its LayerNorm is
//! candle-nn's fused kernel, which records no backward pass, so no gradient
//! reaches any encoder weight and only a head on top learns (silently: the
//! loss still falls). Here LayerNorm is built from differentiable ops, and
//! dropout (a TODO in candle's BERT) is applied in training from the run's
//! seeded stream, so a run is reproducible. Answering uses the stock model
//! (`model::Answerer`), which is faster; `tests.rs` checks both give the
//! same hidden states on the real all-MiniLM-L6-v2.

use std::collections::BTreeMap;

use candle_core::{D, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::base::BertConfig;
use super::text::Batch;
use crate::kernels;
use crate::params::{Params, Part, Role};
use crate::{MlError, Result};

/// The tensor names of layer `i` that the encoder reads.
pub fn layer_names(i: usize) -> Vec<String> {
    let p = format!("encoder.layer.{i}");
    let mut names = vec![];
    for dense in [
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
        "attention.output.dense",
        "intermediate.dense",
        "output.dense",
    ] {
        names.push(format!("{p}.{dense}.weight"));
        names.push(format!("{p}.{dense}.bias"));
    }
    for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
        names.push(format!("{p}.{norm}.weight"));
        names.push(format!("{p}.{norm}.bias"));
    }
    names
}

pub const EMBEDDING_NAMES: [&str; 5] = [
    "embeddings.word_embeddings.weight",
    "embeddings.position_embeddings.weight",
    "embeddings.token_type_embeddings.weight",
    "embeddings.LayerNorm.weight",
    "embeddings.LayerNorm.bias",
];

/// Every tensor name of an encoder with `layers` layers.
pub fn encoder_names(layers: usize) -> Vec<String> {
    EMBEDDING_NAMES.iter().map(|s| (*s).to_owned()).chain((0..layers).flat_map(layer_names)).collect()
}

struct Dense {
    weight: Tensor,
    bias: Tensor,
}

impl Dense {
    /// x (…, in) → (…, out), through the fused CPU kernel on a matrix view.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let dims = x.dims().to_vec();
        let inputs = dims[dims.len() - 1];
        let rows = x.elem_count() / inputs.max(1);
        let y = kernels::dense(&x.reshape((rows, inputs))?, &self.weight, &self.bias, false)?;
        let mut out = dims;
        let last = out.len() - 1;
        out[last] = self.weight.dim(0)?;
        y.reshape(out)
    }
}

/// LayerNorm from differentiable ops (the point of this copy).
struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        centred.broadcast_div(&(var + self.eps)?.sqrt()?)?.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)
    }
}

struct Layer {
    query: Dense,
    key: Dense,
    value: Dense,
    attention_out: Dense,
    attention_norm: LayerNorm,
    intermediate: Dense,
    output: Dense,
    output_norm: LayerNorm,
}

/// A BERT encoder whose every weight receives a gradient.
pub struct Encoder {
    config: BertConfig,
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
}

/// Inverted dropout with a mask drawn from the run's seeded stream.
pub(super) fn dropout(x: &Tensor, p: f64, rng: Option<&mut ChaCha8Rng>) -> candle_core::Result<Tensor> {
    let Some(rng) = rng else { return Ok(x.clone()) };
    if p <= 0.0 {
        return Ok(x.clone());
    }
    let keep = 1.0 - p;
    let scale = (1.0 / keep) as f32;
    let mask: Vec<f32> = (0..x.elem_count()).map(|_| if rng.random::<f64>() < keep { scale } else { 0.0 }).collect();
    x * Tensor::from_vec(mask, x.shape(), x.device())?
}

impl Encoder {
    /// Registers `weights` (encoder tensors by their checkpoint names) as
    /// trainable backbone parameters and builds the encoder over them.
    pub fn adopt(params: &mut Params, weights: &BTreeMap<String, Tensor>, config: &BertConfig) -> Result<Self> {
        for name in encoder_names(config.num_hidden_layers) {
            let value = weights.get(&name).ok_or_else(|| MlError::Incompatible(format!("the encoder weights have no tensor {name}")))?;
            params.adopt(&name, value, Role::Weight, Part::Backbone)?;
        }
        Self::over(params, config)
    }

    /// The encoder over parameters already registered.
    pub fn over(params: &Params, config: &BertConfig) -> Result<Self> {
        let get = |name: &str| {
            params.get(name).map(|p| p.var.as_tensor().clone()).ok_or_else(|| MlError::Incompatible(format!("no parameter {name}")))
        };
        let dense =
            |name: &str| -> Result<Dense> { Ok(Dense { weight: get(&format!("{name}.weight"))?, bias: get(&format!("{name}.bias"))? }) };
        let norm = |name: &str| -> Result<LayerNorm> {
            Ok(LayerNorm { weight: get(&format!("{name}.weight"))?, bias: get(&format!("{name}.bias"))?, eps: config.layer_norm_eps })
        };
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let p = format!("encoder.layer.{i}");
                Ok(Layer {
                    query: dense(&format!("{p}.attention.self.query"))?,
                    key: dense(&format!("{p}.attention.self.key"))?,
                    value: dense(&format!("{p}.attention.self.value"))?,
                    attention_out: dense(&format!("{p}.attention.output.dense"))?,
                    attention_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                    intermediate: dense(&format!("{p}.intermediate.dense"))?,
                    output: dense(&format!("{p}.output.dense"))?,
                    output_norm: norm(&format!("{p}.output.LayerNorm"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            config: config.clone(),
            word: get("embeddings.word_embeddings.weight")?,
            position: get("embeddings.position_embeddings.weight")?,
            token_type: get("embeddings.token_type_embeddings.weight")?,
            embedding_norm: norm("embeddings.LayerNorm")?,
            layers,
        })
    }

    /// Hidden states (batch, tokens, hidden). With `rng`, training mode:
    /// dropout on embeddings, attention probabilities and layer outputs.
    pub fn forward(&self, batch: &Batch, mut rng: Option<&mut ChaCha8Rng>) -> Result<Tensor> {
        let (b, t) = batch.ids.dims2()?;
        let c = &self.config;
        if t > c.max_position_embeddings {
            return Err(MlError::arg("text", format!("{t} tokens is more than the model's {} positions", c.max_position_embeddings)));
        }
        let h = c.hidden_size;
        let words = self.word.index_select(&batch.ids.flatten_all()?, 0)?.reshape((b, t, h))?;
        let types = self.token_type.index_select(&batch.type_ids.flatten_all()?, 0)?.reshape((b, t, h))?;
        let positions = self.position.narrow(0, 0, t)?.unsqueeze(0)?;
        let x = words.add(&types)?.broadcast_add(&positions)?;
        let x = self.embedding_norm.forward(&x)?;
        let p = c.hidden_dropout_prob;
        let mut x = dropout(&x, p, rng.as_deref_mut())?;
        // (b, 1, 1, t): 0 where a token is real, a large negative where padding.
        let additive = ((batch.mask.ones_like()? - &batch.mask)? * -10_000.0)?.reshape((b, 1, 1, t))?;
        let heads = c.num_attention_heads;
        let d = h / heads;
        let split = |y: Tensor| y.reshape((b, t, heads, d))?.transpose(1, 2)?.contiguous();
        for layer in &self.layers {
            let q = split(layer.query.forward(&x)?)?;
            let k = split(layer.key.forward(&x)?)?;
            let v = split(layer.value.forward(&x)?)?;
            let scores = (q.matmul(&k.t()?.contiguous()?)? / (d as f64).sqrt())?.broadcast_add(&additive)?;
            let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
            let probs = dropout(&probs, c.attention_probs_dropout_prob, rng.as_deref_mut())?;
            let context = probs.matmul(&v)?.transpose(1, 2)?.contiguous()?.reshape((b, t, h))?;
            let attended = dropout(&layer.attention_out.forward(&context)?, p, rng.as_deref_mut())?;
            let x1 = layer.attention_norm.forward(&(attended + &x)?)?;
            let inner = c.activation(&layer.intermediate.forward(&x1)?)?;
            let out = dropout(&layer.output.forward(&inner)?, p, rng.as_deref_mut())?;
            x = layer.output_norm.forward(&(out + &x1)?)?;
        }
        Ok(x)
    }
}

/// Mean of the real tokens' hidden states (sentence-transformers' pooling).
pub fn mean_pool(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let mask = mask.to_dtype(hidden.dtype())?.unsqueeze(2)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    let counts = mask.sum(1)?.clamp(1.0, f64::MAX)?;
    Ok(summed.broadcast_div(&counts)?)
}

/// Rows scaled to unit length (cosine similarity becomes a dot product).
pub fn normalise(x: &Tensor) -> Result<Tensor> {
    let norm = x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    Ok(x.broadcast_div(&norm)?)
}
