//! The recommendation family's `report.json` read into the family-neutral
//! [`ModelReport`]: the RecBole metrics at 10 as headline (NDCG, Recall,
//! MRR, Hit, Precision), item coverage and popularity bias, RMSE/MAE for
//! explicit models; the popularity baseline beside every model (and the
//! training mean beside rating errors); metric@K curves for the model and
//! the baseline, training curves, top-10 latency.

use tenfold_domain::report::{Baseline, Chart, Distillation, LatencyStats, Metric, ModelReport, ModelRow, ModelSize, Point, Series};
use tenfold_domain::{DomainError, Family};

use super::metrics::Ranking;
use super::train::{RecComparison, RecReport};
use crate::charts::per_epoch;
use crate::train::EpochRecord;

/// The headline metrics a recommendation report carries, in display order
/// (the names promotion rules may use).
pub const METRICS: &[&str] = &[
    "ndcg@10",
    "recall@10",
    "mrr@10",
    "hit@10",
    "precision@10",
    "item_coverage@10",
    "average_popularity@10",
    "gini_index@10",
    "rmse",
    "mae",
];

fn invalid(why: impl std::fmt::Display) -> DomainError {
    DomainError::invalid("report", format!("report.json is not a recommendation model's report ({why})"))
}

/// One metric across K, for the model and the popularity baseline.
fn at_k_chart(id: &str, title: &str, label: &str, model: &Ranking, popularity: &Ranking, value: fn(&super::metrics::AtK) -> f64) -> Chart {
    let series =
        |name: &str, r: &Ranking| Series { name: name.into(), points: r.at.iter().map(|a| Point { x: a.k as f64, y: value(a) }).collect() };
    Chart {
        id: id.into(),
        title: title.into(),
        x_label: "K (length of the list)".into(),
        y_label: label.into(),
        series: vec![series("model", model), series("popularity baseline", popularity)],
    }
}

pub fn model_report(json: &[u8], size_bytes: u64) -> Result<ModelReport, DomainError> {
    let file: RecReport = serde_json::from_slice(json).map_err(invalid)?;
    let at10 = file.test.at(10).ok_or_else(|| invalid("it has no metrics at 10"))?;
    let metric = Metric::new;
    let mut metrics = vec![
        metric("ndcg@10", "NDCG@10", at10.ndcg, true),
        metric("recall@10", "Recall@10", at10.recall, true),
        metric("mrr@10", "MRR@10", at10.mrr, true),
        metric("hit@10", "Hit@10 (users with a relevant item in their 10)", at10.hit, true),
        metric("precision@10", "Precision@10", at10.precision, true),
        metric("item_coverage@10", "Item coverage@10 (share of the catalogue recommended)", at10.item_coverage, true),
        metric(
            "average_popularity@10",
            "Average popularity@10 (training interactions per recommended item)",
            at10.average_popularity,
            false,
        ),
        metric("gini_index@10", "Gini index@10 (0: every item recommended alike)", at10.gini_index, false),
    ];
    let pop10 = file.popularity.ndcg10();
    let mut baselines = vec![Baseline::compared(
        "popularity",
        "popularity (the most interacted-with items for everyone)".into(),
        "ndcg@10",
        Some(pop10),
        at10.ndcg,
        true,
        None,
    )];
    if let Some(r) = &file.ratings {
        metrics.push(metric("rmse", "RMSE of held-out ratings", r.model.rmse, false));
        metrics.push(metric("mae", "MAE of held-out ratings", r.model.mae, false));
        baselines.push(Baseline::compared(
            "global_mean",
            "the training mean rating for everything".into(),
            "rmse",
            Some(r.global_mean.rmse),
            r.model.rmse,
            false,
            None,
        ));
    }
    let (loss, monitored) = if file.ratings.is_some() { ("mean squared error", "rmse") } else { ("BPR loss", "ndcg@10") };
    if let Some(d) = &file.distillation {
        baselines.push(Baseline::compared(
            "teacher",
            format!("the teacher ({}, {} factors)", d.teacher.architecture, d.teacher.dim),
            "ndcg@10",
            Some(d.teacher.ndcg_at_10),
            at10.ndcg,
            true,
            None,
        ));
        baselines.push(Baseline::compared(
            "student_alone",
            format!("the same student trained on the data alone ({} factors)", d.student_alone.dim),
            "ndcg@10",
            Some(d.student_alone.ndcg_at_10),
            at10.ndcg,
            true,
            None,
        ));
    }
    let mut curves = vec![
        per_epoch(&file.training, "loss", "Training loss per epoch", loss, &[("train", &|e: &EpochRecord| Some(e.train_loss))]),
        per_epoch(
            &file.training,
            "validation",
            &format!("Validation {monitored} per epoch (the best epoch is kept)"),
            monitored,
            &[("validation", &|e: &EpochRecord| e.val.get(monitored).copied())],
        ),
    ];
    curves.push(at_k_chart("ndcg_at_k", "NDCG@K: model and popularity baseline", "NDCG@K", &file.test, &file.popularity, |a| a.ndcg));
    curves
        .push(at_k_chart("recall_at_k", "Recall@K: model and popularity baseline", "Recall@K", &file.test, &file.popularity, |a| a.recall));
    curves.push(at_k_chart(
        "coverage_at_k",
        "Item coverage@K: how much of the catalogue is recommended",
        "item coverage",
        &file.test,
        &file.popularity,
        |a| a.item_coverage,
    ));
    curves.push(at_k_chart(
        "popularity_at_k",
        "Popularity bias@K: training interactions of a recommended item",
        "average popularity",
        &file.test,
        &file.popularity,
        |a| a.average_popularity,
    ));
    let mut summary = format!(
        "{} on {} users × {} items ({} interactions), RecBole protocol ({} split per user, full ranking, {} test users): NDCG@10 {:.4}, \
         Recall@10 {:.4}, MRR@10 {:.4}, Hit@10 {:.4}, Precision@10 {:.4}; it recommends {:.1}% of the catalogue.",
        file.architecture,
        file.dataset.users,
        file.dataset.items,
        file.dataset.interactions,
        file.protocol.split,
        file.test.users,
        at10.ndcg,
        at10.recall,
        at10.mrr,
        at10.hit,
        at10.precision,
        at10.item_coverage * 100.0
    );
    if let Some(w) = &file.warm_start {
        summary.push_str(&format!(
            " Fine-tuned from an earlier version: {} of {} users and {} of {} items started from its factors.",
            w.known_users,
            w.known_users + w.new_users,
            w.known_items,
            w.known_items + w.new_items
        ));
    }
    if let Some(d) = &file.distillation {
        summary.push_str(&format!(" Distillation: {}.", d.verdict));
    }
    for b in baselines.iter().filter(|b| b.kind == "popularity" || b.kind == "global_mean") {
        summary.push_str(&format!(" Against {}: {}.", b.label, b.verdict));
    }
    for w in &file.warnings {
        summary.push_str(&format!(" Warning: {w}"));
    }
    Ok(ModelReport {
        family: Family::Recommendation,
        task: serde_json::to_value(file.task).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
        architecture: file.architecture.clone(),
        split: "test".into(),
        examples: file.test.users as u64,
        metrics,
        summary,
        baselines,
        curves,
        confusion: None,
        per_class: Vec::new(),
        calibration: None,
        size: ModelSize { parameters: file.parameters as u64, bytes: if size_bytes > 0 { size_bytes } else { file.artifact_bytes } },
        latency: Some(LatencyStats {
            batch_1_ms: file.speed.top10_ms,
            batch_1_p95_ms: file.speed.top10_p95_ms,
            batch_64_ms: file.speed.top10_ms,
        }),
        distillation: file.distillation.as_ref().map(|d| Distillation {
            alpha: f64::from(d.spec.alpha),
            temperature: f64::from(d.spec.temperature),
            models: [&d.teacher, &d.student, &d.student_alone].into_iter().map(row).collect(),
            verdict: d.verdict.clone(),
        }),
        outcomes: Vec::new(),
        thumbnails: Default::default(),
    })
}

fn row(c: &RecComparison) -> ModelRow {
    ModelRow {
        role: c.role.clone(),
        architecture: format!("{} ({} factors)", c.architecture, c.dim),
        metric: c.ndcg_at_10,
        parameters: c.parameters as u64,
        size_bytes: c.size_bytes,
        latency_batch_1_ms: c.top10_ms,
        latency_batch_64_ms: c.top10_ms,
    }
}
