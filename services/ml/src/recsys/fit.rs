//! The epoch loop every recommender trains in: an epoch, a validation
//! ranking, the best epoch kept, early stopping, progress events, and
//! cancellation between epochs (an epoch of ml-100k takes milliseconds;
//! a run restarts rather than resuming, so there are no checkpoints).

use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::train::{Control, EpochRecord, Event, Goal, Metrics, Outcome, StepProgress};
use crate::{MlError, Result};

/// A model trained in epochs.
pub trait EpochModel {
    /// One pass over the training data: its mean loss and the samples seen.
    fn epoch(&mut self, epoch: usize) -> Result<(f64, usize)>;
    /// Metrics on the validation split, `None` when there is none.
    fn validate(&mut self) -> Result<Option<Metrics>>;
    /// The learning rate of the epoch (for the history).
    fn lr(&self) -> f64;
    /// Remembers the current parameters as the best so far.
    fn keep_best(&mut self);
    /// Goes back to the best parameters kept (no-op when none was kept).
    fn restore_best(&mut self);
}

#[derive(Debug, Clone, Copy)]
pub struct LoopConfig {
    pub epochs: usize,
    /// Validations without improvement before stopping.
    pub patience: Option<usize>,
    /// Epochs between validations.
    pub eval_every: usize,
}

/// Trains up to `cfg.epochs`, following `monitor` (in its direction) in the
/// validation metrics; ends on the best epoch's parameters.
pub fn fit(model: &mut dyn EpochModel, cfg: LoopConfig, monitor: (&str, Goal), control: Control<'_>) -> Result<Outcome> {
    let Control { on_event, cancel, .. } = control;
    let start = Instant::now();
    let mut history = Vec::new();
    let (mut best_epoch, mut best_metric, mut bad, mut stopped_early) = (None, None::<f64>, 0usize, false);
    let (mut samples, mut train_seconds) = (0usize, 0f64);
    for epoch in 1..=cfg.epochs {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(MlError::Cancelled);
        }
        let t = Instant::now();
        let (loss, n) = model.epoch(epoch)?;
        let seconds = t.elapsed().as_secs_f64();
        if !loss.is_finite() {
            return Err(MlError::arg("learningRate", format!("the loss became {loss} in epoch {epoch}; lower the learning rate")));
        }
        samples += n;
        train_seconds += seconds;
        let rate = n as f64 / seconds.max(1e-9);
        let eta = train_seconds / epoch as f64 * (cfg.epochs - epoch) as f64;
        on_event(Event::Step(&StepProgress {
            epoch,
            epochs: cfg.epochs,
            step: 1,
            steps_per_epoch: 1,
            loss,
            lr: model.lr(),
            samples_per_s: rate,
            eta_seconds: eta,
        }));
        let validate = epoch % cfg.eval_every.max(1) == 0 || epoch == cfg.epochs;
        let val = if validate { model.validate()?.unwrap_or_default() } else { Metrics::new() };
        let record = EpochRecord {
            epoch,
            train_loss: loss,
            train: Metrics::new(),
            lr: model.lr(),
            grad_norm: 0.0,
            val: val.clone(),
            samples_per_s: rate,
            seconds,
        };
        on_event(Event::Epoch(&record));
        history.push(record);
        if let Some(&value) = val.get(monitor.0) {
            let better = |b: f64| if monitor.1 == Goal::Maximize { value > b } else { value < b };
            if best_metric.is_none_or(better) {
                best_metric = Some(value);
                best_epoch = Some(epoch);
                bad = 0;
                model.keep_best();
            } else {
                bad += 1;
                if cfg.patience.is_some_and(|p| bad >= p) {
                    stopped_early = true;
                    break;
                }
            }
        }
    }
    model.restore_best();
    Ok(Outcome {
        history,
        best_epoch,
        best_metric,
        stopped_early,
        resumed_from_epoch: None,
        samples_per_s: samples as f64 / train_seconds.max(1e-9),
        seconds: start.elapsed().as_secs_f64(),
    })
}
