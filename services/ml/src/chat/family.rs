//! The customer-service chat family behind the family seam.

use std::path::Path;

use candle_core::Device;
use serde_json::{Value, json};
use tenfold_domain::{Architecture, DataStats, Estimate, Family, FamilyPlan, JobKind, JobShape, ParamSpec};

use super::evaluate::{ChatEvaluation, evaluate};
use super::model::ChatModel;
use super::train::{ARCHITECTURE, ChatReport, ChatTrainRequest, train};
use crate::family::{Evaluated, ModelFamily, ServeInput, Served, TrainJob, Trained};
use crate::optim::OptimizerConfig;
use crate::schedule::Schedule;
use crate::split::SplitSpec;
use crate::train::{Control, EarlyStopping, TrainConfig};
use crate::{MlError, Result};

/// What the model says when it is not confident enough to answer.
pub const HANDOFF_MESSAGE: &str = "I'm not sure I understood. Let me connect you with someone from our team.";

pub struct ChatFamily {
    architectures: Vec<Architecture>,
    hyperparameters: Vec<ParamSpec>,
}

impl ChatFamily {
    pub fn new() -> Self {
        // Measured with all-MiniLM-L6-v2 on 2 cores (docs/benchmarks.md).
        let architectures = vec![Architecture {
            name: ARCHITECTURE,
            description: "the base BERT encoder (e.g. all-MiniLM-L6-v2), mean pooling and a linear intent head, all fine-tuned",
            cpu_samples_per_s: 40.0,
            parameters: 22_700_000,
            activations_per_sample: 400_000,
            student: false,
        }];
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

    fn needs_base(&self) -> bool {
        true
    }

    /// Distillation comes with the student architectures.
    fn kinds(&self) -> &[JobKind] {
        &[JobKind::FineTune, JobKind::Evaluate]
    }

    fn estimate(&self, data: &DataStats, job: &JobShape<'_>) -> Estimate {
        let h = job.hyperparameters;
        let device_speed = if job.device == "cuda" { 20.0 } else { 1.0 };
        let throughput = self.architectures[0].cpu_samples_per_s * device_speed;
        let examples = data.raw.get("conversations").and_then(Value::as_u64).unwrap_or(1000).max(1) as f64;
        let epochs = h.int("epochs").unwrap_or(5) as f64;
        let seconds = match job.kind {
            JobKind::FineTune | JobKind::Distill => examples * h.train_fraction() * epochs / throughput,
            JobKind::Evaluate => examples / (throughput * 4.0),
            JobKind::Validate => 0.0,
        };
        // Loading the base, embedding the replies, evaluation.
        let seconds = (seconds + 20.0).ceil() as i64;
        // The runtime, weights with gradients and two AdamW moments, a batch's activations.
        let batch = h.int("batchSize").unwrap_or(16) as f64;
        let tokens = h.int("maxTokens").unwrap_or(128).min(64) as f64;
        let memory = 512.0 + 22.7 * 16.0 + batch * tokens * 12.0 * 384.0 * 4.0 * 6.0 / (1024.0 * 1024.0);
        Estimate { seconds, memory_mb: ((memory / 64.0).ceil() * 64.0) as i32 }
    }
}

fn request(job: &TrainJob<'_>) -> Result<ChatTrainRequest> {
    let h = job.hyperparameters;
    let int = |name: &'static str, default: i64| h.int(name).unwrap_or(default).max(0) as usize;
    let text = |name: &'static str, default: &'static str| h.text(name).unwrap_or(default).to_owned();
    let Some(base) = job.base.or(job.teacher) else {
        return Err(MlError::arg(
            "base",
            "the chat family fine-tunes a pretrained encoder: give a base model (a Hugging Face BERT folder such as all-MiniLM-L6-v2)",
        ));
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
    for w in &r.warnings {
        text.push_str(&format!("warning: {w}\n"));
    }
    text.push_str(&format!("report: {}\n", out.join("report.json").display()));
    text
}

impl ModelFamily for ChatFamily {
    fn train(&self, job: &TrainJob<'_>, control: Control<'_>) -> Result<Trained> {
        if job.kind == JobKind::Distill {
            return Err(MlError::Unsupported("distilling chat models".into()));
        }
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
        ServeInput::Json(v) if v.get("messages").is_some() => super::data::conversation(v)
            .map(|(text, _)| text)
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
