//! A training run of the image family, end to end: from scratch, fine-tuned
//! from a base model, or distilled from a teacher; evaluated on the held-out
//! split and written as a model directory with `report.json`.

use std::path::{Path, PathBuf};

use candle_core::Device;
use serde::{Deserialize, Serialize};
use tenfold_datasets::splits::Split;

use super::arch::{self, InputShape};
use super::data::{Augment, ImageSet, Preprocess, SplitSpec, Target};
use super::evaluate::{Evaluation, Latency, latency};
use super::loaded::LoadedModel;
use super::task::{ImageTask, SoftTargets, classify, classify_each, held_out};
use crate::artifact::{self, DatasetRef, ModelCard};
use crate::params::{Params, Part};
use crate::train::{Control, Outcome, TrainConfig, fit};
use crate::{MlError, Model, Result};

/// Distillation settings: the teacher's model directory, the weight α of
/// the hard-label loss, and the softmax temperature T.
#[derive(Debug, Clone)]
pub struct Teacher {
    pub dir: PathBuf,
    pub alpha: f64,
    pub temperature: f64,
}

#[derive(Debug, Clone)]
pub struct TrainRequest {
    pub data: PathBuf,
    pub out: PathBuf,
    /// Required from scratch; taken from the base model when fine-tuning.
    pub architecture: Option<String>,
    pub config: TrainConfig,
    pub split: SplitSpec,
    /// Seeds the split alone, so that runs with different training seeds
    /// are tested on the same examples (and can be compared example by example).
    pub split_seed: u64,
    pub augment: Augment,
    /// Square input side; by default the data's most common size (≤ 64).
    pub image_size: Option<usize>,
    pub base: Option<PathBuf>,
    pub freeze_backbone: bool,
    pub teacher: Option<Teacher>,
    pub device: Device,
}

#[derive(Debug, Clone, Serialize)]
pub struct SplitCounts {
    pub method: &'static str,
    pub seed: u64,
    pub train: usize,
    pub val: usize,
    pub test: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct DatasetInfo {
    pub file: String,
    pub sha256: String,
    pub images: usize,
    pub classes: usize,
    pub input: InputShape,
    pub split: SplitCounts,
}

/// One model of a distillation comparison, measured on the same split.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    pub architecture: String,
    pub accuracy: f64,
    pub parameters: usize,
    pub size_bytes: u64,
    pub latency_ms_per_image: Latency,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Distillation {
    pub alpha: f64,
    pub temperature: f64,
    pub teacher: Comparison,
    pub student: Comparison,
    /// The same student architecture, seed and data, trained without the teacher.
    pub baseline: Comparison,
    pub accuracy_retained: f64,
    pub parameter_ratio: f64,
    pub speedup_batch_1: f64,
    pub speedup_batch_64: f64,
    pub beats_baseline: bool,
    pub verdict: String,
}

/// What the model is measured against, on the same held-out split.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Baselines {
    /// The class most frequent in the training split, predicted for every
    /// example (scikit-learn's `DummyClassifier(strategy="most_frequent")`).
    pub majority_class: String,
    pub majority_accuracy: f64,
    /// For a fine-tune: the base model as it was, when it predicts the same classes.
    pub base_model: Option<BaseModelScore>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaseModelScore {
    pub architecture: String,
    /// `None` when the base model predicts other classes (its head was replaced).
    pub accuracy: Option<f64>,
    pub macro_f1: Option<f64>,
    pub note: String,
}

/// Thumbnails kept in the report: the mistakes (for the gallery and for
/// comparisons' flipped examples), at most this many.
const THUMBNAILS: usize = 100;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub family: &'static str,
    /// `train`, `fine_tune` or `distill`.
    pub task: &'static str,
    pub architecture: String,
    pub classes: Vec<String>,
    pub dataset: DatasetInfo,
    pub config: TrainConfig,
    pub augment: Augment,
    pub device: String,
    pub base_model: Option<String>,
    pub frozen_backbone: bool,
    pub training: Outcome,
    pub evaluation: Option<Evaluation>,
    pub distillation: Option<Distillation>,
    pub baselines: Option<Baselines>,
    /// `data:` URLs of held-out examples (the mistakes first), by name.
    pub thumbnails: std::collections::BTreeMap<String, String>,
}

/// Default largest input side when inferring it from the data: keeps CPU
/// training practical; pass `image_size` for more.
const MAX_INFERRED_SIDE: usize = 64;

fn check(req: &TrainRequest) -> Result<()> {
    req.config.validate()?;
    if let Some(a) = &req.architecture {
        arch::check_architecture(a)?;
    }
    if req.base.is_none() && req.architecture.is_none() {
        return Err(MlError::arg("arch", format!("choose an architecture: {}", arch::ARCHITECTURES.join(", "))));
    }
    if let Some(s) = req.image_size
        && !(8..=512).contains(&s)
    {
        return Err(MlError::arg("image size", format!("{s} is out of range; use 8 to 512 pixels")));
    }
    if let Some(t) = &req.teacher {
        if !(0.0..=1.0).contains(&t.alpha) {
            return Err(MlError::arg("alpha", format!("{} must be between 0 and 1 (the weight of the label loss)", t.alpha)));
        }
        if !(t.temperature > 0.0 && t.temperature <= 100.0) {
            return Err(MlError::arg("temperature", format!("{} must be a positive number up to 100 (typically 2 to 8)", t.temperature)));
        }
    }
    if req.out.is_file() {
        return Err(MlError::arg("out", format!("{} is a file; give a directory for the model", req.out.display())));
    }
    Ok(())
}

struct Prepared {
    data: ImageSet,
    prep: Preprocess,
    architecture: String,
    base: Option<LoadedModel>,
    teacher: Option<LoadedModel>,
}

fn prepare(req: &TrainRequest) -> Result<Prepared> {
    let base = req.base.as_deref().map(|d| LoadedModel::load(d, &req.device)).transpose()?;
    let teacher = req.teacher.as_ref().map(|t| LoadedModel::load(&t.dir, &req.device)).transpose()?;
    let architecture = match (&base, &req.architecture) {
        (Some(b), Some(a)) if *a != b.card.architecture => {
            return Err(MlError::arg(
                "arch",
                format!("{a} differs from the base model's architecture {}; omit --arch or pass the same", b.card.architecture),
            ));
        }
        (Some(b), _) => b.card.architecture.clone(),
        (None, Some(a)) => a.clone(),
        (None, None) => return Err(MlError::arg("arch", "choose an architecture")),
    };
    // Base and teacher fix the input: the student must see what they saw.
    let fixed = base.as_ref().or(teacher.as_ref()).map(|m| m.preprocess.clone());
    if let (Some(b), Some(t)) = (&base, &teacher)
        && b.preprocess.shape() != t.preprocess.shape()
    {
        return Err(MlError::Incompatible("the base model and the teacher take inputs of different sizes".into()));
    }
    let target = match &fixed {
        Some(p) => Target::Fixed(p.shape()),
        None => Target::Infer { side: req.image_size, max_side: MAX_INFERRED_SIDE },
    };
    let data = ImageSet::load(&req.data, target, req.split, req.split_seed)?;
    if let Some(t) = &teacher
        && t.card.classes != data.classes
    {
        return Err(MlError::Incompatible(format!(
            "the teacher was trained on the classes [{}] but the data has [{}]; distil with data of the same classes",
            t.card.classes.join(", "),
            data.classes.join(", ")
        )));
    }
    let prep = match fixed {
        Some(p) => p,
        None => data.fit_preprocess(&data.indices(Split::Train)),
    };
    Ok(Prepared { data, prep, architecture, base, teacher })
}

struct Trained {
    params: Params,
    model: Box<dyn Model>,
    outcome: Outcome,
}

fn train_one(req: &TrainRequest, p: &Prepared, soft: Option<SoftTargets<'_>>, ctl: Control<'_>) -> Result<Trained> {
    let mut params = Params::new(req.config.seed, &req.device);
    let model = arch::build(&p.architecture, p.prep.shape(), p.data.classes.len(), &mut params)?;
    if let Some(base) = &p.base {
        // Same classes in the same order: keep the head too; else a new one.
        let parts: &[Part] = if base.card.classes == p.data.classes { &[Part::Backbone, Part::Head] } else { &[Part::Backbone] };
        params.assign(&base.params.tensors(), parts)?;
        params.freeze_backbone(req.freeze_backbone);
    }
    let task = ImageTask {
        data: &p.data,
        prep: &p.prep,
        model: model.as_ref(),
        train: p.data.indices(Split::Train),
        val: p.data.indices(Split::Val),
        augment: req.augment,
        device: &req.device,
        soft,
    };
    let outcome = fit(&params, &task, &req.config, ctl)?;
    Ok(Trained { params, model, outcome })
}

fn compare(architecture: &str, accuracy: f64, params: usize, size: u64, latency: Latency) -> Comparison {
    Comparison { architecture: architecture.into(), accuracy, parameters: params, size_bytes: size, latency_ms_per_image: latency }
}

fn card(req: &TrainRequest, p: &Prepared, t: &Trained, metrics: serde_json::Value) -> Result<ModelCard> {
    Ok(ModelCard {
        format: artifact::FORMAT.into(),
        format_version: artifact::FORMAT_VERSION,
        family: "image".into(),
        architecture: p.architecture.clone(),
        classes: p.data.classes.clone(),
        preprocessing: json(&p.prep),
        training: serde_json::json!({
            "config": json(&req.config),
            "split": json(&req.split),
            "seed": req.config.seed,
            "split_seed": req.split_seed,
            "augment": json(&req.augment),
            "base_model": p.base.as_ref().map(|b| b.card.architecture.clone()),
            "frozen_backbone": req.freeze_backbone,
            "teacher": req.teacher.as_ref().map(|t| serde_json::json!({"alpha": t.alpha, "temperature": t.temperature})),
            "epochs_run": t.outcome.history.len(),
            "best_epoch": t.outcome.best_epoch,
        }),
        dataset: DatasetRef { file: p.data.file_name.clone(), sha256: p.data.sha256.clone(), examples: p.data.examples.len() },
        metrics,
        parameters: t.params.count(),
        engine: ModelCard::engine(),
    })
}

/// These plain structs always serialise; `Null` cannot happen in practice.
fn json(value: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let json = serde_json::to_vec_pretty(value).map_err(|e| MlError::Incompatible(e.to_string()))?;
    std::fs::write(path, json).map_err(MlError::io(path))
}

/// Trains, evaluates and writes `out/{model.safetensors, model.json, report.json}`.
pub fn train(req: &TrainRequest, ctl: Control<'_>) -> Result<Report> {
    check(req)?;
    let p = prepare(req)?;
    let (held_split, held) = held_out(&p.data);
    let soft = req.teacher.as_ref().zip(p.teacher.as_ref()).map(|(t, m)| SoftTargets {
        teacher: m.model.as_ref(),
        alpha: t.alpha,
        temperature: t.temperature,
    });
    let Control { on_event, cancel, checkpoint_dir, resume } = ctl;
    let checkpoints = checkpoint_dir.map_or_else(|| req.out.join("checkpoints"), Path::to_path_buf);
    let trained = train_one(req, &p, soft, Control { on_event, cancel, checkpoint_dir: Some(&checkpoints), resume })?;

    let shape = p.prep.shape();
    let evaluation = if held.is_empty() {
        None
    } else {
        let (metrics, outcomes) = classify_each(trained.model.as_ref(), &p.data, &p.prep, &held, &req.device)?;
        Some((metrics, outcomes, latency(trained.model.as_ref(), shape, &req.device)?))
    };
    let summary = evaluation.as_ref().map_or(serde_json::Value::Null, |(m, _, _)| {
        serde_json::json!({"split": format!("{held_split:?}").to_lowercase(), "accuracy": m.accuracy, "macro_f1": m.macro_f1, "ece": m.ece})
    });
    artifact::save(&req.out, &card(req, &p, &trained, summary)?, &trained.params)?;
    let size = artifact::size_on_disk(&req.out);
    let baselines = if held.is_empty() { None } else { Some(baselines(req, &p, &held)?) };
    let thumbnails = thumbnails(&p.data, &held, evaluation.as_ref().map(|e| e.1.as_slice()).unwrap_or_default());
    let evaluation = evaluation.map(|(metrics, outcomes, latency)| Evaluation {
        split: format!("{held_split:?}").to_lowercase(),
        metrics,
        outcomes,
        latency_ms_per_image: latency,
        parameters: trained.params.count(),
        artifact_bytes: size,
    });

    let distillation = match (&req.teacher, &p.teacher, &evaluation) {
        (Some(t), Some(teacher), Some(student_eval)) => {
            // The same student, seed and data without the teacher: the
            // comparison that says whether distillation helped.
            let mut quiet = |_: crate::train::Event<'_>| {};
            let baseline = train_one(req, &p, None, Control { on_event: &mut quiet, cancel, checkpoint_dir: None, resume: false })?;
            let base_acc = classify(baseline.model.as_ref(), &p.data, &p.prep, &held, &req.device)?.accuracy;
            let base_latency = latency(baseline.model.as_ref(), shape, &req.device)?;
            let teacher_acc = classify(teacher.model.as_ref(), &p.data, &p.prep, &held, &req.device)?.accuracy;
            let teacher_latency = latency(teacher.model.as_ref(), shape, &req.device)?;
            let student = compare(
                &p.architecture,
                student_eval.metrics.accuracy,
                trained.params.count(),
                size,
                student_eval.latency_ms_per_image.clone(),
            );
            let teacher_cmp =
                compare(&teacher.card.architecture, teacher_acc, teacher.params.count(), artifact::size_on_disk(&t.dir), teacher_latency);
            let baseline_cmp = compare(&p.architecture, base_acc, baseline.params.count(), size, base_latency);
            Some(distillation_summary(t, teacher_cmp, student, baseline_cmp))
        }
        _ => None,
    };
    let report = Report {
        family: "image",
        task: if req.teacher.is_some() {
            "distill"
        } else if req.base.is_some() {
            "fine_tune"
        } else {
            "train"
        },
        architecture: p.architecture.clone(),
        classes: p.data.classes.clone(),
        dataset: DatasetInfo {
            file: p.data.file_name.clone(),
            sha256: p.data.sha256.clone(),
            images: p.data.examples.len(),
            classes: p.data.classes.len(),
            input: shape,
            split: SplitCounts {
                method: p.data.split_method,
                seed: req.split_seed,
                train: p.data.indices(Split::Train).len(),
                val: p.data.indices(Split::Val).len(),
                test: p.data.indices(Split::Test).len(),
            },
        },
        config: req.config.clone(),
        augment: req.augment,
        device: crate::device::device_name(&req.device),
        base_model: p.base.as_ref().map(|b| b.card.architecture.clone()),
        frozen_backbone: req.freeze_backbone,
        training: trained.outcome,
        evaluation,
        distillation,
        baselines,
        thumbnails,
    };
    write_json(&req.out.join("report.json"), &report)?;
    Ok(report)
}

fn baselines(req: &TrainRequest, p: &Prepared, held: &[usize]) -> Result<Baselines> {
    let mut counts = vec![0usize; p.data.classes.len()];
    for i in p.data.indices(Split::Train) {
        counts[p.data.label(i)] += 1;
    }
    // Most frequent; ties go to the first class, as scikit-learn's does.
    let majority = counts.iter().enumerate().fold(0, |best, (c, &n)| if n > counts[best] { c } else { best });
    let hits = held.iter().filter(|&&i| p.data.label(i) == majority).count();
    let base_model = match &p.base {
        None => None,
        Some(base) if base.card.classes == p.data.classes => {
            let m = classify(base.model.as_ref(), &p.data, &base.preprocess, held, &req.device)?;
            Some(BaseModelScore {
                architecture: base.card.architecture.clone(),
                accuracy: Some(m.accuracy),
                macro_f1: Some(m.macro_f1),
                note: "the base model before fine-tuning, on the same examples".into(),
            })
        }
        Some(base) => Some(BaseModelScore {
            architecture: base.card.architecture.clone(),
            accuracy: None,
            macro_f1: None,
            note: format!(
                "the base model predicts other classes ([{}]); its head was replaced, so it cannot be scored on this data",
                base.card.classes.join(", ")
            ),
        }),
    };
    Ok(Baselines {
        majority_class: p.data.classes[majority].clone(),
        majority_accuracy: if held.is_empty() { 0.0 } else { hits as f64 / held.len() as f64 },
        base_model,
    })
}

/// Thumbnails of the mistakes (most confident first), then of other
/// held-out examples, up to `THUMBNAILS`.
fn thumbnails(
    data: &ImageSet,
    held: &[usize],
    outcomes: &[tenfold_domain::report::ExampleOutcome],
) -> std::collections::BTreeMap<String, String> {
    let mut order: Vec<(usize, &tenfold_domain::report::ExampleOutcome)> = held.iter().copied().zip(outcomes).collect();
    order.sort_by(|a, b| a.1.score.total_cmp(&b.1.score).then(b.1.confidence.total_cmp(&a.1.confidence)));
    order.into_iter().take(THUMBNAILS).filter_map(|(i, o)| Some((o.id.clone(), data.thumbnail(i)?))).collect()
}

fn distillation_summary(t: &Teacher, teacher: Comparison, student: Comparison, baseline: Comparison) -> Distillation {
    let retained = if teacher.accuracy > 0.0 { student.accuracy / teacher.accuracy } else { 0.0 };
    let parameter_ratio = student.parameters as f64 / teacher.parameters.max(1) as f64;
    let speed = |t: f64, s: f64| if s > 0.0 { t / s } else { 0.0 };
    let speedup_batch_1 = speed(teacher.latency_ms_per_image.batch_1_ms, student.latency_ms_per_image.batch_1_ms);
    let speedup_batch_64 = speed(teacher.latency_ms_per_image.batch_64_ms, student.latency_ms_per_image.batch_64_ms);
    let beats_baseline = student.accuracy > baseline.accuracy;
    let verdict = format!(
        "the student keeps {:.1}% of the teacher's accuracy with {:.1}% of its parameters and is {:.1}× faster per image at batch 1; \
         distillation {} the same student trained without the teacher ({:.4} vs {:.4})",
        retained * 100.0,
        parameter_ratio * 100.0,
        speedup_batch_1,
        if beats_baseline {
            "beat"
        } else if student.accuracy == baseline.accuracy {
            "tied with"
        } else {
            "did not beat"
        },
        student.accuracy,
        baseline.accuracy
    );
    Distillation {
        alpha: t.alpha,
        temperature: t.temperature,
        accuracy_retained: retained,
        parameter_ratio,
        speedup_batch_1,
        speedup_batch_64,
        beats_baseline,
        verdict,
        teacher,
        student,
        baseline,
    }
}
