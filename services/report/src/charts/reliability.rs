//! The reliability diagram: how often the model is right at each confidence.

use plotters::prelude::*;
use tenfold_domain::report::Calibration;

use super::{Canvas, Drawn, FONT, SIZE, colour, render};
use crate::format;

/// Bars of accuracy per non-empty confidence bin against the diagonal a
/// perfectly calibrated model would follow; the ECE is in the title.
pub fn reliability_diagram(calibration: &Calibration) -> String {
    let title = format!("Reliability diagram (ECE {})", format::metric(calibration.ece));
    let bars = bars(calibration);
    render(&title, SIZE, |canvas| draw(canvas, &title, &bars))
}

/// `(lower, upper, accuracy)` of the bins worth drawing: an empty bin has no
/// accuracy (its 0 means "no data", not "always wrong").
fn bars(calibration: &Calibration) -> Vec<(f64, f64, f64)> {
    calibration
        .bins
        .iter()
        .filter(|bin| bin.count > 0 && bin.lower.is_finite() && bin.upper.is_finite() && bin.accuracy.is_finite())
        .map(|bin| (bin.lower.clamp(0.0, 1.0), bin.upper.clamp(0.0, 1.0), bin.accuracy.clamp(0.0, 1.0)))
        .filter(|(lower, upper, _)| upper > lower)
        .collect()
}

fn draw(canvas: &Canvas<'_>, title: &str, bars: &[(f64, f64, f64)]) -> Drawn {
    let mut plot = ChartBuilder::on(canvas)
        .caption(title, (FONT, 24))
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
    plot.configure_mesh()
        .x_desc("Confidence")
        .y_desc("Accuracy")
        .x_labels(11)
        .y_labels(11)
        .x_label_formatter(&|x| format!("{x:.1}"))
        .y_label_formatter(&|y| format!("{y:.1}"))
        .light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.1))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .draw()?;

    let fill = colour(0).mix(0.75).filled();
    let outline = colour(0).stroke_width(1);
    plot.draw_series(bars.iter().map(|&(lower, upper, accuracy)| Rectangle::new([(lower, 0.0), (upper, accuracy)], fill)))?
        .label("Accuracy in the bin")
        .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], fill));
    plot.draw_series(bars.iter().map(|&(lower, upper, accuracy)| Rectangle::new([(lower, 0.0), (upper, accuracy)], outline)))?;
    let diagonal = BLACK.mix(0.7).stroke_width(2);
    plot.draw_series(DashedLineSeries::new([(0.0, 0.0), (1.0, 1.0)], 8, 5, diagonal))?
        .label("Perfectly calibrated")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], diagonal));

    plot.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::checks::assert_scalable_svg;
    use crate::fixture;
    use tenfold_domain::report::CalibrationBin;

    #[test]
    fn draws_non_empty_bins_the_diagonal_and_the_ece() {
        let calibration = fixture::report().calibration.unwrap_or_else(|| panic!("fixture has calibration"));
        let svg = reliability_diagram(&calibration);
        assert_scalable_svg(&svg);
        assert!(svg.contains("Reliability diagram (ECE 0.0342)"));
        assert!(svg.contains("Perfectly calibrated") && svg.contains("Confidence") && svg.contains("Accuracy"));
        let drawn = bars(&calibration);
        assert!(drawn.len() < calibration.bins.len() && !drawn.is_empty(), "empty bins are skipped");
    }

    #[test]
    fn one_bin_no_bins_and_bad_numbers() {
        let bin = CalibrationBin { lower: 0.0, upper: 1.0, count: 10, confidence: 0.8, accuracy: 0.7 };
        let one = Calibration { ece: 0.1, bins: vec![bin.clone()] };
        assert_eq!(bars(&one).len(), 1);
        assert_scalable_svg(&reliability_diagram(&one));
        assert_scalable_svg(&reliability_diagram(&Calibration { ece: f64::NAN, bins: vec![] }));
        let nan = CalibrationBin { accuracy: f64::NAN, ..bin };
        assert!(bars(&Calibration { ece: 0.1, bins: vec![nan] }).is_empty());
    }
}
