//! Named parameters with seeded initialisation.
//!
//! candle's CPU `set_seed` does nothing, so initial weights come from our own
//! ChaCha stream: the same seed gives the same model on every machine.
//! Each parameter knows whether it is trained (weights) or state (batch-norm
//! running statistics) and whether it belongs to the backbone or the head, so
//! fine-tuning can swap or freeze either.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{MlError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Receives gradients and optimizer updates.
    Weight,
    /// Updated by the forward pass in training mode (running mean/var).
    State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Backbone,
    Head,
}

#[derive(Clone)]
pub struct Param {
    pub var: Var,
    pub role: Role,
    pub part: Part,
}

/// The parameters of one model, by name (names are stable: they are the
/// keys in `model.safetensors`).
#[derive(Clone)]
pub struct Params {
    entries: BTreeMap<String, Param>,
    device: Device,
    rng: ChaCha8Rng,
    frozen_backbone: bool,
    /// Weights kept as they are although trainable (lower encoder layers).
    frozen: std::collections::BTreeSet<String>,
}

impl Params {
    pub fn new(seed: u64, device: &Device) -> Self {
        Self {
            entries: BTreeMap::new(),
            device: device.clone(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            frozen_backbone: false,
            frozen: Default::default(),
        }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    fn insert(&mut self, name: &str, values: Vec<f32>, shape: &[usize], role: Role, part: Part) -> Result<Tensor> {
        let tensor = Tensor::from_vec(values, shape, &self.device)?;
        self.register(name, &tensor, role, part)
    }

    fn register(&mut self, name: &str, value: &Tensor, role: Role, part: Part) -> Result<Tensor> {
        let var = Var::from_tensor(value)?;
        let tensor = var.as_tensor().clone();
        self.entries.insert(name.to_owned(), Param { var, role, part });
        Ok(tensor)
    }

    /// Takes a loaded tensor (a pretrained weight) as a parameter, in f32.
    pub fn adopt(&mut self, name: &str, value: &Tensor, role: Role, part: Part) -> Result<Tensor> {
        let value = value.to_device(&self.device)?.to_dtype(DType::F32)?;
        self.register(name, &value, role, part)
    }

    /// Normal(0, std) weights, BERT's initialisation of new layers.
    pub fn normal(&mut self, name: &str, shape: &[usize], std: f64, part: Part) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        // Box–Muller on the seeded stream (rand_distr is not a dependency).
        let values = (0..n)
            .map(|_| {
                let (u1, u2): (f64, f64) = (self.rng.random_range(f64::EPSILON..1.0), self.rng.random());
                ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos() * std) as f32
            })
            .collect();
        self.insert(name, values, shape, Role::Weight, part)
    }

    /// Glorot-uniform weights, Keras' default: U(±sqrt(6 / (fan_in + fan_out))).
    pub fn glorot_uniform(&mut self, name: &str, shape: &[usize], fan_in: usize, fan_out: usize, part: Part) -> Result<Tensor> {
        let bound = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
        let n: usize = shape.iter().product();
        let values = (0..n).map(|_| self.rng.random_range(-bound..=bound)).collect();
        self.insert(name, values, shape, Role::Weight, part)
    }

    pub fn constant(&mut self, name: &str, shape: &[usize], value: f32, role: Role, part: Part) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        self.insert(name, vec![value; n], shape, role, part)
    }

    pub fn get(&self, name: &str) -> Option<&Param> {
        self.entries.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Param)> {
        self.entries.iter()
    }

    /// What the optimizer updates: weights, minus the backbone when frozen.
    pub fn trainable(&self) -> Vec<(String, Var)> {
        self.entries
            .iter()
            .filter(|(n, p)| p.role == Role::Weight && !(self.frozen_backbone && p.part == Part::Backbone) && !self.frozen.contains(*n))
            .map(|(n, p)| (n.clone(), p.var.clone()))
            .collect()
    }

    pub fn freeze_backbone(&mut self, frozen: bool) {
        self.frozen_backbone = frozen;
    }

    /// Keeps the named weights out of training (the rest still learn).
    pub fn freeze_where(&mut self, frozen: impl Fn(&str) -> bool) {
        self.frozen = self.entries.keys().filter(|n| frozen(n)).cloned().collect();
    }

    /// Trainable scalars (weights only), what reports call "parameters".
    pub fn count(&self) -> usize {
        self.entries.values().filter(|p| p.role == Role::Weight).map(|p| p.var.elem_count()).sum()
    }

    pub fn tensors(&self) -> BTreeMap<String, Tensor> {
        self.entries.iter().map(|(n, p)| (n.clone(), p.var.as_tensor().clone())).collect()
    }

    /// Copies values into the parameters in place (checkpoints, best
    /// weights). Every name must match in shape; `parts` limits which are
    /// taken (fine-tuning takes the backbone only when classes differ).
    pub fn assign(&self, values: &BTreeMap<String, Tensor>, parts: &[Part]) -> Result<()> {
        for (name, param) in &self.entries {
            if !parts.contains(&param.part) {
                continue;
            }
            let value = values.get(name).ok_or_else(|| MlError::Incompatible(format!("the saved weights have no tensor '{name}'")))?;
            if value.dims() != param.var.dims() {
                return Err(MlError::Incompatible(format!(
                    "the saved tensor '{name}' has shape {:?}, the model expects {:?}",
                    value.dims(),
                    param.var.dims()
                )));
            }
            param.var.set(&value.to_device(&self.device)?.to_dtype(DType::F32)?)?;
        }
        Ok(())
    }

    /// A deep copy of the current values (not sharing storage with the vars).
    pub fn snapshot(&self) -> Result<BTreeMap<String, Tensor>> {
        self.entries.iter().map(|(n, p)| Ok((n.clone(), p.var.as_tensor().copy()?))).collect()
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        save_tensors(&self.tensors(), path)
    }
}

/// Writes tensors (moved to the CPU) as safetensors.
pub fn save_tensors(tensors: &BTreeMap<String, Tensor>, path: &Path) -> Result<()> {
    let on_cpu = tensors
        .iter()
        .map(|(k, v)| Ok((k.clone(), v.to_device(&Device::Cpu)?)))
        .collect::<Result<std::collections::HashMap<String, Tensor>>>()?;
    candle_core::safetensors::save(&on_cpu, path).map_err(|e| match e {
        candle_core::Error::Io(source) => MlError::Io { path: path.into(), source },
        other => MlError::Tensor(other),
    })
}

/// Loads a safetensors file, with a clear error for a missing or corrupt one.
pub fn load_tensors(path: &Path, device: &Device) -> Result<BTreeMap<String, Tensor>> {
    if !path.is_file() {
        return Err(MlError::InvalidModel { path: path.into(), reason: "the file is missing".into() });
    }
    let map = candle_core::safetensors::load(path, device)
        .map_err(|e| MlError::InvalidModel { path: path.into(), reason: format!("not a readable safetensors file ({e})") })?;
    Ok(map.into_iter().collect())
}
