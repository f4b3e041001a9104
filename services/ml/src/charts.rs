//! Report charts every family draws the same way.

use tenfold_domain::report::{Chart, Point, Series};

use crate::train::{EpochRecord, Outcome};

/// Loss and accuracy per epoch, on the training and validation splits.
pub fn training_curves(t: &Outcome) -> Vec<Chart> {
    let series = |name: &str, f: &dyn Fn(&EpochRecord) -> Option<f64>| Series {
        name: name.into(),
        points: t.history.iter().filter_map(|e| Some(Point { x: e.epoch as f64, y: f(e)? })).collect(),
    };
    let chart = |id: &str, title: &str, y: &str, series: Vec<Series>| Chart {
        id: id.into(),
        title: title.into(),
        x_label: "epoch".into(),
        y_label: y.into(),
        series: series.into_iter().filter(|s| !s.points.is_empty()).collect(),
    };
    vec![
        chart(
            "loss",
            "Loss per epoch",
            "cross-entropy",
            vec![series("train", &|e| Some(e.train_loss)), series("validation", &|e| e.val.get("val_loss").copied())],
        ),
        chart(
            "accuracy",
            "Accuracy per epoch",
            "accuracy",
            vec![
                series("train", &|e| e.train.get("train_accuracy").copied()),
                series("validation", &|e| e.val.get("val_accuracy").copied()),
            ],
        ),
    ]
}
