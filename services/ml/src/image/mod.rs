//! The image-classification family: data, architectures, training (from
//! scratch, fine-tuning, distillation), evaluation and prediction.

pub mod arch;
pub mod data;
mod evaluate;
mod family;
mod loaded;
mod report;
mod task;
mod train;

pub use evaluate::{Evaluation, Latency, Prediction, evaluate, predict};
pub use family::ImageFamily;
pub use loaded::LoadedModel;
pub use report::{METRICS as REPORT_METRICS, model_report};
pub use train::{BaseModelScore, Baselines, Comparison, Distillation, Report, Teacher, TrainRequest, train};
