//! The one error table of Tenfold. Each code has its GraphQL
//! `extensions.code` and HTTP status; every API maps errors through it.

use std::fmt;

use tenfold_domain::DomainError;
use tenfold_store::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Unauthenticated,
    Forbidden,
    NotFound,
    BadUserInput,
    /// The request is well-formed but clashes with the state it meets;
    /// `ConflictReason` says which clash (`extensions.reason`).
    Conflict,
    RateLimited,
    QuotaExceeded,
    /// The service cannot answer now (a paused endpoint, a model that
    /// failed to load, metering that cannot be written); try again later.
    Unavailable,
    Internal,
}

/// The kinds of CONFLICT, each with its own `extensions.reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictReason {
    /// An idempotency key already used for a request with other parameters.
    IdempotencyKeyReused,
    /// A resumable-upload chunk sent for another offset than the upload's.
    UploadOffsetMismatch,
    /// A resumable-upload PATCH whose body is not what its `Upload-Checksum` says (tus: 460).
    ChecksumMismatch,
    /// Something still uses the object (an alias, a queued job, an endpoint).
    InUse,
}

impl ConflictReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictReason::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            ConflictReason::UploadOffsetMismatch => "UPLOAD_OFFSET_MISMATCH",
            ConflictReason::ChecksumMismatch => "CHECKSUM_MISMATCH",
            ConflictReason::InUse => "IN_USE",
        }
    }
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 9] = [
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::BadUserInput,
        ErrorCode::Conflict,
        ErrorCode::RateLimited,
        ErrorCode::QuotaExceeded,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    /// The value of `extensions.code` in GraphQL errors.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::QuotaExceeded => "QUOTA_EXCEEDED",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Internal => "INTERNAL",
        }
    }

    /// The HTTP status for the REST and inference APIs.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::Unauthenticated => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::BadUserInput => 400,
            ErrorCode::Conflict => 409,
            ErrorCode::RateLimited => 429,
            ErrorCode::QuotaExceeded => 402,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }
}

/// An error a client can see. `Internal` errors keep their cause for the
/// log and show the client only an opaque message.
#[derive(Debug)]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
    /// The input field at fault, for BAD_USER_INPUT.
    pub field: Option<&'static str>,
    /// Seconds to wait, for RATE_LIMITED.
    pub retry_after_secs: Option<u64>,
    /// Which clash, for CONFLICT.
    pub reason: Option<ConflictReason>,
    pub cause: Option<anyhow::Error>,
}

impl AppError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), field: None, retry_after_secs: None, reason: None, cause: None }
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    /// The same answer whether the object does not exist or belongs to
    /// another organization: no existence oracle.
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("no {what} with this id exists in your organization"))
    }

    pub fn bad_input(field: &'static str, message: impl Into<String>) -> Self {
        Self { field: Some(field), ..Self::new(ErrorCode::BadUserInput, message) }
    }

    /// CONFLICT with its reason and the input field it is about.
    pub fn conflict(reason: ConflictReason, field: &'static str, message: impl Into<String>) -> Self {
        Self { reason: Some(reason), field: Some(field), ..Self::new(ErrorCode::Conflict, message) }
    }

    pub fn rate_limited(message: impl Into<String>, retry_after_secs: u64) -> Self {
        Self { retry_after_secs: Some(retry_after_secs), ..Self::new(ErrorCode::RateLimited, message) }
    }

    pub fn quota(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::QuotaExceeded, message)
    }

    pub fn unavailable(message: impl Into<String>, retry_after_secs: u64) -> Self {
        Self { retry_after_secs: Some(retry_after_secs), ..Self::new(ErrorCode::Unavailable, message) }
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self { cause: Some(cause.into()), ..Self::new(ErrorCode::Internal, "internal error; it has been logged") }
    }

    /// The message to show the client: never the cause of an internal error.
    pub fn public_message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)?;
        if let Some(cause) = &self.cause {
            write!(f, " (cause: {cause:#})")?;
        }
        Ok(())
    }
}

impl std::error::Error for AppError {}

impl From<DomainError> for AppError {
    fn from(err: DomainError) -> Self {
        let field = err.field();
        Self::bad_input(field, err.to_string())
    }
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        Self::internal(err)
    }
}

impl From<tenfold_broker::BrokerError> for AppError {
    fn from(err: tenfold_broker::BrokerError) -> Self {
        Self::internal(err)
    }
}

pub type AppResult<T> = Result<T, AppError>;

/// A value read from the database that must parse: a failure is internal
/// (a bad migration or a newer writer), with the column named, never a
/// silent default.
pub(crate) fn stored<T>(parsed: Result<T, DomainError>, what: &str) -> AppResult<T> {
    parsed.map_err(|e| AppError::internal(anyhow::anyhow!("stored {what} is invalid: {e}")))
}
