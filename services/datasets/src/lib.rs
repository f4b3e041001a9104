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
pub mod redact;
pub mod splits;
mod text;

pub use chat::{ChatStats, validate_chat_jsonl, validate_intents_csv, validate_intents_jsonl};
pub use image_zip::{ImageStats, image_entry, validate_image_zip};
pub use limits::Limits;
pub use problems::{Problem, ProblemCode, Problems};
pub use recsys::{RecommendationStats, validate_interactions};

/// The outcome of validating one upload: statistics of what was read, the
/// errors that make it unusable, and warnings that do not.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report<S> {
    pub stats: S,
    pub errors: Problems,
    pub warnings: Problems,
    /// A look at the data: thumbnails per class, first rows or conversations.
    pub preview: serde_json::Value,
    /// The seeded train/val/test split stored with the version.
    pub splits: Option<splits::SplitPlan>,
}

impl<S> Report<S> {
    pub fn is_valid(&self) -> bool {
        self.errors.total() == 0
    }
}

/// The three model families; the one enum lives in `tenfold_domain`.
pub use tenfold_domain::Family;

/// The outcome of validating any file, with family-specific stats as JSON.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub stats: serde_json::Value,
    pub errors: Problems,
    pub warnings: Problems,
    pub preview: serde_json::Value,
    pub splits: serde_json::Value,
}

impl Outcome {
    pub fn is_valid(&self) -> bool {
        self.errors.total() == 0
    }

    /// An outcome that refuses the file for `errors`, with no content kept.
    pub fn refused(errors: Problems) -> Self {
        Outcome {
            stats: serde_json::Value::Null,
            errors,
            warnings: Problems::default(),
            preview: serde_json::Value::Null,
            splits: serde_json::Value::Null,
        }
    }

    fn from<S: serde::Serialize>(report: Report<S>) -> Self {
        Outcome {
            stats: serde_json::to_value(&report.stats).unwrap_or(serde_json::Value::Null),
            splits: serde_json::to_value(&report.splits).unwrap_or(serde_json::Value::Null),
            errors: report.errors,
            warnings: report.warnings,
            preview: report.preview,
        }
    }
}

/// Whether the first line (within the buffer) mentions `needle`.
fn first_line_has(reader: &mut impl std::io::BufRead, needle: &str) -> bool {
    let Ok(buf) = reader.fill_buf() else { return false };
    let line = buf.split(|&b| b == b'\n').next().unwrap_or(&[]);
    String::from_utf8_lossy(line).contains(needle)
}

/// Validates an uploaded file of `family`, choosing the format by name.
pub fn validate_file(family: Family, file_name: &str, file: std::fs::File, limits: &Limits) -> Outcome {
    let lower = file_name.to_ascii_lowercase();
    let reader = std::io::BufReader::with_capacity(256 * 1024, file);
    match family {
        Family::ImageClassification if lower.ends_with(".zip") => Outcome::from(validate_image_zip(reader, limits)),
        Family::Chat if lower.ends_with(".jsonl") => {
            // Chat conversations have "messages"; intent tables "text" and "intent".
            let mut reader = reader;
            if first_line_has(&mut reader, "\"messages\"") || !first_line_has(&mut reader, "\"intent\"") {
                Outcome::from(validate_chat_jsonl(reader, limits))
            } else {
                Outcome::from(validate_intents_jsonl(reader, limits))
            }
        }
        Family::Chat if lower.ends_with(".csv") => Outcome::from(validate_intents_csv(reader, limits)),
        Family::Recommendation if lower.ends_with(".csv") || lower.ends_with(".tsv") || lower.ends_with(".inter") => {
            Outcome::from(validate_interactions(reader, file_name, limits))
        }
        _ => {
            let mut errors = Problems::default();
            errors.push(
                format!("file {file_name:?}"),
                ProblemCode::UnsupportedFileType,
                format!("a {} dataset takes {}", family.as_str(), family.accepted_files()),
                "upload the file in one of the accepted formats",
            );
            Outcome::refused(errors)
        }
    }
}
