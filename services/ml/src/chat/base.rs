//! Hugging Face BERT-family folders (`config.json`, `model.safetensors`,
//! `tokenizer.json`): the pretrained bases of the chat family, and the
//! layout of every chat model Tenfold writes (which adds `model.json`), so
//! a trained model also loads in `transformers`.
//!
//! Everything is checked before training starts, with what to fix: a
//! missing file, an architecture other than BERT, weights that do not fit
//! the config, a tokenizer from another model.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::encoder::{EMBEDDING_NAMES, encoder_names};
use super::text::TextEncoder;
use crate::params::load_tensors;
use crate::{MlError, Result};

pub const CONFIG: &str = "config.json";
pub const TOKENIZER: &str = "tokenizer.json";
pub const WEIGHTS: &str = "model.safetensors";
const FOLDER: &str = "a BERT model folder holds config.json, model.safetensors and tokenizer.json (save_pretrained writes them)";

/// The part of a BERT `config.json` the encoder reads, with its names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    #[serde(default = "bert")]
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: String,
    #[serde(default = "dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "dropout")]
    pub attention_probs_dropout_prob: f64,
    pub max_position_embeddings: usize,
    #[serde(default = "two")]
    pub type_vocab_size: usize,
    #[serde(default = "eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: usize,
    #[serde(default = "init")]
    pub initializer_range: f64,
    #[serde(default = "architectures")]
    pub architectures: Vec<String>,
}

fn bert() -> String {
    "bert".into()
}
fn dropout() -> f64 {
    0.1
}
fn two() -> usize {
    2
}
fn eps() -> f64 {
    1e-12
}
fn init() -> f64 {
    0.02
}
fn architectures() -> Vec<String> {
    vec!["BertModel".into()]
}

impl BertConfig {
    pub fn activation(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self.hidden_act.as_str() {
            "gelu_new" | "gelu_pytorch_tanh" => x.gelu(),
            "relu" => x.relu(),
            _ => x.gelu_erf(),
        }
    }

    /// The same model for candle-transformers' stock BERT.
    pub fn stock(&self) -> candle_transformers::models::bert::Config {
        use candle_transformers::models::bert::{Config, HiddenAct};
        Config {
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            intermediate_size: self.intermediate_size,
            hidden_act: match self.hidden_act.as_str() {
                "gelu_new" | "gelu_pytorch_tanh" => HiddenAct::GeluApproximate,
                "relu" => HiddenAct::Relu,
                _ => HiddenAct::Gelu,
            },
            hidden_dropout_prob: self.hidden_dropout_prob,
            max_position_embeddings: self.max_position_embeddings,
            type_vocab_size: self.type_vocab_size,
            initializer_range: self.initializer_range,
            layer_norm_eps: self.layer_norm_eps,
            pad_token_id: self.pad_token_id,
            model_type: Some("bert".into()),
            ..Config::default()
        }
    }

    /// A smaller student: the first `layers` layers kept (initialised from
    /// the teacher's evenly spaced layers by the caller).
    pub fn with_layers(&self, layers: usize) -> Self {
        Self { num_hidden_layers: layers, ..self.clone() }
    }

    /// Parameters of the encoder (what a report calls its size).
    pub fn parameters(&self) -> usize {
        let (h, i) = (self.hidden_size, self.intermediate_size);
        let embeddings = (self.vocab_size + self.max_position_embeddings + self.type_vocab_size) * h + 2 * h;
        let layer = 4 * (h * h + h) + (h * i + i) + (i * h + h) + 4 * h;
        embeddings + self.num_hidden_layers * layer
    }

    fn check(&self, dir: &Path) -> Result<()> {
        let bad = |reason: String| MlError::InvalidModel { path: dir.into(), reason };
        let supported = self.model_type == "bert" && self.architectures.iter().all(|a| a.starts_with("Bert"));
        if !supported {
            return Err(bad(format!(
                "config.json describes a '{}' model ({}); the chat family fine-tunes BERT-family encoders (model_type \"bert\", \
                 e.g. all-MiniLM-L6-v2 or bert-base-uncased)",
                self.model_type,
                self.architectures.join(", ")
            )));
        }
        if !matches!(self.hidden_act.as_str(), "gelu" | "gelu_new" | "gelu_pytorch_tanh" | "relu") {
            return Err(bad(format!("config.json's hidden_act '{}' is not supported; BERT encoders use gelu or relu", self.hidden_act)));
        }
        let sane = (1..=48).contains(&self.num_hidden_layers)
            && (1..=8192).contains(&self.hidden_size)
            && self.num_attention_heads > 0
            && self.hidden_size.is_multiple_of(self.num_attention_heads)
            && (1..=65_536).contains(&self.intermediate_size)
            && (1..=1_000_000).contains(&self.vocab_size)
            && (2..=8192).contains(&self.max_position_embeddings)
            && (1..=16).contains(&self.type_vocab_size)
            && (0.0..1.0).contains(&self.hidden_dropout_prob)
            && (0.0..1.0).contains(&self.attention_probs_dropout_prob);
        if !sane {
            return Err(bad(
                "config.json's sizes are out of range (1–48 layers, hidden_size divisible by num_attention_heads, dropout in [0, 1))"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// Reads and checks `config.json`.
pub fn read_config(dir: &Path) -> Result<BertConfig> {
    let bad = |reason: String| MlError::InvalidModel { path: dir.into(), reason };
    if !dir.is_dir() {
        return Err(bad(format!("it is not a folder; {FOLDER}")));
    }
    let raw = std::fs::read(dir.join(CONFIG)).map_err(|_| bad(format!("config.json is missing; {FOLDER}")))?;
    let config: BertConfig =
        serde_json::from_slice(&raw).map_err(|e| bad(format!("config.json is not a BERT configuration ({e}); {FOLDER}")))?;
    config.check(dir)?;
    Ok(config)
}

/// The shape every encoder tensor must have under `config`.
fn expected_shape(name: &str, c: &BertConfig) -> Vec<usize> {
    let (h, i) = (c.hidden_size, c.intermediate_size);
    match name {
        "embeddings.word_embeddings.weight" => vec![c.vocab_size, h],
        "embeddings.position_embeddings.weight" => vec![c.max_position_embeddings, h],
        "embeddings.token_type_embeddings.weight" => vec![c.type_vocab_size, h],
        n if n.ends_with("intermediate.dense.weight") => vec![i, h],
        n if n.ends_with("intermediate.dense.bias") => vec![i],
        n if n.ends_with(".output.dense.weight") && !n.contains("attention") => vec![h, i],
        n if n.ends_with(".weight") && !n.contains("LayerNorm") => vec![h, h],
        _ => vec![h],
    }
}

/// The encoder's tensors by their checkpoint names (a `bert.` prefix and
/// the old `gamma`/`beta` LayerNorm names are accepted), in f32, checked
/// against the config.
pub fn read_encoder(dir: &Path, config: &BertConfig, device: &Device) -> Result<BTreeMap<String, Tensor>> {
    let path = dir.join(WEIGHTS);
    if !path.is_file() {
        return Err(MlError::InvalidModel { path: dir.into(), reason: format!("model.safetensors is missing; {FOLDER}") });
    }
    let raw = load_tensors(&path, device)?;
    let mut weights = BTreeMap::new();
    for (name, tensor) in raw {
        let name = name
            .strip_prefix("bert.")
            .unwrap_or(&name)
            .replace("LayerNorm.gamma", "LayerNorm.weight")
            .replace("LayerNorm.beta", "LayerNorm.bias");
        weights.insert(name, tensor);
    }
    for name in encoder_names(config.num_hidden_layers) {
        let expected = expected_shape(&name, config);
        let Some(tensor) = weights.get_mut(&name) else {
            let hint = if EMBEDDING_NAMES.contains(&name.as_str()) {
                "it is not a BERT checkpoint"
            } else {
                "the weights have fewer layers than config.json's num_hidden_layers"
            };
            return Err(MlError::InvalidModel { path: dir.into(), reason: format!("model.safetensors has no tensor {name}: {hint}") });
        };
        if tensor.dims() != expected.as_slice() {
            return Err(MlError::InvalidModel {
                path: dir.into(),
                reason: format!(
                    "model.safetensors' {name} is {:?}, config.json says {expected:?}: the two files are from different models",
                    tensor.dims()
                ),
            });
        }
        *tensor = tensor.to_dtype(DType::F32)?;
    }
    Ok(weights)
}

/// Reads `tokenizer.json` and checks that it belongs to these weights.
pub fn read_tokenizer(dir: &Path, config: &BertConfig, max_len: usize) -> Result<TextEncoder> {
    let max_len = max_len.min(config.max_position_embeddings);
    let text = TextEncoder::load(&dir.join(TOKENIZER), max_len)?;
    let tokens = text.vocab_size();
    // Checkpoints may pad the embedding table (to a multiple of 8 or 64);
    // a tokenizer with more ids, or far fewer, is another model's.
    if tokens > config.vocab_size || config.vocab_size - tokens > 128 {
        return Err(MlError::InvalidModel {
            path: dir.into(),
            reason: format!(
                "tokenizer.json has {tokens} tokens but the weights embed {} (config.json vocab_size): the tokenizer belongs to another \
                 model; use the tokenizer saved with these weights",
                config.vocab_size
            ),
        });
    }
    Ok(text)
}

/// A checked base: config, encoder weights and tokenizer.
pub struct BertFolder {
    pub config: BertConfig,
    pub weights: BTreeMap<String, Tensor>,
    pub text: TextEncoder,
}

impl BertFolder {
    pub fn open(dir: &Path, max_len: usize, device: &Device) -> Result<Self> {
        let config = read_config(dir)?;
        let text = read_tokenizer(dir, &config, max_len)?;
        let weights = read_encoder(dir, &config, device)?;
        Ok(Self { config, weights, text })
    }
}

/// Writes `config.json` and copies the tokenizer into a model folder.
pub fn write_config_and_tokenizer(out: &Path, config: &BertConfig, tokenizer_from: &Path) -> Result<()> {
    std::fs::create_dir_all(out).map_err(MlError::io(out))?;
    let json = serde_json::to_vec_pretty(config).map_err(|e| MlError::Incompatible(e.to_string()))?;
    std::fs::write(out.join(CONFIG), json).map_err(MlError::io(out.join(CONFIG)))?;
    let source = tokenizer_from.join(TOKENIZER);
    if source != out.join(TOKENIZER) {
        std::fs::copy(&source, out.join(TOKENIZER)).map_err(MlError::io(&source))?;
    }
    Ok(())
}
