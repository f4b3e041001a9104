//! CPU kernels as candle custom ops, for the shapes the image family trains.
//!
//! Stock candle 0.11 spends most of a training step in backward passes that
//! do more than needed: conv2d always computes the input gradient (through
//! conv_transpose2d) even when the input is data, and max-pool's backward is
//! assembled from six ops. These ops compute the same values with im2col +
//! one GEMM per image, skip gradients nobody asked for, and fuse bias+ReLU.
//! Each is checked against candle's reference op and by finite differences
//! (`tests.rs`). On other devices the layers use candle's own ops.

mod batch_norm;
mod conv2d;
pub mod gemm;
mod linear;
mod pool;
mod relu;
#[cfg(test)]
mod tests;

pub use batch_norm::batch_norm_train;
pub use conv2d::{conv2d, conv2d_bias, conv2d_relu_pool};
pub use linear::dense;
pub use pool::max_pool2d;

use candle_core::{CpuStorage, Layout, Result, bail};

/// The f32 values of a contiguous CPU tensor.
fn f32_slice<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        bail!("{op}: only f32 tensors are supported");
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{op}: the input must be contiguous"),
    }
}

/// How many pieces to cut a batch into for rayon: at most one per thread,
/// fixed for a given batch and thread count so sums come out the same every
/// run (work-stealing reductions would not).
fn chunk_len(items: usize) -> usize {
    let threads = candle_core::utils::get_num_threads().max(1);
    items.div_ceil(threads).max(1)
}
