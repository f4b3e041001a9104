//! Distillation: the teacher, the distilled student and the student trained alone.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use tenfold_domain::report::Distillation;

use super::{Canvas, Drawn, FONT, SIZE, colour, message, padded, render};
use crate::format::{self, tick_decimals};

const TITLE: &str = "Primary metric: teacher, student, student alone";
/// In units of one model's slot: each bar fills about two thirds of it.
const BAR_HALF_WIDTH: f64 = 0.32;

/// Side-by-side bars of each model's primary metric, the value above each bar.
pub fn distillation_bars(distillation: &Distillation) -> String {
    if distillation.models.is_empty() {
        return message(TITLE, "No models to compare.");
    }
    let names: Vec<String> = distillation.models.iter().map(|m| role_name(&m.role)).collect();
    let values: Vec<f64> = distillation.models.iter().map(|m| m.metric).collect();
    render(TITLE, SIZE, |canvas| draw(canvas, &names, &values))
}

/// The roles as people say them; an unknown role is shown as stored.
pub(crate) fn role_name(role: &str) -> String {
    match role {
        "teacher" => "Teacher".to_owned(),
        "student" => "Student (distilled)".to_owned(),
        "student_alone" => "Student alone".to_owned(),
        other => other.to_owned(),
    }
}

fn draw(canvas: &Canvas<'_>, names: &[String], values: &[f64]) -> Drawn {
    // Bars start at zero, so the range always holds it; headroom above is for the values' labels.
    let finite = values.iter().copied().filter(|v| v.is_finite());
    let low = finite.clone().fold(0.0, f64::min);
    let high = finite.fold(0.0, f64::max);
    let Some((padded_low, padded_high)) = padded(low, high, 0.15) else {
        return Err("metric values too large to draw".into());
    };
    let range = (if low < 0.0 { padded_low } else { 0.0 }, padded_high);

    // Model i sits on x = i: plain f64 axes, since plotters misplaces the
    // label of a segmented axis with a single segment.
    let models = names.len() as f64;
    let mut plot = ChartBuilder::on(canvas)
        .caption(TITLE, (FONT, 24))
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.5..models - 0.5, range.0..range.1)?;
    let decimals = tick_decimals(range.1 - range.0);
    let name_at = |x: &f64| match x.fract() == 0.0 && *x >= 0.0 {
        true => names.get(*x as usize).cloned().unwrap_or_default(),
        false => String::new(),
    };
    plot.configure_mesh()
        .disable_x_mesh()
        .x_desc("Model")
        .y_desc("Primary metric")
        .x_labels(names.len())
        .x_label_formatter(&name_at)
        .y_label_formatter(&|y| format!("{y:.decimals$}"))
        .light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.1))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .draw()?;

    let measured =
        || values.iter().copied().enumerate().filter(|(_, value)| value.is_finite()).map(|(index, value)| (index, index as f64, value));
    plot.draw_series(
        measured()
            .map(|(index, x, value)| Rectangle::new([(x - BAR_HALF_WIDTH, 0.0), (x + BAR_HALF_WIDTH, value)], colour(index).filled())),
    )?;
    let above = TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
    // Anchored at the bar's top, lifted a few pixels so the text does not touch it.
    plot.draw_series(
        measured().map(|(_, x, value)| EmptyElement::at((x, value)) + Text::new(format::metric(value), (0, -4), above.clone())),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::checks::assert_scalable_svg;
    use crate::fixture;
    use tenfold_domain::report::ModelRow;

    #[test]
    fn draws_a_bar_and_value_per_model() {
        let distillation = fixture::report().distillation.unwrap_or_else(|| panic!("fixture distils"));
        let svg = distillation_bars(&distillation);
        assert_scalable_svg(&svg);
        for model in &distillation.models {
            assert!(svg.contains(&role_name(&model.role)), "{} missing", model.role);
            assert!(svg.contains(&format::metric(model.metric)), "{} value missing", model.role);
        }
    }

    #[test]
    fn odd_rows_draw_without_panicking() {
        let mut distillation = fixture::report().distillation.unwrap_or_else(|| panic!("fixture distils"));
        distillation.models[1].metric = f64::NAN;
        distillation.models[2].metric = -0.5;
        assert_scalable_svg(&distillation_bars(&distillation));
        let extra = |role: &str| ModelRow { role: role.into(), ..distillation.models[0].clone() };
        distillation.models.extend([extra("ensemble"), extra("quantised")]);
        let svg = distillation_bars(&distillation);
        assert!(["Teacher", "Student (distilled)", "Student alone", "ensemble", "quantised"].iter().all(|name| svg.contains(name)));
        distillation.models[3].metric = f64::MAX;
        distillation.models[4].metric = f64::MIN;
        assert!(distillation_bars(&distillation).contains(crate::charts::NOT_DRAWN));
        distillation.models.truncate(1);
        distillation.models[0].metric = 0.0;
        assert_scalable_svg(&distillation_bars(&distillation));
        distillation.models.clear();
        assert!(distillation_bars(&distillation).contains("No models"));
    }
}
