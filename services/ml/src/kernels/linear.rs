//! A dense layer, x·Wᵀ + b (+ ReLU), as one op whose backward is two GEMMs
//! straight into the layouts needed: dW = dYᵀ·X is already (out, in), so no
//! transposed copy or transposed accumulation happens (as it does when the
//! layer is written `x.matmul(&w.t())`), and the bias and ReLU add no nodes.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor, bail};

use super::f32_slice;
use super::gemm::{Mat, matmul};

fn matrix(l: &Layout, what: &str) -> Result<(usize, usize)> {
    match l.dims() {
        &[r, c] => Ok((r, c)),
        d => bail!("{what}: expected a matrix, got {d:?}"),
    }
}

struct Dense {
    relu: bool,
}

impl CustomOp3 for Dense {
    fn name(&self) -> &'static str {
        "tenfold-dense"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let ((n, inputs), (outputs, w_in)) = (matrix(xl, "dense")?, matrix(wl, "dense")?);
        let (x, w, b) = (f32_slice(xs, xl, "dense")?, f32_slice(ws, wl, "dense")?, f32_slice(bs, bl, "dense")?);
        if w_in != inputs || b.len() != outputs {
            bail!("dense: input has {inputs} features, weight is {outputs}×{w_in}, bias has {}", b.len());
        }
        let mut out = vec![0f32; n * outputs];
        matmul(&mut out, false, Mat::rows(x, n, inputs), Mat::rows(w, outputs, inputs).t(), candle_core::utils::get_num_threads())?;
        for row in out.chunks_mut(outputs) {
            for (v, bias) in row.iter_mut().zip(b) {
                *v += bias;
                if self.relu {
                    *v = v.max(0.0);
                }
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((n, outputs))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let grad = if self.relu { res.apply_op2_no_bwd(&grad, &super::relu::ReluGrad)? } else { grad };
        let grad_w = if w.track_op() { Some(grad.apply_op2_no_bwd(&x.contiguous()?, &Product { transpose_lhs: true })?) } else { None };
        let grad_x = if x.track_op() { Some(grad.apply_op2_no_bwd(&w.contiguous()?, &Product { transpose_lhs: false })?) } else { None };
        let grad_b = if b.track_op() { Some(grad.sum(0)?) } else { None };
        Ok((grad_x, grad_w, grad_b))
    }
}

/// lhs·rhs or lhsᵀ·rhs of two contiguous matrices.
struct Product {
    transpose_lhs: bool,
}

impl CustomOp2 for Product {
    fn name(&self) -> &'static str {
        "tenfold-product"
    }

    fn cpu_fwd(&self, ls: &CpuStorage, ll: &Layout, rs: &CpuStorage, rl: &Layout) -> Result<(CpuStorage, Shape)> {
        let ((lr, lc), (rr, rc)) = (matrix(ll, "product")?, matrix(rl, "product")?);
        let (l, r) = (f32_slice(ls, ll, "product")?, f32_slice(rs, rl, "product")?);
        let lhs = if self.transpose_lhs { Mat::rows(l, lr, lc).t() } else { Mat::rows(l, lr, lc) };
        let mut out = vec![0f32; lhs.rows * rc];
        matmul(&mut out, false, lhs, Mat::rows(r, rr, rc), candle_core::utils::get_num_threads())?;
        Ok((CpuStorage::F32(out), Shape::from((lhs.rows, rc))))
    }
}

/// x (n, in) · weight (out, in)ᵀ + bias (out), then ReLU when `relu`.
pub fn dense(x: &Tensor, weight: &Tensor, bias: &Tensor, relu: bool) -> Result<Tensor> {
    if x.device().is_cpu() {
        x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, Dense { relu })
    } else {
        let y = x.matmul(&weight.t()?)?.broadcast_add(bias)?;
        if relu { y.relu() } else { Ok(y) }
    }
}
