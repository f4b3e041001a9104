//! Report charts every family draws the same way.

use tenfold_domain::report::{Chart, Point, Series};

use crate::train::{EpochRecord, Outcome};

/// What a series reads from an epoch's record (none: no point).
pub type EpochValue<'a> = &'a dyn Fn(&EpochRecord) -> Option<f64>;

/// A value per epoch, one series per (name, value) pair; series with no
/// points are left out.
pub fn per_epoch(t: &Outcome, id: &str, title: &str, y_label: &str, series: &[(&str, EpochValue<'_>)]) -> Chart {
    Chart {
        id: id.into(),
        title: title.into(),
        x_label: "epoch".into(),
        y_label: y_label.into(),
        series: series
            .iter()
            .map(|(name, f)| Series {
                name: (*name).into(),
                points: t.history.iter().filter_map(|e| Some(Point { x: e.epoch as f64, y: f(e)? })).collect(),
            })
            .filter(|s| !s.points.is_empty())
            .collect(),
    }
}

/// Loss and accuracy per epoch, on the training and validation splits.
pub fn training_curves(t: &Outcome) -> Vec<Chart> {
    vec![
        per_epoch(
            t,
            "loss",
            "Loss per epoch",
            "cross-entropy",
            &[("train", &|e: &EpochRecord| Some(e.train_loss)), ("validation", &|e: &EpochRecord| e.val.get("val_loss").copied())],
        ),
        per_epoch(
            t,
            "accuracy",
            "Accuracy per epoch",
            "accuracy",
            &[
                ("train", &|e: &EpochRecord| e.train.get("train_accuracy").copied()),
                ("validation", &|e: &EpochRecord| e.val.get("val_accuracy").copied()),
            ],
        ),
    ]
}
