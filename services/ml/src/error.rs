//! The engine's one error table. Every variant says what is wrong and what
//! to do about it, in words a user of the CLI or the API can act on; the
//! worker maps them onto job failures as they are.

use std::path::PathBuf;

use tenfold_domain::FailureCode;

#[derive(Debug, thiserror::Error)]
pub enum MlError {
    /// A hyperparameter or option out of range; `name` is the flag/field.
    #[error("{name}: {message}")]
    InvalidArgument { name: &'static str, message: String },

    #[error("unknown architecture '{given}' for the {family} family; choose one of: {known}")]
    UnknownArchitecture { family: &'static str, given: String, known: String },

    /// The training data cannot be used; the first problems are listed.
    #[error("{path} is not a usable {family} dataset: {summary}")]
    InvalidDataset { path: PathBuf, family: &'static str, summary: String },

    /// A model directory that cannot be loaded (missing, corrupt or
    /// inconsistent files).
    #[error("{path} is not a usable model: {reason}")]
    InvalidModel { path: PathBuf, reason: String },

    /// A model that loads fine but does not fit the request (other family,
    /// other classes, other input shape).
    #[error("{0}")]
    Incompatible(String),

    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("the device '{0}' is not available: {1}")]
    Device(String, String),

    /// Something this build does not do yet (a family, or serving it).
    #[error("{0} is not supported yet")]
    Unsupported(String),

    #[error("training was cancelled")]
    Cancelled,

    /// A tensor operation failed: a bug or resource exhaustion, not bad input.
    #[error("tensor computation failed: {0}")]
    Tensor(#[from] candle_core::Error),
}

impl MlError {
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }

    pub fn arg(name: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidArgument { name, message: message.into() }
    }

    /// Its code in the one table of job failures.
    pub fn code(&self) -> FailureCode {
        match self {
            Self::InvalidArgument { .. } => FailureCode::InvalidArgument,
            Self::UnknownArchitecture { .. } => FailureCode::UnknownArchitecture,
            Self::InvalidDataset { .. } => FailureCode::InvalidDataset,
            Self::InvalidModel { .. } => FailureCode::InvalidModel,
            Self::Incompatible(_) => FailureCode::IncompatibleModel,
            Self::Io { .. } => FailureCode::Io,
            Self::Device(..) => FailureCode::DeviceUnavailable,
            Self::Unsupported(_) => FailureCode::Unsupported,
            Self::Cancelled => FailureCode::Cancelled,
            Self::Tensor(_) => FailureCode::Internal,
        }
    }

    /// Whether the same request can never succeed (bad input), as opposed
    /// to a failure worth retrying: the job queue fails these once.
    pub fn is_permanent(&self) -> bool {
        self.code().is_permanent()
    }
}

pub type Result<T, E = MlError> = std::result::Result<T, E>;
