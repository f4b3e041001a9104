//! The customer-service chat family: a pretrained BERT encoder fine-tuned to
//! route messages to intents, the approved replies of the predicted intent
//! ranked by similarity, and a hand-over below a confidence threshold.
//!
//! - [`base`]: Hugging Face BERT folders (the pretrained bases), checked.
//! - [`text`]: the model's tokenizer, batches, tokenizer coverage.
//! - [`encoder`]: our differentiable training copy of the encoder.
//! - [`data`]: chat datasets as examples, split by distinct message.
//! - [`train`], [`evaluate`], [`model`] (answering on the stock model).

pub mod base;
pub mod data;
pub mod encoder;
pub mod evaluate;
mod family;
pub mod model;
pub mod report;
pub mod text;
pub mod train;

pub use family::{ChatFamily, HANDOFF_MESSAGE};
