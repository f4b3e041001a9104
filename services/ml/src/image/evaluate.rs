//! Evaluation of a saved model on a dataset, latency, and prediction.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor};
use image::ImageReader;
use serde::{Deserialize, Serialize};
use tenfold_domain::report::ExampleOutcome;

use super::data::{ImageSet, SplitSpec, Target};
use super::loaded::LoadedModel;
use super::task::{classify_each, held_out};
use crate::artifact;
use crate::metrics::Classification;
use crate::{MlError, Model, Result};

/// Milliseconds per image, the median of repeated timed runs after warm-up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Latency {
    pub batch_1_ms: f64,
    /// The 95th percentile of the timed batch-1 runs (what a caller waits at worst, mostly).
    #[serde(default)]
    pub batch_1_p95_ms: f64,
    pub batch_64_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evaluation {
    /// Which examples: `test`/`val` (the training split's held-out part) or `all`.
    pub split: String,
    pub metrics: Classification,
    /// How the model did on each example, in the split's order.
    #[serde(default)]
    pub outcomes: Vec<ExampleOutcome>,
    pub latency_ms_per_image: Latency,
    pub parameters: usize,
    pub artifact_bytes: u64,
}

fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len().saturating_sub(1)) as f64 * q).round() as usize;
    v.get(i).copied().unwrap_or(0.0)
}

/// Times the forward pass on random inputs of the model's shape.
pub fn latency(model: &dyn Model, shape: super::arch::InputShape, device: &Device) -> Result<Latency> {
    let time = |batch: usize, runs: usize| -> Result<Vec<f64>> {
        let xs = Tensor::randn(0f32, 1f32, (batch, shape.channels, shape.height, shape.width), device)?;
        let mut samples = Vec::with_capacity(runs);
        for i in 0..runs + 3 {
            let start = Instant::now();
            let out = model.forward(&xs, false)?;
            // Reading the result back waits for asynchronous devices.
            let _ = out.sum_all()?.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()?;
            if i >= 3 {
                samples.push(start.elapsed().as_secs_f64() * 1000.0 / batch as f64);
            }
        }
        Ok(samples)
    };
    let batch_1 = time(1, 50)?;
    Ok(Latency {
        batch_1_ms: quantile(batch_1.clone(), 0.5),
        batch_1_p95_ms: quantile(batch_1, 0.95),
        batch_64_ms: quantile(time(64, 10)?, 0.5),
    })
}

/// Evaluates the model in `dir` on `data`. When `data` is the file the
/// model was trained on, only its held-out split counts (scoring training
/// images would flatter the model); any other file is scored whole.
pub fn evaluate(dir: &Path, data: &Path, device: &Device) -> Result<Evaluation> {
    let loaded = LoadedModel::load(dir, device)?;
    let training: TrainingRef = serde_json::from_value(loaded.card.training.clone()).unwrap_or_default();
    // Models from before `split_seed` split with the training seed.
    let split_seed = training.split_seed.or(training.seed).unwrap_or(42);
    let set = ImageSet::load(data, Target::Fixed(loaded.preprocess.shape()), training.split.unwrap_or_default(), split_seed)?;
    if set.classes != loaded.card.classes {
        return Err(MlError::Incompatible(format!(
            "the model was trained on the classes [{}], the data has [{}]",
            loaded.card.classes.join(", "),
            set.classes.join(", ")
        )));
    }
    let (split, indices) = if set.sha256 == loaded.card.dataset.sha256 {
        let (split, indices) = held_out(&set);
        (format!("{split:?}").to_lowercase(), indices)
    } else {
        ("all".to_owned(), (0..set.examples.len()).collect())
    };
    let (metrics, outcomes) = classify_each(loaded.model.as_ref(), &set, &loaded.preprocess, &indices, device)?;
    Ok(Evaluation {
        split,
        metrics,
        outcomes,
        latency_ms_per_image: latency(loaded.model.as_ref(), loaded.preprocess.shape(), device)?,
        parameters: loaded.params.count(),
        artifact_bytes: artifact::size_on_disk(dir),
    })
}

#[derive(Default, Deserialize)]
struct TrainingRef {
    split: Option<SplitSpec>,
    seed: Option<u64>,
    split_seed: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    pub file: PathBuf,
    /// The most probable classes, best first.
    pub top: Vec<(String, f32)>,
}

/// Largest image `predict` decodes, in pixels (a header can claim 100000²).
const MAX_PIXELS: u64 = 40_000_000;

fn read(path: &Path) -> Result<image::DynamicImage> {
    let bytes = std::fs::read(path).map_err(MlError::io(path))?;
    read_image(&bytes, &path.display().to_string())
}

/// Decodes a PNG or JPEG after checking its header: the format by content
/// and the pixel count before any pixel is decoded. `name` says which input
/// a message is about.
pub(crate) fn read_image(bytes: &[u8], name: &str) -> Result<image::DynamicImage> {
    let bad = |why: String| MlError::arg("image", format!("{name}: {why}"));
    let reader = || ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| bad(format!("unreadable ({e})")));
    let format = reader()?.format();
    if format.is_none_or(|f| !matches!(f, image::ImageFormat::Png | image::ImageFormat::Jpeg)) {
        return Err(bad("not a PNG or JPEG image".into()));
    }
    let (w, h) = reader()?.into_dimensions().map_err(|e| bad(format!("unreadable image header ({e})")))?;
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(bad(format!("{w}×{h} is larger than {MAX_PIXELS} pixels")));
    }
    reader()?.decode().map_err(|e| bad(format!("cannot be decoded ({e})")))
}

/// The `top` most probable classes of each image.
pub fn predict(dir: &Path, images: &[PathBuf], top: usize, device: &Device) -> Result<Vec<Prediction>> {
    if images.is_empty() {
        return Err(MlError::arg("images", "give at least one PNG or JPEG file"));
    }
    let loaded = LoadedModel::load(dir, device)?;
    let p = &loaded.preprocess;
    let mut out = Vec::with_capacity(images.len());
    for path in images {
        let image = read(path)?;
        let pixels = super::data::planar(&image, p.shape());
        let plane = p.height * p.width;
        let values: Vec<f32> =
            pixels.iter().enumerate().map(|(i, &v)| (f32::from(v) / 255.0 - p.mean[i / plane]) / p.std[i / plane]).collect();
        let xs = Tensor::from_vec(values, (1, p.channels, p.height, p.width), device)?;
        let probs = loaded.probabilities(&xs)?.to_device(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?;
        let mut ranked: Vec<(String, f32)> = loaded.card.classes.iter().cloned().zip(probs).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranked.truncate(top.max(1));
        out.push(Prediction { file: path.clone(), top: ranked });
    }
    Ok(out)
}
