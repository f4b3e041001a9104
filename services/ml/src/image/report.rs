//! The image family's `report.json` read into the family-neutral
//! [`ModelReport`]: headline metrics, baselines in words, curves, confusion
//! matrix, per-class scores, reliability diagram, distillation comparison.

use std::collections::BTreeMap;

use serde::Deserialize;
use tenfold_domain::report::{Baseline, Distillation, LatencyStats, Metric, ModelReport, ModelRow, ModelSize};
use tenfold_domain::{DomainError, Family};

use super::evaluate::Evaluation;
use super::train::{Baselines, Comparison, Distillation as DistillationFile};
use crate::train::Outcome;

/// The headline metrics an image report carries, in display order.
pub const METRICS: &[&str] = &["accuracy", "macro_f1", "weighted_f1", "top_3", "ece", "loss"];

/// The parts of `report.json` a report shows (the file has more).
#[derive(Deserialize)]
struct ReportFile {
    task: String,
    architecture: String,
    training: Outcome,
    evaluation: Option<Evaluation>,
    distillation: Option<DistillationFile>,
    baselines: Option<Baselines>,
    #[serde(default)]
    thumbnails: BTreeMap<String, String>,
}

fn invalid(why: impl std::fmt::Display) -> DomainError {
    DomainError::invalid("report", format!("report.json is not an image-classification report ({why})"))
}

pub fn model_report(json: &[u8], size_bytes: u64) -> Result<ModelReport, DomainError> {
    let file: ReportFile = serde_json::from_slice(json).map_err(invalid)?;
    let e = file.evaluation.as_ref().ok_or_else(|| invalid("it has no held-out evaluation: the data had no validation or test split"))?;
    let m = &e.metrics;
    let metric = Metric::new;
    let mut metrics = vec![
        metric("accuracy", "Accuracy", m.accuracy, true),
        metric("macro_f1", "Macro F1", m.macro_f1, true),
        metric("weighted_f1", "Weighted F1", m.weighted_f1, true),
    ];
    if let Some(&top3) = m.top_k.get(&3) {
        metrics.push(metric("top_3", "Top-3 accuracy", top3, true));
    }
    metrics.push(metric("ece", "Expected calibration error", m.ece, false));
    metrics.push(metric("loss", "Test loss (cross-entropy)", m.mean_loss, false));

    let baselines = baselines(&file, m.accuracy);
    let summary = summary(&file, e, &baselines);
    Ok(ModelReport {
        family: Family::ImageClassification,
        task: file.task.clone(),
        architecture: file.architecture.clone(),
        split: e.split.clone(),
        examples: m.examples as u64,
        metrics,
        summary,
        baselines,
        curves: crate::charts::training_curves(&file.training),
        confusion: Some(m.confusion()),
        per_class: m.class_scores(),
        calibration: Some(m.calibration()),
        size: ModelSize { parameters: e.parameters as u64, bytes: if size_bytes > 0 { size_bytes } else { e.artifact_bytes } },
        latency: Some(LatencyStats {
            batch_1_ms: e.latency_ms_per_image.batch_1_ms,
            batch_1_p95_ms: e.latency_ms_per_image.batch_1_p95_ms,
            batch_64_ms: e.latency_ms_per_image.batch_64_ms,
        }),
        distillation: file.distillation.as_ref().map(distillation),
        outcomes: e.outcomes.clone(),
        thumbnails: file.thumbnails,
    })
}

fn compared(kind: &str, label: String, value: Option<f64>, model: f64, note: Option<&str>) -> Baseline {
    Baseline::compared(kind, label, "accuracy", value, model, true, note)
}

fn baselines(file: &ReportFile, accuracy: f64) -> Vec<Baseline> {
    let mut out = Vec::new();
    if let Some(b) = &file.baselines {
        out.push(compared(
            "majority_class",
            format!("majority class (always {:?})", b.majority_class),
            Some(b.majority_accuracy),
            accuracy,
            None,
        ));
        if let Some(base) = &b.base_model {
            out.push(compared("base_model", format!("base model ({})", base.architecture), base.accuracy, accuracy, Some(&base.note)));
        }
    }
    if let Some(d) = &file.distillation {
        out.push(compared("teacher", format!("teacher ({})", d.teacher.architecture), Some(d.teacher.accuracy), accuracy, None));
        out.push(compared(
            "student_alone",
            format!("the same student trained without the teacher ({})", d.baseline.architecture),
            Some(d.baseline.accuracy),
            accuracy,
            None,
        ));
    }
    out
}

fn summary(file: &ReportFile, e: &Evaluation, baselines: &[Baseline]) -> String {
    let what = match file.task.as_str() {
        "distill" => "distilled",
        "fine_tune" => "fine-tuned from a base model",
        _ => "trained from scratch",
    };
    let mut text = format!(
        "{} {what}: accuracy {:.4} (macro F1 {:.4}) on {} {} images.",
        file.architecture, e.metrics.accuracy, e.metrics.macro_f1, e.metrics.examples, e.split
    );
    for b in baselines {
        // A student is not expected to beat its teacher: say how much it kept.
        if b.kind == "teacher" {
            continue;
        }
        text.push_str(&format!(" Against the {}: {}.", b.label, b.verdict));
    }
    if let Some(d) = &file.distillation {
        text.push_str(&format!(" {}.", capitalised(&d.verdict)));
    }
    text
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

fn row(role: &str, c: &Comparison) -> ModelRow {
    ModelRow {
        role: role.into(),
        architecture: c.architecture.clone(),
        metric: c.accuracy,
        parameters: c.parameters as u64,
        size_bytes: c.size_bytes,
        latency_batch_1_ms: c.latency_ms_per_image.batch_1_ms,
        latency_batch_64_ms: c.latency_ms_per_image.batch_64_ms,
    }
}

fn distillation(d: &DistillationFile) -> Distillation {
    Distillation {
        alpha: d.alpha,
        temperature: d.temperature,
        models: vec![row("teacher", &d.teacher), row("student", &d.student), row("student_alone", &d.baseline)],
        verdict: d.verdict.clone(),
    }
}
