//! SGD with momentum, as `torch.optim.SGD` (dampening 0):
//! g ← g + wd·p; b ← μ·b + g (b ← g on the first step);
//! p ← p − lr·(g + μ·b) with Nesterov, p ← p − lr·b without.

use std::cell::RefCell;

use candle_core::{CpuStorage, InplaceOp2, Layout, Tensor, Var, bail};

use super::Slot;
use crate::Result;

pub struct Hyper {
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    pub grad_scale: f64,
    pub first: bool,
}

struct Fused<'a> {
    h: &'a Hyper,
    buf: RefCell<&'a mut [f32]>,
}

impl InplaceOp2 for Fused<'_> {
    fn name(&self) -> &'static str {
        "tenfold-sgd"
    }

    fn cpu_fwd(&self, ps: &mut CpuStorage, pl: &Layout, gs: &CpuStorage, gl: &Layout) -> candle_core::Result<()> {
        let (CpuStorage::F32(p), CpuStorage::F32(g)) = (ps, gs) else { bail!("sgd: parameters and gradients must be f32") };
        let (Some((p0, p1)), Some((g0, g1))) = (pl.contiguous_offsets(), gl.contiguous_offsets()) else {
            bail!("sgd: parameters and gradients must be contiguous")
        };
        let (p, g) = (&mut p[p0..p1], &g[g0..g1]);
        let mut buf = self.buf.borrow_mut();
        if p.len() != g.len() || buf.len() != p.len() {
            bail!("sgd: {} parameters, {} gradients, {} momentum values", p.len(), g.len(), buf.len());
        }
        let h = self.h;
        let (lr, mu, wd, scale) = (h.lr as f32, h.momentum as f32, h.weight_decay as f32, h.grad_scale as f32);
        for i in 0..p.len() {
            let gi = g[i] * scale + wd * p[i];
            let direction = if mu == 0.0 {
                gi
            } else {
                buf[i] = if h.first { gi } else { mu * buf[i] + gi };
                if h.nesterov { gi + mu * buf[i] } else { buf[i] }
            };
            p[i] -= lr * direction;
        }
        Ok(())
    }
}

pub fn update(var: &Var, grad: &Tensor, slot: &mut Slot, h: &Hyper) -> Result<()> {
    match slot {
        Slot::Host { m, .. } => {
            let op = Fused { h, buf: RefCell::new(m) };
            var.as_tensor().inplace_op2(&grad.contiguous()?, &op)?;
        }
        Slot::Device { m, .. } => {
            let g = ((grad * h.grad_scale)? + (var.as_tensor() * h.weight_decay)?)?;
            let direction = if h.momentum == 0.0 {
                g
            } else {
                *m = if h.first { g.clone() } else { ((&*m * h.momentum)? + &g)? };
                if h.nesterov { (g + (&*m * h.momentum)?)? } else { m.clone() }
            };
            var.set(&(var.as_tensor() - (direction * h.lr)?)?)?;
        }
    }
    Ok(())
}
