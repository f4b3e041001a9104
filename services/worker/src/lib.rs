//! The job worker: claims jobs from the broker, runs them on the ML engine,
//! and reports progress and results through fenced writes.
//!
//! Inside one process: a relay (hands due jobs to the broker fairly, woken
//! by submissions and freed slots), a consumer (reads entries while a slot
//! is free), a rescuer (reclaims entries of dead workers, reconciles what
//! the broker lost) and one task per running job with its heartbeat.

pub mod attempt;
mod execute;
mod runner;
mod validate;
mod webhooks;
mod workspace;

pub use execute::{Attempts, Ending, ExecOptions, Executor, MlExecutor, Stop, StopReason, written};
pub use runner::{Pool, WorkerOptions, run, run_pools, run_validation, run_with};
pub use validate::Validator;
