//! The report's charts, each a standalone SVG document drawn by plotters.
//!
//! Every public function returns a complete `<svg>` with a `viewBox` and a
//! width of 100 %, so the same string works as a file, inlined in the page and
//! on paper. None of them panics: a chart that cannot be drawn becomes a small
//! SVG saying so, because one bad number must not cost the whole report.

mod bars;
mod confusion;
mod curves;
mod reliability;

pub use bars::distillation_bars;
pub(crate) use bars::role_name;
pub use confusion::confusion_heatmap;
pub use curves::curve_chart;
pub use reliability::reliability_diagram;

use std::error::Error;
use std::panic::{self, AssertUnwindSafe};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::format::escape;

/// Plotters' SVG canvas, as every chart receives it.
pub(crate) type Canvas<'a> = DrawingArea<SVGBackend<'a>, Shift>;
pub(crate) type Drawn = Result<(), Box<dyn Error>>;

/// The usual chart size; the page scales it to the column width.
pub(crate) const SIZE: (u32, u32) = (640, 400);
/// Generic families only: the page's own font stack applies where the SVG is inlined.
pub(crate) const FONT: &str = "sans-serif";

/// What a chart that plotters could not draw says instead.
pub(crate) const NOT_DRAWN: &str = "This chart could not be drawn.";

/// Colour-blind-safe (Okabe–Ito) and dark enough to read on white paper.
const PALETTE: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
];

pub(crate) fn colour(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

/// Draws with plotters into a string, then makes the document scale.
pub(crate) fn render(title: &str, size: (u32, u32), paint: impl FnOnce(&Canvas<'_>) -> Drawn) -> String {
    let mut svg = String::new();
    // Plotters asserts on some inputs we may not have foreseen; a panic here
    // would take the whole report (and the request serving it) down.
    let drawn = panic::catch_unwind(AssertUnwindSafe(|| -> Drawn {
        let canvas = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        canvas.fill(&WHITE)?;
        paint(&canvas)?;
        canvas.present()?;
        Ok(())
    }));
    match drawn {
        Ok(Ok(())) => responsive(&svg, title, size).unwrap_or_else(|| message(title, NOT_DRAWN)),
        _ => message(title, NOT_DRAWN),
    }
}

/// Replaces plotters' fixed-size root tag with one that scales to its
/// container (never wider than drawn) and names the chart for screen readers.
fn responsive(svg: &str, title: &str, (width, height): (u32, u32)) -> Option<String> {
    let body = svg.strip_prefix("<svg")?;
    let body = body[body.find('>')? + 1..].trim_start_matches('\n');
    Some(format!("{}{body}", open_tag(title, width, height)))
}

fn open_tag(title: &str, width: u32, height: u32) -> String {
    let title = escape(title);
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"100%\" \
         style=\"max-width:{width}px;height:auto\" role=\"img\" aria-label=\"{title}\">\n<title>{title}</title>\n"
    )
}

/// A small chart-shaped SVG that says, in words, why there is no chart.
pub(crate) fn message(title: &str, text: &str) -> String {
    let (width, height) = (SIZE.0, 120);
    format!(
        "{}<rect x=\"0.5\" y=\"0.5\" width=\"{}\" height=\"{}\" fill=\"#fff\" stroke=\"#999\"/>\n\
         <text x=\"{}\" y=\"44\" text-anchor=\"middle\" font-family=\"{FONT}\" font-size=\"18\">{}</text>\n\
         <text x=\"{}\" y=\"80\" text-anchor=\"middle\" font-family=\"{FONT}\" font-size=\"14\" fill=\"#555\">{}</text>\n</svg>\n",
        open_tag(title, width, height),
        width - 1,
        height - 1,
        width / 2,
        escape(title),
        width / 2,
        escape(text),
    )
}

/// Pads a value range so lines and bars do not sit on the frame, and widens
/// a zero-width one (a single epoch, a flat curve) so plotters has a scale.
/// `None` when f64 cannot hold the range: plotters would loop forever
/// looking for tick marks, so such a chart says so instead.
pub(crate) fn padded(min: f64, max: f64, share: f64) -> Option<(f64, f64)> {
    let magnitude = min.abs().max(max.abs());
    let span = max - min;
    // Spans near the values' rounding error count as flat: ticks need distinct values.
    let (low, high) = if span > magnitude * 1e-9 {
        (min - span * share, max + span * share)
    } else {
        let pad = if magnitude == 0.0 { 1.0 } else { magnitude * 0.1 };
        (min - pad, max + pad)
    };
    (low.is_finite() && high.is_finite() && (high - low).is_finite()).then_some((low, high))
}

#[cfg(test)]
pub(crate) mod checks {
    /// What every chart must be: a scalable standalone SVG document.
    pub fn assert_scalable_svg(svg: &str) {
        assert!(svg.starts_with("<svg"), "not an SVG document: {}", &svg[..svg.len().min(80)]);
        assert!(svg.contains("viewBox=\"0 0 "), "no viewBox");
        assert!(svg.contains("width=\"100%\""), "fixed width");
        assert!(svg.trim_end().ends_with("</svg>"), "unterminated");
        assert_eq!(svg.matches("<svg").count(), 1, "nested documents");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_escapes_and_scales() {
        let svg = message("<Loss>", "No points & no epochs");
        checks::assert_scalable_svg(&svg);
        assert!(svg.contains("&lt;Loss&gt;") && svg.contains("No points &amp; no epochs"));
    }

    #[test]
    fn drawing_errors_become_a_message() {
        let svg = render("Broken", SIZE, |_| Err("boom".into()));
        checks::assert_scalable_svg(&svg);
        assert!(svg.contains(NOT_DRAWN));
    }

    #[test]
    fn degenerate_ranges_get_a_scale() {
        assert_eq!(padded(0.0, 0.0, 0.05), Some((-1.0, 1.0)));
        assert_eq!(padded(0.0, 10.0, 0.1), Some((-1.0, 11.0)));
        assert_eq!(padded(1.0, 10.0, 0.0), Some((1.0, 10.0)));
        for (min, max) in [(0.5, 0.5), (1.0, 1.0 + 1e-15), (1e15, 1e15 + 1.0)] {
            let (low, high) = padded(min, max, 0.05).unwrap_or_default();
            assert!(low < min && high > max && (high - low) > 1e-9 * max, "{min}..{max}");
        }
        assert_eq!(padded(f64::MIN, f64::MAX, 0.0), None);
        assert_eq!(padded(-1e308, 1e308, 0.1), None);
    }
}
