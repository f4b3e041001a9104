use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// The display name of an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgName(String);

impl OrgName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let value = raw.trim();
        if value.is_empty() {
            return Err(DomainError::invalid("organizationName", "the organization name is empty; give a name such as \"Acme Labs\""));
        }
        if value.chars().count() > Self::MAX_CHARS {
            return Err(DomainError::invalid(
                "organizationName",
                format!("the organization name must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(DomainError::invalid("organizationName", "the organization name must not contain control characters"));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrgName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A URL-safe handle: lower-case ASCII letters, digits and single hyphens.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Slug(String);

impl Slug {
    pub const MAX_LEN: usize = 48;

    /// Derives a slug from a display name; falls back to "org" when nothing usable is left.
    pub fn from_name(name: &OrgName) -> Self {
        let mut out = String::new();
        for c in name.as_str().chars().flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() {
                out.push(c);
            } else if !out.ends_with('-') && !out.is_empty() {
                out.push('-');
            }
            if out.len() >= Self::MAX_LEN - 8 {
                break;
            }
        }
        let trimmed = out.trim_matches('-');
        if trimmed.len() < 2 { Self("org".into()) } else { Self(trimmed.to_owned()) }
    }

    /// The same slug with a suffix, used when the plain one is taken.
    pub fn with_suffix(&self, suffix: &str) -> Self {
        Self(format!("{}-{suffix}", self.0))
    }

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let ok = !raw.is_empty()
            && raw.len() <= Self::MAX_LEN
            && raw.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !raw.starts_with('-')
            && !raw.ends_with('-')
            && !raw.contains("--");
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(DomainError::invalid("slug", "a slug has 1–48 lower-case letters, digits and single hyphens, e.g. \"acme-labs\""))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_from_name() {
        let n = OrgName::parse("  Acme Labs, Inc. ").unwrap();
        assert_eq!(Slug::from_name(&n).as_str(), "acme-labs-inc");
        let n = OrgName::parse("日本").unwrap();
        assert_eq!(Slug::from_name(&n).as_str(), "org");
        assert!(Slug::parse("Acme").is_err());
        assert!(Slug::parse("acme--x").is_err());
    }

    #[test]
    fn org_name_limits() {
        assert!(OrgName::parse("   ").is_err());
        assert!(OrgName::parse(&"a".repeat(101)).is_err());
        assert!(OrgName::parse("a\u{7}b").is_err());
    }
}
