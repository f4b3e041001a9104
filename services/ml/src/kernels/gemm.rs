//! A safe front for the `gemm` crate (the GEMM candle's CPU matmul uses).
//!
//! This is the only `unsafe` in the workspace outside dependencies. Every
//! matrix view is checked against its slice before the raw call: the largest
//! index a view can touch, `(rows-1)·row_stride + (cols-1)·col_stride`, must
//! lie inside the slice, and the destination is a unique `&mut`, so the call
//! reads and writes only memory the borrow checker already granted.
#![allow(unsafe_code)]

use candle_core::{Result, bail};

/// A read-only strided matrix over a slice.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> Mat<'a> {
    /// A row-major matrix.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self { data, rows, cols, row_stride: cols, col_stride: 1 }
    }

    /// The transpose, as a view (no copy).
    pub fn t(self) -> Self {
        Self { data: self.data, rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride }
    }
}

fn fits(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    if rows == 0 || cols == 0 {
        return true;
    }
    let last = (rows - 1).checked_mul(rs).and_then(|a| (cols - 1).checked_mul(cs).and_then(|b| a.checked_add(b)));
    matches!(last, Some(i) if i < len)
}

/// `dst (m×n, row-major) = a (m×k) · b (k×n)`, or `+=` when `accumulate`.
/// `threads` > 1 splits the product over rayon's pool; pass 1 when the
/// caller already runs in parallel.
pub fn matmul(dst: &mut [f32], accumulate: bool, a: Mat<'_>, b: Mat<'_>, threads: usize) -> Result<()> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if b.rows != k {
        bail!("gemm: inner dimensions differ ({m}×{k} · {}×{n})", b.rows);
    }
    if !fits(a.data.len(), m, k, a.row_stride, a.col_stride) || !fits(b.data.len(), k, n, b.row_stride, b.col_stride) {
        bail!("gemm: a matrix view is larger than its slice");
    }
    if dst.len() < m * n {
        bail!("gemm: the destination holds {} values, {m}×{n} are written", dst.len());
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return Ok(());
    }
    let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    // SAFETY: all three views were checked above to stay inside their
    // slices; `dst` is exclusively borrowed and does not alias `a` or `b`
    // (they are shared borrows, which Rust forbids alongside `&mut`).
    // `read_dst` decides whether dst is read, so it need not be initialised
    // beyond what the slice already guarantees.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: Mat<'_>, b: Mat<'_>) -> Vec<f32> {
        let mut out = vec![0.0; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                for p in 0..a.cols {
                    out[i * b.cols + j] += a.data[i * a.row_stride + p * a.col_stride] * b.data[p * b.row_stride + j * b.col_stride];
                }
            }
        }
        out
    }

    #[test]
    fn matches_a_naive_product_with_transposes_and_accumulation() {
        let a: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 2.0).collect();
        let b: Vec<f32> = (0..20).map(|i| (i as f32).sin()).collect();
        let (am, bm) = (Mat::rows(&a, 3, 4), Mat::rows(&b, 4, 5));
        let mut dst = vec![0.0; 15];
        matmul(&mut dst, false, am, bm, 1).unwrap();
        for (x, y) in dst.iter().zip(&naive(am, bm)) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
        // aᵀ of a 4×3 view is 3×4.
        let at = Mat::rows(&a, 4, 3).t();
        let mut dst2 = vec![1.0; 15];
        matmul(&mut dst2, true, at, bm, 2).unwrap();
        let expect: Vec<f32> = naive(at, bm).iter().map(|v| v + 1.0).collect();
        for (x, y) in dst2.iter().zip(&expect) {
            assert!((x - y).abs() < 1e-5);
        }
    }

    #[test]
    fn refuses_views_outside_their_slices() {
        let a = vec![0.0; 5];
        let mut dst = vec![0.0; 4];
        assert!(matmul(&mut dst, false, Mat::rows(&a, 2, 3), Mat::rows(&a, 3, 2), 1).is_err());
        let b = vec![0.0; 6];
        assert!(matmul(&mut dst[..3], false, Mat::rows(&b, 2, 3), Mat::rows(&b, 3, 2), 1).is_err());
    }
}
