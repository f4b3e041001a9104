//! Per-epoch curves (loss, accuracy) and metric@K: one line per series.

use plotters::prelude::*;
use tenfold_domain::report::{Chart, Point};

use super::{Canvas, Drawn, FONT, NOT_DRAWN, SIZE, colour, message, padded, render};
use crate::format::tick_decimals;

/// Markers help read single epochs; past this many points they only clutter.
const MAX_MARKED_POINTS: usize = 40;

/// A line chart of `chart`'s series with markers, legend, axis labels and title.
pub fn curve_chart(chart: &Chart) -> String {
    if !chart.series.iter().flat_map(|s| &s.points).any(finite) {
        return message(&chart.title, "No measured points to draw yet.");
    }
    let Some(frame) = Frame::of(chart) else {
        return message(&chart.title, NOT_DRAWN);
    };
    render(&chart.title, SIZE, |canvas| draw(canvas, chart, &frame))
}

/// The axes' ranges and how to label them, from the finite points only.
struct Frame {
    x: (f64, f64),
    y: (f64, f64),
    /// Epochs and K are whole numbers: label only whole ticks.
    whole_x: bool,
    /// Whether the curves end in the upper half, where a legend would cover them.
    ends_high: bool,
}

impl Frame {
    fn of(chart: &Chart) -> Option<Frame> {
        let points: Vec<Point> = chart.series.iter().flat_map(|s| s.points.iter().copied()).filter(finite).collect();
        let (x_min, x_max) = bounds(points.iter().map(|p| p.x))?;
        let (y_min, y_max) = bounds(points.iter().map(|p| p.y))?;
        let whole_x = points.iter().all(|p| p.x.fract() == 0.0);
        let y = padded(y_min, y_max, 0.06)?;
        let last_ys: Vec<f64> = chart.series.iter().filter_map(|s| s.points.iter().rev().find(|p| finite(p))).map(|p| p.y).collect();
        let middle = (y.0 + y.1) / 2.0;
        let ends_high = last_ys.iter().sum::<f64>() / (last_ys.len().max(1) as f64) > middle;
        // Epochs keep their exact range (1 to 10); one epoch alone gets room around it.
        let x = padded(x_min, x_max, 0.0)?;
        Some(Frame { x, y, whole_x, ends_high })
    }

    fn x_label_count(&self) -> usize {
        if self.whole_x { ((self.x.1 - self.x.0).round() as usize + 1).clamp(2, 12) } else { 10 }
    }
}

fn finite(point: &Point) -> bool {
    point.x.is_finite() && point.y.is_finite()
}

fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |range, v| match range {
        None => Some((v, v)),
        Some((low, high)) => Some((f64::min(low, v), f64::max(high, v))),
    })
}

/// The finite stretches of a series: a NaN epoch breaks the line instead of
/// being joined across, so a gap in the data shows as a gap.
fn stretches(points: &[Point]) -> Vec<Vec<(f64, f64)>> {
    let mut stretches = vec![Vec::new()];
    for point in points {
        match stretches.last_mut() {
            Some(current) if finite(point) => current.push((point.x, point.y)),
            Some(current) if !current.is_empty() => stretches.push(Vec::new()),
            _ => {}
        }
    }
    stretches
}

fn draw(canvas: &Canvas<'_>, chart: &Chart, frame: &Frame) -> Drawn {
    let mut plot = ChartBuilder::on(canvas)
        .caption(&chart.title, (FONT, 24))
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(frame.x.0..frame.x.1, frame.y.0..frame.y.1)?;

    let decimals = tick_decimals(frame.y.1 - frame.y.0);
    let whole_x = frame.whole_x;
    let x_label = |x: &f64| match whole_x {
        true if x.fract() == 0.0 => format!("{x:.0}"),
        true => String::new(),
        false => format!("{x:.2}"),
    };
    plot.configure_mesh()
        .x_desc(chart.x_label.as_str())
        .y_desc(chart.y_label.as_str())
        .x_labels(frame.x_label_count())
        .y_labels(8)
        .x_label_formatter(&x_label)
        .y_label_formatter(&|y| format!("{y:.decimals$}"))
        .light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.1))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .draw()?;

    for (index, series) in chart.series.iter().enumerate() {
        let style = colour(index).filled().stroke_width(2);
        let marker = if series.points.len() <= MAX_MARKED_POINTS { 3 } else { 0 };
        // The first stretch carries the legend entry, so a series with no
        // finite point is still named rather than silently missing.
        for (stretch_index, stretch) in stretches(&series.points).into_iter().enumerate() {
            let drawn = plot.draw_series(LineSeries::new(stretch, style).point_size(marker))?;
            if stretch_index == 0 {
                drawn.label(series.name.as_str()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], style));
            }
        }
    }

    let corner = if frame.ends_high { SeriesLabelPosition::LowerRight } else { SeriesLabelPosition::UpperRight };
    plot.configure_series_labels()
        .position(corner)
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
    use tenfold_domain::report::Series;

    #[test]
    fn draws_every_series_with_title_axes_and_legend() {
        let report = fixture::report();
        for chart in &report.curves {
            let svg = curve_chart(chart);
            assert_scalable_svg(&svg);
            for text in [&chart.title, &chart.x_label, &chart.y_label, &"train".to_owned(), &"validation".to_owned()] {
                assert!(svg.contains(&format!(">\n{text}\n</text>")), "{text} missing from {}", chart.id);
            }
            // Every whole epoch is labelled on the x axis.
            assert!((1..=10).all(|epoch| svg.contains(&format!(">\n{epoch}\n</text>"))));
        }
    }

    #[test]
    fn edge_cases_draw_without_panicking() {
        let mut chart = fixture::report().curves[0].clone();
        let empty = Chart { series: vec![], ..chart.clone() };
        assert!(curve_chart(&empty).contains("No measured points"));

        chart.series[0].points.truncate(1);
        chart.series[1].points.truncate(1);
        assert_scalable_svg(&curve_chart(&chart));

        chart.series[0].points = vec![Point { x: 1.0, y: f64::NAN }, Point { x: 2.0, y: 0.5 }, Point { x: 3.0, y: f64::INFINITY }];
        chart.series[1] = Series { name: "all nan".into(), points: vec![Point { x: 1.0, y: f64::NAN }] };
        let svg = curve_chart(&chart);
        assert_scalable_svg(&svg);
        assert!(svg.contains("all nan") && !svg.contains("NaN"));

        // Extreme and nearly equal values must neither panic nor hang plotters.
        chart.series[0].points = vec![Point { x: 1.0, y: f64::MAX }, Point { x: 2.0, y: f64::MIN }];
        assert!(curve_chart(&chart).contains(NOT_DRAWN));
        chart.series[0].points = vec![Point { x: 1e15, y: 1.0 }, Point { x: 1e15 + 1.0, y: 1.0 + 1e-15 }];
        let svg = curve_chart(&chart);
        assert_scalable_svg(&svg);
        assert!(!svg.contains(NOT_DRAWN));

        chart.series.iter_mut().for_each(|s| s.points = vec![Point { x: f64::NAN, y: f64::NAN }]);
        assert!(curve_chart(&chart).contains("No measured points"));
    }

    #[test]
    fn a_gap_breaks_the_line() {
        let at = |x: f64, y: f64| Point { x, y };
        let points = [at(1.0, 1.0), at(2.0, f64::NAN), at(3.0, 0.5), at(4.0, 0.4)];
        assert_eq!(stretches(&points), vec![vec![(1.0, 1.0)], vec![(3.0, 0.5), (4.0, 0.4)]]);
        assert_eq!(stretches(&[]), vec![Vec::<(f64, f64)>::new()]);
    }
}
