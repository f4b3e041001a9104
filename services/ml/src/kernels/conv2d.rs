//! conv2d by im2col + GEMM, forward and backward.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use super::gemm::{Mat, matmul};
use super::{chunk_len, f32_slice};

/// The geometry of one convolution (no dilation, no groups).
#[derive(Debug, Clone, Copy)]
struct Geom {
    batch: usize,
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    pad: usize,
    oh: usize,
    ow: usize,
}

impl Geom {
    fn new(x: &[usize], k: &[usize], stride: usize, pad: usize) -> Result<Self> {
        let (&[batch, c_in, h, w], &[c_out, kc, kh, kw]) = (x, k) else {
            bail!("conv2d: expected input (b, c, h, w) and kernel (o, c, kh, kw), got {x:?} and {k:?}");
        };
        if kc != c_in {
            bail!("conv2d: the input has {c_in} channels, the kernel expects {kc}");
        }
        if h + 2 * pad < kh || w + 2 * pad < kw || stride == 0 {
            bail!("conv2d: a {kh}×{kw} kernel does not fit a padded {h}×{w} input");
        }
        let (oh, ow) = ((h + 2 * pad - kh) / stride + 1, (w + 2 * pad - kw) / stride + 1);
        Ok(Self { batch, c_in, h, w, c_out, kh, kw, stride, pad, oh, ow })
    }
    /// Rows of the im2col matrix: one per (input channel, ky, kx).
    fn k(&self) -> usize {
        self.c_in * self.kh * self.kw
    }
    /// Columns: one per output position.
    fn l(&self) -> usize {
        self.oh * self.ow
    }
    fn image(&self) -> usize {
        self.c_in * self.h * self.w
    }
}

/// Unfolds one image (c, h, w) into `col` (K × L).
fn im2col(g: &Geom, x: &[f32], col: &mut [f32]) {
    let l = g.l();
    for ci in 0..g.c_in {
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let row = &mut col[((ci * g.kh + ky) * g.kw + kx) * l..][..l];
                for oy in 0..g.oh {
                    let out = &mut row[oy * g.ow..][..g.ow];
                    let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                    if iy < 0 || iy >= g.h as isize {
                        out.fill(0.0);
                        continue;
                    }
                    let src = &x[(ci * g.h + iy as usize) * g.w..][..g.w];
                    for (ox, o) in out.iter_mut().enumerate() {
                        let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                        *o = if ix < 0 || ix >= g.w as isize { 0.0 } else { src[ix as usize] };
                    }
                }
            }
        }
    }
}

/// Folds `col` (K × L) back onto one image, adding overlapping entries.
fn col2im(g: &Geom, col: &[f32], x: &mut [f32]) {
    x.fill(0.0);
    let l = g.l();
    for ci in 0..g.c_in {
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let row = &col[((ci * g.kh + ky) * g.kw + kx) * l..][..l];
                for oy in 0..g.oh {
                    let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                    if iy < 0 || iy >= g.h as isize {
                        continue;
                    }
                    let dst = &mut x[(ci * g.h + iy as usize) * g.w..][..g.w];
                    for (ox, v) in row[oy * g.ow..][..g.ow].iter().enumerate() {
                        let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                        if ix >= 0 && (ix as usize) < g.w {
                            dst[ix as usize] += v;
                        }
                    }
                }
            }
        }
    }
}

/// GEMM threads for a batch of `n` images processed `chunk` at a time: when
/// the batch alone cannot fill the pool (batch 1 inference), the GEMM does.
fn inner_threads(n: usize) -> usize {
    let threads = candle_core::utils::get_num_threads().max(1);
    if n >= threads { 1 } else { threads }
}

/// Σ over batch and positions per channel of a (b, c, h, w) gradient:
/// contiguous inner sums first (candle's multi-axis sum walks strides).
fn channel_sums(grad: &Tensor) -> Result<Tensor> {
    let (b, c) = (grad.dim(0)?, grad.dim(1)?);
    grad.reshape((b, c, ()))?.sum(2)?.sum(0)
}

/// Output of one convolution: per image, im2col then one GEMM; then the
/// bias and ReLU, if any, while the image's output is still in cache.
fn forward(g: &Geom, x: &[f32], k: &[f32], bias: Option<&[f32]>, relu: bool) -> Result<Vec<f32>> {
    let (kk, l) = (g.k(), g.l());
    let mut out = vec![0f32; g.batch * g.c_out * l];
    let threads = inner_threads(g.batch);
    out.par_chunks_mut(g.c_out * l).zip(x.par_chunks(g.image())).try_for_each_init(
        || vec![0f32; kk * l],
        |col, (o, xb)| {
            im2col(g, xb, col);
            matmul(o, false, Mat::rows(k, g.c_out, kk), Mat::rows(col, kk, l), threads)?;
            if let Some(bias) = bias {
                for (plane, b) in o.chunks_mut(l).zip(bias) {
                    plane.iter_mut().for_each(|v| *v += b);
                }
            }
            if relu {
                o.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            Ok::<_, candle_core::Error>(())
        },
    )?;
    Ok(out)
}

/// Kernel and input gradients from the gradient of the convolution's
/// (pre-bias) output.
fn backward(stride: usize, pad: usize, x: &Tensor, kernel: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let grad_kernel = if kernel.track_op() {
        Some(x.apply_op2_no_bwd(grad, &KernelGrad { stride, pad, kh: kernel.dim(2)?, kw: kernel.dim(3)? })?)
    } else {
        None
    };
    // The input's gradient only when something upstream needs it: for
    // the first layer the input is data and this is pure waste.
    let grad_x =
        if x.track_op() { Some(kernel.apply_op2_no_bwd(grad, &InputGrad { stride, pad, h: x.dim(2)?, w: x.dim(3)? })?) } else { None };
    Ok((grad_x, grad_kernel))
}

type Grads3 = (Option<Tensor>, Option<Tensor>, Option<Tensor>);

/// Gradients of (x, kernel, bias) from the gradient of conv(x) + bias.
fn backward_with_bias(stride: usize, pad: usize, x: &Tensor, kernel: &Tensor, bias: &Tensor, grad: &Tensor) -> Result<Grads3> {
    let grad_bias = if bias.track_op() { Some(channel_sums(grad)?) } else { None };
    let (grad_x, grad_kernel) = backward(stride, pad, x, kernel, grad)?;
    Ok((grad_x, grad_kernel, grad_bias))
}

/// The geometry of a convolution with a bias, and the bias values.
fn geom_with_bias<'a>(xl: &Layout, kl: &Layout, bs: &'a CpuStorage, bl: &Layout, stride: usize, pad: usize) -> Result<(Geom, &'a [f32])> {
    let g = Geom::new(xl.dims(), kl.dims(), stride, pad)?;
    let bias = f32_slice(bs, bl, "conv2d bias")?;
    if bias.len() != g.c_out {
        bail!("conv2d: {} bias values for {} output channels", bias.len(), g.c_out);
    }
    Ok((g, bias))
}

struct Forward {
    stride: usize,
    pad: usize,
}

impl CustomOp2 for Forward {
    fn name(&self) -> &'static str {
        "tenfold-conv2d"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, ks: &CpuStorage, kl: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = Geom::new(xl.dims(), kl.dims(), self.stride, self.pad)?;
        let out = forward(&g, f32_slice(xs, xl, "conv2d")?, f32_slice(ks, kl, "conv2d")?, None, false)?;
        Ok((CpuStorage::F32(out), Shape::from((g.batch, g.c_out, g.oh, g.ow))))
    }

    fn bwd(&self, x: &Tensor, kernel: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        backward(self.stride, self.pad, x, kernel, &grad.contiguous()?)
    }
}

/// conv2d + bias (+ ReLU) as one graph node: the pre-activation output,
/// the largest tensor of a small CNN, is never materialised as a node, so
/// the backward pass neither allocates nor accumulates its gradient.
struct BiasForward {
    stride: usize,
    pad: usize,
    relu: bool,
}

impl CustomOp3 for BiasForward {
    fn name(&self) -> &'static str {
        "tenfold-conv2d-bias"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ks: &CpuStorage,
        kl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (g, bias) = geom_with_bias(xl, kl, bs, bl, self.stride, self.pad)?;
        let out = forward(&g, f32_slice(xs, xl, "conv2d")?, f32_slice(ks, kl, "conv2d")?, Some(bias), self.relu)?;
        Ok((CpuStorage::F32(out), Shape::from((g.batch, g.c_out, g.oh, g.ow))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        kernel: &Tensor,
        bias: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let grad = if self.relu { res.apply_op2_no_bwd(&grad, &super::relu::ReluGrad)? } else { grad };
        backward_with_bias(self.stride, self.pad, x, kernel, bias, &grad)
    }
}

/// dL/dkernel = Σ_b grad_b (O × L) · col_bᵀ (L × K).
struct KernelGrad {
    stride: usize,
    pad: usize,
    kh: usize,
    kw: usize,
}

impl CustomOp2 for KernelGrad {
    fn name(&self) -> &'static str {
        "tenfold-conv2d-kernel-grad"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, gs: &CpuStorage, gl: &Layout) -> Result<(CpuStorage, Shape)> {
        let &[_, c_in, ..] = xl.dims() else { bail!("conv2d grad: input must be 4-d") };
        let &[_, c_out, ..] = gl.dims() else { bail!("conv2d grad: gradient must be 4-d") };
        let g = Geom::new(xl.dims(), &[c_out, c_in, self.kh, self.kw], self.stride, self.pad)?;
        let (x, grad) = (f32_slice(xs, xl, "conv2d grad")?, f32_slice(gs, gl, "conv2d grad")?);
        let (kk, l) = (g.k(), g.l());
        let chunk = chunk_len(g.batch);
        let partials = x
            .par_chunks(g.image() * chunk)
            .zip(grad.par_chunks(g.c_out * l * chunk))
            .map(|(xc, gc)| -> Result<Vec<f32>> {
                let mut acc = vec![0f32; g.c_out * kk];
                let mut col = vec![0f32; kk * l];
                for (xb, gb) in xc.chunks(g.image()).zip(gc.chunks(g.c_out * l)) {
                    im2col(&g, xb, &mut col);
                    matmul(&mut acc, true, Mat::rows(gb, g.c_out, l), Mat::rows(&col, kk, l).t(), 1)?;
                }
                Ok(acc)
            })
            .collect::<Result<Vec<_>>>()?;
        // Summed in chunk order: the same bits every run.
        let mut total = vec![0f32; g.c_out * kk];
        for p in partials {
            total.iter_mut().zip(p).for_each(|(t, v)| *t += v);
        }
        Ok((CpuStorage::F32(total), Shape::from((g.c_out, g.c_in, g.kh, g.kw))))
    }
}

/// dL/dx_b = col2im(kernelᵀ (K × O) · grad_b (O × L)).
struct InputGrad {
    stride: usize,
    pad: usize,
    h: usize,
    w: usize,
}

impl CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        "tenfold-conv2d-input-grad"
    }

    fn cpu_fwd(&self, ks: &CpuStorage, kl: &Layout, gs: &CpuStorage, gl: &Layout) -> Result<(CpuStorage, Shape)> {
        let &[c_out, c_in, ..] = kl.dims() else { bail!("conv2d grad: kernel must be 4-d") };
        let &[batch, ..] = gl.dims() else { bail!("conv2d grad: gradient must be 4-d") };
        let g = Geom::new(&[batch, c_in, self.h, self.w], kl.dims(), self.stride, self.pad)?;
        let (k, grad) = (f32_slice(ks, kl, "conv2d grad")?, f32_slice(gs, gl, "conv2d grad")?);
        let (kk, l) = (g.k(), g.l());
        let threads = inner_threads(batch);
        let mut dx = vec![0f32; batch * g.image()];
        dx.par_chunks_mut(g.image()).zip(grad.par_chunks(c_out * l)).try_for_each_init(
            || vec![0f32; kk * l],
            |col, (dxb, gb)| {
                matmul(col, false, Mat::rows(k, c_out, kk).t(), Mat::rows(gb, c_out, l), threads)?;
                col2im(&g, col, dxb);
                Ok::<_, candle_core::Error>(())
            },
        )?;
        Ok((CpuStorage::F32(dx), Shape::from((batch, c_in, self.h, self.w))))
    }
}

/// conv2d + bias + ReLU + k×k max-pool as one node (the pattern of both
/// small CNNs). The activations before pooling stay inside the op for its
/// backward instead of becoming two graph nodes whose gradients candle
/// would allocate and accumulate.
struct BiasReluPool {
    stride: usize,
    pad: usize,
    k: usize,
    /// The forward's activations before pooling, and their height and width.
    saved: Mutex<Option<(Vec<f32>, usize, usize)>>,
}

impl CustomOp3 for BiasReluPool {
    fn name(&self) -> &'static str {
        "tenfold-conv2d-relu-pool"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ks: &CpuStorage,
        kl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (g, bias) = geom_with_bias(xl, kl, bs, bl, self.stride, self.pad)?;
        if g.oh < self.k || g.ow < self.k || self.k == 0 {
            bail!("conv2d+pool: a {}×{} output does not fit a {}×{} window", g.oh, g.ow, self.k, self.k);
        }
        let act = forward(&g, f32_slice(xs, xl, "conv2d")?, f32_slice(ks, kl, "conv2d")?, Some(bias), true)?;
        let out = super::pool::pool(&act, g.batch * g.c_out, g.oh, g.ow, self.k);
        match self.saved.lock() {
            Ok(mut saved) => *saved = Some((act, g.oh, g.ow)),
            Err(_) => bail!("conv2d+pool: saved activations poisoned"),
        }
        Ok((CpuStorage::F32(out), Shape::from((g.batch, g.c_out, g.oh / self.k, g.ow / self.k))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        kernel: &Tensor,
        bias: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        // Taken, not copied: a graph is walked backward once.
        let Some((act, oh, ow)) = self.saved.lock().ok().and_then(|mut s| s.take()) else {
            bail!("conv2d+pool: backward needs the forward's activations (was it run twice?)");
        };
        let act = Tensor::from_vec(act, (res.dim(0)?, res.dim(1)?, oh, ow), x.device())?;
        // Route each window's gradient to its maximum; ReLU then passes it
        // only where the activation was positive.
        let grad = act.apply_op2_no_bwd(&grad.contiguous()?, &super::pool::MaxPoolGrad { k: self.k, relu: true })?;
        backward_with_bias(self.stride, self.pad, x, kernel, bias, &grad)
    }
}

/// max_pool2d(relu(conv2d(x) + bias), k).
pub fn conv2d_relu_pool(x: &Tensor, kernel: &Tensor, bias: &Tensor, stride: usize, pad: usize, k: usize) -> Result<Tensor> {
    if x.device().is_cpu() {
        let op = BiasReluPool { stride, pad, k, saved: Mutex::new(None) };
        x.contiguous()?.apply_op3(&kernel.contiguous()?, &bias.contiguous()?, op)
    } else {
        conv2d_bias(x, kernel, bias, stride, pad, true)?.max_pool2d(k)
    }
}

/// 2-d convolution of `x` (b, c, h, w) with `kernel` (o, c, kh, kw).
pub fn conv2d(x: &Tensor, kernel: &Tensor, stride: usize, pad: usize) -> Result<Tensor> {
    if x.device().is_cpu() {
        x.contiguous()?.apply_op2(&kernel.contiguous()?, Forward { stride, pad })
    } else {
        x.conv2d(kernel, pad, stride, 1, 1)
    }
}

/// conv2d, then `bias` (o) per output channel, then ReLU when `relu`.
pub fn conv2d_bias(x: &Tensor, kernel: &Tensor, bias: &Tensor, stride: usize, pad: usize, relu: bool) -> Result<Tensor> {
    if x.device().is_cpu() {
        x.contiguous()?.apply_op3(&kernel.contiguous()?, &bias.contiguous()?, BiasForward { stride, pad, relu })
    } else {
        let y = x.conv2d(kernel, pad, stride, 1, 1)?.broadcast_add(&bias.reshape((1, (), 1, 1))?)?;
        if relu { y.relu() } else { Ok(y) }
    }
}
