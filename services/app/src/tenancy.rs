//! Mapping rows to views, and the audit log.

use std::str::FromStr;

use chrono::Utc;
use tenfold_domain::{ApiKeyId, AuditEventId, InvitationId, OrgId, Plan, Role, UserId};
use tenfold_store::Tx;
use tenfold_store::entities::{api_keys, audit_events, invitations, organizations, users};
use tenfold_store::queries::audit::{self, NewAuditEvent};

use crate::App;
use crate::AuditAction;
use crate::error::{AppError, AppResult, stored};
use crate::principal::{Actor, Principal, RequestMeta};
use crate::views::*;

pub(crate) fn parse_role(raw: &str) -> AppResult<Role> {
    stored(Role::from_str(raw), "role")
}

pub(crate) fn user_view(u: &users::Model) -> UserView {
    UserView { id: UserId(u.id), email: u.email.clone(), email_verified: u.email_verified_at.is_some(), created_at: u.created_at }
}

pub(crate) fn org_view(o: &organizations::Model) -> AppResult<OrgView> {
    let plan = stored(Plan::from_str(&o.plan), "plan")?;
    Ok(OrgView { id: OrgId(o.id), name: o.name.clone(), slug: o.slug.clone(), plan, created_at: o.created_at })
}

pub(crate) fn invitation_view(i: &invitations::Model) -> AppResult<InvitationView> {
    Ok(InvitationView {
        id: InvitationId(i.id),
        org: OrgId(i.org_id),
        email: i.email.clone(),
        role: parse_role(&i.role)?,
        created_at: i.created_at,
        expires_at: i.expires_at,
    })
}

pub(crate) fn api_key_view(k: &api_keys::Model) -> AppResult<ApiKeyView> {
    let scopes: Vec<String> = serde_json::from_str(&k.scopes).map_err(AppError::internal)?;
    Ok(ApiKeyView {
        id: ApiKeyId(k.id),
        org: OrgId(k.org_id),
        name: k.name.clone(),
        prefix: k.prefix.clone(),
        scopes,
        created_at: k.created_at,
        last_used_at: k.last_used_at,
        revoked_at: k.revoked_at,
    })
}

pub(crate) fn audit_view(e: &audit_events::Model) -> AuditEventView {
    AuditEventView {
        id: AuditEventId(e.id),
        org: OrgId(e.org_id),
        action: e.action.clone(),
        actor_user: e.actor_user_id.map(UserId),
        actor_api_key: e.actor_api_key_id.map(ApiKeyId),
        target: e.target.clone(),
        ip: e.ip.clone(),
        details: serde_json::from_str(&e.details).unwrap_or(serde_json::Value::Null),
        created_at: e.created_at,
    }
}

/// The event-bus topic of an organization's audit log.
pub fn audit_topic(org: OrgId) -> String {
    format!("org:{org}:audit")
}

impl App {
    /// Records a security-relevant action in the organization's audit log, in
    /// the caller's transaction: the action and its record commit together.
    /// Live subscribers hear of it only after the commit.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn record(
        &self,
        tx: &Tx,
        org: OrgId,
        actor: Option<&Principal>,
        meta: &RequestMeta,
        action: AuditAction,
        target: Option<String>,
        details: serde_json::Value,
    ) -> AppResult<()> {
        let (actor_user, actor_api_key) = match actor.map(|p| &p.actor) {
            Some(Actor::User { id, .. }) => (Some(*id), None),
            Some(Actor::ApiKey { id, .. }) => (None, Some(*id)),
            None => (None, None),
        };
        self.insert_audit(
            tx,
            org,
            NewAuditEvent { actor_user, actor_api_key, action: action.as_str(), target, ip: meta.ip.clone(), details },
        )
        .await
    }

    /// Same as [`App::record`] for a user acting before a `Principal` exists
    /// (sign-up, sign-in).
    pub(crate) async fn record_for_user(
        &self,
        tx: &Tx,
        org: OrgId,
        user: UserId,
        meta: &RequestMeta,
        action: AuditAction,
        details: serde_json::Value,
    ) -> AppResult<()> {
        let event = NewAuditEvent {
            actor_user: Some(user),
            actor_api_key: None,
            action: action.as_str(),
            target: Some(format!("user:{user}")),
            ip: meta.ip.clone(),
            details,
        };
        self.insert_audit(tx, org, event).await
    }

    /// Writes the row, and announces it to live subscribers after the commit.
    async fn insert_audit(&self, tx: &Tx, org: OrgId, event: NewAuditEvent) -> AppResult<()> {
        let row = audit::insert(tx, org, event, Utc::now()).await?;
        self.publish_after_commit(tx, audit_topic(org), row.id.to_string());
        Ok(())
    }

    /// Publishes on the event bus once `tx` commits; a failed publish is
    /// logged (subscribers are a convenience, the row is the record).
    pub(crate) fn publish_after_commit(&self, tx: &Tx, topic: String, payload: String) {
        let bus = self.inner.bus.clone();
        tx.after_commit(move || {
            tokio::spawn(async move {
                if let Err(err) = bus.publish(&topic, payload).await {
                    tracing::warn!(error = %err, topic = %topic, "publishing an event failed");
                }
            });
        });
    }
}
