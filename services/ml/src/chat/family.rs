//! The customer-service chat family behind the family seam.

use std::path::Path;

use candle_core::Device;
use serde_json::{Value, json};
use tenfold_domain::report::ModelReport;
use tenfold_domain::{Architecture, ArtifactInfo, DataStats, DomainError, Estimate, Family, FamilyPlan, JobKind, JobShape, ParamSpec};

use super::base::BertFolder;
use super::evaluate::{ChatEvaluation, evaluate};
use super::model::ChatModel;
use super::train::{ARCHITECTURE, ChatReport, ChatTrainRequest, StudentSpec, train};
use crate::distill::Softening;
use crate::family::{Evaluated, ModelFamily, ServeInput, Served, TrainJob, Trained};
use crate::optim::OptimizerConfig;
use crate::schedule::Schedule;
use crate::split::SplitSpec;
use crate::train::{Control, EarlyStopping, TrainConfig};
use crate::{MlError, Result};

/// The distillation students, by their number of layers (1, 2, 3).
pub const STUDENTS: [&str; 3] = ["bert-intent-l1", "bert-intent-l2", "bert-intent-l3"];

/// What the model says when it is not confident enough to answer.
pub const HANDOFF_MESSAGE: &str = "I'm not sure I understood. Let me connect you with someone from our team.";

pub struct ChatFamily {
    architectures: Vec<Architecture>,
    hyperparameters: Vec<ParamSpec>,
}

impl ChatFamily {
    pub fn new() -> Self {
        // Measured with all-MiniLM-L6-v2 on 2 cores (docs/benchmarks.md);
        // the students' speeds scale the teacher's by depth.
        let student = |name, description, layers: u64, samples_per_s| Architecture {
            name,
            description,
            cpu_samples_per_s: samples_per_s,
            parameters: 11_900_000 + layers * 1_770_000,
            activations_per_sample: 400_000 * layers / 6,
            student: true,
        };
        let architectures = vec![
            Architecture {
                name: ARCHITECTURE,
                description: "the base BERT encoder (e.g. all-MiniLM-L6-v2), mean pooling and a linear intent head, all fine-tuned",
                cpu_samples_per_s: 40.0,
                parameters: 22_700_000,
                activations_per_sample: 400_000,
                student: false,
            },
            student(STUDENTS[0], "a distillation student: the teacher's embeddings, top layer and head", 1, 150.0),
            student(STUDENTS[1], "a distillation student: the teacher's embeddings, two of its layers and head", 2, 100.0),
            student(STUDENTS[2], "a distillation student: the teacher's embeddings, three of its layers and head", 3, 75.0),
        ];
        let hyperparameters = vec![
            ParamSpec::integer("epochs", 1, 100, Some(5), "passes over the training split"),
            ParamSpec::integer("batchSize", 1, 256, Some(16), "conversations per step"),
            ParamSpec::positive("learningRate", 1.0, Some(5e-5), "AdamW's step size"),
            ParamSpec::choice(
                "schedule",
                &["constant", "cosine", "step"],
                false,
                "cosine",
                "how the learning rate changes over the epochs",
            ),
            ParamSpec::integer("warmupSteps", 0, 100_000, Some(0), "steps of linear learning-rate warm-up"),
            ParamSpec::positive("clipGradNorm", 1e6, Some(1.0), "clip the global gradient norm to this value"),
            ParamSpec::integer("patience", 0, 100, None, "stop after this many epochs without validation improvement"),
            ParamSpec::split("split", "80/10/10", "train/validation/test percentages of the distinct user messages"),
            ParamSpec::integer("maxTokens", 8, 512, Some(128), "tokens read per conversation (its newest)"),
            ParamSpec::integer("freezeLayers", 0, 48, Some(0), "keep the embeddings and this many lower encoder layers as pretrained"),
            ParamSpec::boolean("freezeEmbeddings", false, "keep the embedding tables as pretrained (train the layers above)"),
            ParamSpec::number("targetPrecision", 0.0, 1.0, 0.9, "the intent precision the hand-over threshold is chosen for"),
            ParamSpec::integer("seed", 0, i64::from(u32::MAX), Some(42), "seeds the head, shuffling and dropout"),
            ParamSpec::integer("splitSeed", 0, i64::from(u32::MAX), Some(42), "seeds the train/validation/test split"),
            ParamSpec::number("alpha", 0.0, 1.0, 0.5, "distillation: weight of the intent loss (the rest is the teacher's)"),
            ParamSpec::positive("temperature", 100.0, Some(4.0), "distillation: softmax temperature"),
        ];
        Self { architectures, hyperparameters }
    }
}

impl Default for ChatFamily {
    fn default() -> Self {
        Self::new()
    }
}

impl FamilyPlan for ChatFamily {
    fn family(&self) -> Family {
        Family::Chat
    }

    fn architectures(&self) -> &[Architecture] {
        &self.architectures
    }

    fn hyperparameters(&self) -> &[ParamSpec] {
        &self.hyperparameters
    }

    fn serves(&self) -> bool {
        true
    }

    fn report_metrics(&self) -> &[&'static str] {
        super::report::METRICS
    }

    fn model_report(&self, report_json: &[u8], size_bytes: u64) -> std::result::Result<ModelReport, DomainError> {
        super::report::model_report(report_json, size_bytes)
    }

    /// An import is a pretrained base to fine-tune: a Hugging Face BERT
    /// folder (`model.safetensors`, `config.json`, `tokenizer.json`),
    /// checked as fine-tuning will read it.
    fn check_artifact(&self, dir: &Path) -> std::result::Result<ArtifactInfo, DomainError> {
        if dir.join(crate::artifact::CARD).is_file() {
            return Err(DomainError::invalid(
                "card",
                "a chat model is imported as its pretrained base (weights, config.json and tokenizer.json, no model.json); \
                 fine-tune it in Tenfold",
            ));
        }
        let folder = BertFolder::open(dir, 128, &Device::Cpu).map_err(|e| {
            // The reason alone: the folder is the server's scratch space.
            let message = match e {
                MlError::InvalidModel { reason, .. } => reason,
                other => other.to_string().replace(&format!("{}/", dir.display()), "").replace(&dir.display().to_string(), ""),
            };
            // The file the message is about is the one it names first.
            let field = [(super::base::CONFIG, "config"), (super::base::TOKENIZER, "tokenizer"), ("safetensors", "weights")]
                .iter()
                .filter_map(|(file, field)| Some((message.find(file)?, *field)))
                .min()
                .map_or("weights", |(_, field)| field);
            DomainError::invalid(field, message)
        })?;
        let c = &folder.config;
        Ok(ArtifactInfo {
            architecture: c.model_type.clone(),
            classes: Vec::new(),
            parameters: c.parameters() as u64,
            engine: "huggingface".into(),
            training: json!({ "base": { "layers": c.num_hidden_layers, "hidden_size": c.hidden_size, "vocabulary": folder.text.vocab_size() } }),
            dataset_sha256: None,
            metrics: json!({}),
        })
    }

    fn needs_base(&self) -> bool {
        true
    }

    fn estimate(&self, data: &DataStats, job: &JobShape<'_>) -> Estimate {
        let h = job.hyperparameters;
        let device_speed = if job.device == "cuda" { 20.0 } else { 1.0 };
        let throughput = self.architectures[0].cpu_samples_per_s * device_speed;
        let examples = data.raw.get("conversations").and_then(Value::as_u64).unwrap_or(1000).max(1) as f64;
        let epochs = h.int("epochs").unwrap_or(5) as f64;
        let seconds = match job.kind {
            JobKind::FineTune => examples * h.train_fraction() * epochs / throughput,
            // The student, then the same student without the teacher.
            JobKind::Distill => {
                let student = self.architecture(job.architecture).map_or(throughput, |a| a.cpu_samples_per_s * device_speed);
                2.0 * examples * h.train_fraction() * epochs / student
            }
            JobKind::Evaluate => examples / (throughput * 4.0),
            JobKind::Validate => 0.0,
        };
        // Loading the base, embedding the replies, evaluation.
        let seconds = (seconds + 20.0).ceil() as i64;
        // The runtime; the weights six times over (as read, as trained, their
        // gradients, two AdamW moments, the best epoch's copy); a batch's
        // activations. Measured: 1.05 GB peak at batch 16 × 32 tokens.
        let batch = h.int("batchSize").unwrap_or(16) as f64;
        let tokens = h.int("maxTokens").unwrap_or(128).min(64) as f64;
        let weights_mb = self.architectures[0].parameters as f64 * 4.0 / (1024.0 * 1024.0);
        let memory = 512.0 + weights_mb * 6.0 + batch * tokens * 12.0 * 384.0 * 4.0 * 6.0 / (1024.0 * 1024.0);
        Estimate { seconds, memory_mb: ((memory / 64.0).ceil() * 64.0) as i32 }
    }
}

fn request(job: &TrainJob<'_>) -> Result<ChatTrainRequest> {
    let h = job.hyperparameters;
    let int = |name: &'static str, default: i64| h.int(name).unwrap_or(default).max(0) as usize;
    let text = |name: &'static str, default: &'static str| h.text(name).unwrap_or(default).to_owned();
    let student = match job.kind {
        JobKind::Distill => {
            let name = job.architecture.unwrap_or(STUDENTS[1]);
            let Some(layers) = STUDENTS.iter().position(|s| *s == name) else {
                return Err(MlError::arg("architecture", format!("a chat student is one of {}; got {name:?}", STUDENTS.join(", "))));
            };
            let softening = Softening { alpha: h.float("alpha").unwrap_or(0.5), temperature: h.float("temperature").unwrap_or(4.0) };
            Some(StudentSpec { layers: layers + 1, softening })
        }
        _ => None,
    };
    let base = if student.is_some() { job.teacher } else { job.base };
    let Some(base) = base else {
        return Err(match student {
            Some(_) => MlError::arg("teacher", "a distillation needs the teacher: a fine-tuned chat model's folder"),
            None => MlError::arg(
                "base",
                "the chat family fine-tunes a pretrained encoder: give a base model (a Hugging Face BERT folder such as all-MiniLM-L6-v2)",
            ),
        });
    };
    let lr = h.float("learningRate").unwrap_or(5e-5);
    let epochs = int("epochs", 5);
    let mut schedule = Schedule::parse(&text("schedule", "cosine"), lr, epochs).map_err(|e| MlError::arg("schedule", e.to_string()))?;
    schedule.warmup_steps = int("warmupSteps", 0);
    Ok(ChatTrainRequest {
        data: job.data.to_path_buf(),
        out: job.out.to_path_buf(),
        base: base.to_path_buf(),
        config: TrainConfig {
            epochs,
            batch_size: int("batchSize", 16),
            optimizer: OptimizerConfig::adamw(),
            schedule,
            clip_grad_norm: h.float("clipGradNorm").or(Some(1.0)),
            early_stopping: h.int("patience").map(|p| EarlyStopping { patience: p.max(0) as usize, min_delta: 0.0 }),
            seed: h.int("seed").unwrap_or(42).max(0) as u64,
        },
        split: SplitSpec::parse(&text("split", "80/10/10"))?,
        split_seed: h.int("splitSeed").unwrap_or(42).max(0) as u64,
        max_len: int("maxTokens", 128),
        freeze_layers: int("freezeLayers", 0),
        freeze_embeddings: h.flag("freezeEmbeddings"),
        target_precision: h.float("targetPrecision").unwrap_or(0.9),
        handoff_message: HANDOFF_MESSAGE.into(),
        student,
        device: job.device.clone(),
    })
}

fn evaluation_summary(e: &ChatEvaluation) -> Value {
    json!({
        "split": e.split,
        "examples": e.metrics.examples,
        "accuracy": e.metrics.accuracy,
        "macro_f1": e.metrics.macro_f1,
        "handoff_rate": e.handoff.rate,
        "handoff_precision": e.handoff.precision,
        "threshold": e.handoff.threshold,
        "answer_hit_at_1": e.answers.hit_at_1,
        "answer_hit_at_5": e.answers.hit_at_5,
        "latency_ms": { "batch_1": e.speed.batch_1_ms, "batch_32": e.speed.batch_32_ms },
        "tokens_per_s": e.speed.tokens_per_s,
        "parameters": e.parameters,
        "artifact_bytes": e.artifact_bytes,
    })
}

fn report_text(r: &ChatReport, out: &Path) -> String {
    let mut text = format!("model written to {}\n", out.display());
    if let Some(e) = &r.evaluation {
        text.push_str(&format!(
            "{} intent accuracy {:.4} on {} messages (macro F1 {:.4}); hand-over below {:.3}: {:.1}% handed over, {:.4} precision on the rest; \
             reply hit@1 {:.3}; {:.2} ms at batch 1\n",
            e.split,
            e.metrics.accuracy,
            e.metrics.examples,
            e.metrics.macro_f1,
            e.handoff.threshold,
            e.handoff.rate * 100.0,
            e.handoff.precision,
            e.answers.hit_at_1,
            e.speed.batch_1_ms
        ));
    }
    if let Some(d) = &r.distillation {
        text.push_str(&format!("distillation: {}\n", d.verdict));
    }
    for w in &r.warnings {
        text.push_str(&format!("warning: {w}\n"));
    }
    text.push_str(&format!("report: {}\n", out.join("report.json").display()));
    text
}

impl ModelFamily for ChatFamily {
    fn train(&self, job: &TrainJob<'_>, control: Control<'_>) -> Result<Trained> {
        let request = request(job)?;
        let report = train(&request, control)?;
        let mut summary = report.evaluation.as_ref().map_or_else(|| json!({}), evaluation_summary);
        if let Some(map) = summary.as_object_mut() {
            map.insert("task".into(), json!(report.task));
            map.insert("intents".into(), json!(report.intents.len()));
            map.insert("epochs_run".into(), json!(report.training.history.len()));
            map.insert("best_epoch".into(), json!(report.training.best_epoch));
            map.insert("samples_per_s".into(), json!(report.training.samples_per_s));
            map.insert("tokenizer_unknown_share".into(), json!(report.tokenizer_coverage.unknown_share));
            if let Some(d) = &report.distillation {
                map.insert("teacher_accuracy".into(), json!(d.teacher.accuracy));
                map.insert("accuracy_retained".into(), json!(d.accuracy_retained));
                map.insert("speedup_batch_1".into(), json!(d.speedup_batch_1));
                map.insert("baseline_accuracy".into(), json!(d.baseline.accuracy));
            }
        }
        Ok(Trained {
            architecture: report.architecture.clone(),
            classes: report.intents.clone(),
            summary,
            text: report_text(&report, job.out),
        })
    }

    fn evaluate(&self, model: &Path, data: &Path, device: &Device) -> Result<Evaluated> {
        let (evaluation, coverage) = evaluate(model, data, device)?;
        let mut report = serde_json::to_value(&evaluation).map_err(|e| MlError::Incompatible(e.to_string()))?;
        if let Some(map) = report.as_object_mut() {
            map.insert("tokenizer_coverage".into(), json!(coverage));
        }
        Ok(Evaluated { summary: evaluation_summary(&evaluation), report })
    }

    fn load_for_serving(&self, model: &Path, device: &Device) -> Result<Box<dyn Served>> {
        Ok(Box::new(ServedChat { model: ChatModel::load(model, device)? }))
    }
}

/// A chat model answering conversations: a text, `{"text"}` or
/// `{"messages": [...]}` (its last user turns are read) per input.
struct ServedChat {
    model: ChatModel,
}

fn input_text(input: &ServeInput) -> Result<String> {
    let bad = || {
        MlError::arg(
            "messages",
            "a chat model takes a conversation: {\"messages\": [{\"role\": \"user\", \"content\": \"…\"}]}, {\"text\": \"…\"} or a string",
        )
    };
    match input {
        ServeInput::Json(Value::String(s)) => Ok(s.clone()),
        ServeInput::Json(v) if v.get("messages").is_some() => v["messages"]
            .as_array()
            .and_then(|m| super::data::user_turns(m))
            .ok_or_else(|| MlError::arg("messages", "the conversation has no user message to answer")),
        ServeInput::Json(v) => v.get("text").and_then(Value::as_str).map(str::to_owned).ok_or_else(bad),
        ServeInput::Bytes { name, bytes } => {
            String::from_utf8(bytes.clone()).map_err(|_| MlError::arg("text", format!("{name}: the text is not UTF-8")))
        }
        ServeInput::Pixels { .. } => Err(bad()),
    }
}

impl Served for ServedChat {
    fn predict(&self, inputs: &[ServeInput]) -> Result<Vec<Value>> {
        let texts = inputs.iter().map(input_text).collect::<Result<Vec<String>>>()?;
        if let Some(empty) = texts.iter().position(|t| t.trim().is_empty()) {
            return Err(MlError::arg("text", format!("input {} is empty; send the customer's message", empty + 1)));
        }
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let answers = self.model.answer(&refs)?;
        answers.into_iter().map(|a| serde_json::to_value(a).map_err(|e| MlError::Incompatible(e.to_string()))).collect()
    }
}
