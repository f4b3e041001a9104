//! A model version's evaluation report, family-neutral.
//!
//! Every family turns its own `report.json` into a [`ModelReport`]
//! (`FamilyPlan::model_report`); GraphQL shows it as typed fields, the HTML
//! report draws it, and comparisons and the ship gate read it. Nothing here
//! knows how a family trains: a family fills the sections it has.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Family;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelReport {
    pub family: Family,
    /// `train`, `fine_tune` or `distill`.
    pub task: String,
    pub architecture: String,
    /// The held-out split the numbers were measured on (`test`, or `val`
    /// when the data has no test split).
    pub split: String,
    /// Examples scored.
    pub examples: u64,
    /// Headline metrics in display order; the first is the primary one.
    pub metrics: Vec<Metric>,
    /// What the model is and how it did against its baselines, in words.
    pub summary: String,
    pub baselines: Vec<Baseline>,
    /// Per-epoch curves (loss, accuracy), metric@K for rankers.
    pub curves: Vec<Chart>,
    pub confusion: Option<Confusion>,
    pub per_class: Vec<ClassScores>,
    pub calibration: Option<Calibration>,
    pub size: ModelSize,
    pub latency: Option<LatencyStats>,
    /// Teacher, student and the student trained alone, side by side.
    pub distillation: Option<Distillation>,
    /// Every scored example's outcome, in the split's order: what paired
    /// comparisons resample. Not part of the GraphQL report.
    pub outcomes: Vec<ExampleOutcome>,
    /// Small pictures of some examples (at least of the mistakes), by id,
    /// as `data:` URLs.
    pub thumbnails: BTreeMap<String, String>,
}

impl ModelReport {
    /// The primary metric (the first), if the family reports any.
    pub fn primary(&self) -> Option<&Metric> {
        self.metrics.first()
    }

    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// The examples the model got wrong, most confident first (a gallery).
    pub fn mistakes(&self, limit: usize) -> Vec<&ExampleOutcome> {
        let mut wrong: Vec<&ExampleOutcome> = self.outcomes.iter().filter(|o| o.score < 1.0).collect();
        wrong.sort_by(|a, b| b.confidence.total_cmp(&a.confidence).then_with(|| a.id.cmp(&b.id)));
        wrong.truncate(limit);
        wrong
    }
}

/// One headline number.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Metric {
    /// Stable key: `accuracy`, `macro_f1`, `weighted_f1`, `ece`, `top_3`…
    pub name: String,
    /// For people: "Accuracy", "Macro F1"…
    pub label: String,
    pub value: f64,
    pub higher_is_better: bool,
}

/// What the model is compared with, always.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Baseline {
    /// `majority_class`, `base_model`, `teacher`, `student_alone`, `popularity`.
    pub kind: String,
    /// For people: "Majority class (always '1')".
    pub label: String,
    /// The metric compared (the report's primary one).
    pub metric: String,
    /// The baseline's value; `None` when it could not be measured (`verdict` says why).
    pub value: Option<f64>,
    pub model_value: f64,
    /// Whether the model did better; `None` when not comparable.
    pub beaten: Option<bool>,
    pub verdict: String,
}

impl Metric {
    pub fn new(name: &str, label: &str, value: f64, higher_is_better: bool) -> Self {
        Self { name: name.into(), label: label.into(), value, higher_is_better }
    }
}

impl Baseline {
    /// A baseline's `value` of `metric` against the model's, with the
    /// verdict in words; `None` when the baseline could not be measured
    /// (`note` says why). Shares (accuracy, NDCG) differ in points.
    pub fn compared(
        kind: &str,
        label: String,
        metric: &str,
        value: Option<f64>,
        model: f64,
        higher_is_better: bool,
        note: Option<&str>,
    ) -> Self {
        let beaten = value.map(|v| if higher_is_better { model > v } else { model < v });
        let diff = |v: f64| if higher_is_better { format!("{:+.1} points", (model - v) * 100.0) } else { format!("{:+.4}", model - v) };
        let verdict = match (value, beaten, note) {
            (Some(v), _, _) if model == v => format!("ties with it: {metric} {model:.4} for both"),
            (Some(v), Some(true), _) => format!("beats it: {metric} {model:.4} against {v:.4} ({})", diff(v)),
            (Some(v), _, _) => format!("does not beat it: {metric} {model:.4} against {v:.4} ({})", diff(v)),
            (None, _, Some(note)) => format!("not comparable: {note}"),
            (None, _, None) => "not comparable".to_owned(),
        };
        Self { kind: kind.into(), label, metric: metric.into(), value, model_value: model, beaten, verdict }
    }
}

/// A line chart: one or more series over a shared x axis.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Chart {
    /// Stable key: `loss`, `accuracy`, `metric_at_k`.
    pub id: String,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Series {
    /// `train`, `validation`…
    pub name: String,
    pub points: Vec<Point>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

/// Rows are the true class, columns the predicted one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Confusion {
    pub classes: Vec<String>,
    pub counts: Vec<Vec<u64>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClassScores {
    pub class: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

/// A reliability diagram: equal-width confidence bins.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Calibration {
    /// Expected calibration error: the bins' |accuracy − confidence| weighted by their share.
    pub ece: f64,
    pub bins: Vec<CalibrationBin>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CalibrationBin {
    pub lower: f64,
    pub upper: f64,
    pub count: u64,
    /// Mean confidence of the bin's predictions (0 when empty).
    pub confidence: f64,
    /// Share of the bin's predictions that were right (0 when empty).
    pub accuracy: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelSize {
    pub parameters: u64,
    pub bytes: u64,
}

/// Milliseconds per example on the machine that trained it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LatencyStats {
    pub batch_1_ms: f64,
    pub batch_1_p95_ms: f64,
    pub batch_64_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Distillation {
    pub alpha: f64,
    pub temperature: f64,
    /// `teacher`, `student`, `student_alone`, in that order.
    pub models: Vec<ModelRow>,
    pub verdict: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelRow {
    pub role: String,
    pub architecture: String,
    /// The report's primary metric.
    pub metric: f64,
    pub parameters: u64,
    pub size_bytes: u64,
    pub latency_batch_1_ms: f64,
    pub latency_batch_64_ms: f64,
}

/// How the model did on one scored example.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExampleOutcome {
    /// Stable within the dataset (the file's path in the archive, a row id).
    pub id: String,
    pub label: String,
    pub predicted: String,
    /// 1 right, 0 wrong (a ranker's hit rate may lie between).
    pub score: f64,
    /// The model's probability for its prediction.
    pub confidence: f64,
}
