//! The page's words and tables: summary, metrics, baselines, per class,
//! distillation, size and latency.

use tenfold_domain::report::{Baseline, ModelReport, ModelRow};

use super::section;
use crate::charts::role_name;
use crate::format::{self, escape};

pub fn summary(report: &ModelReport) -> String {
    let context = format!(
        "<p class=\"note\">Measured on the {} split ({} examples). Task: {}; architecture: {}.</p>\n",
        escape(&report.split),
        format::grouped(report.examples),
        escape(&report.task),
        escape(&report.architecture),
    );
    section("summary", "Summary", &format!("<p>{}</p>\n{context}", escape(&report.summary)))
}

pub fn metrics(report: &ModelReport) -> String {
    if report.metrics.is_empty() {
        return section("metrics", "Headline metrics", "<p>This model reports no metrics.</p>\n");
    }
    let mut rows = String::new();
    for (index, metric) in report.metrics.iter().enumerate() {
        let primary = if index == 0 { " <span class=\"note\">(primary)</span>" } else { "" };
        let better = if metric.higher_is_better { "higher" } else { "lower" };
        rows += &format!(
            "<tr><th scope=\"row\">{}{primary}</th><td class=\"num\">{}</td><td>{better}</td></tr>\n",
            escape(&metric.label),
            format::metric(metric.value),
        );
    }
    section("metrics", "Headline metrics", &table(&["Metric", "Value", "Better when"], &rows))
}

pub fn baselines(report: &ModelReport) -> String {
    if report.baselines.is_empty() {
        return section("baselines", "Baselines", "<p>No baseline was measured.</p>\n");
    }
    let rows: String = report.baselines.iter().map(baseline_row).collect();
    section("baselines", "Baselines", &table(&["Baseline", "Metric", "Its value", "This model", "Beaten", "Verdict"], &rows))
}

fn baseline_row(baseline: &Baseline) -> String {
    // The mark has words next to it: symbols alone do not survive every printer or screen reader.
    let beaten = match baseline.beaten {
        Some(true) => "<span class=\"yes\">✓ yes</span>",
        Some(false) => "<span class=\"no\">✗ no</span>",
        None => "<span class=\"na\">– not comparable</span>",
    };
    let value = baseline.value.map(format::metric).unwrap_or_else(|| "not measured".to_owned());
    format!(
        "<tr><th scope=\"row\">{}</th><td>{}</td><td class=\"num\">{value}</td><td class=\"num\">{}</td><td>{beaten}</td><td>{}</td></tr>\n",
        escape(&baseline.label),
        escape(&baseline.metric),
        format::metric(baseline.model_value),
        escape(&baseline.verdict),
    )
}

pub fn per_class(report: &ModelReport) -> String {
    if report.per_class.is_empty() {
        return String::new();
    }
    let rows: String = report
        .per_class
        .iter()
        .map(|scores| {
            format!(
                "<tr><th scope=\"row\">{}</th><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
                escape(&scores.class),
                format::metric(scores.precision),
                format::metric(scores.recall),
                format::metric(scores.f1),
                format::grouped(scores.support),
            )
        })
        .collect();
    section("per-class", "Per class", &table(&["Class", "Precision", "Recall", "F1", "Support"], &rows))
}

pub fn distillation(report: &ModelReport) -> String {
    let Some(distillation) = &report.distillation else {
        return String::new();
    };
    let rows: String = distillation.models.iter().map(model_row).collect();
    let headings = ["Model", "Architecture", "Primary metric", "Parameters", "Size", "Latency, batch 1", "Latency, batch 64"];
    let content = format!(
        "{}<p>{}</p>\n<p class=\"note\">Distilled with α = {} and temperature {}; latency is per example.</p>\n",
        table(&headings, &rows),
        escape(&distillation.verdict),
        // Settings as typed: 0.7 and 4, not 0.700 and 4.00.
        distillation.alpha,
        distillation.temperature,
    );
    section("distillation", "Distillation", &content)
}

fn model_row(model: &ModelRow) -> String {
    format!(
        "<tr><th scope=\"row\">{}</th><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
        escape(&role_name(&model.role)),
        escape(&model.architecture),
        format::metric(model.metric),
        format::count(model.parameters),
        format::bytes(model.size_bytes),
        format::millis(model.latency_batch_1_ms),
        format::millis(model.latency_batch_64_ms),
    )
}

pub fn size_and_latency(report: &ModelReport) -> String {
    let size = &report.size;
    let mut rows = format!(
        "<tr><th scope=\"row\">Parameters</th><td class=\"num\">{} ({})</td></tr>\n<tr><th scope=\"row\">Size</th><td class=\"num\">{}</td></tr>\n",
        format::count(size.parameters),
        format::grouped(size.parameters),
        format::bytes(size.bytes),
    );
    rows += &match &report.latency {
        Some(latency) => format!(
            "<tr><th scope=\"row\">Latency, batch 1 (median)</th><td class=\"num\">{}</td></tr>\n\
             <tr><th scope=\"row\">Latency, batch 1 (95th percentile)</th><td class=\"num\">{}</td></tr>\n\
             <tr><th scope=\"row\">Latency, batch 64 (per example)</th><td class=\"num\">{}</td></tr>\n",
            format::millis(latency.batch_1_ms),
            format::millis(latency.batch_1_p95_ms),
            format::millis(latency.batch_64_ms),
        ),
        None => "<tr><th scope=\"row\">Latency</th><td>not measured</td></tr>\n".to_owned(),
    };
    let note = "<p class=\"note\">Milliseconds per example on the machine that trained the model.</p>\n";
    section("size", "Size and latency", &format!("<table class=\"facts\">\n<tbody>\n{rows}</tbody>\n</table>\n{note}"))
}

/// A table with a header row; `rows` is already escaped markup.
fn table(headings: &[&str], rows: &str) -> String {
    let head: String = headings.iter().map(|h| format!("<th scope=\"col\">{h}</th>")).collect();
    format!("<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}</tbody>\n</table>\n")
}
