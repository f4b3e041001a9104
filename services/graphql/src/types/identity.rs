use async_graphql::{ComplexObject, ID, Json, SimpleObject};
use chrono::{DateTime, Utc};
use tenfold_app::views;

use super::{Organization, Role};
use crate::ids::{GlobalId, NodeKind};

#[derive(SimpleObject, Clone)]
pub struct User {
    pub id: ID,
    pub email: String,
    pub email_verified: bool,
    pub created_at: DateTime<Utc>,
}

impl From<views::UserView> for User {
    fn from(u: views::UserView) -> Self {
        Self {
            id: GlobalId::new(NodeKind::User, u.id.0).to_id(),
            email: u.email,
            email_verified: u.email_verified,
            created_at: u.created_at,
        }
    }
}

/// A person's membership in an organization, as seen by that person.
#[derive(SimpleObject, Clone)]
pub struct Membership {
    pub role: Role,
    pub organization: Organization,
    pub joined_at: DateTime<Utc>,
}

/// A member of the caller's organization.
#[derive(SimpleObject, Clone)]
pub struct Member {
    pub user: User,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

impl From<views::MemberView> for Member {
    fn from(m: views::MemberView) -> Self {
        Self { user: m.user.into(), role: m.role.into(), joined_at: m.joined_at }
    }
}

#[derive(SimpleObject)]
pub struct Me {
    pub user: User,
    pub memberships: Vec<Membership>,
    /// The organization the current credential acts for.
    pub organization: Organization,
}

/// Tokens of a new or refreshed sign-in.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// JWT for `Authorization: Bearer`; expires after `expiresIn` seconds.
    pub access_token: String,
    /// Single-use token for `refreshSession`; keep it secret.
    pub refresh_token: String,
    pub expires_in: i64,
    pub user: User,
    pub organization: Organization,
    pub role: Role,
}

impl From<views::AuthPayload> for AuthPayload {
    fn from(p: views::AuthPayload) -> Self {
        Self {
            access_token: p.access_token,
            refresh_token: p.refresh_token,
            expires_in: p.expires_in_seconds,
            user: p.user.into(),
            organization: p.organization.into(),
            role: p.role.into(),
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct Invitation {
    pub id: ID,
    pub email: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl From<views::InvitationView> for Invitation {
    fn from(i: views::InvitationView) -> Self {
        Self {
            id: GlobalId::new(NodeKind::Invitation, i.id.0).to_id(),
            email: i.email,
            role: i.role.into(),
            created_at: i.created_at,
            expires_at: i.expires_at,
        }
    }
}

/// An API key. Its secret is shown only once, by `createApiKey`.
#[derive(SimpleObject, Clone)]
pub struct ApiKey {
    pub id: ID,
    pub name: String,
    /// The public start of the key (`tfk_…`), to recognise it.
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<views::ApiKeyView> for ApiKey {
    fn from(k: views::ApiKeyView) -> Self {
        Self {
            id: GlobalId::new(NodeKind::ApiKey, k.id.0).to_id(),
            name: k.name,
            prefix: k.prefix,
            scopes: k.scopes,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

#[derive(SimpleObject)]
pub struct CreateApiKeyPayload {
    pub api_key: ApiKey,
    /// The whole key. Store it now: it cannot be shown again.
    pub secret: String,
}

/// A security-relevant action in the organization.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct AuditEvent {
    pub id: ID,
    /// e.g. `auth.signed_in`, `api_key.created`, `member.role_changed`.
    pub action: String,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub details: Json<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    #[graphql(skip)]
    pub actor_user: Option<uuid::Uuid>,
    #[graphql(skip)]
    pub actor_api_key: Option<uuid::Uuid>,
}

#[ComplexObject]
impl AuditEvent {
    /// The global id of the user who acted, if a person did.
    async fn actor_user_id(&self) -> Option<ID> {
        self.actor_user.map(|u| GlobalId::new(NodeKind::User, u).to_id())
    }

    /// The global id of the API key that acted, if a key did.
    async fn actor_api_key_id(&self) -> Option<ID> {
        self.actor_api_key.map(|k| GlobalId::new(NodeKind::ApiKey, k).to_id())
    }
}

impl From<views::AuditEventView> for AuditEvent {
    fn from(e: views::AuditEventView) -> Self {
        Self {
            id: GlobalId::new(NodeKind::AuditEvent, e.id.0).to_id(),
            action: e.action,
            target: e.target,
            ip: e.ip,
            details: Json(e.details),
            created_at: e.created_at,
            actor_user: e.actor_user.map(|u| u.0),
            actor_api_key: e.actor_api_key.map(|k| k.0),
        }
    }
}
