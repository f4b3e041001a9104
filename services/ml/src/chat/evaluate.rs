//! Evaluating a chat model on a split: intent metrics, the hand-over
//! trade-off, answer selection and speed.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use candle_core::Device;
use serde::{Deserialize, Serialize};
use tenfold_domain::report::ExampleOutcome;

use super::data::{ChatSet, message_key};
use super::model::ChatModel;
use super::text::Coverage;
use crate::Result;
use crate::metrics::{Classification, argmax, classification};
use crate::split::SplitSpec;

/// One point of the hand-over curve: answering only above `threshold`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HandoffPoint {
    pub threshold: f64,
    /// Share of conversations the model answers itself.
    pub coverage: f64,
    /// Share of those whose intent is right.
    pub precision: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Handoff {
    pub threshold: f64,
    /// Share handed over: below the threshold, or unreadable to the vocabulary.
    pub rate: f64,
    /// Intent precision on the conversations the model answers.
    pub precision: f64,
    /// By confidence alone, over thresholds 0.00, 0.05, … 0.95.
    pub curve: Vec<HandoffPoint>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AnswerHits {
    /// Test conversations that have a reply in the data.
    pub with_reply: usize,
    /// Their reply is the one chosen (hit@1) or among the 5 best of the
    /// predicted intent (hit@5).
    pub hit_at_1: f64,
    pub hit_at_5: f64,
}

/// Measured on the split's own messages, tokenizing included.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Speed {
    /// Mean time to classify one message alone.
    pub batch_1_ms: f64,
    #[serde(default)]
    pub batch_1_p95_ms: f64,
    /// Time to classify a batch of 32 messages.
    pub batch_32_ms: f64,
    /// Time per message in batches of 64.
    #[serde(default)]
    pub batch_64_ms_per_example: f64,
    pub tokens_per_s: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatEvaluation {
    pub split: String,
    pub metrics: Classification,
    pub handoff: Handoff,
    pub answers: AnswerHits,
    pub speed: Speed,
    pub parameters: usize,
    pub artifact_bytes: u64,
    /// Each scored message: its intent, the prediction and its confidence
    /// (paired comparisons resample these; mistakes are shown from them).
    #[serde(default)]
    pub outcomes: Vec<ExampleOutcome>,
}

/// Points of the curve over the thresholds 0.00, 0.05, …, 0.95.
pub fn handoff_curve(confidence: &[f64], correct: &[bool]) -> Vec<HandoffPoint> {
    (0..20)
        .map(|i| {
            let threshold = f64::from(i) * 0.05;
            let kept: Vec<bool> = confidence.iter().zip(correct).filter(|(c, _)| **c >= threshold).map(|(_, ok)| *ok).collect();
            HandoffPoint {
                threshold,
                coverage: kept.len() as f64 / confidence.len().max(1) as f64,
                precision: if kept.is_empty() { 1.0 } else { kept.iter().filter(|k| **k).count() as f64 / kept.len() as f64 },
            }
        })
        .collect()
}

/// The lowest confidence threshold at which the answered conversations'
/// intent precision reaches `target` (answering as many as possible); with
/// no such threshold, just above the highest confidence (hand everything over).
pub fn choose_threshold(confidence: &[f64], correct: &[bool], target: f64) -> f64 {
    let mut order: Vec<usize> = (0..confidence.len()).collect();
    order.sort_by(|&a, &b| confidence[b].total_cmp(&confidence[a]));
    // Walk from the most confident down; remember the last cut meeting the target.
    let (mut right, mut best) = (0usize, None);
    for (n, &i) in order.iter().enumerate() {
        right += usize::from(correct[i]);
        let next_differs = order.get(n + 1).is_none_or(|&j| confidence[j] < confidence[i]);
        if next_differs && right as f64 / (n + 1) as f64 >= target {
            best = Some(confidence[i]);
        }
    }
    best.unwrap_or_else(|| confidence.iter().copied().fold(0.0, f64::max) + 1e-6).min(1.0)
}

fn speed(model: &ChatModel, texts: &[&str]) -> Result<Speed> {
    let Some(first) = texts.first() else {
        return Ok(Speed { batch_1_ms: 0.0, batch_1_p95_ms: 0.0, batch_32_ms: 0.0, batch_64_ms_per_example: 0.0, tokens_per_s: 0.0 });
    };
    model.classify(&[first])?;
    let mut singles: Vec<f64> = Vec::with_capacity(32);
    for t in texts.iter().cycle().take(32) {
        let start = Instant::now();
        model.classify(&[t])?;
        singles.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let batch_1_ms = singles.iter().sum::<f64>() / singles.len() as f64;
    singles.sort_by(f64::total_cmp);
    let batch_1_p95_ms = singles[(singles.len() * 95).div_ceil(100).saturating_sub(1)];
    let many: Vec<&str> = texts.iter().copied().cycle().take(96).collect();
    let start = Instant::now();
    let mut tokens = 0;
    for chunk in many.chunks(32) {
        tokens += model.classify(chunk)?.2;
    }
    let seconds = start.elapsed().as_secs_f64();
    let wide: Vec<&str> = texts.iter().copied().cycle().take(128).collect();
    let start = Instant::now();
    for chunk in wide.chunks(64) {
        model.classify(chunk)?;
    }
    let batch_64_ms_per_example = start.elapsed().as_secs_f64() * 1000.0 / wide.len() as f64;
    Ok(Speed {
        batch_1_ms,
        batch_1_p95_ms,
        batch_32_ms: seconds * 1000.0 / 3.0,
        batch_64_ms_per_example,
        tokens_per_s: tokens as f64 / seconds.max(1e-9),
    })
}

/// Evaluates a loaded model on `indices` of `set`.
pub fn evaluate_split(model: &ChatModel, set: &ChatSet, indices: &[usize], split: &str, dir: &Path) -> Result<ChatEvaluation> {
    let indices = set.distinct(indices);
    let texts: Vec<&str> = indices.iter().map(|&i| set.examples[i].text.as_str()).collect();
    // The model's own intent order; the data's intents map onto it by name.
    let classes = &model.card.classes;
    let label_of = |i: usize| classes.iter().position(|c| *c == set.intents[set.examples[i].intent]);
    let mut probs = vec![];
    let mut answers = vec![];
    for chunk in texts.chunks(32) {
        let (a, p) = model.answer_with_probabilities(chunk)?;
        answers.extend(a);
        probs.extend(p);
    }
    // Conversations of an intent the model does not know count as wrong.
    let (mut kept_probs, mut labels, mut confidence, mut correct) = (vec![], vec![], vec![], vec![]);
    let mut outcomes = Vec::with_capacity(indices.len());
    for (row, &i) in probs.iter().zip(&indices) {
        let predicted = argmax(row);
        confidence.push(f64::from(row[predicted]));
        correct.push(label_of(i) == Some(predicted));
        outcomes.push(ExampleOutcome {
            id: set.examples[i].text.clone(),
            label: set.intents[set.examples[i].intent].clone(),
            predicted: classes[predicted].clone(),
            score: f64::from(u8::from(label_of(i) == Some(predicted))),
            confidence: f64::from(row[predicted]),
        });
        if let Some(label) = label_of(i) {
            kept_probs.push(row.clone());
            labels.push(label);
        }
    }
    let metrics = classification(classes, &kept_probs, &labels);
    let threshold = model.settings.threshold;
    // What the model really does: below the threshold, or unreadable.
    let answered: Vec<bool> = answers.iter().zip(&correct).filter(|(a, _)| !a.handoff).map(|(_, ok)| *ok).collect();
    let handoff = Handoff {
        threshold,
        rate: 1.0 - answered.len() as f64 / confidence.len().max(1) as f64,
        precision: if answered.is_empty() { 1.0 } else { answered.iter().filter(|a| **a).count() as f64 / answered.len() as f64 },
        curve: handoff_curve(&confidence, &correct),
    };
    // A conversation's reply counts when it is any approved reply given to
    // the same message in the data (a question may have several).
    let mut replies_of: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for e in &set.examples {
        if let Some(reply) = e.reply.as_deref() {
            replies_of.entry(message_key(&e.text)).or_default().push(reply);
        }
    }
    let (mut with_reply, mut hit1, mut hit5) = (0usize, 0usize, 0usize);
    for (answer, &i) in answers.iter().zip(&indices) {
        let Some(expected) = replies_of.get(&message_key(&set.examples[i].text)) else { continue };
        with_reply += 1;
        hit1 += usize::from(answer.candidates.first().is_some_and(|c| expected.contains(&c.as_str())));
        hit5 += usize::from(answer.candidates.iter().any(|c| expected.contains(&c.as_str())));
    }
    let share = |n: usize| n as f64 / with_reply.max(1) as f64;
    Ok(ChatEvaluation {
        split: split.to_owned(),
        metrics,
        handoff,
        answers: AnswerHits { with_reply, hit_at_1: share(hit1), hit_at_5: share(hit5) },
        speed: speed(model, &texts)?,
        parameters: model.parameters(),
        artifact_bytes: crate::artifact::size_on_disk(dir),
        outcomes,
    })
}

/// `tenfold eval`: a model on a dataset file (its held-out test split when
/// the file is the one it was trained on, the whole file otherwise).
pub fn evaluate(dir: &Path, data: &Path, device: &Device) -> Result<(ChatEvaluation, Coverage)> {
    let model = ChatModel::load(dir, device)?;
    let training = model.card.training.clone();
    let split: SplitSpec = serde_json::from_value(training["split"].clone()).unwrap_or_default();
    let seed = training["split_seed"].as_u64().unwrap_or(42);
    let set = ChatSet::load(data, split, seed)?;
    let same_data = set.sha256 == model.card.dataset.sha256;
    let (indices, name) = if same_data { (set.test.clone(), "test") } else { ((0..set.examples.len()).collect(), "all") };
    let texts: Vec<&str> = indices.iter().map(|&i| set.examples[i].text.as_str()).collect();
    let coverage = model.text.coverage(&texts)?;
    Ok((evaluate_split(&model, &set, &indices, name, dir)?, coverage))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_is_the_lowest_that_reaches_the_target_precision() {
        // Sorted by confidence: right, right, wrong, right, wrong.
        let confidence = [0.9, 0.8, 0.7, 0.6, 0.5];
        let correct = [true, true, false, true, false];
        // Precision of the top n: 1, 1, 0.67, 0.75, 0.6.
        assert_eq!(choose_threshold(&confidence, &correct, 0.75), 0.6);
        assert_eq!(choose_threshold(&confidence, &correct, 0.9), 0.8);
        assert_eq!(choose_threshold(&confidence, &correct, 0.5), 0.5);
        // Nothing reaches it: hand everything over.
        assert!(choose_threshold(&[0.4, 0.3], &[false, false], 0.9) > 0.4);
    }

    #[test]
    fn the_curve_trades_coverage_for_precision() {
        let curve = handoff_curve(&[0.9, 0.8, 0.3, 0.2], &[true, true, false, true]);
        assert_eq!(curve[0].coverage, 1.0);
        assert_eq!(curve[0].precision, 0.75);
        let at_half = curve.iter().find(|p| (p.threshold - 0.5).abs() < 1e-9).unwrap();
        assert_eq!((at_half.coverage, at_half.precision), (0.5, 1.0));
    }
}
