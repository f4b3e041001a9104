//! Who is calling, for which organization, and what they may do.

use tenfold_domain::{ApiKeyId, OrgId, Role, Scope, ScopeSet, UserId};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// Facts about the request that are not credentials.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub request_id: String,
}

#[derive(Debug, Clone)]
pub enum Actor {
    /// A person signed in with an access token; `role` is re-read from the
    /// database on every request, so a demotion takes effect at once.
    User { id: UserId, role: Role, session: Uuid },
    /// An integration with an API key and its scopes.
    ApiKey { id: ApiKeyId, scopes: ScopeSet },
}

/// The authenticated caller. The organization comes from the credential
/// only: no request field can change it.
#[derive(Debug, Clone)]
pub struct Principal {
    pub org: OrgId,
    pub actor: Actor,
    pub meta: RequestMeta,
}

/// What an operation needs: a role for people, a scope for API keys
/// (`None`: people only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    pub min_role: Role,
    pub scope: Option<Scope>,
}

/// The permissions of every operation, in one place.
pub mod perms {
    use super::Permission;
    use tenfold_domain::{Role, Scope};

    pub const ORG_READ: Permission = Permission { min_role: Role::Viewer, scope: Some(Scope::OrgRead) };
    pub const MEMBERS_READ: Permission = Permission { min_role: Role::Viewer, scope: Some(Scope::OrgRead) };
    pub const MEMBERS_MANAGE: Permission = Permission { min_role: Role::Admin, scope: None };
    pub const API_KEYS_READ: Permission = Permission { min_role: Role::Admin, scope: None };
    pub const API_KEYS_MANAGE: Permission = Permission { min_role: Role::Admin, scope: None };
    pub const AUDIT_READ: Permission = Permission { min_role: Role::Admin, scope: Some(Scope::AuditRead) };
    pub const DATASETS_READ: Permission = Permission { min_role: Role::Viewer, scope: Some(Scope::DatasetsRead) };
    pub const DATASETS_WRITE: Permission = Permission { min_role: Role::Member, scope: Some(Scope::DatasetsWrite) };
    pub const JOBS_READ: Permission = Permission { min_role: Role::Viewer, scope: Some(Scope::JobsRead) };
    pub const JOBS_WRITE: Permission = Permission { min_role: Role::Member, scope: Some(Scope::JobsWrite) };
    pub const MODELS_READ: Permission = Permission { min_role: Role::Viewer, scope: Some(Scope::ModelsRead) };
    /// Aliases (through the ship gate), imports, deleting versions.
    pub const MODELS_WRITE: Permission = Permission { min_role: Role::Member, scope: Some(Scope::ModelsWrite) };
    /// A model's promotion rules are governance: people only.
    pub const ENDPOINTS_READ: Permission = Permission { min_role: Role::Viewer, scope: Some(Scope::EndpointsRead) };
    /// Deploying, pausing, canaries, and the keys our tenants give their customers
    /// (resellers issue those from their own backends, so keys may).
    pub const ENDPOINTS_WRITE: Permission = Permission { min_role: Role::Member, scope: Some(Scope::EndpointsWrite) };
    /// Calling an endpoint with an API key or a signed-in session.
    pub const ENDPOINTS_INVOKE: Permission = Permission { min_role: Role::Viewer, scope: Some(Scope::EndpointsInvoke) };
    pub const USAGE_READ: Permission = Permission { min_role: Role::Viewer, scope: Some(Scope::UsageRead) };
    pub const MODELS_GOVERN: Permission = Permission { min_role: Role::Admin, scope: None };
    /// Webhook endpoints hold a signing secret and receive data: people only.
    pub const WEBHOOKS_MANAGE: Permission = Permission { min_role: Role::Admin, scope: None };
    /// Operations on one's own session (`me`, `logOut`, `switchOrganization`).
    pub const SESSION: Permission = Permission { min_role: Role::Viewer, scope: None };
}

impl Principal {
    pub fn require(&self, permission: Permission) -> AppResult<()> {
        match &self.actor {
            Actor::User { role, .. } if role.at_least(permission.min_role) => Ok(()),
            Actor::User { role, .. } => Err(AppError::forbidden(format!(
                "your role {role} cannot do this; it needs {} or higher — ask an owner or admin of the organization",
                permission.min_role
            ))),
            Actor::ApiKey { scopes, .. } => match permission.scope {
                Some(scope) if scopes.contains(scope) => Ok(()),
                Some(scope) => Err(AppError::forbidden(format!("this API key lacks the scope \"{scope}\"; create a key that has it"))),
                None => Err(AppError::forbidden("API keys cannot do this; sign in as a person with an access token")),
            },
        }
    }

    pub fn user_id(&self) -> Option<UserId> {
        match self.actor {
            Actor::User { id, .. } => Some(id),
            Actor::ApiKey { .. } => None,
        }
    }

    pub fn api_key_id(&self) -> Option<ApiKeyId> {
        match self.actor {
            Actor::ApiKey { id, .. } => Some(id),
            Actor::User { .. } => None,
        }
    }

    /// The role of a person; API keys have none.
    pub fn role(&self) -> Option<Role> {
        match self.actor {
            Actor::User { role, .. } => Some(role),
            Actor::ApiKey { .. } => None,
        }
    }

    /// The signed-in person, or FORBIDDEN for an API key.
    pub fn person(&self) -> AppResult<(UserId, Role, Uuid)> {
        match self.actor {
            Actor::User { id, role, session } => Ok((id, role, session)),
            Actor::ApiKey { .. } => Err(AppError::forbidden("API keys cannot do this; sign in as a person with an access token")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role) -> Principal {
        Principal {
            org: OrgId::new(),
            actor: Actor::User { id: UserId::new(), role, session: Uuid::new_v4() },
            meta: RequestMeta::default(),
        }
    }

    #[test]
    fn roles_and_scopes() {
        assert!(user(Role::Admin).require(perms::MEMBERS_MANAGE).is_ok());
        let err = user(Role::Member).require(perms::MEMBERS_MANAGE).unwrap_err();
        assert!(err.message.contains("MEMBER") && err.message.contains("ADMIN"), "{}", err.message);
        let key = Principal {
            org: OrgId::new(),
            actor: Actor::ApiKey { id: ApiKeyId::new(), scopes: ScopeSet::parse(&["org:read"]).unwrap() },
            meta: RequestMeta::default(),
        };
        assert!(key.require(perms::ORG_READ).is_ok());
        assert!(key.require(perms::AUDIT_READ).is_err());
        assert!(key.require(perms::API_KEYS_MANAGE).is_err());
    }
}
