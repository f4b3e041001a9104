//! Checks training data completely before any job may use it, so that a
//! mistake is found in seconds at upload rather than an hour into a GPU job.
//!
//! Each family has a streaming validator over a reader: it never holds the
//! whole upload in memory, caps every size it reads (bytes actually
//! decompressed, line length, JSON depth, image dimensions from the header),
//! and reports every problem with its place and what to do about it.

mod chat;
mod image_zip;
mod limits;
mod problems;
mod recsys;
mod text;

pub use chat::{ChatStats, validate_chat_jsonl, validate_intents_csv};
pub use image_zip::{ImageStats, validate_image_zip};
pub use limits::Limits;
pub use problems::{Problem, Problems};
pub use recsys::{RecommendationStats, validate_interactions};

/// The outcome of validating one upload: statistics of what was read, the
/// errors that make it unusable, and warnings that do not.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report<S> {
    pub stats: S,
    pub errors: Problems,
    pub warnings: Problems,
}

impl<S> Report<S> {
    pub fn is_valid(&self) -> bool {
        self.errors.total() == 0
    }
}
