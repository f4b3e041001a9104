//! Model directories: `model.safetensors` (every parameter and batch-norm
//! statistic by name) and `model.json` (what the weights mean: family,
//! architecture, classes, preprocessing, how and on what they were trained,
//! and their metrics). Both are plain, documented formats, so a model can
//! be downloaded and loaded elsewhere (safetensors in PyTorch, for one).

use std::path::{Path, PathBuf};

use std::io::{BufReader, Read};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::params::Params;
use crate::{MlError, Result};

pub const FORMAT: &str = "tenfold-model";
pub const FORMAT_VERSION: u32 = 1;
pub const WEIGHTS: &str = "model.safetensors";
pub const CARD: &str = "model.json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DatasetRef {
    pub file: String,
    pub sha256: String,
    pub examples: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelCard {
    pub format: String,
    pub format_version: u32,
    pub family: String,
    pub architecture: String,
    pub classes: Vec<String>,
    /// Family-specific input handling (image: size, channels, mean, std).
    pub preprocessing: serde_json::Value,
    /// The training configuration, split and augmentation used.
    pub training: serde_json::Value,
    pub dataset: DatasetRef,
    pub metrics: serde_json::Value,
    pub parameters: usize,
    pub engine: String,
}

impl ModelCard {
    pub fn engine() -> String {
        format!("tenfold-ml {}", env!("CARGO_PKG_VERSION"))
    }
}

fn invalid(dir: &Path, reason: impl Into<String>) -> MlError {
    MlError::InvalidModel { path: dir.into(), reason: reason.into() }
}

/// Writes the weights, then the card (through a rename, so a reader never
/// sees a card whose weights are not complete).
pub fn save(dir: &Path, card: &ModelCard, params: &Params) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(MlError::io(dir))?;
    params.save(&dir.join(WEIGHTS))?;
    write_card(dir, card)?;
    Ok(dir.join(WEIGHTS))
}

/// Writes `model.json` through a rename: the card is written last, after
/// every file it describes, and a reader never sees half of it.
pub fn write_card(dir: &Path, card: &ModelCard) -> Result<()> {
    let json = serde_json::to_vec_pretty(card).map_err(|e| invalid(dir, e.to_string()))?;
    let tmp = dir.join(".model.json.tmp");
    std::fs::write(&tmp, json).map_err(MlError::io(&tmp))?;
    std::fs::rename(&tmp, dir.join(CARD)).map_err(MlError::io(dir))
}

/// Reads and checks `model.json` of a model directory.
pub fn read_card(dir: &Path) -> Result<ModelCard> {
    if !dir.is_dir() {
        return Err(invalid(dir, "it is not a directory; pass the folder that holds model.json and model.safetensors"));
    }
    let path = dir.join(CARD);
    let raw =
        std::fs::read(&path).map_err(|_| invalid(dir, "model.json is missing; a model folder holds model.json and model.safetensors"))?;
    let card: ModelCard =
        serde_json::from_slice(&raw).map_err(|e| invalid(dir, format!("model.json is not a Tenfold model card ({e})")))?;
    if card.format != FORMAT {
        return Err(invalid(dir, format!("model.json says format '{}', expected '{FORMAT}'", card.format)));
    }
    if card.format_version != FORMAT_VERSION {
        return Err(invalid(
            dir,
            format!("model format version {} is not supported (this engine reads {FORMAT_VERSION})", card.format_version),
        ));
    }
    if tenfold_domain::Family::from_short_name(&card.family).is_err() {
        return Err(invalid(dir, format!("unknown model family '{}'", card.family)));
    }
    let unique: std::collections::BTreeSet<&String> = card.classes.iter().collect();
    if card.family != "recommendation" && (card.classes.len() < 2 || unique.len() != card.classes.len()) {
        return Err(invalid(dir, "model.json must list at least two distinct classes"));
    }
    Ok(card)
}

/// Refuses a model of another family with words that say what to pass.
pub fn expect_family(dir: &Path, card: &ModelCard, family: &str) -> Result<()> {
    if card.family == family {
        Ok(())
    } else {
        Err(MlError::Incompatible(format!(
            "{} holds a {} model ({}); the {family} family needs a model trained with --family {family}",
            dir.display(),
            card.family,
            card.architecture
        )))
    }
}

/// The evaluation report beside a model (not part of the model's size).
pub const REPORT: &str = "report.json";

/// Bytes on disk of a model directory: every file the model is loaded
/// from (weights, card, and a family's own: a chat model's tokenizer,
/// config and replies), not its report or checkpoints.
pub fn size_on_disk(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name() != REPORT)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// The SHA-256 of a file (the dataset a model was trained on), streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = BufReader::new(std::fs::File::open(path).map_err(MlError::io(path))?);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(MlError::io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}
