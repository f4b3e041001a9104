/// Why a value given by a user could not be parsed. Each message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
}

impl DomainError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid { field, message: message.into() }
    }

    /// What is wrong and what to give instead, without the field.
    pub fn message(&self) -> &str {
        match self {
            Self::Invalid { message, .. } => message,
        }
    }

    /// The input field the error is about, for `extensions.field`.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Invalid { field, .. } => field,
        }
    }
}
