//! A realistic report for the tests: a distilled CIFAR-10 student.

use std::collections::BTreeMap;

use tenfold_domain::Family;
use tenfold_domain::report::*;

pub const CLASSES: [&str; 10] = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// A 1×1 transparent PNG.
pub const THUMBNAIL: &str =
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";

pub fn report() -> ModelReport {
    ModelReport {
        family: Family::ImageClassification,
        task: "distill".into(),
        architecture: "resnet8".into(),
        split: "test".into(),
        examples: 10_000,
        metrics: vec![
            metric("accuracy", "Accuracy", 0.8612, true),
            metric("macro_f1", "Macro F1", 0.8597, true),
            metric("ece", "Expected calibration error", 0.0342, false),
        ],
        summary:
            "A resnet8 student distilled from a resnet50 teacher: 0.8612 accuracy, 3.1 points under the teacher at a tenth of its size."
                .into(),
        baselines: vec![
            Baseline {
                kind: "majority_class".into(),
                label: "Majority class (always 'airplane')".into(),
                metric: "accuracy".into(),
                value: Some(0.1),
                model_value: 0.8612,
                beaten: Some(true),
                verdict: "Far better than always answering the commonest class.".into(),
            },
            Baseline {
                kind: "teacher".into(),
                label: "Teacher (resnet50)".into(),
                metric: "accuracy".into(),
                value: Some(0.8921),
                model_value: 0.8612,
                beaten: Some(false),
                verdict: "3.1 points under the teacher, as expected of a model ten times smaller.".into(),
            },
            Baseline {
                kind: "base_model".into(),
                label: "Base model".into(),
                metric: "accuracy".into(),
                value: None,
                model_value: 0.8612,
                beaten: None,
                verdict: "Not measured: this job trained from scratch.".into(),
            },
        ],
        curves: vec![
            curve("loss", "Loss", |e| 2.1 / e.sqrt(), |e| 2.2 / e.sqrt() + 0.05),
            curve("accuracy", "Accuracy", |e| 0.5 + 0.04 * e, |e| 0.48 + 0.038 * e),
        ],
        confusion: Some(confusion()),
        per_class: CLASSES
            .iter()
            .enumerate()
            .map(|(i, class)| ClassScores {
                class: (*class).into(),
                precision: 0.8 + i as f64 / 100.0,
                recall: 0.85,
                f1: 0.82,
                support: 1000,
            })
            .collect(),
        calibration: Some(calibration()),
        size: ModelSize { parameters: 78_042, bytes: 318_976 },
        latency: Some(LatencyStats { batch_1_ms: 0.41234, batch_1_p95_ms: 0.6789, batch_64_ms: 0.021 }),
        distillation: Some(distillation()),
        outcomes: outcomes(),
        thumbnails: BTreeMap::from([("cat/0042.png".to_owned(), THUMBNAIL.to_owned())]),
    }
}

fn metric(name: &str, label: &str, value: f64, higher_is_better: bool) -> Metric {
    Metric { name: name.into(), label: label.into(), value, higher_is_better }
}

fn curve(id: &str, title: &str, train: fn(f64) -> f64, validation: fn(f64) -> f64) -> Chart {
    let series = |name: &str, value: fn(f64) -> f64| Series {
        name: name.into(),
        points: (1..=10).map(|epoch| Point { x: f64::from(epoch), y: value(f64::from(epoch)) }).collect(),
    };
    Chart {
        id: id.into(),
        title: title.into(),
        x_label: "Epoch".into(),
        y_label: title.into(),
        series: vec![series("train", train), series("validation", validation)],
    }
}

/// Mostly right, with the classic cat/dog and automobile/truck confusions;
/// distinct counts so a test can find each one.
pub fn confusion() -> Confusion {
    let counts =
        (0..10u64).map(|row| (0..10u64).map(|column| if row == column { 800 + row } else { row * 10 + column + 1 }).collect()).collect();
    Confusion { classes: CLASSES.iter().map(|c| (*c).into()).collect(), counts }
}

fn calibration() -> Calibration {
    let bins = (0..15)
        .map(|i| {
            let (lower, upper) = (i as f64 / 15.0, (i + 1) as f64 / 15.0);
            // The lowest bins stay empty: with ten classes the top one is rarely under 0.13.
            let count = if i < 2 { 0 } else { 40 * i as u64 };
            let confidence = if count == 0 { 0.0 } else { (lower + upper) / 2.0 };
            let accuracy = if count == 0 { 0.0 } else { confidence - 0.03 };
            CalibrationBin { lower, upper, count, confidence, accuracy }
        })
        .collect();
    Calibration { ece: 0.0342, bins }
}

fn distillation() -> Distillation {
    let row = |role: &str, architecture: &str, metric: f64, parameters: u64, latency: f64| ModelRow {
        role: role.into(),
        architecture: architecture.into(),
        metric,
        parameters,
        size_bytes: parameters * 4 + 6_000,
        latency_batch_1_ms: latency,
        latency_batch_64_ms: latency / 12.0,
    };
    Distillation {
        alpha: 0.7,
        temperature: 4.0,
        models: vec![
            row("teacher", "resnet50", 0.8921, 23_520_842, 4.812),
            row("student", "resnet8", 0.8612, 78_042, 0.41234),
            row("student_alone", "resnet8", 0.8404, 78_042, 0.41),
        ],
        verdict: "Distillation helped: +2.1 points over the same student trained alone.".into(),
    }
}

fn outcomes() -> Vec<ExampleOutcome> {
    let outcome = |id: &str, label: &str, predicted: &str, confidence: f64| ExampleOutcome {
        id: id.into(),
        label: label.into(),
        predicted: predicted.into(),
        score: if label == predicted { 1.0 } else { 0.0 },
        confidence,
    };
    vec![
        outcome("airplane/0001.png", "airplane", "airplane", 0.99),
        outcome("cat/0042.png", "cat", "dog", 0.97),
        outcome("truck/0007.png", "truck", "automobile", 0.88),
        outcome("bird/0100.png", "bird", "airplane", 0.61),
        outcome("dog/0003.png", "dog", "dog", 0.93),
    ]
}
