//! The confusion matrix as a heatmap: rows are true classes, columns predictions.
//!
//! Drawn in pixels rather than with a plotters chart: plotters has no heatmap,
//! and cells, labels and counts must line up exactly.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use tenfold_domain::report::Confusion;

use super::{Canvas, Drawn, FONT, message, render};

const TITLE: &str = "Confusion matrix";
/// Cells shrink as classes grow so the chart stays printable.
const LARGEST_CELL: i32 = 52;
const MAX_SIDE: i32 = 960;
const MIN_WIDTH: i32 = 360;
/// Below this a count no longer fits its cell: the colour alone tells.
const SMALLEST_CELL_WITH_COUNT: i32 = 18;
/// Below this class names would be unreadable specks: the table names them.
const SMALLEST_CELL_WITH_LABEL: i32 = 8;
/// Axis labels are cut here; the per-class table has the full names.
const LABEL_CHARS: usize = 16;
/// Rough width of a 12 px sans-serif character, to size the label margins.
const CHAR_PX: i32 = 7;
const PALE: (f64, f64, f64) = (247.0, 251.0, 255.0);
const DARK: (f64, f64, f64) = (8.0, 48.0, 107.0);

/// A heatmap of `confusion` with every count written in its cell, coloured
/// by the share of its row, so a rare class's mistakes are as visible as a
/// common one's.
pub fn confusion_heatmap(confusion: &Confusion) -> String {
    if confusion.classes.is_empty() {
        return message(TITLE, "No classes to compare.");
    }
    let layout = Layout::of(confusion);
    render(TITLE, layout.size(), |canvas| draw(canvas, confusion, &layout))
}

struct Layout {
    classes: i32,
    cell: i32,
    labels: Vec<String>,
    /// Column labels turn vertical when they do not fit under their cell.
    vertical_columns: bool,
    /// Room for the widest row label, left of the grid.
    label_width: i32,
    left: i32,
    top: i32,
    label_depth: i32,
}

impl Layout {
    fn of(confusion: &Confusion) -> Layout {
        let labels: Vec<String> = confusion.classes.iter().map(|c| shorten(c)).collect();
        let classes = i32::try_from(labels.len()).unwrap_or(i32::MAX).max(1);
        let widest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(1) as i32 * CHAR_PX + 10;
        let (mut left, top) = (28 + widest, 48);
        let cell = ((MAX_SIDE - left - 16) / classes).clamp(1, LARGEST_CELL);
        // A few classes make a small grid: centre it on the minimum canvas.
        left += (MIN_WIDTH - (left + classes.saturating_mul(cell) + 16)).max(0) / 2;
        let vertical_columns = widest > cell;
        let label_depth = if vertical_columns { widest } else { 24 };
        Layout { classes, cell, labels, vertical_columns, label_width: widest, left, top, label_depth }
    }

    fn grid(&self) -> i32 {
        self.classes.saturating_mul(self.cell)
    }

    /// Square-ish: the grid plus the label margins, never under a readable minimum.
    fn size(&self) -> (u32, u32) {
        let width = (self.left + self.grid() + 16).max(MIN_WIDTH);
        let height = (self.top + self.grid() + self.label_depth + 32).max(240);
        (width.unsigned_abs(), height.unsigned_abs())
    }
}

fn shorten(class: &str) -> String {
    if class.chars().count() <= LABEL_CHARS {
        class.to_owned()
    } else {
        let head: String = class.chars().take(LABEL_CHARS - 1).collect();
        format!("{head}…")
    }
}

/// Pale for none of the row, dark blue for all of it.
fn shade(share: f64) -> RGBColor {
    let t = if share.is_finite() { share.clamp(0.0, 1.0) } else { 0.0 };
    let mix = |pale: f64, dark: f64| (pale + (dark - pale) * t).round() as u8;
    RGBColor(mix(PALE.0, DARK.0), mix(PALE.1, DARK.1), mix(PALE.2, DARK.2))
}

fn draw(canvas: &Canvas<'_>, confusion: &Confusion, layout: &Layout) -> Drawn {
    let (width, _) = layout.size();
    let centred = Pos::new(HPos::Center, VPos::Center);
    canvas.draw(&Text::new(TITLE, (width as i32 / 2, 20), TextStyle::from((FONT, 24).into_font()).pos(centred)))?;

    let (left, top, cell, grid) = (layout.left, layout.top, layout.cell, layout.grid());
    let count_font = (cell as f64 * 0.36).clamp(9.0, 15.0);
    let label_font = (cell as f64 * 0.8).min(13.0);
    for (row, true_class) in layout.labels.iter().enumerate() {
        let counts = confusion.counts.get(row).map(Vec::as_slice).unwrap_or_default();
        // Saturating: an absurd count must not overflow into a panic.
        let total = counts.iter().fold(0u64, |sum, &count| sum.saturating_add(count));
        let y = top + row as i32 * cell;
        for column in 0..layout.labels.len() {
            let count = counts.get(column).copied().unwrap_or(0);
            // An empty row (a class absent from the split) stays pale, not NaN.
            let share = if total == 0 { 0.0 } else { count as f64 / total as f64 };
            let x = left + column as i32 * cell;
            canvas.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], shade(share).filled()))?;
            if cell >= SMALLEST_CELL_WITH_COUNT {
                let ink = if share > 0.5 { WHITE } else { BLACK };
                let style = TextStyle::from((FONT, count_font).into_font()).color(&ink).pos(centred);
                canvas.draw(&Text::new(count.to_string(), (x + cell / 2, y + cell / 2), style))?;
            }
        }
        if cell >= SMALLEST_CELL_WITH_LABEL {
            let style = TextStyle::from((FONT, label_font).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
            canvas.draw(&Text::new(true_class.as_str(), (left - 6, y + cell / 2), style))?;
        }
    }
    canvas.draw(&Rectangle::new([(left, top), (left + grid, top + grid)], BLACK.mix(0.4).stroke_width(1)))?;

    let column_labels = if cell >= SMALLEST_CELL_WITH_LABEL { layout.labels.as_slice() } else { &[] };
    for (column, predicted) in column_labels.iter().enumerate() {
        let x = left + column as i32 * cell + cell / 2;
        let font = (FONT, label_font).into_font();
        let style = match layout.vertical_columns {
            true => TextStyle::from(font.transform(FontTransform::Rotate270)).pos(Pos::new(HPos::Right, VPos::Center)),
            false => TextStyle::from(font).pos(Pos::new(HPos::Center, VPos::Top)),
        };
        canvas.draw(&Text::new(predicted.as_str(), (x, top + grid + 6), style))?;
    }

    let axis = TextStyle::from((FONT, 15).into_font()).pos(centred);
    let below = top + grid + layout.label_depth + 16;
    canvas.draw(&Text::new("Predicted class", (left + grid / 2, below), axis.clone()))?;
    let sideways = TextStyle::from((FONT, 15).into_font().transform(FontTransform::Rotate270)).pos(centred);
    canvas.draw(&Text::new("True class", (left - layout.label_width - 12, top + grid / 2), sideways))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::checks::assert_scalable_svg;
    use crate::fixture;

    #[test]
    fn writes_every_class_and_count() {
        let confusion = fixture::report().confusion.unwrap_or_else(|| panic!("fixture has a confusion matrix"));
        let svg = confusion_heatmap(&confusion);
        assert_scalable_svg(&svg);
        for class in &confusion.classes {
            // Twice: once as a row (true class), once as a column (predicted).
            assert_eq!(svg.matches(&format!(">\n{class}\n</text>")).count(), 2, "{class}");
        }
        for count in confusion.counts.iter().flatten() {
            assert!(svg.contains(&format!(">\n{count}\n</text>")), "count {count} missing");
        }
        // Dark cells (the diagonal) carry white text.
        assert!(svg.contains("fill=\"#FFFFFF\""));
    }

    #[test]
    fn odd_matrices_draw_without_panicking() {
        let empty_row = Confusion { classes: vec!["a".into(), "b".into()], counts: vec![vec![3, 1], vec![0, 0]] };
        assert_scalable_svg(&confusion_heatmap(&empty_row));
        let ragged = Confusion { classes: vec!["a".into(), "b".into(), "c".into()], counts: vec![vec![1]] };
        assert_scalable_svg(&confusion_heatmap(&ragged));
        assert!(confusion_heatmap(&Confusion { classes: vec![], counts: vec![] }).contains("No classes"));
        let many = Confusion { classes: (0..300).map(|i| format!("class number {i}")).collect(), counts: vec![] };
        let svg = confusion_heatmap(&many);
        assert_scalable_svg(&svg);
        let (width, height) = Layout::of(&many).size();
        assert!(width <= 960 && height <= 1100, "{width}×{height} is past the cap");
    }

    #[test]
    fn shades_run_from_pale_to_dark() {
        assert_eq!(shade(0.0), RGBColor(247, 251, 255));
        assert_eq!(shade(1.0), RGBColor(8, 48, 107));
        assert_eq!(shade(f64::NAN), shade(0.0));
    }

    #[test]
    fn long_names_are_cut() {
        assert_eq!(shorten("short"), "short");
        assert_eq!(shorten("a-very-long-class-name").chars().count(), LABEL_CHARS);
    }
}
