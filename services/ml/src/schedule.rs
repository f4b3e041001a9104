//! Learning-rate schedules: linear warm-up, then constant, cosine or step
//! decay — the ones PyTorch and Keras users reach for first.

use serde::{Deserialize, Serialize};

use crate::{MlError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decay", rename_all = "lowercase")]
pub enum Decay {
    Constant,
    /// Cosine from the base rate to `min_ratio`·base at the last step.
    Cosine {
        min_ratio: f64,
    },
    /// Multiply by `gamma` every `every_epochs` epochs.
    Step {
        every_epochs: usize,
        gamma: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub base_lr: f64,
    pub warmup_steps: usize,
    #[serde(flatten)]
    pub decay: Decay,
}

impl Schedule {
    pub fn constant(base_lr: f64) -> Self {
        Self { base_lr, warmup_steps: 0, decay: Decay::Constant }
    }

    /// `constant`, `cosine` or `step` (÷10 every third of the run).
    pub fn parse(name: &str, base_lr: f64, epochs: usize) -> Result<Self> {
        let decay = match name {
            "constant" => Decay::Constant,
            "cosine" => Decay::Cosine { min_ratio: 0.0 },
            "step" => Decay::Step { every_epochs: (epochs / 3).max(1), gamma: 0.1 },
            other => return Err(MlError::arg("schedule", format!("'{other}' is not a schedule; use constant, cosine or step"))),
        };
        Ok(Self { base_lr, warmup_steps: 0, decay })
    }

    pub fn validate(&self) -> Result<()> {
        if !(self.base_lr > 0.0 && self.base_lr.is_finite()) {
            return Err(MlError::arg("learning rate", format!("{} is not a positive number; try 0.001", self.base_lr)));
        }
        match self.decay {
            Decay::Cosine { min_ratio } if !(0.0..=1.0).contains(&min_ratio) => {
                Err(MlError::arg("schedule", "the cosine floor must be between 0 and 1"))
            }
            Decay::Step { every_epochs: 0, .. } => Err(MlError::arg("schedule", "step decay needs a period of at least one epoch")),
            Decay::Step { gamma, .. } if !(gamma > 0.0 && gamma <= 1.0) => {
                Err(MlError::arg("schedule", "step decay's gamma must be in (0, 1]"))
            }
            _ => Ok(()),
        }
    }

    /// The rate for `step` (0-based) of `total` steps, `steps_per_epoch` each.
    pub fn lr(&self, step: usize, total: usize, steps_per_epoch: usize) -> f64 {
        if step < self.warmup_steps {
            return self.base_lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        match self.decay {
            Decay::Constant => self.base_lr,
            Decay::Cosine { min_ratio } => {
                let span = total.saturating_sub(self.warmup_steps).max(1) as f64;
                let progress = ((step - self.warmup_steps) as f64 / span).min(1.0);
                let floor = self.base_lr * min_ratio;
                floor + (self.base_lr - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
            Decay::Step { every_epochs, gamma } => {
                let epoch = step / steps_per_epoch.max(1);
                self.base_lr * gamma.powi((epoch / every_epochs) as i32)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine_reaches_the_floor() {
        let s = Schedule { base_lr: 1.0, warmup_steps: 4, decay: Decay::Cosine { min_ratio: 0.1 } };
        assert_eq!(s.lr(0, 104, 10), 0.25);
        assert_eq!(s.lr(3, 104, 10), 1.0);
        assert!((s.lr(4, 104, 10) - 1.0).abs() < 1e-12);
        assert!((s.lr(54, 104, 10) - 0.55).abs() < 1e-12, "half-way is the mean of base and floor");
        assert!((s.lr(104, 104, 10) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn step_decay_divides_per_period() {
        let s = Schedule { base_lr: 1.0, warmup_steps: 0, decay: Decay::Step { every_epochs: 2, gamma: 0.5 } };
        assert_eq!(s.lr(19, 100, 10), 1.0);
        assert_eq!(s.lr(20, 100, 10), 0.5);
        assert_eq!(s.lr(45, 100, 10), 0.25);
    }

    #[test]
    fn bad_rates_are_refused_with_the_fix() {
        for lr in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = Schedule::constant(lr).validate().unwrap_err().to_string();
            assert!(err.contains("not a positive number"), "{err}");
        }
        assert!(Schedule::parse("linear", 0.1, 10).is_err());
    }
}
