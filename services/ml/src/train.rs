//! The generic training loop: epochs of shuffled mini-batches, gradient
//! clipping, scheduled learning rate, validation, early stopping with the
//! best weights restored, progress events, cooperative cancellation, and a
//! checkpoint after every epoch that a later run resumes bit-for-bit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::optim::{Optimizer, OptimizerConfig, grad_norm};
use crate::params::{Params, Part, load_tensors, save_tensors};
use crate::schedule::Schedule;
use crate::{MlError, Result};

pub type Metrics = BTreeMap<String, f64>;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopping {
    /// Epochs without improvement of the monitored metric before stopping.
    pub patience: usize,
    pub min_delta: f64,
}

impl EarlyStopping {
    /// Keras' rule: stop once `patience` epochs in a row brought no
    /// improvement (with patience 0, at the first such epoch).
    pub fn exhausted(&self, bad_epochs: usize) -> bool {
        bad_epochs > 0 && bad_epochs >= self.patience
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: OptimizerConfig,
    pub schedule: Schedule,
    pub clip_grad_norm: Option<f64>,
    pub early_stopping: Option<EarlyStopping>,
    pub seed: u64,
}

impl TrainConfig {
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 || self.epochs > 10_000 {
            return Err(MlError::arg("epochs", format!("{} is out of range; use 1 to 10000", self.epochs)));
        }
        if self.batch_size == 0 || self.batch_size > 4096 {
            return Err(MlError::arg("batch size", format!("{} is out of range; use 1 to 4096", self.batch_size)));
        }
        if let Some(c) = self.clip_grad_norm
            && !(c > 0.0 && c.is_finite())
        {
            return Err(MlError::arg("clip grad norm", format!("{c} is not a positive number")));
        }
        self.optimizer.validate()?;
        self.schedule.validate()
    }
}

/// Whether a larger or a smaller value of the monitored metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    Maximize,
    Minimize,
}

/// What a family provides to the loop.
pub trait Task {
    fn train_len(&self) -> usize;
    /// The mean loss of a training batch (training mode, augmented with `rng`).
    fn loss(&self, batch: &[usize], rng: &mut ChaCha8Rng) -> Result<BatchLoss>;
    /// Metrics on the validation split; `None` when there is none.
    fn validate(&self) -> Result<Option<Metrics>>;
    /// The validation metric that early stopping and "best epoch" follow.
    fn monitor(&self) -> (&'static str, Goal);
}

/// A training batch's loss, and for classifiers how many of its examples
/// the model got right (the epoch's training accuracy, as Keras reports it:
/// on the augmented batches, in training mode, while the weights change).
pub struct BatchLoss {
    pub loss: Tensor,
    pub correct: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepProgress {
    pub epoch: usize,
    pub epochs: usize,
    pub step: usize,
    pub steps_per_epoch: usize,
    pub loss: f64,
    pub lr: f64,
    pub samples_per_s: f64,
    pub eta_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    /// Training metrics besides the loss (`train_accuracy`).
    #[serde(default)]
    pub train: Metrics,
    pub lr: f64,
    pub grad_norm: f64,
    pub val: Metrics,
    pub samples_per_s: f64,
    pub seconds: f64,
}

pub enum Event<'a> {
    Step(&'a StepProgress),
    Epoch(&'a EpochRecord),
    Checkpoint { epoch: usize, dir: &'a Path },
}

/// How the caller watches and steers a run.
pub struct Control<'a> {
    pub on_event: &'a mut dyn FnMut(Event<'_>),
    /// Set it to stop within one step; the last checkpoint stays.
    pub cancel: Option<&'a AtomicBool>,
    pub checkpoint_dir: Option<&'a Path>,
    /// Continue from the checkpoint in `checkpoint_dir`, if there is one.
    pub resume: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    pub history: Vec<EpochRecord>,
    pub best_epoch: Option<usize>,
    pub best_metric: Option<f64>,
    pub stopped_early: bool,
    pub resumed_from_epoch: Option<usize>,
    /// Training samples per second over the whole run (excluding validation).
    pub samples_per_s: f64,
    pub seconds: f64,
}

/// Progress of a run, as a checkpoint stores it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    config: TrainConfig,
    epochs_done: usize,
    global_step: usize,
    history: Vec<EpochRecord>,
    best_epoch: Option<usize>,
    best_metric: Option<f64>,
    bad_epochs: usize,
    train_seconds: f64,
    samples: u64,
}

fn improved(goal: Goal, value: f64, best: Option<f64>, min_delta: f64) -> bool {
    match (best, goal) {
        (None, _) => value.is_finite(),
        (Some(b), Goal::Maximize) => value > b + min_delta,
        (Some(b), Goal::Minimize) => value < b - min_delta,
    }
}

/// The shuffle and augmentation streams of an epoch: pure functions of the
/// seed and the epoch, so a resumed run sees the same batches.
fn epoch_rngs(seed: u64, epoch: usize) -> (ChaCha8Rng, ChaCha8Rng) {
    let mut shuffle = ChaCha8Rng::seed_from_u64(seed);
    shuffle.set_stream(2 * epoch as u64);
    let mut augment = ChaCha8Rng::seed_from_u64(seed);
    augment.set_stream(2 * epoch as u64 + 1);
    (shuffle, augment)
}

pub fn fit(params: &Params, task: &dyn Task, cfg: &TrainConfig, ctl: Control<'_>) -> Result<Outcome> {
    cfg.validate()?;
    let n = task.train_len();
    if n == 0 {
        return Err(MlError::arg("data", "the training split is empty; add examples or give the split more than 0%"));
    }
    let trainable = params.trainable();
    let mut optimizer = Optimizer::new(cfg.optimizer, trainable.clone())?;
    let steps_per_epoch = n.div_ceil(cfg.batch_size);
    let total_steps = steps_per_epoch * cfg.epochs;
    let mut state = State {
        config: cfg.clone(),
        epochs_done: 0,
        global_step: 0,
        history: vec![],
        best_epoch: None,
        best_metric: None,
        bad_epochs: 0,
        train_seconds: 0.0,
        samples: 0,
    };
    let mut best: Option<BTreeMap<String, Tensor>> = None;
    let mut resumed_from_epoch = None;
    if let (true, Some(dir)) = (ctl.resume, ctl.checkpoint_dir)
        && let Some(found) = checkpoint::load(dir, cfg, params, &mut optimizer)?
    {
        resumed_from_epoch = Some(found.0.epochs_done);
        state = found.0;
        best = found.1;
        state.config.epochs = cfg.epochs;
    }
    let (monitor, goal) = task.monitor();
    let on_event = ctl.on_event;
    let mut stopped_early = false;

    for epoch in state.epochs_done..cfg.epochs {
        // A resumed run that had already stopped early stays stopped.
        if cfg.early_stopping.is_some_and(|es| es.exhausted(state.bad_epochs)) {
            stopped_early = true;
            break;
        }
        let (mut shuffle, mut augment) = epoch_rngs(cfg.seed, epoch);
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut shuffle);
        let epoch_start = Instant::now();
        let (mut loss_sum, mut seen, mut last_lr, mut last_norm) = (0f64, 0usize, 0f64, 0f64);
        let mut correct: Option<usize> = None;
        for (step, batch) in order.chunks(cfg.batch_size).enumerate() {
            if ctl.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(MlError::Cancelled);
            }
            let lr = cfg.schedule.lr(state.global_step, total_steps, steps_per_epoch);
            let BatchLoss { loss, correct: batch_correct } = task.loss(batch, &mut augment)?;
            if let Some(c) = batch_correct {
                correct = Some(correct.unwrap_or(0) + c);
            }
            let loss_value = f64::from(loss.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()?);
            if !loss_value.is_finite() {
                return Err(MlError::arg(
                    "learning rate",
                    format!(
                        "the loss became {loss_value} at epoch {} step {}; lower the learning rate or enable gradient clipping",
                        epoch + 1,
                        step + 1
                    ),
                ));
            }
            let grads = loss.backward()?;
            let norm = grad_norm(&trainable, &grads)?;
            let scale = match cfg.clip_grad_norm {
                Some(max) if norm > max => max / (norm + 1e-6),
                _ => 1.0,
            };
            optimizer.step(&grads, lr, scale)?;
            state.global_step += 1;
            seen += batch.len();
            loss_sum += loss_value * batch.len() as f64;
            (last_lr, last_norm) = (lr, norm);
            let elapsed = epoch_start.elapsed().as_secs_f64().max(1e-9);
            let rate = seen as f64 / elapsed;
            let remaining = (steps_per_epoch - step - 1) + (cfg.epochs - epoch - 1) * steps_per_epoch;
            let per_step = elapsed / (step + 1) as f64;
            on_event(Event::Step(&StepProgress {
                epoch: epoch + 1,
                epochs: cfg.epochs,
                step: step + 1,
                steps_per_epoch,
                loss: loss_value,
                lr,
                samples_per_s: rate,
                eta_seconds: per_step * remaining as f64,
            }));
        }
        let seconds = epoch_start.elapsed().as_secs_f64();
        state.train_seconds += seconds;
        state.samples += seen as u64;
        let val = task.validate()?.unwrap_or_default();
        let record = EpochRecord {
            epoch: epoch + 1,
            train_loss: loss_sum / seen.max(1) as f64,
            train: correct.map(|c| Metrics::from([("train_accuracy".to_owned(), c as f64 / seen.max(1) as f64)])).unwrap_or_default(),
            lr: last_lr,
            grad_norm: last_norm,
            val: val.clone(),
            samples_per_s: seen as f64 / seconds.max(1e-9),
            seconds,
        };
        on_event(Event::Epoch(&record));
        state.history.push(record);
        if let Some(&value) = val.get(monitor) {
            if improved(goal, value, state.best_metric, cfg.early_stopping.map_or(0.0, |e| e.min_delta)) {
                state.best_metric = Some(value);
                state.best_epoch = Some(epoch + 1);
                state.bad_epochs = 0;
                best = Some(params.snapshot()?);
            } else {
                state.bad_epochs += 1;
            }
        }
        state.epochs_done = epoch + 1;
        if let Some(dir) = ctl.checkpoint_dir {
            let path = checkpoint::save(dir, &state, params, &optimizer, best.as_ref())?;
            on_event(Event::Checkpoint { epoch: epoch + 1, dir: &path });
        }
        if cfg.early_stopping.is_some_and(|es| es.exhausted(state.bad_epochs)) {
            stopped_early = epoch + 1 < cfg.epochs;
            break;
        }
    }
    // Like Keras' restore_best_weights: the model kept is the best epoch's.
    if let Some(best) = &best {
        params.assign(best, &[Part::Backbone, Part::Head])?;
    }
    Ok(Outcome {
        samples_per_s: state.samples as f64 / state.train_seconds.max(1e-9),
        seconds: state.train_seconds,
        history: state.history,
        best_epoch: state.best_epoch,
        best_metric: state.best_metric,
        stopped_early,
        resumed_from_epoch,
    })
}

mod checkpoint {
    //! `DIR/epoch-NNNN/{params,optimizer,best}.safetensors + state.json`,
    //! published by atomically replacing `DIR/latest` (a file naming the
    //! epoch folder): a crash mid-write leaves the previous checkpoint whole.

    use super::*;

    const KEEP: usize = 2;

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> MlError + '_ {
        move |source| MlError::Io { path: path.into(), source }
    }

    pub fn save(dir: &Path, state: &State, params: &Params, opt: &Optimizer, best: Option<&BTreeMap<String, Tensor>>) -> Result<PathBuf> {
        let name = format!("epoch-{:04}", state.epochs_done);
        let target = dir.join(&name);
        std::fs::create_dir_all(&target).map_err(io(&target))?;
        params.save(&target.join("params.safetensors"))?;
        save_tensors(&opt.state()?, &target.join("optimizer.safetensors"))?;
        if let Some(best) = best {
            save_tensors(best, &target.join("best.safetensors"))?;
        }
        let json = serde_json::to_vec_pretty(state).map_err(|e| MlError::Incompatible(e.to_string()))?;
        std::fs::write(target.join("state.json"), json).map_err(io(&target))?;
        let tmp = dir.join("latest.tmp");
        std::fs::write(&tmp, &name).map_err(io(&tmp))?;
        std::fs::rename(&tmp, dir.join("latest")).map_err(io(dir))?;
        // Older epochs beyond the last KEEP are not needed to resume.
        if state.epochs_done > KEEP {
            let old = dir.join(format!("epoch-{:04}", state.epochs_done - KEEP));
            let _ = std::fs::remove_dir_all(old);
        }
        Ok(target)
    }

    type Loaded = (State, Option<BTreeMap<String, Tensor>>);

    pub fn load(dir: &Path, cfg: &TrainConfig, params: &Params, opt: &mut Optimizer) -> Result<Option<Loaded>> {
        let latest = dir.join("latest");
        let Ok(name) = std::fs::read_to_string(&latest) else { return Ok(None) };
        let target = dir.join(name.trim());
        let bad = |reason: String| MlError::InvalidModel { path: target.clone(), reason };
        let raw = std::fs::read(target.join("state.json")).map_err(|e| bad(format!("state.json cannot be read ({e})")))?;
        let state: State = serde_json::from_slice(&raw).map_err(|e| bad(format!("state.json is not a checkpoint state ({e})")))?;
        let same = state.config.batch_size == cfg.batch_size && state.config.seed == cfg.seed && state.config.optimizer == cfg.optimizer;
        if !same {
            return Err(MlError::Incompatible(format!(
                "the checkpoint in {} was made with another batch size, seed or optimizer; resume with the same settings or start afresh",
                dir.display()
            )));
        }
        let device = params.device().clone();
        params.assign(&load_tensors(&target.join("params.safetensors"), &device)?, &[Part::Backbone, Part::Head])?;
        opt.load_state(&load_tensors(&target.join("optimizer.safetensors"), &Device::Cpu)?)?;
        let best_path = target.join("best.safetensors");
        let best = if best_path.is_file() { Some(load_tensors(&best_path, &device)?) } else { None };
        Ok(Some((state, best)))
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use candle_core::Device;

    use super::*;
    use crate::params::Role;

    /// One weight pulled towards 3; the "validation accuracy" follows a
    /// script, so early stopping and best-weight restoring can be checked.
    struct Scripted {
        params: Params,
        script: Vec<f64>,
        epoch: Cell<usize>,
    }

    impl Task for Scripted {
        fn train_len(&self) -> usize {
            4
        }
        fn loss(&self, _batch: &[usize], _rng: &mut ChaCha8Rng) -> Result<BatchLoss> {
            let p = self.params.get("w").map(|p| p.var.as_tensor().clone()).ok_or(MlError::Cancelled)?;
            Ok(BatchLoss { loss: (p - 3.0)?.sqr()?.sum_all()?, correct: None })
        }
        fn validate(&self) -> Result<Option<Metrics>> {
            let e = self.epoch.get();
            self.epoch.set(e + 1);
            Ok(Some(Metrics::from([("val_accuracy".into(), self.script[e.min(self.script.len() - 1)])])))
        }
        fn monitor(&self) -> (&'static str, Goal) {
            ("val_accuracy", Goal::Maximize)
        }
    }

    fn weight(params: &Params) -> f32 {
        params.get("w").unwrap().var.as_tensor().to_vec1::<f32>().unwrap()[0]
    }

    #[test]
    fn early_stopping_waits_patience_epochs_and_restores_the_best_weights() {
        let mut params = Params::new(0, &Device::Cpu);
        params.constant("w", &[1], 0.0, Role::Weight, crate::params::Part::Head).unwrap();
        let task = Scripted { params: params.clone(), script: vec![0.5, 0.7, 0.6, 0.65, 0.69, 0.9], epoch: Cell::new(0) };
        let cfg = TrainConfig {
            epochs: 10,
            batch_size: 4,
            optimizer: OptimizerConfig::sgd(0.0),
            schedule: Schedule::constant(0.1),
            clip_grad_norm: None,
            early_stopping: Some(EarlyStopping { patience: 3, min_delta: 0.0 }),
            seed: 1,
        };
        let mut weights = vec![];
        let mut on_event = |e: Event<'_>| {
            if let Event::Epoch(_) = e {
                weights.push(weight(&params));
            }
        };
        let outcome =
            fit(&task.params, &task, &cfg, Control { on_event: &mut on_event, cancel: None, checkpoint_dir: None, resume: false }).unwrap();
        // Best at epoch 2 (0.7); epochs 3, 4, 5 do not beat it → stop after 5.
        assert_eq!(outcome.history.len(), 5);
        assert!(outcome.stopped_early);
        assert_eq!(outcome.best_epoch, Some(2));
        assert_eq!(outcome.best_metric, Some(0.7));
        assert_eq!(weight(&task.params), weights[1], "the weights kept are epoch 2's");
        assert_ne!(weights[1], weights[4]);
    }

    #[test]
    fn patience_zero_stops_at_the_first_epoch_without_improvement() {
        let es = EarlyStopping { patience: 0, min_delta: 0.0 };
        assert!(!es.exhausted(0) && es.exhausted(1));
        let es = EarlyStopping { patience: 2, min_delta: 0.0 };
        assert!(!es.exhausted(1) && es.exhausted(2));
    }
}
