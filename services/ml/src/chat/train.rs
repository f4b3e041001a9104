//! Fine-tuning a pretrained BERT encoder into an intent router
//! (`chat-intent`): encoder, mean pooling and a linear head, all trained
//! (or the lower layers frozen), then the hand-over threshold chosen on the
//! validation split and the approved replies embedded.
//!
//! Distillation (`chat-distill`) makes a smaller router from a fine-tuned
//! one: the student keeps the teacher's embeddings, some of its layers
//! (evenly spaced, the top one included) and its head, and learns from the
//! teacher's soft labels as well as the intents (`crate::distill`). The
//! same student trained on the intents alone is the baseline it is
//! compared with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{D, Device, Tensor};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::base::{self, BertConfig, BertFolder};
use super::data::ChatSet;
use super::encoder::{Encoder, mean_pool, normalise};
use super::evaluate::{ChatEvaluation, choose_threshold, evaluate_split};
use super::model::{ChatModel, ChatSettings, HEAD_BIAS, HEAD_WEIGHT, Reply, save_replies};
use super::text::{Coverage, TextEncoder};
use crate::artifact::{self, DatasetRef, ModelCard};
use crate::distill::Softening;
use crate::metrics::argmax;
use crate::params::{Params, Part, Role};
use crate::split::SplitSpec;
use crate::train::{BatchLoss, Control, Goal, Metrics, Outcome, Task, TrainConfig, fit};
use crate::{MlError, Result};

pub const ARCHITECTURE: &str = "bert-intent";
const EVAL_BATCH: usize = 64;

#[derive(Debug, Clone)]
pub struct ChatTrainRequest {
    pub data: PathBuf,
    pub out: PathBuf,
    /// A BERT folder (a pretrained base) or a Tenfold chat model.
    pub base: PathBuf,
    pub config: TrainConfig,
    pub split: SplitSpec,
    pub split_seed: u64,
    pub max_len: usize,
    /// The embeddings and this many lower layers are not trained.
    pub freeze_layers: usize,
    /// The embedding tables are not trained (words the training data lacks
    /// keep their pretrained neighbours).
    pub freeze_embeddings: bool,
    pub target_precision: f64,
    pub handoff_message: String,
    /// A distillation of the chat model in `base` (the teacher).
    pub student: Option<StudentSpec>,
    pub device: Device,
}

/// A distillation's student: this many of the teacher's layers, and how
/// much the teacher's soft labels weigh.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StudentSpec {
    pub layers: usize,
    pub softening: Softening,
}

/// The student architecture of `layers` encoder layers.
pub fn student_architecture(layers: usize) -> String {
    format!("{ARCHITECTURE}-l{layers}")
}

/// The teacher layers a student of `n` starts from: evenly spaced, the
/// teacher's top layer (the one its head reads) last.
pub fn student_layers(teacher: usize, n: usize) -> Vec<usize> {
    (1..=n).map(|i| (i * teacher).div_ceil(n).saturating_sub(1)).collect()
}

/// The teacher's weights a student starts from: the embeddings and the
/// chosen layers, renumbered from 0.
fn student_weights(weights: &BTreeMap<String, Tensor>, layers: &[usize]) -> BTreeMap<String, Tensor> {
    weights
        .iter()
        .filter_map(|(name, tensor)| match name.strip_prefix("encoder.layer.") {
            None => Some((name.clone(), tensor.clone())),
            Some(rest) => {
                let (layer, tail) = rest.split_once('.')?;
                let to = layers.iter().position(|&l| layer.parse() == Ok(l))?;
                Some((format!("encoder.layer.{to}.{tail}"), tensor.clone()))
            }
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatReport {
    pub task: String,
    pub architecture: String,
    pub intents: Vec<String>,
    pub base: BertConfigSummary,
    pub examples: BTreeMap<String, usize>,
    pub tokenizer_coverage: Coverage,
    pub warnings: Vec<String>,
    pub training: Outcome,
    pub threshold: f64,
    pub evaluation: Option<ChatEvaluation>,
    /// Teacher, student and baseline side by side (a distillation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distillation: Option<ChatDistillation>,
}

/// One model of a distillation's comparison, on the same test split.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatComparison {
    pub architecture: String,
    pub layers: usize,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub parameters: usize,
    pub size_bytes: u64,
    pub batch_1_ms: f64,
    pub batch_32_ms: f64,
    #[serde(default)]
    pub batch_64_ms_per_example: f64,
}

impl ChatComparison {
    fn of(architecture: &str, layers: usize, e: &ChatEvaluation) -> Self {
        Self {
            architecture: architecture.to_owned(),
            layers,
            accuracy: e.metrics.accuracy,
            macro_f1: e.metrics.macro_f1,
            parameters: e.parameters,
            size_bytes: e.artifact_bytes,
            batch_1_ms: e.speed.batch_1_ms,
            batch_32_ms: e.speed.batch_32_ms,
            batch_64_ms_per_example: e.speed.batch_64_ms_per_example,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatDistillation {
    pub alpha: f64,
    pub temperature: f64,
    /// The teacher layers the student started from.
    pub teacher_layers: Vec<usize>,
    pub teacher: ChatComparison,
    pub student: ChatComparison,
    /// The same student, started the same way, trained on the intents
    /// alone (same seed and data): what the soft labels added.
    pub baseline: ChatComparison,
    pub accuracy_retained: f64,
    pub speedup_batch_1: f64,
    pub speedup_batch_32: f64,
    pub beats_baseline: bool,
    pub verdict: String,
}

impl ChatDistillation {
    fn new(
        spec: &StudentSpec,
        teacher_layers: Vec<usize>,
        teacher: ChatComparison,
        student: ChatComparison,
        baseline: ChatComparison,
    ) -> Self {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let accuracy_retained = ratio(student.accuracy, teacher.accuracy);
        let speedup_batch_1 = ratio(teacher.batch_1_ms, student.batch_1_ms);
        let speedup_batch_32 = ratio(teacher.batch_32_ms, student.batch_32_ms);
        let beats_baseline = student.accuracy > baseline.accuracy;
        let against = if beats_baseline {
            "beat"
        } else if student.accuracy == baseline.accuracy {
            "tied with"
        } else {
            "did not beat"
        };
        let verdict = format!(
            "the {}-layer student keeps {:.1}% of the teacher's accuracy ({:.4} vs {:.4}) with {:.1}% of its parameters and answers \
             {:.1}× faster at batch 1 ({:.1}× at batch 32); the teacher's soft labels {against} the same student trained on the intents \
             alone ({:.4})",
            student.layers,
            accuracy_retained * 100.0,
            student.accuracy,
            teacher.accuracy,
            ratio(student.parameters as f64, teacher.parameters as f64) * 100.0,
            speedup_batch_1,
            speedup_batch_32,
            baseline.accuracy
        );
        Self {
            alpha: spec.softening.alpha,
            temperature: spec.softening.temperature,
            teacher_layers,
            teacher,
            student,
            baseline,
            accuracy_retained,
            speedup_batch_1,
            speedup_batch_32,
            beats_baseline,
            verdict,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BertConfigSummary {
    pub layers: usize,
    pub hidden_size: usize,
    pub parameters: usize,
    pub frozen_layers: usize,
}

/// Intent classification over the training copy of the encoder.
struct IntentTask<'a> {
    params: &'a Params,
    config: &'a BertConfig,
    text: &'a TextEncoder,
    seqs: Vec<Vec<u32>>,
    labels: Vec<u32>,
    train: Vec<usize>,
    val: Vec<usize>,
    /// A distillation: the teacher's logits for every example, and their weight.
    soft: Option<(&'a Tensor, Softening)>,
    device: Device,
}

impl IntentTask<'_> {
    /// Logits of examples `rows`; `rng` selects training mode (dropout).
    fn logits(&self, rows: &[usize], mut rng: Option<&mut ChaCha8Rng>) -> Result<Tensor> {
        let encoder = Encoder::over(self.params, self.config)?;
        let seqs: Vec<&[u32]> = rows.iter().map(|&i| self.seqs[i].as_slice()).collect();
        let batch = self.text.batch(&seqs, &self.device)?;
        let hidden = encoder.forward(&batch, rng.as_deref_mut())?;
        let pooled = mean_pool(&hidden, &batch.mask)?;
        let pooled = match rng {
            Some(rng) => super::encoder::dropout(&pooled, self.config.hidden_dropout_prob, Some(rng))?,
            None => pooled,
        };
        let head = |n: &str| self.params.get(n).map(|p| p.var.as_tensor().clone()).ok_or_else(|| MlError::Incompatible(n.into()));
        Ok(pooled.matmul(&head(HEAD_WEIGHT)?.t()?)?.broadcast_add(&head(HEAD_BIAS)?)?)
    }

    fn labels(&self, rows: &[usize]) -> Result<Tensor> {
        Ok(Tensor::from_vec(rows.iter().map(|&i| self.labels[i]).collect::<Vec<u32>>(), rows.len(), &self.device)?)
    }

    /// Probabilities of `rows` in evaluation mode.
    fn probabilities(&self, rows: &[usize]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(EVAL_BATCH) {
            let logits = self.logits(chunk, None)?;
            out.extend(candle_nn::ops::softmax(&logits, D::Minus1)?.to_device(&Device::Cpu)?.to_vec2::<f32>()?);
        }
        Ok(out)
    }
}

impl Task for IntentTask<'_> {
    fn train_len(&self) -> usize {
        self.train.len()
    }

    fn loss(&self, batch: &[usize], rng: &mut ChaCha8Rng) -> Result<BatchLoss> {
        let rows: Vec<usize> = batch.iter().map(|&i| self.train[i]).collect();
        let logits = self.logits(&rows, Some(rng))?;
        let labels = self.labels(&rows)?;
        let predicted = logits.argmax(D::Minus1)?.to_device(&Device::Cpu)?.to_vec1::<u32>()?;
        let correct = predicted.iter().zip(&rows).filter(|(p, i)| **p == self.labels[**i]).count();
        let loss = match self.soft {
            None => candle_nn::loss::cross_entropy(&logits, &labels)?,
            Some((teacher, softening)) => {
                let index = Tensor::from_vec(rows.iter().map(|&i| i as u32).collect::<Vec<u32>>(), rows.len(), teacher.device())?;
                crate::distill::loss(&logits, &teacher.index_select(&index, 0)?, &labels, softening)?
            }
        };
        Ok(BatchLoss { loss, correct: Some(correct) })
    }

    fn validate(&self) -> Result<Option<Metrics>> {
        if self.val.is_empty() {
            return Ok(None);
        }
        let probs = self.probabilities(&self.val)?;
        let (mut right, mut loss) = (0usize, 0f64);
        for (row, &i) in probs.iter().zip(&self.val) {
            let label = self.labels[i] as usize;
            right += usize::from(argmax(row) == label);
            loss -= f64::from(row[label].max(1e-12)).ln();
        }
        let n = self.val.len() as f64;
        Ok(Some(Metrics::from([("val_accuracy".to_owned(), right as f64 / n), ("val_loss".to_owned(), loss / n)])))
    }

    fn monitor(&self) -> (&'static str, Goal) {
        ("val_accuracy", Goal::Maximize)
    }
}

/// A trained intent head: its intents, weight and bias.
type Head = (Vec<String>, Tensor, Tensor);

/// The encoder to start from: a BERT folder, or a Tenfold chat model
/// (fine-tuning it further; its head is replaced when the intents differ).
fn open_base(req: &ChatTrainRequest) -> Result<(BertFolder, Option<Head>)> {
    let mut folder = BertFolder::open(&req.base, req.max_len, &req.device)?;
    let is_tenfold = req.base.join(artifact::CARD).is_file();
    let head = if is_tenfold {
        let card = artifact::read_card(&req.base)?;
        artifact::expect_family(&req.base, &card, "chat")?;
        match (folder.weights.remove(HEAD_WEIGHT), folder.weights.remove(HEAD_BIAS)) {
            (Some(w), Some(b)) => Some((card.classes, w, b)),
            _ => None,
        }
    } else {
        None
    };
    Ok((folder, head))
}

/// The data and the base, read and checked once for every run of a job.
struct Prepared {
    folder: BertFolder,
    /// The base's intent head, when it is a Tenfold chat model.
    old_head: Option<Head>,
    set: ChatSet,
    coverage: Coverage,
    /// Token ids of every example, and its intent.
    seqs: Vec<Vec<u32>>,
    labels: Vec<u32>,
    train: Vec<usize>,
    val: Vec<usize>,
}

fn prepare(req: &ChatTrainRequest) -> Result<Prepared> {
    if !(0.0..=1.0).contains(&req.target_precision) {
        return Err(MlError::arg("targetPrecision", format!("{} is not a share between 0 and 1", req.target_precision)));
    }
    let (folder, old_head) = open_base(req)?;
    let set = ChatSet::load(&req.data, req.split, req.split_seed)?;
    let train = set.distinct(&set.train);
    if train.is_empty() {
        return Err(MlError::arg("split", "the training split is empty; give it more than 0% or add conversations"));
    }
    let train_texts: Vec<&str> = train.iter().map(|&i| set.examples[i].text.as_str()).collect();
    let coverage = folder.text.coverage(&train_texts)?;
    coverage.check(&req.data)?;
    let all_texts: Vec<&str> = set.examples.iter().map(|e| e.text.as_str()).collect();
    let seqs = folder.text.ids(&all_texts)?;
    let labels = set.examples.iter().map(|e| e.intent as u32).collect();
    let val = set.distinct(&set.val);
    Ok(Prepared { folder, old_head, set, coverage, seqs, labels, train, val })
}

/// What one run starts from.
struct Start<'a> {
    architecture: String,
    config: BertConfig,
    weights: &'a BTreeMap<String, Tensor>,
    /// An intent head for exactly the data's intents, if there is one.
    head: Option<(&'a Tensor, &'a Tensor)>,
}

/// What one run wrote into its folder.
struct Run {
    outcome: Outcome,
    threshold: f64,
    evaluation: Option<ChatEvaluation>,
}

pub fn train(req: &ChatTrainRequest, control: Control<'_>) -> Result<ChatReport> {
    let p = prepare(req)?;
    let head = p.old_head.as_ref().filter(|(intents, ..)| *intents == p.set.intents).map(|(_, w, b)| (w, b));
    let Some(spec) = req.student else {
        if req.freeze_layers > p.folder.config.num_hidden_layers {
            return Err(MlError::arg(
                "freezeLayers",
                format!("{} is more than the base model's {} layers", req.freeze_layers, p.folder.config.num_hidden_layers),
            ));
        }
        let start = Start { architecture: ARCHITECTURE.into(), config: p.folder.config.clone(), weights: &p.folder.weights, head };
        let run = run(req, &p, &start, None, &req.out, control)?;
        return write_report(req, &p, &start, run, None);
    };

    // A distillation: the base is the teacher, a fine-tuned chat model of these intents.
    let teacher = ChatModel::load(&req.base, &req.device).map_err(|e| {
        MlError::arg("teacher", format!("a distillation's teacher is a fine-tuned chat model (model.json, intent head, replies): {e}"))
    })?;
    if teacher.card.classes != p.set.intents {
        return Err(MlError::arg(
            "teacher",
            format!(
                "the teacher routes {} intents ({}), the dataset has {} ({}); distil on data with the teacher's intents",
                teacher.card.classes.len(),
                teacher.card.classes.join(", "),
                p.set.intents.len(),
                p.set.intents.join(", ")
            ),
        ));
    }
    let teacher_depth = p.folder.config.num_hidden_layers;
    if spec.layers == 0 || spec.layers >= teacher_depth {
        return Err(MlError::arg(
            "architecture",
            format!("a student has fewer layers than its teacher's {teacher_depth}; choose 1 to {}", teacher_depth.saturating_sub(1)),
        ));
    }
    if req.freeze_layers > spec.layers {
        return Err(MlError::arg("freezeLayers", format!("{} is more than the student's {} layers", req.freeze_layers, spec.layers)));
    }
    let layers = student_layers(teacher_depth, spec.layers);
    let weights = student_weights(&p.folder.weights, &layers);
    let mut config = p.folder.config.clone();
    config.num_hidden_layers = spec.layers;
    let start = Start { architecture: student_architecture(spec.layers), config, weights: &weights, head };
    // The teacher's logits once, in evaluation mode, on the texts the student reads.
    let teacher_logits = teacher.logits(&p.seqs)?;
    let Control { on_event, cancel, checkpoint_dir, resume } = control;
    let student =
        run(req, &p, &start, Some((&teacher_logits, spec.softening)), &req.out, Control { on_event, cancel, checkpoint_dir, resume })?;
    // The baseline: the same start, seed and data, the intents alone.
    let scratch = tempfile::tempdir().map_err(MlError::io(std::env::temp_dir()))?;
    let mut quiet = |_: crate::train::Event<'_>| {};
    let quiet = Control { on_event: &mut quiet, cancel, checkpoint_dir: None, resume: false };
    let baseline = run(req, &p, &start, None, scratch.path(), quiet)?;
    let distillation = match (&student.evaluation, &baseline.evaluation) {
        (Some(s), Some(b)) => {
            let t = evaluate_split(&teacher, &p.set, &p.set.test, "test", &req.base)?;
            Some(ChatDistillation::new(
                &spec,
                layers,
                ChatComparison::of(&teacher.card.architecture, teacher_depth, &t),
                ChatComparison::of(&start.architecture, spec.layers, s),
                ChatComparison::of(&start.architecture, spec.layers, b),
            ))
        }
        _ => None,
    };
    write_report(req, &p, &start, student, distillation)
}

/// Trains from `start` (with the teacher's logits in a distillation) and
/// writes the model folder `out`: Hugging Face files, replies, the card
/// last; then evaluates it on the test split.
fn run(
    req: &ChatTrainRequest,
    p: &Prepared,
    start: &Start<'_>,
    soft: Option<(&Tensor, Softening)>,
    out: &Path,
    control: Control<'_>,
) -> Result<Run> {
    let config = &start.config;
    let mut params = Params::new(req.config.seed, &req.device);
    Encoder::adopt(&mut params, start.weights, config)?;
    let classes = p.set.intents.len();
    match start.head {
        Some((w, b)) => {
            params.adopt(HEAD_WEIGHT, w, Role::Weight, Part::Head)?;
            params.adopt(HEAD_BIAS, b, Role::Weight, Part::Head)?;
        }
        None => {
            params.normal(HEAD_WEIGHT, &[classes, config.hidden_size], config.initializer_range, Part::Head)?;
            params.constant(HEAD_BIAS, &[classes], 0.0, Role::Weight, Part::Head)?;
        }
    }
    if req.freeze_layers > 0 || req.freeze_embeddings {
        let frozen = req.freeze_layers;
        params.freeze_where(|name| {
            name.starts_with("embeddings.")
                || name
                    .strip_prefix("encoder.layer.")
                    .and_then(|rest| rest.split('.').next()?.parse::<usize>().ok())
                    .is_some_and(|layer| layer < frozen)
        });
    }
    let text = &p.folder.text;
    let task = IntentTask {
        params: &params,
        config,
        text,
        seqs: p.seqs.clone(),
        labels: p.labels.clone(),
        train: p.train.clone(),
        val: p.val.clone(),
        soft,
        device: req.device.clone(),
    };
    let outcome = fit(&params, &task, &req.config, control)?;

    // The hand-over threshold: on validation, else (no validation split) on training.
    let calibrate = if task.val.is_empty() { &task.train } else { &task.val };
    let probs = task.probabilities(calibrate)?;
    let (confidence, correct): (Vec<f64>, Vec<bool>) = probs
        .iter()
        .zip(calibrate)
        .map(|(row, &i)| {
            let best = argmax(row);
            (f64::from(row[best]), best == task.labels[i] as usize)
        })
        .unzip();
    let threshold = choose_threshold(&confidence, &correct, req.target_precision);

    // The approved replies, embedded by the trained encoder.
    let set = &p.set;
    let replies: Vec<Reply> = set.replies().into_iter().map(|(intent, text)| Reply { intent: set.intents[intent].clone(), text }).collect();
    let reply_embeddings = if replies.is_empty() { None } else { Some(embed(&task, &replies)?) };

    base::write_config_and_tokenizer(out, config, &req.base)?;
    params.save(&out.join(base::WEIGHTS))?;
    save_replies(out, &replies, reply_embeddings.as_ref())?;
    let settings = ChatSettings {
        max_len: text.max_len(),
        pooling: "mean".into(),
        threshold,
        target_precision: req.target_precision,
        handoff_message: req.handoff_message.clone(),
    };
    let card = ModelCard {
        format: artifact::FORMAT.into(),
        format_version: artifact::FORMAT_VERSION,
        family: "chat".into(),
        architecture: start.architecture.clone(),
        classes: set.intents.clone(),
        preprocessing: serde_json::to_value(&settings).map_err(|e| MlError::Incompatible(e.to_string()))?,
        training: json!({
            "task": task_name(req),
            "config": req.config,
            "split": req.split,
            "split_seed": req.split_seed,
            "freeze_layers": req.freeze_layers,
            "freeze_embeddings": req.freeze_embeddings,
            "base": { "layers": config.num_hidden_layers, "hidden_size": config.hidden_size },
            "distillation": soft.map(|(_, s)| json!({ "alpha": s.alpha, "temperature": s.temperature })),
        }),
        dataset: DatasetRef { file: set.file.clone(), sha256: set.sha256.clone(), examples: set.examples.len() },
        metrics: json!({}),
        parameters: params.count(),
        engine: ModelCard::engine(),
    };
    artifact::write_card(out, &card)?;
    let model = ChatModel::load(out, &req.device)?;
    let evaluation = if set.test.is_empty() { None } else { Some(evaluate_split(&model, set, &set.test, "test", out)?) };
    Ok(Run { outcome, threshold, evaluation })
}

fn task_name(req: &ChatTrainRequest) -> &'static str {
    if req.student.is_some() { "chat-distill" } else { "chat-intent" }
}

/// Writes `report.json` beside the model.
fn write_report(
    req: &ChatTrainRequest,
    p: &Prepared,
    start: &Start<'_>,
    run: Run,
    distillation: Option<ChatDistillation>,
) -> Result<ChatReport> {
    let mut warnings = p.coverage.warnings();
    if run.threshold >= 1.0 {
        warnings.push(format!(
            "no confidence threshold reaches the target precision {:.2} on the validation split: the model hands every conversation over; \
             add examples per intent or lower the target",
            req.target_precision
        ));
    }
    let report = ChatReport {
        task: task_name(req).into(),
        architecture: start.architecture.clone(),
        intents: p.set.intents.clone(),
        base: BertConfigSummary {
            layers: start.config.num_hidden_layers,
            hidden_size: start.config.hidden_size,
            parameters: start.config.parameters(),
            frozen_layers: req.freeze_layers,
        },
        examples: BTreeMap::from([
            ("train".to_owned(), p.train.len()),
            ("val".to_owned(), p.val.len()),
            ("test".to_owned(), p.set.distinct(&p.set.test).len()),
        ]),
        tokenizer_coverage: p.coverage.clone(),
        warnings,
        training: run.outcome,
        threshold: run.threshold,
        evaluation: run.evaluation,
        distillation,
    };
    let path = req.out.join(artifact::REPORT);
    let json = serde_json::to_vec_pretty(&report).map_err(|e| MlError::Incompatible(e.to_string()))?;
    std::fs::write(&path, json).map_err(MlError::io(&path))?;
    Ok(report)
}

/// Unit embeddings of the replies (evaluation mode).
fn embed(task: &IntentTask<'_>, replies: &[Reply]) -> Result<Tensor> {
    let encoder = Encoder::over(task.params, task.config)?;
    let texts: Vec<&str> = replies.iter().map(|r| r.text.as_str()).collect();
    let ids = task.text.ids(&texts)?;
    let mut parts = vec![];
    for chunk in ids.chunks(EVAL_BATCH) {
        let seqs: Vec<&[u32]> = chunk.iter().map(Vec::as_slice).collect();
        let batch = task.text.batch(&seqs, &task.device)?;
        // Detached: a tensor computed from trainable weights keeps every
        // activation of its graph alive for a backward pass never taken.
        parts.push(normalise(&mean_pool(&encoder.forward(&batch, None)?, &batch.mask)?)?.detach());
    }
    Ok(Tensor::cat(&parts, 0)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_student_takes_evenly_spaced_teacher_layers_ending_with_the_top_one() {
        assert_eq!(student_layers(6, 1), [5]);
        assert_eq!(student_layers(6, 2), [2, 5]);
        assert_eq!(student_layers(6, 3), [1, 3, 5]);
        assert_eq!(student_layers(12, 4), [2, 5, 8, 11]);
        assert_eq!(student_architecture(2), "bert-intent-l2");
    }

    #[test]
    fn the_student_s_layers_are_the_chosen_teacher_layers_renumbered() {
        let d = Device::Cpu;
        let t = |v: f32| Tensor::new(&[v], &d).unwrap();
        let weights = BTreeMap::from([
            ("embeddings.word_embeddings.weight".to_owned(), t(9.0)),
            ("encoder.layer.0.output.dense.weight".to_owned(), t(0.0)),
            ("encoder.layer.2.output.dense.weight".to_owned(), t(2.0)),
            ("encoder.layer.5.output.dense.weight".to_owned(), t(5.0)),
            ("encoder.layer.5.attention.self.query.bias".to_owned(), t(5.5)),
        ]);
        let student = student_weights(&weights, &[2, 5]);
        let value = |n: &str| student[n].to_vec1::<f32>().unwrap()[0];
        assert_eq!(student.len(), 4, "{:?}", student.keys().collect::<Vec<_>>());
        assert_eq!(value("embeddings.word_embeddings.weight"), 9.0);
        assert_eq!(value("encoder.layer.0.output.dense.weight"), 2.0);
        assert_eq!(value("encoder.layer.1.output.dense.weight"), 5.0);
        assert_eq!(value("encoder.layer.1.attention.self.query.bias"), 5.5);
    }
}
