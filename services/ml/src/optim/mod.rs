//! Optimizers: AdamW and SGD with momentum (candle's SGD has none).
//!
//! On the CPU each parameter is updated by one fused, in-place pass over
//! its values (gradient scaling for clipping, weight decay, moments and the
//! update together), where the textbook tensor formulation costs about a
//! dozen allocating ops per parameter. Other devices use tensor ops. Both
//! compute the same formulas as `torch.optim.AdamW` / `torch.optim.SGD`.

mod adamw;
mod sgd;

use std::collections::BTreeMap;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::{MlError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum OptimizerConfig {
    AdamW { beta1: f64, beta2: f64, eps: f64, weight_decay: f64 },
    Sgd { momentum: f64, nesterov: bool, weight_decay: f64 },
}

impl OptimizerConfig {
    /// PyTorch's AdamW defaults.
    pub fn adamw() -> Self {
        Self::AdamW { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 }
    }

    pub fn sgd(momentum: f64) -> Self {
        Self::Sgd { momentum, nesterov: false, weight_decay: 0.0 }
    }

    pub fn parse(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "adamw" | "adam" => Ok(Self::adamw()),
            "sgd" => Ok(Self::sgd(0.9)),
            other => Err(MlError::arg("optimizer", format!("'{other}' is not an optimizer; use adamw or sgd"))),
        }
    }

    pub fn validate(&self) -> Result<()> {
        let unit = |name: &'static str, v: f64| {
            if (0.0..1.0).contains(&v) { Ok(()) } else { Err(MlError::arg(name, format!("{v} must be in [0, 1)"))) }
        };
        match *self {
            Self::AdamW { beta1, beta2, eps, weight_decay } => {
                unit("beta1", beta1)?;
                unit("beta2", beta2)?;
                if !(eps > 0.0 && eps.is_finite()) {
                    return Err(MlError::arg("eps", format!("{eps} must be a small positive number")));
                }
                unit("weight_decay", weight_decay)
            }
            Self::Sgd { momentum, weight_decay, .. } => {
                unit("momentum", momentum)?;
                unit("weight_decay", weight_decay)
            }
        }
    }
}

/// Per-parameter state: host vectors for the fused CPU path, tensors
/// elsewhere. `m`/`v` for AdamW; `m` only (the momentum buffer) for SGD.
enum Slot {
    Host { m: Vec<f32>, v: Vec<f32> },
    Device { m: Tensor, v: Tensor },
}

pub struct Optimizer {
    config: OptimizerConfig,
    params: Vec<(String, Var)>,
    slots: Vec<Slot>,
    step: u64,
}

impl Optimizer {
    pub fn new(config: OptimizerConfig, params: Vec<(String, Var)>) -> Result<Self> {
        config.validate()?;
        let slots = params
            .iter()
            .map(|(_, var)| {
                Ok(if var.device().is_cpu() {
                    Slot::Host { m: vec![0.0; var.elem_count()], v: vec![0.0; var.elem_count()] }
                } else {
                    Slot::Device { m: var.zeros_like()?, v: var.zeros_like()? }
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { config, params, slots, step: 0 })
    }

    pub fn steps_taken(&self) -> u64 {
        self.step
    }

    /// One update with learning rate `lr`; gradients are multiplied by
    /// `grad_scale` first (global-norm clipping). Parameters without a
    /// gradient (unused in this batch) are left alone, as PyTorch does.
    pub fn step(&mut self, grads: &GradStore, lr: f64, grad_scale: f64) -> Result<()> {
        self.step += 1;
        for ((_, var), slot) in self.params.iter().zip(self.slots.iter_mut()) {
            let Some(grad) = grads.get(var) else { continue };
            match self.config {
                OptimizerConfig::AdamW { beta1, beta2, eps, weight_decay } => {
                    let h = adamw::Hyper { lr, beta1, beta2, eps, weight_decay, step: self.step, grad_scale };
                    adamw::update(var, grad, slot, &h)?;
                }
                OptimizerConfig::Sgd { momentum, nesterov, weight_decay } => {
                    let h = sgd::Hyper { lr, momentum, nesterov, weight_decay, grad_scale, first: self.step == 1 };
                    sgd::update(var, grad, slot, &h)?;
                }
            }
        }
        Ok(())
    }

    /// The state for a checkpoint: `m.<name>`, `v.<name>` and `step`.
    pub fn state(&self) -> Result<BTreeMap<String, Tensor>> {
        let mut out = BTreeMap::new();
        let cpu = candle_core::Device::Cpu;
        for ((name, var), slot) in self.params.iter().zip(&self.slots) {
            let (m, v) = match slot {
                Slot::Host { m, v } => (Tensor::from_slice(m, var.shape(), &cpu)?, Tensor::from_slice(v, var.shape(), &cpu)?),
                Slot::Device { m, v } => (m.to_device(&cpu)?, v.to_device(&cpu)?),
            };
            out.insert(format!("m.{name}"), m);
            out.insert(format!("v.{name}"), v);
        }
        out.insert("step".into(), Tensor::new(&[self.step as f64], &cpu)?);
        Ok(out)
    }

    pub fn load_state(&mut self, state: &BTreeMap<String, Tensor>) -> Result<()> {
        let missing = |key: &str| MlError::Incompatible(format!("the checkpoint's optimizer state has no '{key}'"));
        for ((name, var), slot) in self.params.iter().zip(self.slots.iter_mut()) {
            let m = state.get(&format!("m.{name}")).ok_or_else(|| missing(&format!("m.{name}")))?;
            let v = state.get(&format!("v.{name}")).ok_or_else(|| missing(&format!("v.{name}")))?;
            if m.dims() != var.dims() || v.dims() != var.dims() {
                return Err(MlError::Incompatible(format!("the checkpoint's optimizer state for '{name}' has another shape")));
            }
            *slot = match slot {
                Slot::Host { .. } => Slot::Host { m: m.flatten_all()?.to_vec1()?, v: v.flatten_all()?.to_vec1()? },
                Slot::Device { .. } => Slot::Device { m: m.to_device(var.device())?, v: v.to_device(var.device())? },
            };
        }
        let step = state.get("step").ok_or_else(|| missing("step"))?;
        self.step = step.flatten_all()?.to_vec1::<f64>()?.first().copied().unwrap_or(0.0) as u64;
        Ok(())
    }
}

/// The global L2 norm of the gradients of `params`.
pub fn grad_norm(params: &[(String, Var)], grads: &GradStore) -> Result<f64> {
    let mut sum = 0f64;
    for (_, var) in params {
        if let Some(g) = grads.get(var) {
            sum += g.sqr()?.sum_all()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
        }
    }
    Ok(sum.sqrt())
}

#[cfg(test)]
mod tests;
