//! Max pooling with a k×k window and stride k, with a one-pass backward.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use super::f32_slice;

struct MaxPool {
    k: usize,
}

fn dims(layout: &Layout, k: usize) -> Result<(usize, usize, usize, usize, usize)> {
    let &[b, c, h, w] = layout.dims() else { bail!("max_pool2d: expected (b, c, h, w), got {:?}", layout.dims()) };
    if k == 0 || h < k || w < k {
        bail!("max_pool2d: a {k}×{k} window does not fit {h}×{w}");
    }
    Ok((b * c, h, w, h / k, w / k))
}

/// The flat index (within a plane) of the first maximum of each window:
/// the same element PyTorch routes the gradient to.
#[inline]
fn argmax(plane: &[f32], w: usize, k: usize, oy: usize, ox: usize) -> usize {
    if k == 2 {
        // The common case, unrolled: ties go to the top row, then the left.
        let top = 2 * (oy * w + ox);
        let bottom = top + w;
        let (t, tv) = if plane[top + 1] > plane[top] { (top + 1, plane[top + 1]) } else { (top, plane[top]) };
        let (b, bv) = if plane[bottom + 1] > plane[bottom] { (bottom + 1, plane[bottom + 1]) } else { (bottom, plane[bottom]) };
        return if bv > tv { b } else { t };
    }
    let mut best = (oy * k) * w + ox * k;
    for y in oy * k..oy * k + k {
        for x in ox * k..ox * k + k {
            let i = y * w + x;
            if plane[i] > plane[best] {
                best = i;
            }
        }
    }
    best
}

/// k×k max pooling of `planes` planes of h×w values.
pub(super) fn pool(x: &[f32], planes: usize, h: usize, w: usize, k: usize) -> Vec<f32> {
    let (oh, ow) = (h / k, w / k);
    let mut out = vec![0f32; planes * oh * ow];
    out.par_chunks_mut(oh * ow).zip(x.par_chunks(h * w)).for_each(|(o, plane)| {
        for oy in 0..oh {
            let row = &mut o[oy * ow..][..ow];
            if k == 2 {
                // Row pairs as slices: no index arithmetic per element.
                let (top, bottom) = (&plane[2 * oy * w..][..2 * ow], &plane[(2 * oy + 1) * w..][..2 * ow]);
                for ((v, t), b) in row.iter_mut().zip(top.chunks_exact(2)).zip(bottom.chunks_exact(2)) {
                    *v = t[0].max(t[1]).max(b[0].max(b[1]));
                }
            } else {
                for (ox, v) in row.iter_mut().enumerate() {
                    *v = plane[argmax(plane, w, k, oy, ox)];
                }
            }
        }
    });
    out
}

impl CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "tenfold-max-pool2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (planes, h, w, oh, ow) = dims(l, self.k)?;
        let out = pool(f32_slice(s, l, "max_pool2d")?, planes, h, w, self.k);
        let d = l.dims();
        Ok((CpuStorage::F32(out), Shape::from((d[0], d[1], oh, ow))))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(&grad.contiguous()?, &MaxPoolGrad { k: self.k, relu: false })?))
    }
}

/// Routes each window's gradient to its maximum; everything else gets 0.
/// With `relu` (the input is a ReLU's output) a maximum of 0 gets nothing
/// either: the ReLU's own backward, folded into the same pass.
pub(super) struct MaxPoolGrad {
    pub(super) k: usize,
    pub(super) relu: bool,
}

impl CustomOp2 for MaxPoolGrad {
    fn name(&self) -> &'static str {
        "tenfold-max-pool2d-grad"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, gs: &CpuStorage, gl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (planes, h, w, oh, ow) = dims(xl, self.k)?;
        let (x, grad) = (f32_slice(xs, xl, "max_pool2d grad")?, f32_slice(gs, gl, "max_pool2d grad")?);
        if grad.len() != planes * oh * ow {
            bail!("max_pool2d grad: the gradient has {} values, expected {}", grad.len(), planes * oh * ow);
        }
        let mut dx = vec![0f32; planes * h * w];
        dx.par_chunks_mut(h * w).zip(x.par_chunks(h * w)).zip(grad.par_chunks(oh * ow)).for_each(|((d, plane), g)| {
            for oy in 0..oh {
                for ox in 0..ow {
                    let best = argmax(plane, w, self.k, oy, ox);
                    if !self.relu || plane[best] > 0.0 {
                        d[best] += g[oy * ow + ox];
                    }
                }
            }
        });
        Ok((CpuStorage::F32(dx), xl.shape().clone()))
    }
}

/// k×k max pooling with stride k (what both image architectures use).
pub fn max_pool2d(x: &Tensor, k: usize) -> Result<Tensor> {
    if x.device().is_cpu() { x.contiguous()?.apply_op1(MaxPool { k }) } else { x.max_pool2d(k) }
}
