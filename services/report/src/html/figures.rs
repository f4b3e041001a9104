//! The page's pictures: the charts, and the gallery of confident mistakes.

use tenfold_domain::report::{ExampleOutcome, ModelReport};

use super::section;
use crate::charts;
use crate::format::{self, escape};

/// The gallery's length: enough to spot a pattern, short enough to print.
const MISTAKES_SHOWN: usize = 12;

pub fn charts(report: &ModelReport) -> String {
    let mut figures = String::new();
    for chart in &report.curves {
        let names: Vec<&str> = chart.series.iter().map(|s| s.name.as_str()).collect();
        let caption = format!("{} by {}: {}.", chart.title, chart.x_label.to_lowercase(), names.join(", "));
        figures += &figure(&chart.id, &charts::curve_chart(chart), &escape(&caption));
    }
    if let Some(confusion) = &report.confusion {
        let caption = "Rows are the true class, columns the predicted one. Colour is the share of the true class's examples, \
                       so a rare class's mistakes show as clearly as a common one's.";
        figures += &figure("confusion", &charts::confusion_heatmap(confusion), &escape(caption));
    }
    if let Some(calibration) = &report.calibration {
        let caption = format!(
            "Accuracy of the predictions in each confidence bin (empty bins left out), against the diagonal a perfectly \
             calibrated model follows. Expected calibration error: {}.",
            format::metric(calibration.ece)
        );
        figures += &figure("reliability", &charts::reliability_diagram(calibration), &escape(&caption));
    }
    if let Some(distillation) = &report.distillation {
        figures += &figure("distillation", &charts::distillation_bars(distillation), &escape(&distillation.verdict));
    }
    if figures.is_empty() {
        return section("charts", "Charts", "<p>This report has no charts.</p>\n");
    }
    section("charts", "Charts", &format!("<div class=\"charts\">\n{figures}</div>\n"))
}

/// `caption` is already escaped markup.
fn figure(id: &str, svg: &str, caption: &str) -> String {
    format!("<figure class=\"chart\" data-chart=\"{}\">\n{}<figcaption>{caption}</figcaption>\n</figure>\n", escape(id), inline(svg))
}

/// HTML puts an inline `<svg>` in the SVG namespace by itself; dropping the
/// declaration keeps the page free of any URL, even one never fetched.
fn inline(svg: &str) -> String {
    svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
}

pub fn mistakes(report: &ModelReport) -> String {
    let heading = "Most confident mistakes";
    if report.outcomes.is_empty() {
        return section("mistakes", heading, "<p>No per-example outcomes were recorded.</p>\n");
    }
    let mistakes = report.mistakes(MISTAKES_SHOWN);
    if mistakes.is_empty() {
        return section("mistakes", heading, "<p>The model got every scored example right.</p>\n");
    }
    let items: String = mistakes.iter().map(|outcome| mistake(report, outcome)).collect();
    section("mistakes", heading, &format!("<ol class=\"mistakes\">\n{items}</ol>\n"))
}

fn mistake(report: &ModelReport, outcome: &ExampleOutcome) -> String {
    // Only embedded pictures: anything else would be a fetch (and the CSP would block it anyway).
    let picture = match report.thumbnails.get(&outcome.id) {
        Some(url) if url.starts_with("data:image/") => format!("<img src=\"{}\" alt=\"{}\">", escape(url), escape(&outcome.id)),
        _ => "<div class=\"no-picture\">no picture</div>".to_owned(),
    };
    format!(
        "<li><figure>{picture}<figcaption><code>{}</code><br>{} → <strong>{}</strong><br>{} confident</figcaption></figure></li>\n",
        escape(&outcome.id),
        escape(&outcome.label),
        escape(&outcome.predicted),
        format::percent(outcome.confidence),
    )
}
