//! Training-mode batch normalisation over (batch, height, width) as one op
//! with the closed-form backward, instead of about a dozen tensor ops each
//! with its own backward node:
//! dx = γ·σ⁻¹/N · (N·dy − Σdy − x̂·Σ(dy·x̂)), dγ = Σ(dy·x̂), dβ = Σdy.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use super::f32_slice;

/// Batch statistics of the last forward: per channel mean and 1/σ, and the
/// biased variance (the caller turns it into the running average).
#[derive(Default)]
struct Stats {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    var: Vec<f32>,
}

struct BatchNormTrain {
    eps: f64,
    /// Shared with the caller, who reads the batch statistics after the forward.
    stats: Arc<Mutex<Stats>>,
}

fn dims(l: &Layout) -> Result<(usize, usize, usize)> {
    let &[b, c, h, w] = l.dims() else { bail!("batch_norm: expected (b, c, h, w), got {:?}", l.dims()) };
    Ok((b, c, h * w))
}

impl CustomOp3 for BatchNormTrain {
    fn name(&self) -> &'static str {
        "tenfold-batch-norm"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (b, c, hw) = dims(xl)?;
        let (x, gamma, beta) = (f32_slice(xs, xl, "batch_norm")?, f32_slice(gs, gl, "batch_norm")?, f32_slice(bs, bl, "batch_norm")?);
        if gamma.len() != c || beta.len() != c {
            bail!("batch_norm: {c} channels but {} scales and {} shifts", gamma.len(), beta.len());
        }
        let n = (b * hw) as f64;
        // Per channel, in f64: one pass for the mean, one for the variance.
        let moments: Vec<(f64, f64)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let planes = (0..b).map(|i| &x[(i * c + ch) * hw..][..hw]);
                let mean = planes.clone().flatten().map(|&v| f64::from(v)).sum::<f64>() / n;
                let var = planes.flatten().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
                (mean, var)
            })
            .collect();
        let mean: Vec<f32> = moments.iter().map(|m| m.0 as f32).collect();
        let var: Vec<f32> = moments.iter().map(|m| m.1 as f32).collect();
        let inv_std: Vec<f32> = moments.iter().map(|m| (1.0 / (m.1 + self.eps).sqrt()) as f32).collect();
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(hw).zip(x.par_chunks(hw)).enumerate().for_each(|(plane, (o, xp))| {
            let ch = plane % c;
            let (scale, shift) = (gamma[ch] * inv_std[ch], beta[ch] - mean[ch] * gamma[ch] * inv_std[ch]);
            o.iter_mut().zip(xp).for_each(|(o, v)| *o = v * scale + shift);
        });
        if let Ok(mut s) = self.stats.lock() {
            *s = Stats { mean, inv_std, var };
        }
        Ok((CpuStorage::F32(out), xl.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (mean, inv_std) = match self.stats.lock() {
            Ok(s) => (s.mean.clone(), s.inv_std.clone()),
            Err(_) => bail!("batch_norm: statistics lost"),
        };
        let c = mean.len();
        let all = x.apply_op3_no_bwd(&grad.contiguous()?, &gamma.contiguous()?, &Backward { mean, inv_std })?;
        let n = x.elem_count();
        let grad_x = all.narrow(0, 0, n)?.reshape(x.shape())?;
        let grad_gamma = all.narrow(0, n, c)?;
        let grad_beta = all.narrow(0, n + c, c)?;
        Ok((Some(grad_x), Some(grad_gamma), Some(grad_beta)))
    }
}

/// (x, dy, γ) → [dx | dγ | dβ] flattened, with the forward's statistics.
struct Backward {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
}

impl CustomOp3 for Backward {
    fn name(&self) -> &'static str {
        "tenfold-batch-norm-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (b, c, hw) = dims(xl)?;
        let (x, dy, gamma) =
            (f32_slice(xs, xl, "batch_norm grad")?, f32_slice(gs, gl, "batch_norm grad")?, f32_slice(ws, wl, "batch_norm grad")?);
        let (mean, inv_std) = (&self.mean, &self.inv_std);
        if mean.len() != c || gamma.len() != c {
            bail!("batch_norm grad: statistics for {} channels, input has {c}", mean.len());
        }
        let n = (b * hw) as f32;
        // Σdy and Σ(dy·x̂) per channel.
        let sums: Vec<(f32, f32)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let (mut s, mut sx) = (0f64, 0f64);
                for i in 0..b {
                    let off = (i * c + ch) * hw;
                    for (g, v) in dy[off..off + hw].iter().zip(&x[off..off + hw]) {
                        s += f64::from(*g);
                        sx += f64::from(g * (v - mean[ch]) * inv_std[ch]);
                    }
                }
                (s as f32, sx as f32)
            })
            .collect();
        let mut out = vec![0f32; x.len() + 2 * c];
        let (dx, rest) = out.split_at_mut(x.len());
        dx.par_chunks_mut(hw).zip(x.par_chunks(hw).zip(dy.par_chunks(hw))).enumerate().for_each(|(plane, (d, (xp, gp)))| {
            let ch = plane % c;
            let (sum, sum_x) = sums[ch];
            let k = gamma[ch] * inv_std[ch] / n;
            for ((d, v), g) in d.iter_mut().zip(xp).zip(gp) {
                let xhat = (v - mean[ch]) * inv_std[ch];
                *d = k * (n * g - sum - xhat * sum_x);
            }
        });
        for ch in 0..c {
            rest[ch] = sums[ch].1;
            rest[c + ch] = sums[ch].0;
        }
        Ok((CpuStorage::F32(out), Shape::from(x.len() + 2 * c)))
    }
}

/// Normalises `x` with batch statistics; returns the output and the batch
/// (mean, biased variance) for the running averages.
pub fn batch_norm_train(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<(Tensor, Vec<f32>, Vec<f32>)> {
    let stats = Arc::new(Mutex::new(Stats::default()));
    let y = x.contiguous()?.apply_op3(gamma, beta, BatchNormTrain { eps, stats: stats.clone() })?;
    let s = stats.lock().map_err(|_| candle_core::Error::Msg("batch_norm: statistics lost".into()))?;
    Ok((y, s.mean.clone(), s.var.clone()))
}
