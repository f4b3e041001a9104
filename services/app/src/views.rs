//! What use cases return: plain data, independent of GraphQL and sea-orm.

use chrono::{DateTime, Utc};
use tenfold_domain::{ApiKeyId, AuditEventId, InvitationId, OrgId, Plan, Quotas, Role, UserId};

#[derive(Debug, Clone)]
pub struct UserView {
    pub id: UserId,
    pub email: String,
    pub email_verified: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct OrgView {
    pub id: OrgId,
    pub name: String,
    pub slug: String,
    pub plan: Plan,
    pub created_at: DateTime<Utc>,
}

impl OrgView {
    pub fn quotas(&self) -> Quotas {
        self.plan.quotas()
    }
}

#[derive(Debug, Clone)]
pub struct MembershipView {
    pub role: Role,
    pub organization: OrgView,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct MemberView {
    pub org: OrgId,
    pub user: UserView,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct MeView {
    pub user: UserView,
    pub memberships: Vec<MembershipView>,
    /// The organization of the current credential.
    pub current_org: OrgId,
}

#[derive(Debug, Clone)]
pub struct AuthPayload {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in_seconds: i64,
    pub user: UserView,
    pub organization: OrgView,
    pub role: Role,
}

#[derive(Debug, Clone)]
pub struct InvitationView {
    pub id: InvitationId,
    pub org: OrgId,
    pub email: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct ApiKeyView {
    pub id: ApiKeyId,
    pub org: OrgId,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct AuditEventView {
    pub id: AuditEventId,
    pub org: OrgId,
    pub action: String,
    pub actor_user: Option<UserId>,
    pub actor_api_key: Option<ApiKeyId>,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub details: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// The opaque global id clients use for an object (`node(id:)`): the type
/// name and UUID, base64url. The GraphQL layer and webhook payloads share it.
pub fn global_id(type_name: &str, id: uuid::Uuid) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{type_name}:{id}"))
}
