//! A version's report and a comparison of two versions, as typed fields a
//! dashboard can draw itself (the HTML report draws the same sections).

use async_graphql::{ComplexObject, SimpleObject};
use tenfold_domain::compare as dc;
use tenfold_domain::report as dr;

use super::Family;

fn int(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct ModelReport {
    pub family: Family,
    /// `train`, `fine_tune` or `distill`.
    pub task: String,
    pub architecture: String,
    /// The held-out split scored: `test`, or `val` when there is no test split.
    pub split: String,
    pub examples: i32,
    /// Headline metrics; the first is the primary one.
    pub metrics: Vec<ReportMetric>,
    /// What the model is and how it did against its baselines, in words.
    pub summary: String,
    pub baselines: Vec<Baseline>,
    /// Per-epoch loss and accuracy (train and validation).
    pub curves: Vec<Chart>,
    /// Rows are the true class, columns the prediction.
    pub confusion_matrix: Option<ConfusionMatrix>,
    pub per_class: Vec<ClassScores>,
    /// Reliability diagram and expected calibration error.
    pub calibration: Option<Calibration>,
    pub parameters: f64,
    pub size_bytes: f64,
    pub latency: Option<Latency>,
    /// Teacher, student and the student trained alone.
    pub distillation: Option<Distillation>,
    #[graphql(skip)]
    pub raw: dr::ModelReport,
}

impl From<dr::ModelReport> for ModelReport {
    fn from(r: dr::ModelReport) -> Self {
        Self {
            family: r.family.into(),
            task: r.task.clone(),
            architecture: r.architecture.clone(),
            split: r.split.clone(),
            examples: int(r.examples),
            metrics: r
                .metrics
                .iter()
                .map(|m| ReportMetric {
                    name: m.name.clone(),
                    label: m.label.clone(),
                    value: m.value,
                    higher_is_better: m.higher_is_better,
                })
                .collect(),
            summary: r.summary.clone(),
            baselines: r
                .baselines
                .iter()
                .map(|b| Baseline {
                    kind: b.kind.clone(),
                    label: b.label.clone(),
                    metric: b.metric.clone(),
                    value: b.value,
                    model_value: b.model_value,
                    beaten: b.beaten,
                    verdict: b.verdict.clone(),
                })
                .collect(),
            curves: r.curves.iter().map(Chart::from).collect(),
            confusion_matrix: r.confusion.as_ref().map(|c| ConfusionMatrix {
                classes: c.classes.clone(),
                counts: c.counts.iter().map(|row| row.iter().map(|&n| int(n)).collect()).collect(),
            }),
            per_class: r
                .per_class
                .iter()
                .map(|c| ClassScores {
                    class: c.class.clone(),
                    precision: c.precision,
                    recall: c.recall,
                    f1: c.f1,
                    support: int(c.support),
                })
                .collect(),
            calibration: r.calibration.as_ref().map(|c| Calibration {
                ece: c.ece,
                bins: c
                    .bins
                    .iter()
                    .map(|b| CalibrationBin {
                        lower: b.lower,
                        upper: b.upper,
                        count: int(b.count),
                        confidence: b.confidence,
                        accuracy: b.accuracy,
                    })
                    .collect(),
            }),
            parameters: r.size.parameters as f64,
            size_bytes: r.size.bytes as f64,
            latency: r.latency.as_ref().map(|l| Latency {
                batch_1_ms: l.batch_1_ms,
                batch_1_p95_ms: l.batch_1_p95_ms,
                batch_64_ms: l.batch_64_ms,
            }),
            distillation: r.distillation.as_ref().map(|d| Distillation {
                alpha: d.alpha,
                temperature: d.temperature,
                verdict: d.verdict.clone(),
                models: d
                    .models
                    .iter()
                    .map(|m| DistillationModel {
                        role: m.role.clone(),
                        architecture: m.architecture.clone(),
                        metric: m.metric,
                        parameters: m.parameters as f64,
                        size_bytes: m.size_bytes as f64,
                        latency_batch_1_ms: m.latency_batch_1_ms,
                        latency_batch_64_ms: m.latency_batch_64_ms,
                    })
                    .collect(),
            }),
            raw: r,
        }
    }
}

#[ComplexObject]
impl ModelReport {
    /// The most confident mistakes, with thumbnails (`data:` URLs) where kept.
    async fn mistakes(&self, #[graphql(default = 12, validator(minimum = 0, maximum = 100))] first: i32) -> Vec<Example> {
        self.raw
            .mistakes(usize::try_from(first).unwrap_or(0))
            .into_iter()
            .map(|o| Example {
                id: o.id.clone(),
                label: o.label.clone(),
                predicted: o.predicted.clone(),
                confidence: o.confidence,
                thumbnail: self.raw.thumbnails.get(&o.id).cloned(),
            })
            .collect()
    }
}

#[derive(SimpleObject, Clone)]
pub struct ReportMetric {
    /// `accuracy`, `macro_f1`, `weighted_f1`, `top_3`, `ece`, `loss`…
    pub name: String,
    pub label: String,
    pub value: f64,
    pub higher_is_better: bool,
}

#[derive(SimpleObject, Clone)]
pub struct Baseline {
    /// `majority_class`, `base_model`, `teacher`, `student_alone`, `popularity`.
    pub kind: String,
    pub label: String,
    pub metric: String,
    /// None when it could not be measured (`verdict` says why).
    pub value: Option<f64>,
    pub model_value: f64,
    pub beaten: Option<bool>,
    /// In words: whether the model beat it and by how much.
    pub verdict: String,
}

#[derive(SimpleObject, Clone)]
pub struct Chart {
    /// `loss`, `accuracy`, `metric_at_k`.
    pub id: String,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
}

impl From<&dr::Chart> for Chart {
    fn from(c: &dr::Chart) -> Self {
        Self {
            id: c.id.clone(),
            title: c.title.clone(),
            x_label: c.x_label.clone(),
            y_label: c.y_label.clone(),
            series: c
                .series
                .iter()
                .map(|s| Series { name: s.name.clone(), points: s.points.iter().map(|p| Point { x: p.x, y: p.y }).collect() })
                .collect(),
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<Point>,
}

#[derive(SimpleObject, Clone, Copy)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

#[derive(SimpleObject, Clone)]
pub struct ConfusionMatrix {
    pub classes: Vec<String>,
    pub counts: Vec<Vec<i32>>,
}

#[derive(SimpleObject, Clone)]
pub struct ClassScores {
    pub class: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: i32,
}

#[derive(SimpleObject, Clone)]
pub struct Calibration {
    pub ece: f64,
    pub bins: Vec<CalibrationBin>,
}

#[derive(SimpleObject, Clone)]
pub struct CalibrationBin {
    pub lower: f64,
    pub upper: f64,
    pub count: i32,
    pub confidence: f64,
    pub accuracy: f64,
}

/// Milliseconds per example, measured after training on the worker.
#[derive(SimpleObject, Clone)]
pub struct Latency {
    #[graphql(name = "batch1Ms")]
    pub batch_1_ms: f64,
    #[graphql(name = "batch1P95Ms")]
    pub batch_1_p95_ms: f64,
    #[graphql(name = "batch64Ms")]
    pub batch_64_ms: f64,
}

#[derive(SimpleObject, Clone)]
pub struct Distillation {
    pub alpha: f64,
    pub temperature: f64,
    pub models: Vec<DistillationModel>,
    pub verdict: String,
}

#[derive(SimpleObject, Clone)]
pub struct DistillationModel {
    /// `teacher`, `student` or `student_alone`.
    pub role: String,
    pub architecture: String,
    /// The report's primary metric.
    pub metric: f64,
    pub parameters: f64,
    pub size_bytes: f64,
    #[graphql(name = "latencyBatch1Ms")]
    pub latency_batch_1_ms: f64,
    #[graphql(name = "latencyBatch64Ms")]
    pub latency_batch_64_ms: f64,
}

#[derive(SimpleObject, Clone)]
pub struct Example {
    pub id: String,
    pub label: String,
    pub predicted: String,
    pub confidence: f64,
    pub thumbnail: Option<String>,
}

/// Version A against version B on the examples both were tested on.
#[derive(SimpleObject, Clone)]
pub struct ModelComparison {
    pub examples: i32,
    /// Set when the comparison covers only part of either test set: what it covers.
    pub restricted: Option<String>,
    pub metrics: Vec<MetricDifference>,
    pub per_class: Vec<ClassDifference>,
    /// Wrong in A, right in B (a few).
    pub fixed: Vec<FlippedExample>,
    /// Right in A, wrong in B (a few).
    pub broken: Vec<FlippedExample>,
    pub fixed_count: i32,
    pub broken_count: i32,
    pub summary: String,
}

#[derive(SimpleObject, Clone)]
pub struct MetricDifference {
    pub name: String,
    pub label: String,
    pub a: f64,
    pub b: f64,
    /// b − a.
    pub difference: f64,
    /// 95 % paired-bootstrap interval of the difference (2000 resamples of the shared examples).
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// The interval excludes 0; null when the metric cannot be resampled per example.
    pub beyond_noise: Option<bool>,
    pub higher_is_better: bool,
}

#[derive(SimpleObject, Clone)]
pub struct ClassDifference {
    pub class: String,
    pub recall_a: f64,
    pub recall_b: f64,
    pub precision_a: f64,
    pub precision_b: f64,
    pub support: i32,
}

#[derive(SimpleObject, Clone)]
pub struct FlippedExample {
    pub id: String,
    pub label: String,
    pub predicted_a: String,
    pub predicted_b: String,
    pub thumbnail: Option<String>,
}

impl From<dc::Comparison> for ModelComparison {
    fn from(c: dc::Comparison) -> Self {
        let flip = |f: dc::Flip| FlippedExample {
            id: f.id,
            label: f.label,
            predicted_a: f.predicted_a,
            predicted_b: f.predicted_b,
            thumbnail: f.thumbnail,
        };
        Self {
            examples: int(c.examples),
            restricted: c.restricted,
            metrics: c
                .metrics
                .into_iter()
                .map(|m| MetricDifference {
                    name: m.name,
                    label: m.label,
                    a: m.a,
                    b: m.b,
                    difference: m.difference,
                    ci_low: m.ci_low,
                    ci_high: m.ci_high,
                    beyond_noise: m.beyond_noise,
                    higher_is_better: m.higher_is_better,
                })
                .collect(),
            per_class: c
                .per_class
                .into_iter()
                .map(|d| ClassDifference {
                    class: d.class,
                    recall_a: d.recall_a,
                    recall_b: d.recall_b,
                    precision_a: d.precision_a,
                    precision_b: d.precision_b,
                    support: int(d.support),
                })
                .collect(),
            fixed: c.fixed.into_iter().map(flip).collect(),
            broken: c.broken.into_iter().map(flip).collect(),
            fixed_count: int(c.fixed_count),
            broken_count: int(c.broken_count),
            summary: c.summary,
        }
    }
}
