//! The chat family's `report.json` read into the family-neutral
//! [`ModelReport`]: headline metrics (intent accuracy, macro-F1, the
//! hand-over rate and the precision of what is answered, reply hit@1/@5,
//! calibration, the share of text the vocabulary cannot read), the
//! majority-intent and distillation baselines, training curves and the
//! hand-over curve (precision against coverage as the threshold rises),
//! confusion matrix, per-intent scores, reliability diagram, latency, the
//! teacher/student comparison, and the scored messages.

use tenfold_domain::report::{Baseline, Chart, Distillation, LatencyStats, Metric, ModelReport, ModelRow, ModelSize, Point, Series};
use tenfold_domain::{DomainError, Family};

use super::train::{ChatComparison, ChatReport};

/// The headline metrics a chat report carries, in display order (the
/// names promotion rules may use).
pub const METRICS: &[&str] = &[
    "accuracy",
    "macro_f1",
    "weighted_f1",
    "handoff_rate",
    "handoff_precision",
    "answer_hit_at_1",
    "answer_hit_at_5",
    "ece",
    "tokenizer_unknown_share",
];

fn invalid(why: impl std::fmt::Display) -> DomainError {
    DomainError::invalid("report", format!("report.json is not a chat model's report ({why})"))
}

pub fn model_report(json: &[u8], size_bytes: u64) -> Result<ModelReport, DomainError> {
    let file: ChatReport = serde_json::from_slice(json).map_err(invalid)?;
    let e = file.evaluation.as_ref().ok_or_else(|| invalid("it has no test evaluation: the data had no test split"))?;
    let m = &e.metrics;
    let metric = Metric::new;
    let metrics = vec![
        metric("accuracy", "Intent accuracy", m.accuracy, true),
        metric("macro_f1", "Macro F1", m.macro_f1, true),
        metric("weighted_f1", "Weighted F1", m.weighted_f1, true),
        metric("handoff_rate", "Handed over to a person", e.handoff.rate, false),
        metric("handoff_precision", "Intent precision of what is answered", e.handoff.precision, true),
        metric("answer_hit_at_1", "Approved reply chosen (hit@1)", e.answers.hit_at_1, true),
        metric("answer_hit_at_5", "Approved reply among the best 5 (hit@5)", e.answers.hit_at_5, true),
        metric("ece", "Expected calibration error", m.ece, false),
        metric(
            "tokenizer_unknown_share",
            "Word pieces the vocabulary cannot read (training data)",
            file.tokenizer_coverage.unknown_share,
            false,
        ),
    ];
    let baselines = baselines(&file, m);
    let mut curves = crate::charts::training_curves(&file.training);
    curves.push(Chart {
        id: "handoff".into(),
        title: "Hand-over: precision of what is answered against the share answered".into(),
        x_label: "share of conversations answered (coverage)".into(),
        y_label: "intent precision".into(),
        series: vec![Series {
            name: "as the confidence threshold rises from 0 to 0.95".into(),
            points: e.handoff.curve.iter().map(|p| Point { x: p.coverage, y: p.precision }).collect(),
        }],
    });
    Ok(ModelReport {
        family: Family::Chat,
        task: file.task.clone(),
        architecture: file.architecture.clone(),
        split: e.split.clone(),
        examples: m.examples as u64,
        metrics,
        summary: summary(&file, e, &baselines),
        baselines,
        curves,
        confusion: Some(m.confusion()),
        per_class: m.class_scores(),
        calibration: Some(m.calibration()),
        size: ModelSize { parameters: e.parameters as u64, bytes: if size_bytes > 0 { size_bytes } else { e.artifact_bytes } },
        latency: Some(LatencyStats {
            batch_1_ms: e.speed.batch_1_ms,
            batch_1_p95_ms: e.speed.batch_1_p95_ms,
            batch_64_ms: e.speed.batch_64_ms_per_example,
        }),
        distillation: file.distillation.as_ref().map(|d| Distillation {
            alpha: d.alpha,
            temperature: d.temperature,
            models: vec![row("teacher", &d.teacher), row("student", &d.student), row("student_alone", &d.baseline)],
            verdict: d.verdict.clone(),
        }),
        outcomes: e.outcomes.clone(),
        thumbnails: Default::default(),
    })
}

fn compared(kind: &str, label: String, value: f64, model: f64) -> Baseline {
    Baseline::compared(kind, label, "accuracy", Some(value), model, true, None)
}

fn baselines(file: &ChatReport, m: &crate::metrics::Classification) -> Vec<Baseline> {
    let mut out = Vec::new();
    // Always answering the commonest intent of the test split.
    if let Some(top) = m.per_class.iter().max_by_key(|c| c.support)
        && m.examples > 0
    {
        let share = top.support as f64 / m.examples as f64;
        out.push(compared("majority_class", format!("majority intent (always {:?})", top.class), share, m.accuracy));
    }
    if let Some(d) = &file.distillation {
        out.push(compared("teacher", format!("teacher ({})", d.teacher.architecture), d.teacher.accuracy, m.accuracy));
        out.push(compared(
            "student_alone",
            format!("the same student trained on the intents alone ({})", d.baseline.architecture),
            d.baseline.accuracy,
            m.accuracy,
        ));
    }
    out
}

fn summary(file: &ChatReport, e: &super::evaluate::ChatEvaluation, baselines: &[Baseline]) -> String {
    let what = if file.distillation.is_some() { "distilled from a fine-tuned teacher" } else { "fine-tuned from a pretrained encoder" };
    let mut text = format!(
        "{} {what}: intent accuracy {:.4} (macro F1 {:.4}) on {} {} messages; below a confidence of {:.3} it hands over \
         ({:.1}% of messages), and {:.1}% of the intents it answers are right.",
        file.architecture,
        e.metrics.accuracy,
        e.metrics.macro_f1,
        e.metrics.examples,
        e.split,
        e.handoff.threshold,
        e.handoff.rate * 100.0,
        e.handoff.precision * 100.0
    );
    for b in baselines.iter().filter(|b| b.kind != "teacher") {
        text.push_str(&format!(" Against the {}: {}.", b.label, b.verdict));
    }
    if let Some(d) = &file.distillation {
        text.push_str(&format!(" {}.", d.verdict));
    }
    let c = &file.tokenizer_coverage;
    text.push_str(&format!(" The vocabulary reads {:.1}% of the training text's word pieces.", (1.0 - c.unknown_share) * 100.0));
    for w in &file.warnings {
        text.push_str(&format!(" Warning: {w}"));
    }
    text
}

fn row(role: &str, c: &ChatComparison) -> ModelRow {
    ModelRow {
        role: role.into(),
        architecture: c.architecture.clone(),
        metric: c.accuracy,
        parameters: c.parameters as u64,
        size_bytes: c.size_bytes,
        latency_batch_1_ms: c.batch_1_ms,
        latency_batch_64_ms: c.batch_64_ms_per_example,
    }
}
