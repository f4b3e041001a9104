//! The ReLU's backward, shared by the fused ops that end in a ReLU.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, bail};
use rayon::prelude::*;

use super::f32_slice;

/// (out, grad) → grad · [out > 0].
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
