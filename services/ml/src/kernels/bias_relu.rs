//! relu(x + bias) in one pass, for dense (b, c) and conv (b, c, h, w) outputs.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use super::f32_slice;

struct BiasRelu;

/// (rows, channels, positions per channel): bias index = (i / positions) % channels.
fn shape_of(x: &[usize], bias: &[usize]) -> Result<(usize, usize)> {
    let (Some(&c), &[bc]) = (x.get(1), bias) else { bail!("bias_relu: expected x (b, c, …) and bias (c), got {x:?} and {bias:?}") };
    if c != bc {
        bail!("bias_relu: x has {c} channels, the bias {bc}");
    }
    Ok((c, x[2..].iter().product()))
}

impl CustomOp2 for BiasRelu {
    fn name(&self) -> &'static str {
        "tenfold-bias-relu"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, bs: &CpuStorage, bl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (c, positions) = shape_of(xl.dims(), bl.dims())?;
        let (x, bias) = (f32_slice(xs, xl, "bias_relu")?, f32_slice(bs, bl, "bias_relu")?);
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(c * positions).zip(x.par_chunks(c * positions)).for_each(|(o, xr)| {
            for (ch, (oc, xc)) in o.chunks_mut(positions).zip(xr.chunks(positions)).enumerate() {
                let b = bias[ch];
                oc.iter_mut().zip(xc).for_each(|(o, v)| *o = (v + b).max(0.0));
            }
        });
        Ok((CpuStorage::F32(out), xl.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, bias: &Tensor, res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad_x = res.apply_op2_no_bwd(&grad.contiguous()?, &ReluGrad)?;
        let channels = bias.dim(0)?;
        let grad_bias = grad_x.reshape((grad_x.dim(0)?, channels, ()))?.sum(2)?.sum(0)?;
        Ok((Some(grad_x), Some(grad_bias)))
    }
}

/// grad · [out > 0].
pub(super) struct ReluGrad;

impl CustomOp2 for ReluGrad {
    fn name(&self) -> &'static str {
        "tenfold-relu-grad"
    }

    fn cpu_fwd(&self, rs: &CpuStorage, rl: &Layout, gs: &CpuStorage, gl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (res, grad) = (f32_slice(rs, rl, "relu grad")?, f32_slice(gs, gl, "relu grad")?);
        if res.len() != grad.len() {
            bail!("relu grad: {} outputs but {} gradients", res.len(), grad.len());
        }
        let out = res.par_iter().zip(grad.par_iter()).map(|(r, g)| if *r > 0.0 { *g } else { 0.0 }).collect();
        Ok((CpuStorage::F32(out), rl.shape().clone()))
    }
}

/// relu(x + bias), the bias broadcast over channel dimension 1.
pub fn bias_relu(x: &Tensor, bias: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() {
        x.contiguous()?.apply_op2(&bias.contiguous()?, BiasRelu)
    } else {
        let mut shape = vec![1; x.rank()];
        shape[1] = bias.dim(0)?;
        x.broadcast_add(&bias.reshape(shape)?)?.relu()
    }
}
