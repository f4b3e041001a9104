use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// An email address, trimmed and lower-cased so that one mailbox has one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let value = raw.trim().to_lowercase();
        let bad = |why: &str| DomainError::invalid("email", format!("{why}; give an address like name@example.com"));
        if value.is_empty() {
            return Err(bad("the email address is empty"));
        }
        if value.len() > Self::MAX_LEN {
            return Err(bad("the email address is longer than 254 characters"));
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("the email address contains spaces or control characters"));
        }
        let Some((local, domain)) = value.split_once('@') else {
            return Err(bad("the email address has no '@'"));
        };
        if local.is_empty() || domain.is_empty() || domain.contains('@') {
            return Err(bad("the email address must have exactly one '@' with text on both sides"));
        }
        if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
            return Err(bad("the domain of the email address is not valid"));
        }
        if value.contains(['<', '>', ',', ';', '"', '\\', '(', ')', '[', ']']) {
            return Err(bad("the email address contains characters that are not allowed"));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> Self {
        e.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_space() {
        assert_eq!(Email::parse("  Ada@Example.COM ").unwrap().as_str(), "ada@example.com");
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in ["", "ada", "@example.com", "ada@", "ada@example", "a b@example.com", "a@b@example.com", "ada@.com", "<a>@x.com"] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }
}
