//! Fine-tuning a pretrained BERT encoder into an intent router
//! (`chat-intent`): encoder, mean pooling and a linear head, all trained
//! (or the lower layers frozen), then the hand-over threshold chosen on the
//! validation split and the approved replies embedded.

use std::collections::BTreeMap;
use std::path::PathBuf;

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
    pub device: Device,
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
        Ok(BatchLoss { loss: candle_nn::loss::cross_entropy(&logits, &labels)?, correct: Some(correct) })
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

pub fn train(req: &ChatTrainRequest, control: Control<'_>) -> Result<ChatReport> {
    if !(0.0..=1.0).contains(&req.target_precision) {
        return Err(MlError::arg("targetPrecision", format!("{} is not a share between 0 and 1", req.target_precision)));
    }
    let (folder, old_head) = open_base(req)?;
    let config = folder.config.clone();
    if req.freeze_layers > config.num_hidden_layers {
        return Err(MlError::arg(
            "freezeLayers",
            format!("{} is more than the base model's {} layers", req.freeze_layers, config.num_hidden_layers),
        ));
    }
    let set = ChatSet::load(&req.data, req.split, req.split_seed)?;
    let text = &folder.text;
    let train_rows = set.distinct(&set.train);
    if train_rows.is_empty() {
        return Err(MlError::arg("split", "the training split is empty; give it more than 0% or add conversations"));
    }
    let train_texts: Vec<&str> = train_rows.iter().map(|&i| set.examples[i].text.as_str()).collect();
    let coverage = text.coverage(&train_texts)?;
    coverage.check(&req.data)?;

    let mut params = Params::new(req.config.seed, &req.device);
    Encoder::adopt(&mut params, &folder.weights, &config)?;
    let classes = set.intents.len();
    let same_intents = old_head.as_ref().is_some_and(|(c, ..)| *c == set.intents);
    match old_head {
        Some((_, w, b)) if same_intents => {
            params.adopt(HEAD_WEIGHT, &w, Role::Weight, Part::Head)?;
            params.adopt(HEAD_BIAS, &b, Role::Weight, Part::Head)?;
        }
        _ => {
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

    let all_texts: Vec<&str> = set.examples.iter().map(|e| e.text.as_str()).collect();
    let seqs = text.ids(&all_texts)?;
    let task = IntentTask {
        params: &params,
        config: &config,
        text,
        seqs,
        labels: set.examples.iter().map(|e| e.intent as u32).collect(),
        train: train_rows.clone(),
        val: set.distinct(&set.val),
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

    // The approved replies, embedded by the fine-tuned encoder.
    let replies: Vec<Reply> = set.replies().into_iter().map(|(intent, text)| Reply { intent: set.intents[intent].clone(), text }).collect();
    let reply_embeddings = if replies.is_empty() { None } else { Some(embed(&task, &replies)?) };

    // The model folder: Hugging Face files, replies, then the card last.
    base::write_config_and_tokenizer(&req.out, &config, &req.base)?;
    params.save(&req.out.join(base::WEIGHTS))?;
    save_replies(&req.out, &replies, reply_embeddings.as_ref())?;
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
        architecture: ARCHITECTURE.into(),
        classes: set.intents.clone(),
        preprocessing: serde_json::to_value(&settings).map_err(|e| MlError::Incompatible(e.to_string()))?,
        training: json!({
            "task": "chat-intent",
            "config": req.config,
            "split": req.split,
            "split_seed": req.split_seed,
            "freeze_layers": req.freeze_layers,
            "freeze_embeddings": req.freeze_embeddings,
            "base": { "layers": config.num_hidden_layers, "hidden_size": config.hidden_size },
        }),
        dataset: DatasetRef { file: set.file.clone(), sha256: set.sha256.clone(), examples: set.examples.len() },
        metrics: json!({}),
        parameters: params.count(),
        engine: ModelCard::engine(),
    };
    artifact::write_card(&req.out, &card)?;

    let model = ChatModel::load(&req.out, &req.device)?;
    let evaluation = if set.test.is_empty() { None } else { Some(evaluate_split(&model, &set, &set.test, "test", &req.out)?) };
    let mut warnings = coverage.warnings();
    if threshold >= 1.0 {
        warnings.push(format!(
            "no confidence threshold reaches the target precision {:.2} on the validation split: the model hands every conversation over; \
             add examples per intent or lower the target",
            req.target_precision
        ));
    }
    let report = ChatReport {
        task: "chat-intent".into(),
        architecture: ARCHITECTURE.into(),
        intents: set.intents.clone(),
        base: BertConfigSummary {
            layers: config.num_hidden_layers,
            hidden_size: config.hidden_size,
            parameters: config.parameters(),
            frozen_layers: req.freeze_layers,
        },
        examples: BTreeMap::from([
            ("train".to_owned(), train_rows.len()),
            ("val".to_owned(), task.val.len()),
            ("test".to_owned(), set.distinct(&set.test).len()),
        ]),
        tokenizer_coverage: coverage,
        warnings,
        training: outcome,
        threshold,
        evaluation,
    };
    let json = serde_json::to_vec_pretty(&report).map_err(|e| MlError::Incompatible(e.to_string()))?;
    std::fs::write(req.out.join("report.json"), json).map_err(MlError::io(req.out.join("report.json")))?;
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
        parts.push(normalise(&mean_pool(&encoder.forward(&batch, None)?, &batch.mask)?)?);
    }
    Ok(Tensor::cat(&parts, 0)?)
}
