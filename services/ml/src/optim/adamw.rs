//! AdamW (Loshchilov & Hutter), as `torch.optim.AdamW`:
//! p ← p·(1 − lr·wd); m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
//! p ← p − lr · (m / (1−β1ᵗ)) / (sqrt(v / (1−β2ᵗ)) + ε).

use std::cell::RefCell;

use candle_core::{CpuStorage, InplaceOp2, Layout, Tensor, Var, bail};

use super::Slot;
use crate::Result;

pub struct Hyper {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub step: u64,
    pub grad_scale: f64,
}

/// The fused CPU update: one pass over parameter, gradient and moments.
struct Fused<'a> {
    h: &'a Hyper,
    m: RefCell<&'a mut [f32]>,
    v: RefCell<&'a mut [f32]>,
}

impl InplaceOp2 for Fused<'_> {
    fn name(&self) -> &'static str {
        "tenfold-adamw"
    }

    fn cpu_fwd(&self, ps: &mut CpuStorage, pl: &Layout, gs: &CpuStorage, gl: &Layout) -> candle_core::Result<()> {
        let (CpuStorage::F32(p), CpuStorage::F32(g)) = (ps, gs) else { bail!("adamw: parameters and gradients must be f32") };
        let (Some((p0, p1)), Some((g0, g1))) = (pl.contiguous_offsets(), gl.contiguous_offsets()) else {
            bail!("adamw: parameters and gradients must be contiguous")
        };
        let (p, g) = (&mut p[p0..p1], &g[g0..g1]);
        let (mut m, mut v) = (self.m.borrow_mut(), self.v.borrow_mut());
        if p.len() != g.len() || m.len() != p.len() || v.len() != p.len() {
            bail!("adamw: {} parameters, {} gradients, {} / {} moments", p.len(), g.len(), m.len(), v.len());
        }
        let h = self.h;
        let t = h.step as i32;
        let (b1, b2) = (h.beta1 as f32, h.beta2 as f32);
        let step_size = (h.lr / (1.0 - h.beta1.powi(t))) as f32;
        let inv_bc2_sqrt = (1.0 / (1.0 - h.beta2.powi(t))).sqrt() as f32;
        let decay = (1.0 - h.lr * h.weight_decay) as f32;
        let (eps, scale) = (h.eps as f32, h.grad_scale as f32);
        for i in 0..p.len() {
            let gi = g[i] * scale;
            m[i] = b1 * m[i] + (1.0 - b1) * gi;
            v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
            p[i] = p[i] * decay - step_size * m[i] / (v[i].sqrt() * inv_bc2_sqrt + eps);
        }
        Ok(())
    }
}

pub fn update(var: &Var, grad: &Tensor, slot: &mut Slot, h: &Hyper) -> Result<()> {
    match slot {
        Slot::Host { m, v } => {
            let op = Fused { h, m: RefCell::new(m), v: RefCell::new(v) };
            var.as_tensor().inplace_op2(&grad.contiguous()?, &op)?;
        }
        Slot::Device { m, v } => {
            let t = h.step as i32;
            let g = (grad * h.grad_scale)?;
            *m = ((&*m * h.beta1)? + (&g * (1.0 - h.beta1))?)?;
            *v = ((&*v * h.beta2)? + (g.sqr()? * (1.0 - h.beta2))?)?;
            let m_hat = (&*m / (1.0 - h.beta1.powi(t)))?;
            let v_hat = (&*v / (1.0 - h.beta2.powi(t)))?;
            let decayed = (var.as_tensor() * (1.0 - h.lr * h.weight_decay))?;
            let next = (decayed - ((m_hat / (v_hat.sqrt()? + h.eps)?)? * h.lr)?)?;
            var.set(&next)?;
        }
    }
    Ok(())
}
