//! The report as one self-contained HTML page.
//!
//! Self-contained means: styles inline, charts as inline SVG, pictures as
//! `data:` URLs, no scripts and no reference to anything outside the file.
//! The Content-Security-Policy enforces it: even a URL that slipped into the
//! markup could not be fetched, so opening a report leaks nothing.

mod figures;
mod tables;

use tenfold_domain::report::ModelReport;

use crate::format::escape;

/// What the page shows: a title, the version's lineage and its report.
pub struct Page<'a> {
    pub title: String,
    pub subtitle: String,
    /// The version's lineage, in display order: model, version, dataset, job,
    /// architecture, hyperparameters, engine, split and seed, created at.
    pub facts: Vec<(String, String)>,
    pub report: &'a ModelReport,
}

/// Nothing may be fetched: only inline styles and `data:` images are allowed.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

const STYLE: &str = include_str!("html/style.css");

/// A complete HTML5 document for `page`.
pub fn render(page: &Page<'_>) -> String {
    let report = page.report;
    let sections = [
        header(page),
        tables::summary(report),
        tables::metrics(report),
        tables::baselines(report),
        figures::charts(report),
        tables::per_class(report),
        tables::distillation(report),
        tables::size_and_latency(report),
        figures::mistakes(report),
    ];
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CONTENT_SECURITY_POLICY}\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<main>\n{}</main>\n</body>\n</html>\n",
        escape(&page.title),
        sections.concat(),
    )
}

fn header(page: &Page<'_>) -> String {
    let mut html = format!("<header>\n<h1>{}</h1>\n", escape(&page.title));
    if !page.subtitle.is_empty() {
        html += &format!("<p class=\"subtitle\">{}</p>\n", escape(&page.subtitle));
    }
    if !page.facts.is_empty() {
        html += "<table class=\"facts\">\n<tbody>\n";
        for (name, value) in &page.facts {
            html += &format!("<tr><th scope=\"row\">{}</th><td>{}</td></tr>\n", escape(name), escape(value));
        }
        html += "</tbody>\n</table>\n";
    }
    html + "</header>\n"
}

/// A `<section>` with its heading; `id` is ours, never user text.
fn section(id: &str, heading: &str, content: &str) -> String {
    format!("<section id=\"{id}\">\n<h2>{heading}</h2>\n{content}</section>\n")
}

#[cfg(test)]
mod tests;
