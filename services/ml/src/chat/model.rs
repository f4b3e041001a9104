//! A chat model folder and the model that answers from it.
//!
//! The folder is a Hugging Face BERT folder (`config.json`, `tokenizer.json`,
//! `model.safetensors` with the encoder under its checkpoint names and the
//! intent head as `classifier.weight`/`classifier.bias`, as
//! `BertForSequenceClassification` names it) plus Tenfold's `model.json`
//! (intents, hand-over threshold and message) and the approved replies
//! (`replies.json`, their embeddings in `replies.safetensors`).
//!
//! Answering runs candle-transformers' stock `BertModel` (its fused kernels
//! are right for inference and faster); training runs our differentiable
//! copy (`encoder.rs`) over the same tensors.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{D, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::BertModel;
use serde::{Deserialize, Serialize};

use super::base::{self, BertConfig};
use super::encoder::{mean_pool, normalise};
use super::text::{Batch, Reading, TextEncoder};
use crate::artifact::{self, ModelCard};
use crate::params::{load_tensors, save_tensors};
use crate::{MlError, Result};

pub const REPLIES: &str = "replies.json";
pub const REPLY_EMBEDDINGS: &str = "replies.safetensors";
pub const HEAD_WEIGHT: &str = "classifier.weight";
pub const HEAD_BIAS: &str = "classifier.bias";

/// What `model.json`'s `preprocessing` holds for a chat model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatSettings {
    /// Tokens per text, special tokens included.
    pub max_len: usize,
    pub pooling: String,
    /// Below this confidence the model hands over to a person.
    pub threshold: f64,
    /// The precision on the validation split the threshold was chosen for.
    pub target_precision: f64,
    pub handoff_message: String,
}

/// An approved reply of an intent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub intent: String,
    pub text: String,
}

/// The answer to one conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub intent: String,
    pub confidence: f64,
    pub handoff: bool,
    /// The best approved reply of the intent, or the hand-over message.
    pub reply: String,
    /// The other replies of the intent, best first (up to 5 in all).
    pub candidates: Vec<String>,
    /// Intents by probability, best first (up to 5).
    pub intents: Vec<(String, f64)>,
    /// Tokens of the message the model read (special tokens included,
    /// after truncation to the model's window).
    pub tokens: usize,
    /// Tokens of the reply as written (metered as output).
    pub reply_tokens: usize,
    /// Handed over because the vocabulary cannot read the message.
    pub unreadable: bool,
}

/// A chat model loaded for answering.
pub struct ChatModel {
    pub card: ModelCard,
    pub settings: ChatSettings,
    pub config: BertConfig,
    pub text: TextEncoder,
    bert: BertModel,
    head_weight: Tensor,
    head_bias: Tensor,
    pub replies: Vec<Reply>,
    /// (replies, hidden), unit rows.
    reply_embeddings: Option<Tensor>,
    /// Tokens of each reply, then of the hand-over message (last).
    reply_tokens: Vec<usize>,
    device: Device,
}

impl ChatModel {
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let card = artifact::read_card(dir)?;
        artifact::expect_family(dir, &card, "chat")?;
        let bad = |reason: String| MlError::InvalidModel { path: dir.into(), reason };
        let settings: ChatSettings = serde_json::from_value(card.preprocessing.clone())
            .map_err(|e| bad(format!("model.json's preprocessing is not a chat model's ({e})")))?;
        let config = base::read_config(dir)?;
        let text = base::read_tokenizer(dir, &config, settings.max_len)?;
        let mut weights = base::read_encoder(dir, &config, device)?;
        let (Some(head_weight), Some(head_bias)) = (weights.remove(HEAD_WEIGHT), weights.remove(HEAD_BIAS)) else {
            return Err(bad("model.safetensors has no intent head (classifier.weight, classifier.bias)".into()));
        };
        if head_weight.dims() != [card.classes.len(), config.hidden_size] || head_bias.dims() != [card.classes.len()] {
            return Err(bad(format!(
                "the intent head is {:?}, but model.json lists {} intents of a {}-wide encoder",
                head_weight.dims(),
                card.classes.len(),
                config.hidden_size
            )));
        }
        let tensors: std::collections::HashMap<String, Tensor> = weights.into_iter().collect();
        let vb = VarBuilder::from_tensors(tensors, candle_core::DType::F32, device);
        let bert = BertModel::load(vb, &config.stock())?;
        let replies: Vec<Reply> = match std::fs::read(dir.join(REPLIES)) {
            Ok(raw) => serde_json::from_slice(&raw).map_err(|e| bad(format!("replies.json is not a list of replies ({e})")))?,
            Err(_) => vec![],
        };
        let reply_embeddings = if replies.is_empty() {
            None
        } else {
            let mut t = load_tensors(&dir.join(REPLY_EMBEDDINGS), device)?;
            let e = t.remove("embeddings").ok_or_else(|| bad("replies.safetensors has no tensor 'embeddings'".into()))?;
            if e.dims() != [replies.len(), config.hidden_size] {
                return Err(bad(format!("replies.safetensors holds {:?} for {} replies", e.dims(), replies.len())));
            }
            Some(e)
        };
        let mut written: Vec<&str> = replies.iter().map(|r| r.text.as_str()).collect();
        written.push(&settings.handoff_message);
        let reply_tokens = text.count_tokens(&written)?;
        Ok(Self {
            card,
            settings,
            config,
            text,
            bert,
            head_weight,
            head_bias,
            replies,
            reply_embeddings,
            reply_tokens,
            device: device.clone(),
        })
    }

    /// Mean-pooled hidden states of a batch (the stock model).
    fn pooled(&self, batch: &Batch) -> Result<Tensor> {
        let hidden = self.bert.forward(&batch.ids, &batch.type_ids, Some(&batch.mask))?;
        mean_pool(&hidden, &batch.mask)
    }

    /// Intent probabilities (rows), unit sentence embeddings and the real
    /// token count of texts.
    pub fn classify(&self, texts: &[&str]) -> Result<(Vec<Vec<f32>>, Tensor, usize)> {
        self.classify_ids(&self.text.ids(texts)?)
    }

    /// Intent logits of token id sequences, one row each (a teacher's for
    /// its student), computed in batches of 64.
    pub fn logits(&self, ids: &[Vec<u32>]) -> Result<Tensor> {
        let mut parts = Vec::with_capacity(ids.len().div_ceil(64));
        for chunk in ids.chunks(64) {
            let seqs: Vec<&[u32]> = chunk.iter().map(Vec::as_slice).collect();
            let batch = self.text.batch(&seqs, &self.device)?;
            parts.push(self.head(&self.pooled(&batch)?)?);
        }
        Ok(Tensor::cat(&parts, 0)?)
    }

    fn head(&self, pooled: &Tensor) -> Result<Tensor> {
        Ok(pooled.matmul(&self.head_weight.t()?)?.broadcast_add(&self.head_bias)?)
    }

    fn classify_ids(&self, ids: &[Vec<u32>]) -> Result<(Vec<Vec<f32>>, Tensor, usize)> {
        let seqs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
        let batch = self.text.batch(&seqs, &self.device)?;
        let pooled = self.pooled(&batch)?;
        let logits = self.head(&pooled)?;
        let probs = candle_nn::ops::softmax(&logits, D::Minus1)?.to_device(&Device::Cpu)?.to_vec2::<f32>()?;
        Ok((probs, normalise(&pooled)?, batch.tokens))
    }

    /// Answers each text (a conversation's last user turns, newest last).
    pub fn answer(&self, texts: &[&str]) -> Result<Vec<Answer>> {
        Ok(self.answer_with_probabilities(texts)?.0)
    }

    /// The answers, and every intent's probability per text (evaluation).
    pub fn answer_with_probabilities(&self, texts: &[&str]) -> Result<(Vec<Answer>, Vec<Vec<f32>>)> {
        let (ids, readings): (Vec<Vec<u32>>, Vec<Reading>) = self.text.read(texts)?.into_iter().unzip();
        let (probs, embeddings, _) = self.classify_ids(&ids)?;
        let similarity = match &self.reply_embeddings {
            Some(r) => Some(embeddings.matmul(&r.t()?)?.to_device(&Device::Cpu)?.to_vec2::<f32>()?),
            None => None,
        };
        // A message the vocabulary mostly cannot read (another language,
        // gibberish) is handed over whatever the head says: a classifier
        // always names some intent, often confidently, for what it never saw.
        let unreadable: Vec<bool> = readings.iter().map(Reading::unreadable).collect();
        let answers = probs
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let mut ranked: Vec<(usize, f32)> = row.iter().copied().enumerate().collect();
                ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
                let (best, confidence) = ranked[0];
                let ranked_replies = similarity.as_ref().map_or_else(Vec::new, |s| self.best_replies(best, &s[i], 5));
                let handoff = f64::from(confidence) < self.settings.threshold || ranked_replies.is_empty() || unreadable[i];
                let chosen = if handoff { self.reply_tokens.len() - 1 } else { ranked_replies[0] };
                Answer {
                    intent: self.card.classes[best].clone(),
                    confidence: f64::from(confidence),
                    handoff,
                    reply: if handoff { self.settings.handoff_message.clone() } else { self.replies[chosen].text.clone() },
                    reply_tokens: self.reply_tokens[chosen],
                    candidates: ranked_replies.iter().map(|&j| self.replies[j].text.clone()).collect(),
                    intents: ranked.iter().take(5).map(|&(k, p)| (self.card.classes[k].clone(), f64::from(p))).collect(),
                    tokens: ids[i].len(),
                    unreadable: unreadable[i],
                }
            })
            .collect();
        Ok((answers, probs))
    }

    /// The indices of the `k` replies of `intent` most similar to the message.
    pub fn best_replies(&self, intent: usize, similarity: &[f32], k: usize) -> Vec<usize> {
        let name = &self.card.classes[intent];
        let mut of_intent: Vec<(usize, f32)> =
            self.replies.iter().enumerate().filter(|(_, r)| &r.intent == name).map(|(j, _)| (j, similarity[j])).collect();
        of_intent.sort_by(|a, b| b.1.total_cmp(&a.1));
        of_intent.into_iter().take(k).map(|(j, _)| j).collect()
    }

    pub fn parameters(&self) -> usize {
        self.config.parameters() + self.head_weight.elem_count() + self.head_bias.elem_count()
    }

    pub fn device(&self) -> &Device {
        &self.device
    }
}

/// Writes the reply bank next to a model.
pub fn save_replies(out: &Path, replies: &[Reply], embeddings: Option<&Tensor>) -> Result<()> {
    let json = serde_json::to_vec_pretty(replies).map_err(|e| MlError::Incompatible(e.to_string()))?;
    std::fs::write(out.join(REPLIES), json).map_err(MlError::io(out.join(REPLIES)))?;
    if let Some(e) = embeddings {
        save_tensors(&BTreeMap::from([("embeddings".to_owned(), e.clone())]), &out.join(REPLY_EMBEDDINGS))?;
    }
    Ok(())
}
