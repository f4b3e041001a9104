//! The image-classification family behind the family seam: its
//! architectures, hyperparameter schema, estimate, and the engine calls.

use std::path::Path;

use candle_core::{Device, Tensor};
use serde_json::{Value, json};
use tenfold_domain::report::ModelReport;
use tenfold_domain::{
    Architecture, ArtifactInfo, DataStats, DomainError, Estimate, Family, FamilyPlan, Hyperparameters, JobKind, JobShape, ParamSpec,
};

use super::data::{Augment, SplitSpec};
use super::evaluate::{Evaluation, read_image};
use super::loaded::LoadedModel;
use super::train::{Report, Teacher, TrainRequest};
use crate::family::{Evaluated, ModelFamily, ServeInput, Served, TrainJob, Trained};
use crate::optim::OptimizerConfig;
use crate::schedule::Schedule;
use crate::train::{Control, EarlyStopping, TrainConfig};
use crate::{MlError, Result};

/// The input side the architectures' reference numbers were measured at.
const REFERENCE_SIDE: f64 = 28.0;

pub struct ImageFamily {
    architectures: Vec<Architecture>,
    hyperparameters: Vec<ParamSpec>,
}

impl ImageFamily {
    pub fn new() -> Self {
        // Throughput and sizes at 28×28 grayscale on 2 cores (docs/benchmarks.md).
        let architectures = vec![
            Architecture {
                name: "cnn-small",
                description: "Keras' MNIST CNN: one 3×3 convolution, max-pooling, a 128-unit dense layer (~0.7M parameters)",
                cpu_samples_per_s: 4_400.0,
                parameters: 694_000,
                activations_per_sample: 34_000,
                student: true,
            },
            Architecture {
                name: "resnet-s",
                description: "a small residual network with batch norm (~78k parameters); the most accurate",
                cpu_samples_per_s: 900.0,
                parameters: 78_000,
                activations_per_sample: 300_000,
                student: true,
            },
            Architecture {
                name: "cnn-tiny",
                description: "two small convolutions (~5k parameters): a fast distillation student",
                cpu_samples_per_s: 12_000.0,
                parameters: 5_300,
                activations_per_sample: 9_000,
                student: true,
            },
        ];
        let hyperparameters = vec![
            ParamSpec::integer("epochs", 1, 1000, Some(10), "passes over the training split"),
            ParamSpec::integer("batchSize", 1, 4096, Some(64), "examples per step"),
            ParamSpec::positive("learningRate", 1.0, Some(0.001), "the optimizer's step size"),
            ParamSpec::choice("optimizer", &["adamw", "sgd"], false, "adamw", "adamw, or sgd with momentum 0.9"),
            ParamSpec::choice(
                "schedule",
                &["constant", "cosine", "step"],
                false,
                "constant",
                "how the learning rate changes over the epochs",
            ),
            ParamSpec::integer("warmupSteps", 0, 100_000, Some(0), "steps of linear learning-rate warm-up"),
            ParamSpec::positive("clipGradNorm", 1e6, None, "clip the global gradient norm to this value"),
            ParamSpec::integer("patience", 0, 1000, None, "stop after this many epochs without validation improvement"),
            ParamSpec::split("split", "80/10/10", "train/validation/test percentages"),
            ParamSpec::choice("augment", &["none", "crop", "flip"], true, "none", "training augmentation: crop, flip or both"),
            ParamSpec::integer("imageSize", 8, 256, None, "square input side in pixels (default: the data's, at most 64)"),
            ParamSpec::integer("seed", 0, i64::from(u32::MAX), Some(42), "seeds initialisation, shuffling and augmentation"),
            ParamSpec::integer(
                "splitSeed",
                0,
                i64::from(u32::MAX),
                Some(42),
                "seeds the train/validation/test split; keep it to compare runs on the same test examples",
            ),
            ParamSpec::boolean("freezeBackbone", false, "fine-tuning: train only the new head"),
            ParamSpec::number("alpha", 0.0, 1.0, 0.5, "distillation: weight of the label loss (the rest is the teacher's)"),
            ParamSpec::positive("temperature", 100.0, Some(4.0), "distillation: softmax temperature"),
        ];
        Self { architectures, hyperparameters }
    }
}

impl Default for ImageFamily {
    fn default() -> Self {
        Self::new()
    }
}

/// The input side a job trains at: the one asked for, else the data's most
/// common size bucket (as the engine infers it), at most 64.
fn input_side(data: &DataStats, h: &Hyperparameters) -> f64 {
    if let Some(side) = h.int("imageSize") {
        return side as f64;
    }
    let common = data.raw.get("size_histogram").and_then(Value::as_object).and_then(|buckets| {
        buckets.iter().filter_map(|(k, v)| Some((k.trim_start_matches('≤').parse::<f64>().ok()?, v.as_u64()?))).max_by_key(|(_, n)| *n)
    });
    common.map_or(REFERENCE_SIDE, |(side, _)| side.min(64.0))
}

impl FamilyPlan for ImageFamily {
    fn family(&self) -> Family {
        Family::ImageClassification
    }

    fn serves(&self) -> bool {
        true
    }

    fn architectures(&self) -> &[Architecture] {
        &self.architectures
    }

    fn hyperparameters(&self) -> &[ParamSpec] {
        &self.hyperparameters
    }

    fn report_metrics(&self) -> &[&'static str] {
        super::report::METRICS
    }

    fn model_report(&self, report_json: &[u8], size_bytes: u64) -> std::result::Result<ModelReport, DomainError> {
        super::report::model_report(report_json, size_bytes)
    }

    fn check_artifact(&self, dir: &Path) -> std::result::Result<ArtifactInfo, DomainError> {
        let loaded = LoadedModel::load(dir, &Device::Cpu).map_err(|e| {
            // The reason alone: the folder is the server's scratch space.
            let message = match e {
                MlError::InvalidModel { reason, .. } => reason,
                other => other.to_string().replace(&dir.display().to_string(), ""),
            };
            let field = if message.contains("model.safetensors") || message.contains("safetensors") { "weights" } else { "card" };
            DomainError::invalid(field, message)
        })?;
        let card = loaded.card;
        Ok(ArtifactInfo {
            architecture: card.architecture,
            classes: card.classes,
            parameters: loaded.params.count() as u64,
            engine: card.engine,
            training: card.training,
            dataset_sha256: Some(card.dataset.sha256).filter(|s| !s.is_empty()),
            metrics: card.metrics,
        })
    }

    fn estimate(&self, data: &DataStats, job: &JobShape<'_>) -> Estimate {
        let Ok(arch) = self.architecture(job.architecture) else { return Estimate { seconds: 60, memory_mb: 2048 } };
        let h = job.hyperparameters;
        let side = input_side(data, h);
        let scale = (side * side) / (REFERENCE_SIDE * REFERENCE_SIDE);
        // A GPU is far faster on these small networks; 10× is a conservative
        // guess until GPU jobs have been measured.
        let device_speed = if job.device == "cuda" { 10.0 } else { 1.0 };
        let throughput = arch.cpu_samples_per_s * device_speed / scale.max(0.01);
        let examples = data.raw.get("images").and_then(Value::as_u64).unwrap_or(1000).max(1) as f64;
        let epochs = h.int("epochs").unwrap_or(10) as f64;
        let train_samples = examples * h.train_fraction() * epochs;
        let seconds = match job.kind {
            JobKind::FineTune => train_samples / throughput,
            // The student, then the same student without the teacher (the baseline).
            JobKind::Distill => 2.0 * train_samples / throughput,
            JobKind::Evaluate => examples / (throughput * 3.0),
            // Validation is not this family's work (the datasets crate's).
            JobKind::Validate => 0.0,
        };
        // Loading, evaluation, artifacts.
        let seconds = (seconds + 5.0).ceil() as i64;

        // Memory: the runtime, the decoded data (bytes, up to 3 channels),
        // weights with their gradients and two optimizer moments, and a
        // batch's activations kept for the backward pass (with its gradients
        // and scratch, ×3); a distillation also holds the teacher.
        const MB: f64 = 1024.0 * 1024.0;
        let batch = h.int("batchSize").unwrap_or(64) as f64;
        let runtime = 384.0;
        let data_mb = examples * side * side * 3.0 / MB;
        let weights_mb = arch.parameters as f64 * scale.max(1.0) * 16.0 / MB;
        let activations_mb = batch * arch.activations_per_sample as f64 * scale * 4.0 * 3.0 / MB;
        let teacher = if job.kind == JobKind::Distill { 1.5 } else { 1.0 };
        let memory = runtime + data_mb + (weights_mb + activations_mb) * teacher;
        // Whole 64 MB steps, so small changes do not move jobs between workers.
        let memory_mb = ((memory / 64.0).ceil() * 64.0).min(f64::from(i32::MAX)) as i32;
        Estimate { seconds, memory_mb }
    }
}

fn request(job: &TrainJob<'_>) -> Result<TrainRequest> {
    let h = job.hyperparameters;
    let int = |name: &'static str, default: i64| h.int(name).unwrap_or(default).max(0) as usize;
    let lr = h.float("learningRate").unwrap_or(0.001);
    let epochs = int("epochs", 10);
    let text = |name: &'static str, default: &'static str| h.text(name).unwrap_or(default).to_owned();
    let mut schedule = Schedule::parse(&text("schedule", "constant"), lr, epochs).map_err(|e| MlError::arg("schedule", e.to_string()))?;
    schedule.warmup_steps = int("warmupSteps", 0);
    let teacher = job.teacher.map(|dir| Teacher {
        dir: dir.to_path_buf(),
        alpha: h.float("alpha").unwrap_or(0.5),
        temperature: h.float("temperature").unwrap_or(4.0),
    });
    if job.kind == JobKind::Distill && teacher.is_none() {
        return Err(MlError::arg("teacher", "a distillation needs the teacher's model directory"));
    }
    Ok(TrainRequest {
        data: job.data.to_path_buf(),
        out: job.out.to_path_buf(),
        // From scratch the job names it; fine-tuning takes the base model's.
        architecture: if job.base.is_some() { None } else { job.architecture.map(str::to_owned) },
        config: TrainConfig {
            epochs,
            batch_size: int("batchSize", 64),
            optimizer: OptimizerConfig::parse(&text("optimizer", "adamw")).map_err(|e| MlError::arg("optimizer", e.to_string()))?,
            schedule,
            clip_grad_norm: h.float("clipGradNorm"),
            early_stopping: h.int("patience").map(|p| EarlyStopping { patience: p.max(0) as usize, min_delta: 0.0 }),
            seed: h.int("seed").unwrap_or(42).max(0) as u64,
        },
        split: SplitSpec::parse(&text("split", "80/10/10")).map_err(|e| MlError::arg("split", e.to_string()))?,
        split_seed: h.int("splitSeed").unwrap_or(42).max(0) as u64,
        augment: Augment::parse(&text("augment", "none")).map_err(|e| MlError::arg("augment", e.to_string()))?,
        image_size: h.int("imageSize").map(|s| s.max(0) as usize),
        base: job.base.map(Path::to_path_buf),
        freeze_backbone: h.flag("freezeBackbone"),
        teacher,
        device: job.device.clone(),
    })
}

fn evaluation_summary(e: &Evaluation) -> Value {
    json!({
        "split": e.split,
        "examples": e.metrics.examples,
        "accuracy": e.metrics.accuracy,
        "macro_f1": e.metrics.macro_f1,
        "weighted_f1": e.metrics.weighted_f1,
        "ece": e.metrics.ece,
        "top_k": e.metrics.top_k,
        "parameters": e.parameters,
        "artifact_bytes": e.artifact_bytes,
        "latency_ms_per_image": { "batch_1": e.latency_ms_per_image.batch_1_ms, "batch_64": e.latency_ms_per_image.batch_64_ms },
    })
}

fn report_summary(r: &Report) -> Value {
    let mut v = r.evaluation.as_ref().map_or_else(|| json!({}), evaluation_summary);
    if let Some(map) = v.as_object_mut() {
        map.insert("task".into(), json!(r.task));
        map.insert("architecture".into(), json!(r.architecture));
        map.insert("classes".into(), json!(r.classes.len()));
        map.insert("epochs_run".into(), json!(r.training.history.len()));
        map.insert("best_epoch".into(), json!(r.training.best_epoch));
        map.insert("stopped_early".into(), json!(r.training.stopped_early));
        map.insert("resumed_from_epoch".into(), json!(r.training.resumed_from_epoch));
        map.insert("samples_per_s".into(), json!(r.training.samples_per_s));
        if let Some(d) = &r.distillation {
            map.insert(
                "distillation".into(),
                json!({ "accuracy_retained": d.accuracy_retained, "parameter_ratio": d.parameter_ratio, "beats_baseline": d.beats_baseline, "verdict": d.verdict }),
            );
        }
    }
    v
}

fn report_text(r: &Report, out: &Path) -> String {
    let mut text = format!("model written to {}\n", out.display());
    if let Some(e) = &r.evaluation {
        text.push_str(&format!(
            "{} accuracy {:.4} on {} images (macro F1 {:.4}, ECE {:.4}); {:.3} ms/image at batch 1, {:.3} at batch 64\n",
            e.split,
            e.metrics.accuracy,
            e.metrics.examples,
            e.metrics.macro_f1,
            e.metrics.ece,
            e.latency_ms_per_image.batch_1_ms,
            e.latency_ms_per_image.batch_64_ms
        ));
    }
    if let Some(d) = &r.distillation {
        text.push_str(&format!("distillation: {}\n", d.verdict));
    }
    text.push_str(&format!("report: {}\n", out.join("report.json").display()));
    text
}

impl ModelFamily for ImageFamily {
    fn train(&self, job: &TrainJob<'_>, control: Control<'_>) -> Result<Trained> {
        let request = request(job)?;
        let report = super::train(&request, control)?;
        Ok(Trained {
            architecture: report.architecture.clone(),
            classes: report.classes.clone(),
            summary: report_summary(&report),
            text: report_text(&report, job.out),
        })
    }

    fn evaluate(&self, model: &Path, data: &Path, device: &Device) -> Result<Evaluated> {
        let evaluation = super::evaluate(model, data, device)?;
        let report = serde_json::to_value(&evaluation).map_err(|e| MlError::Incompatible(e.to_string()))?;
        Ok(Evaluated { summary: evaluation_summary(&evaluation), report })
    }

    fn load_for_serving(&self, model: &Path, device: &Device) -> Result<Box<dyn Served>> {
        Ok(Box::new(ServedClassifier { loaded: LoadedModel::load(model, device)?, device: device.clone() }))
    }
}

/// An image classifier answering batches of encoded images with every
/// class's probability, best first.
struct ServedClassifier {
    loaded: LoadedModel,
    device: Device,
}

impl Served for ServedClassifier {
    fn predict(&self, inputs: &[ServeInput]) -> Result<Vec<Value>> {
        let p = &self.loaded.preprocess;
        let plane = p.height * p.width;
        let mut values = Vec::with_capacity(inputs.len() * p.channels * plane);
        let expected = [p.channels, p.height, p.width];
        for input in inputs {
            match input {
                ServeInput::Bytes { name, bytes } => {
                    let image = read_image(bytes, name)?;
                    let pixels = super::data::planar(&image, p.shape());
                    values.extend(pixels.iter().enumerate().map(|(j, &v)| (f32::from(v) / 255.0 - p.mean[j / plane]) / p.std[j / plane]));
                }
                ServeInput::Pixels { name, shape, values: given } => {
                    if *shape != expected || given.len() != plane * p.channels {
                        return Err(MlError::arg(
                            "pixels",
                            format!("{name}: this model takes {expected:?} (channels, height, width) pixel values, got {shape:?}"),
                        ));
                    }
                    if let Some(bad) = given.iter().find(|v| !(0.0..=1.0).contains(*v)) {
                        return Err(MlError::arg("pixels", format!("{name}: pixel values are scaled to [0, 1]; got {bad}")));
                    }
                    values.extend(given.iter().enumerate().map(|(j, &v)| (v - p.mean[j / plane]) / p.std[j / plane]));
                }
                ServeInput::Json(_) => {
                    return Err(MlError::arg("inputs", "an image classifier takes encoded images (PNG, JPEG) or pixel tensors"));
                }
            }
        }
        let xs = Tensor::from_vec(values, (inputs.len(), p.channels, p.height, p.width), &self.device)?;
        let probs = self.loaded.probabilities(&xs)?.to_device(&Device::Cpu)?.to_vec2::<f32>()?;
        Ok(probs
            .into_iter()
            .map(|row| {
                let mut ranked: Vec<(&String, f32)> = self.loaded.card.classes.iter().zip(row).collect();
                ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
                Value::Array(ranked.into_iter().map(|(class, p)| json!({ "class": class, "probability": p })).collect())
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;

    fn hyper(given: Value) -> Hyperparameters {
        let map: Map<String, Value> = given.as_object().cloned().unwrap_or_default();
        ImageFamily::new().normalise(&map).unwrap()
    }

    fn estimate(kind: JobKind, arch: &str, images: u64, side: Option<u32>, h: Value, device: &str) -> Estimate {
        let mut h = h;
        if let (Some(s), Some(map)) = (side, h.as_object_mut()) {
            map.insert("imageSize".into(), json!(s));
        }
        let data = DataStats { bytes: 0, raw: json!({ "images": images, "size_histogram": { "≤32": images } }) };
        let h = hyper(h);
        ImageFamily::new().estimate(&data, &JobShape { kind, architecture: arch, hyperparameters: &h, device })
    }

    #[test]
    fn the_plan_lists_exactly_the_architectures_the_engine_builds() {
        let names: Vec<&str> = ImageFamily::new().architectures().iter().map(|a| a.name).collect();
        assert_eq!(names, super::super::arch::ARCHITECTURES);
    }

    #[test]
    fn time_grows_with_data_and_epochs_and_shrinks_on_gpus() {
        let fine = JobKind::FineTune;
        let small = estimate(fine, "cnn-small", 1_000, None, json!({}), "cpu").seconds;
        let big = estimate(fine, "cnn-small", 100_000, None, json!({}), "cpu").seconds;
        let long = estimate(fine, "cnn-small", 100_000, None, json!({ "epochs": 100 }), "cpu").seconds;
        let gpu = estimate(fine, "cnn-small", 100_000, None, json!({ "epochs": 100 }), "cuda").seconds;
        let distil = estimate(JobKind::Distill, "cnn-small", 100_000, None, json!({}), "cpu").seconds;
        assert!(small < big && big < long && gpu < long, "{small} {big} {long} {gpu}");
        assert!(distil > big, "{distil} {big}");
        assert!(estimate(fine, "resnet-s", 100_000, None, json!({}), "cpu").seconds > big);
    }

    #[test]
    fn memory_grows_with_batch_input_and_data_and_holds_the_teacher() {
        let fine = JobKind::FineTune;
        let base = estimate(fine, "resnet-s", 5_000, None, json!({}), "cpu").memory_mb;
        let batch = estimate(fine, "resnet-s", 5_000, None, json!({ "batchSize": 1024 }), "cpu").memory_mb;
        let input = estimate(fine, "resnet-s", 5_000, Some(128), json!({}), "cpu").memory_mb;
        let data = estimate(fine, "resnet-s", 500_000, None, json!({}), "cpu").memory_mb;
        let distil = estimate(JobKind::Distill, "resnet-s", 5_000, None, json!({ "batchSize": 1024 }), "cpu").memory_mb;
        assert!(base >= 384 && base % 64 == 0, "{base}");
        assert!(batch > base && input > base && data > base, "{base} {batch} {input} {data}");
        assert!(distil > batch, "{distil} {batch}");
    }
}
