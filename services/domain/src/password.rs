use std::fmt;

use crate::DomainError;

/// A new password as chosen by a user. Never printed: `Debug` is redacted.
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 12;
    /// Caps the work argon2 does for one request and the bytes we accept.
    pub const MAX_BYTES: usize = 1024;

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let chars = raw.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(DomainError::invalid(
                "password",
                format!("the password must be at least {} characters long (it has {chars})", Self::MIN_CHARS),
            ));
        }
        if raw.len() > Self::MAX_BYTES {
            return Err(DomainError::invalid("password", format!("the password must be at most {} bytes long", Self::MAX_BYTES)));
        }
        if raw.trim().is_empty() {
            return Err(DomainError::invalid("password", "the password must not be only spaces"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enforces_minimum_length_with_a_count() {
        let err = Password::parse("short").err().unwrap();
        assert!(err.to_string().contains("at least 12"), "{err}");
        assert!(err.to_string().contains("it has 5"), "{err}");
        assert!(Password::parse("correct horse battery").is_ok());
        assert!(Password::parse(&"x".repeat(2000)).is_err());
        assert!(Password::parse("            ").is_err());
    }

    #[test]
    fn debug_is_redacted() {
        let p = Password::parse("correct horse battery").unwrap();
        assert!(!format!("{p:?}").contains("horse"));
    }
}
