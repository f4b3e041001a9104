//! Layers over `Params`, using the fused CPU kernels where they apply.

use candle_core::{D, Result, Tensor};

use crate::kernels;
use crate::params::{Params, Part, Role};

/// A fully connected layer: y = x·Wᵀ + b, W is (out, in) as in PyTorch.
pub struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    pub fn new(p: &mut Params, name: &str, inputs: usize, outputs: usize, part: Part) -> crate::Result<Self> {
        Ok(Self {
            weight: p.glorot_uniform(&format!("{name}.weight"), &[outputs, inputs], inputs, outputs, part)?,
            bias: p.constant(&format!("{name}.bias"), &[outputs], 0.0, Role::Weight, part)?,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)
    }

    /// relu(x·Wᵀ + b) with the bias and ReLU fused on the CPU.
    pub fn forward_relu(&self, x: &Tensor) -> Result<Tensor> {
        kernels::bias_relu(&x.matmul(&self.weight.t()?)?, &self.bias)
    }
}

/// A square-kernel 2-d convolution; with a bias unless batch norm follows.
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: usize,
    pad: usize,
}

pub struct ConvSpec {
    pub inputs: usize,
    pub outputs: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
    pub bias: bool,
}

impl Conv2d {
    pub fn new(p: &mut Params, name: &str, s: ConvSpec, part: Part) -> crate::Result<Self> {
        let (fan_in, fan_out) = (s.inputs * s.kernel * s.kernel, s.outputs * s.kernel * s.kernel);
        let weight = p.glorot_uniform(&format!("{name}.weight"), &[s.outputs, s.inputs, s.kernel, s.kernel], fan_in, fan_out, part)?;
        let bias = if s.bias { Some(p.constant(&format!("{name}.bias"), &[s.outputs], 0.0, Role::Weight, part)?) } else { None };
        Ok(Self { weight, bias, stride: s.stride, pad: s.pad })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = kernels::conv2d(x, &self.weight, self.stride, self.pad)?;
        match &self.bias {
            Some(b) => y.broadcast_add(&b.reshape((1, (), 1, 1))?),
            None => Ok(y),
        }
    }

    pub fn forward_relu(&self, x: &Tensor) -> Result<Tensor> {
        let y = kernels::conv2d(x, &self.weight, self.stride, self.pad)?;
        match &self.bias {
            Some(b) => kernels::bias_relu(&y, b),
            None => y.relu(),
        }
    }
}

/// Batch normalisation over (batch, height, width), as `torch.nn.BatchNorm2d`:
/// batch statistics in training (running averages updated with momentum
/// 0.1, unbiased variance), running statistics in evaluation.
pub struct BatchNorm2d {
    gamma: Tensor,
    beta: Tensor,
    running_mean: candle_core::Var,
    running_var: candle_core::Var,
}

const BN_EPS: f64 = 1e-5;
const BN_MOMENTUM: f64 = 0.1;

impl BatchNorm2d {
    pub fn new(p: &mut Params, name: &str, channels: usize, part: Part) -> crate::Result<Self> {
        let gamma = p.constant(&format!("{name}.weight"), &[channels], 1.0, Role::Weight, part)?;
        let beta = p.constant(&format!("{name}.bias"), &[channels], 0.0, Role::Weight, part)?;
        p.constant(&format!("{name}.running_mean"), &[channels], 0.0, Role::State, part)?;
        p.constant(&format!("{name}.running_var"), &[channels], 1.0, Role::State, part)?;
        let state = |s: &str| p.get(&format!("{name}.{s}")).map(|param| param.var.clone());
        let (Some(running_mean), Some(running_var)) = (state("running_mean"), state("running_var")) else {
            return Err(crate::MlError::Incompatible(format!("{name}: running statistics were not registered")));
        };
        Ok(Self { gamma, beta, running_mean, running_var })
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let c = self.gamma.dim(0)?;
        let (mean, var) = if train {
            // Per channel over (b, h, w): move channels first, flatten the rest.
            let flat = x.transpose(0, 1)?.flatten_from(1)?;
            let n = flat.dim(1)? as f64;
            let mean = flat.mean(D::Minus1)?;
            let var = flat.broadcast_sub(&mean.unsqueeze(1)?)?.sqr()?.mean(D::Minus1)?;
            let unbiased = (var.detach() * (n / (n - 1.0).max(1.0)))?;
            self.running_mean.set(&((self.running_mean.as_tensor() * (1.0 - BN_MOMENTUM))? + (mean.detach() * BN_MOMENTUM)?)?)?;
            self.running_var.set(&((self.running_var.as_tensor() * (1.0 - BN_MOMENTUM))? + (unbiased * BN_MOMENTUM)?)?)?;
            (mean, var)
        } else {
            (self.running_mean.as_tensor().clone(), self.running_var.as_tensor().clone())
        };
        let scale = (self.gamma.clone() / (var + BN_EPS)?.sqrt()?)?;
        let shift = (&self.beta - (&mean * &scale)?)?;
        x.broadcast_mul(&scale.reshape((1, c, 1, 1))?)?.broadcast_add(&shift.reshape((1, c, 1, 1))?)
    }
}
