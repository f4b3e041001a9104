use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{DomainError, Role};

/// What an API key may do. A key can only do what both its scopes and the
/// role needed for the operation allow; the interactive-only operations
/// (members, API keys, billing) have no scope and are never open to keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    OrgRead,
    AuditRead,
    DatasetsRead,
    DatasetsWrite,
    JobsRead,
    JobsWrite,
    ModelsRead,
    ModelsWrite,
    EndpointsRead,
    EndpointsWrite,
    EndpointsInvoke,
    UsageRead,
}

impl Scope {
    pub const ALL: [Scope; 12] = [
        Scope::OrgRead,
        Scope::AuditRead,
        Scope::DatasetsRead,
        Scope::DatasetsWrite,
        Scope::JobsRead,
        Scope::JobsWrite,
        Scope::ModelsRead,
        Scope::ModelsWrite,
        Scope::EndpointsRead,
        Scope::EndpointsWrite,
        Scope::EndpointsInvoke,
        Scope::UsageRead,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Scope::OrgRead => "org:read",
            Scope::AuditRead => "audit:read",
            Scope::DatasetsRead => "datasets:read",
            Scope::DatasetsWrite => "datasets:write",
            Scope::JobsRead => "jobs:read",
            Scope::JobsWrite => "jobs:write",
            Scope::ModelsRead => "models:read",
            Scope::ModelsWrite => "models:write",
            Scope::EndpointsRead => "endpoints:read",
            Scope::EndpointsWrite => "endpoints:write",
            Scope::EndpointsInvoke => "endpoints:invoke",
            Scope::UsageRead => "usage:read",
        }
    }

    /// The least role a person needs to grant this scope to a key: nobody can
    /// create a key that does more than they can.
    pub fn role_to_grant(&self) -> Role {
        match self {
            Scope::AuditRead => Role::Admin,
            Scope::DatasetsWrite | Scope::JobsWrite | Scope::ModelsWrite | Scope::EndpointsWrite => Role::Member,
            _ => Role::Viewer,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL.into_iter().find(|sc| sc.as_str() == s).ok_or_else(|| {
            let known: Vec<&str> = Scope::ALL.iter().map(Scope::as_str).collect();
            DomainError::invalid("scopes", format!("unknown scope {s:?}; known scopes: {}", known.join(", ")))
        })
    }
}

/// A non-empty, duplicate-free set of scopes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ScopeSet(BTreeSet<Scope>);

impl ScopeSet {
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, DomainError> {
        if raw.is_empty() {
            return Err(DomainError::invalid("scopes", "give at least one scope, e.g. [\"org:read\"]"));
        }
        raw.iter().map(|s| s.as_ref().parse()).collect::<Result<BTreeSet<_>, _>>().map(Self)
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }

    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(|s| s.as_str().to_owned()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_scopes_and_names_the_unknown_one() {
        let set = ScopeSet::parse(&["org:read", "jobs:write", "org:read"]).unwrap();
        assert_eq!(set.to_strings(), vec!["org:read", "jobs:write"]);
        let err = ScopeSet::parse(&["admin:*"]).unwrap_err().to_string();
        assert!(err.contains("admin:*") && err.contains("org:read"), "{err}");
        assert!(ScopeSet::parse::<&str>(&[]).is_err());
    }
}
