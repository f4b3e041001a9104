use tenfold_domain::report::ModelReport;

use super::*;
use crate::fixture;

fn page(report: &ModelReport) -> Page<'_> {
    Page {
        title: "cifar-student v3".into(),
        subtitle: "Image classification · distilled".into(),
        facts: vec![
            ("Model".into(), "cifar-student".into()),
            ("Version".into(), "3".into()),
            ("Dataset".into(), "cifar10 (v2)".into()),
            ("Hyperparameters".into(), "epochs=10, lr=0.01 & alpha=0.7".into()),
            ("Split and seed".into(), "80/10/10, seed 42".into()),
        ],
        report,
    }
}

#[test]
fn is_a_complete_locked_down_document() {
    let report = fixture::report();
    let html = render(&page(&report));
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    assert!(html.contains("<meta charset=\"utf-8\">"));
    assert!(html.contains("content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:"));
    for forbidden in ["http://", "https://", "src=\"//", "href=", "<script", "<link", "url(", "@import", "@font-face"] {
        assert!(!html.contains(forbidden), "found {forbidden:?}");
    }
    assert!(html.contains("@media print") && html.contains("break-inside: avoid"));
}

#[test]
fn has_every_section_in_order() {
    let report = fixture::report();
    let html = render(&page(&report));
    let ids = [
        "<header>",
        "id=\"summary\"",
        "id=\"metrics\"",
        "id=\"baselines\"",
        "id=\"charts\"",
        "id=\"per-class\"",
        "id=\"distillation\"",
        "id=\"size\"",
        "id=\"mistakes\"",
    ];
    let positions: Vec<usize> = ids.iter().map(|id| html.find(id).unwrap_or_else(|| panic!("{id} missing"))).collect();
    assert!(positions.windows(2).all(|pair| pair[0] < pair[1]), "sections out of order: {positions:?}");
    assert!(html.contains("epochs=10, lr=0.01 &amp; alpha=0.7"));
    assert!(html.contains(&report.summary));
    assert!(html.contains("10\u{202f}000 examples"));
}

#[test]
fn inlines_every_chart_in_a_figure() {
    let report = fixture::report();
    let html = render(&page(&report));
    for id in ["loss", "accuracy", "confusion", "reliability", "distillation"] {
        let figure = format!("<figure class=\"chart\" data-chart=\"{id}\">\n<svg ");
        assert!(html.contains(&figure), "no {id} figure");
    }
    assert_eq!(html.matches("<figure class=\"chart\"").count(), html.matches("<figcaption>").count() - report.mistakes(12).len());
    assert_eq!(html.matches("<svg ").count(), 5);
}

#[test]
fn baselines_say_the_verdict_and_mark_it() {
    let report = fixture::report();
    let html = render(&page(&report));
    for baseline in &report.baselines {
        assert!(html.contains(&escape(&baseline.verdict)));
    }
    assert!(html.contains("✓ yes") && html.contains("✗ no") && html.contains("not comparable") && html.contains("not measured"));
}

#[test]
fn tables_format_numbers_for_people() {
    let report = fixture::report();
    let html = render(&page(&report));
    assert!(html.contains(">0.8612<"), "metric with 4 decimals");
    assert!(html.contains("319\u{a0}KB"), "size in KB");
    assert!(html.contains("0.412\u{a0}ms") && html.contains("0.679\u{a0}ms"), "3 significant digits");
    assert!(html.contains("23.5\u{a0}M"), "teacher parameters");
    assert!(html.contains("α = 0.7 and temperature 4;"));
    assert!(
        html.contains("Student alone")
            && html.contains(&escape(&report.distillation.as_ref().map(|d| d.verdict.clone()).unwrap_or_default()))
    );
}

#[test]
fn gallery_shows_confident_mistakes_with_their_pictures() {
    let report = fixture::report();
    let html = render(&page(&report));
    let gallery = &html[html.find("id=\"mistakes\"").unwrap_or_default()..];
    let cat = gallery.find("cat/0042.png").unwrap_or_else(|| panic!("cat mistake missing"));
    let truck = gallery.find("truck/0007.png").unwrap_or_else(|| panic!("truck mistake missing"));
    assert!(cat < truck, "most confident first");
    assert!(!gallery.contains("airplane/0001.png"), "right answers are not mistakes");
    assert_eq!(gallery.matches("<img src=\"data:image/png;base64,").count(), 1);
    assert_eq!(gallery.matches("no picture").count(), 2);
    assert!(gallery.contains("cat → <strong>dog</strong><br>97.0\u{a0}% confident"));
}

#[test]
fn escapes_everything_users_provide() {
    let nasty = "<b>&\"";
    let mut report = fixture::report();
    if let Some(confusion) = report.confusion.as_mut() {
        confusion.classes[3] = nasty.into();
    }
    report.per_class[3].class = nasty.into();
    report.outcomes[1].label = nasty.into();
    report.outcomes[1].id = format!("{nasty}.png");
    report.thumbnails.insert("truck/0007.png".into(), "https://example.com/x.png\" onerror=\"x".into());
    report.curves[0].id = nasty.into();
    let mut page = page(&report);
    page.facts.push((nasty.into(), nasty.into()));
    page.title = nasty.into();
    let html = render(&page);
    assert!(!html.contains(nasty) && !html.contains("<b>"));
    assert!(html.contains("&lt;b&gt;&amp;&quot;"));
    assert!(!html.contains("https://") && !html.contains("onerror"), "only data: pictures are embedded");
}

#[test]
fn a_sparse_report_still_renders() {
    let mut report = fixture::report();
    report.curves.clear();
    report.confusion = None;
    report.calibration = None;
    report.distillation = None;
    report.latency = None;
    report.per_class.clear();
    report.baselines.clear();
    report.metrics.clear();
    report.outcomes.clear();
    report.thumbnails.clear();
    let html = render(&Page { title: String::new(), subtitle: String::new(), facts: vec![], report: &report });
    assert!(html.contains("This report has no charts.") && html.contains("No per-example outcomes"));
    assert!(!html.contains("<svg") && !html.contains("id=\"distillation\""));
    assert!(html.contains("Latency</th><td>not measured"));

    report.curves = vec![fixture::report().curves[0].clone()];
    report.curves[0].series.clear();
    let html = render(&Page { title: "t".into(), subtitle: String::new(), facts: vec![], report: &report });
    assert!(html.contains("data-chart=\"loss\"") && html.contains("No measured points"));
}
