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
        kernels::dense(x, &self.weight, &self.bias, false)
    }

    /// relu(x·Wᵀ + b), one fused op on the CPU.
    pub fn forward_relu(&self, x: &Tensor) -> Result<Tensor> {
        kernels::dense(x, &self.weight, &self.bias, true)
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
        match &self.bias {
            Some(b) => kernels::conv2d_bias(x, &self.weight, b, self.stride, self.pad, false),
            None => kernels::conv2d(x, &self.weight, self.stride, self.pad),
        }
    }

    pub fn forward_relu(&self, x: &Tensor) -> Result<Tensor> {
        match &self.bias {
            Some(b) => kernels::conv2d_bias(x, &self.weight, b, self.stride, self.pad, true),
            None => kernels::conv2d(x, &self.weight, self.stride, self.pad)?.relu(),
        }
    }

    /// max_pool(relu(conv(x) + b), k), one fused op on the CPU.
    pub fn forward_relu_pool(&self, x: &Tensor, k: usize) -> Result<Tensor> {
        match &self.bias {
            Some(b) => kernels::conv2d_relu_pool(x, &self.weight, b, self.stride, self.pad, k),
            None => kernels::max_pool2d(&self.forward_relu(x)?, k),
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
        if train && x.device().is_cpu() {
            let (y, mean, var) = kernels::batch_norm_train(x, &self.gamma, &self.beta, BN_EPS)?;
            let n = (x.elem_count() / c) as f64;
            let device = x.device();
            let mean = Tensor::from_vec(mean, c, device)?;
            let unbiased = (Tensor::from_vec(var, c, device)? * (n / (n - 1.0).max(1.0)))?;
            self.update_running(&mean, &unbiased)?;
            return Ok(y);
        }
        let (mean, var) = if train {
            // Per channel over (b, h, w): move channels first, flatten the rest.
            let flat = x.transpose(0, 1)?.flatten_from(1)?;
            let n = flat.dim(1)? as f64;
            let mean = flat.mean(D::Minus1)?;
            let var = flat.broadcast_sub(&mean.unsqueeze(1)?)?.sqr()?.mean(D::Minus1)?;
            let unbiased = (var.detach() * (n / (n - 1.0).max(1.0)))?;
            self.update_running(&mean.detach(), &unbiased)?;
            (mean, var)
        } else {
            (self.running_mean.as_tensor().clone(), self.running_var.as_tensor().clone())
        };
        let scale = (self.gamma.clone() / (var + BN_EPS)?.sqrt()?)?;
        let shift = (&self.beta - (&mean * &scale)?)?;
        x.broadcast_mul(&scale.reshape((1, c, 1, 1))?)?.broadcast_add(&shift.reshape((1, c, 1, 1))?)
    }

    fn update_running(&self, mean: &Tensor, unbiased_var: &Tensor) -> Result<()> {
        self.running_mean.set(&((self.running_mean.as_tensor() * (1.0 - BN_MOMENTUM))? + (mean * BN_MOMENTUM)?)?)?;
        self.running_var.set(&((self.running_var.as_tensor() * (1.0 - BN_MOMENTUM))? + (unbiased_var * BN_MOMENTUM)?)?)
    }
}
