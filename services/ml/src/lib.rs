//! Tenfold's ML engine: everything a training, fine-tuning, distillation or
//! evaluation job does, as plain synchronous Rust on candle. No database,
//! HTTP or async runtime here: the worker, the CLI and tests drive it alike.
//!
//! - [`train::fit`] is the generic loop (any [`Model`], any [`train::Task`]).
//! - [`optim`] holds AdamW and SGD with momentum, fused on the CPU.
//! - [`kernels`] are the CPU custom ops (im2col+GEMM conv2d, pooling,
//!   conv+bias+ReLU+pool, dense, batch norm) that make CPU training practical.
//! - [`family`] is the one extension point: a family implements
//!   [`family::ModelFamily`] in its own folder and is registered once in
//!   [`family::Registry::standard`]. [`image`] is the first, [`chat`] the second.

pub mod artifact;
pub mod charts;
pub mod chat;
pub mod device;
pub mod distill;
mod error;
pub mod family;
pub mod image;
pub mod kernels;
pub mod metrics;
mod model;
pub mod nn;
pub mod optim;
pub mod params;
pub mod recsys;
pub mod schedule;
pub mod split;
pub mod train;

/// The device type of the family trait, so a family outside this crate
/// needs no direct dependency on candle.
pub use candle_core::Device;
pub use error::{MlError, Result};
pub use model::Model;

/// Starts the engine's compute threads now. A process that limits its own
/// address space afterwards (a worker's attempt process) then has its
/// threads and their stacks already, and the limit bites only the job's
/// own allocations.
pub fn start_threads() -> usize {
    // Both pools spawn lazily: rayon's (our kernels) and candle's own.
    candle_core::utils::barrier_pool().n_workers() + rayon::current_num_threads()
}
