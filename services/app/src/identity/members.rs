//! Members, roles and invitations.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use tenfold_domain::{Email, InvitationId, OrgId, Password, Role, UserId};
use tenfold_mail::Template;
use tenfold_store::StoreError;
use tenfold_store::queries::invitations::{self, NewInvitation};
use tenfold_store::queries::{Page, api_keys, memberships, orgs, refresh_tokens, users};
use uuid::Uuid;

use crate::App;
use crate::audit_action::AuditAction;
use crate::error::{AppError, AppResult};
use crate::principal::{Principal, RequestMeta, perms};
use crate::secrets;
use crate::tenancy::{invitation_view, org_view, parse_role, user_view};
use crate::views::{AuthPayload, InvitationView, MemberView};

const INVITATION_PREFIX: &str = "tfi_";

/// Invitation tokens carry their organization (`tfi_<org>_<secret>`), so the
/// row can be found inside that tenant's scope.
fn parse_invitation_token(token: &str) -> Option<OrgId> {
    let rest = token.strip_prefix(INVITATION_PREFIX)?;
    let (org, secret) = rest.split_once('_')?;
    if secret.len() != 43 || !secret.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    Uuid::try_parse(org).ok().map(OrgId)
}

/// Only an owner may hand out or take away the owner role.
fn check_can_assign(actor_role: Role, target_role: Role) -> AppResult<()> {
    if target_role == Role::Owner && actor_role != Role::Owner {
        return Err(AppError::forbidden("only an owner can make someone an owner"));
    }
    Ok(())
}

impl App {
    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn members(&self, p: &Principal, after: Option<UserId>, first: Option<i32>) -> AppResult<Page<MemberView>> {
        p.require(perms::MEMBERS_READ)?;
        let limit = self.page_size(first)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let page = memberships::list(&tx, p.org, after, limit).await?;
        let ids: Vec<Uuid> = page.rows.iter().map(|m| m.user_id).collect();
        let user_rows = users::by_ids(&tx, &ids).await?;
        tx.commit().await?;
        let mut rows = Vec::with_capacity(page.rows.len());
        for m in &page.rows {
            if let Some(u) = user_rows.iter().find(|u| u.id == m.user_id) {
                rows.push(MemberView { org: p.org, user: user_view(u), role: parse_role(&m.role)?, joined_at: m.created_at });
            }
        }
        Ok(Page { rows, has_next: page.has_next })
    }

    /// One member of the caller's organization (for `node`).
    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn member(&self, p: &Principal, user: UserId) -> AppResult<MemberView> {
        p.require(perms::MEMBERS_READ)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let m = memberships::get(&tx, p.org, user).await?.ok_or_else(|| AppError::not_found("user"))?;
        let u = users::by_id(&tx, user).await?.ok_or_else(|| AppError::not_found("user"))?;
        tx.commit().await?;
        Ok(MemberView { org: p.org, user: user_view(&u), role: parse_role(&m.role)?, joined_at: m.created_at })
    }

    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn invite_member(&self, p: &Principal, email: &str, role: Role) -> AppResult<InvitationView> {
        p.require(perms::MEMBERS_MANAGE)?;
        let (inviter, actor_role, _) = p.person()?;
        let email = Email::parse(email)?;
        check_can_assign(actor_role, role)?;
        let now = Utc::now();
        let tx = self.inner.store.tenant(p.org, Some(inviter)).await?;
        let org = orgs::get(&tx, p.org).await?.ok_or_else(|| AppError::not_found("organization"))?;
        let quotas = org_view(&org)?.quotas();
        let taken = memberships::count(&tx, p.org, None).await? + invitations::count_pending(&tx, p.org, now).await?;
        if taken >= u64::from(quotas.max_members) {
            return Err(AppError::quota(format!(
                "your plan allows {} members (pending invitations included); remove a member or upgrade the plan",
                quotas.max_members
            )));
        }
        if let Some(existing) = users::by_email(&tx, &email).await?
            && memberships::get(&tx, p.org, UserId(existing.id)).await?.is_some()
        {
            return Err(AppError::bad_input("email", "this person is already a member of the organization"));
        }
        self.throttle(
            &format!("mail:org:{}", p.org),
            u64::from(self.inner.settings.auth.emails_per_hour),
            Duration::from_secs(3600),
            "invitation emails",
        )
        .await?;
        let token = format!("{INVITATION_PREFIX}{}_{}", p.org.0.simple(), secrets::random_base62(43));
        let ttl = chrono::Duration::seconds(self.inner.settings.auth.invitation_ttl_seconds as i64);
        let new = NewInvitation {
            id: InvitationId::new(),
            email: &email,
            role,
            token_hash: secrets::sha256_hex(&token),
            invited_by: inviter,
            expires_at: now + ttl,
        };
        let row = invitations::insert(&tx, p.org, new, now).await?;
        self.record(
            &tx,
            p.org,
            Some(p),
            &p.meta,
            AuditAction::MemberInvited,
            Some(format!("invitation:{}", row.id)),
            json!({ "email": email.as_str(), "role": role.as_str() }),
        )
        .await?;
        let inviter_email = users::by_id(&tx, inviter).await?.map(|u| u.email).unwrap_or_default();
        tx.commit().await?;
        let link = self.link("accept-invitation", &token);
        let mail = Template::Invitation { org_name: &org.name, inviter: &inviter_email, role: role.as_str(), link: &link, token: &token };
        self.send_mail(mail.render(email.as_str())).await;
        invitation_view(&row)
    }

    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn invitations(&self, p: &Principal, after: Option<InvitationId>, first: Option<i32>) -> AppResult<Page<InvitationView>> {
        p.require(perms::MEMBERS_MANAGE)?;
        let limit = self.page_size(first)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let page = invitations::list_pending(&tx, p.org, Utc::now(), after, limit).await?;
        tx.commit().await?;
        Ok(Page { rows: page.rows.iter().map(invitation_view).collect::<AppResult<_>>()?, has_next: page.has_next })
    }

    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn invitation(&self, p: &Principal, id: InvitationId) -> AppResult<InvitationView> {
        p.require(perms::MEMBERS_MANAGE)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let row = invitations::get(&tx, p.org, id).await?.ok_or_else(|| AppError::not_found("invitation"))?;
        tx.commit().await?;
        invitation_view(&row)
    }

    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn revoke_invitation(&self, p: &Principal, id: InvitationId) -> AppResult<InvitationView> {
        p.require(perms::MEMBERS_MANAGE)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let row = invitations::get(&tx, p.org, id).await?.ok_or_else(|| AppError::not_found("invitation"))?;
        if !invitations::revoke(&tx, p.org, id, Utc::now()).await? {
            return Err(AppError::bad_input("id", "this invitation was already accepted or revoked"));
        }
        self.record(
            &tx,
            p.org,
            Some(p),
            &p.meta,
            AuditAction::InvitationRevoked,
            Some(format!("invitation:{id}")),
            json!({ "email": row.email }),
        )
        .await?;
        tx.commit().await?;
        invitation_view(&row)
    }

    /// Joins the organization of an invitation. A signed-in user must have
    /// the invited address; someone without an account gives a password and
    /// gets one (the emailed token proves the address).
    #[tracing::instrument(skip_all)]
    pub async fn accept_invitation(
        &self,
        meta: &RequestMeta,
        caller: Option<&Principal>,
        token: &str,
        password: Option<&str>,
    ) -> AppResult<AuthPayload> {
        let invalid =
            || AppError::bad_input("token", "this invitation is not valid, was already used, revoked or has expired; ask for a new one");
        let org = parse_invitation_token(token).ok_or_else(invalid)?;
        let now = Utc::now();
        let caller_user = match caller {
            Some(p) => Some(p.person()?.0),
            None => None,
        };
        let tx = self.inner.store.tenant(org, caller_user).await?;
        let inv = invitations::by_token_hash(&tx, org, &secrets::sha256_hex(token)).await?.ok_or_else(invalid)?;
        if inv.accepted_at.is_some() || inv.revoked_at.is_some() || inv.expires_at <= now {
            return Err(invalid());
        }
        let invited = Email::parse(&inv.email)?;
        let user = match caller_user {
            Some(id) => {
                let u = users::by_id(&tx, id).await?.ok_or_else(|| AppError::unauthenticated("sign in again"))?;
                if u.email != invited.as_str() {
                    return Err(AppError::forbidden("this invitation was sent to another email address; sign in with that address"));
                }
                u
            }
            None => match users::by_email(&tx, &invited).await? {
                Some(_) => {
                    return Err(AppError::unauthenticated(
                        "an account with the invited address exists; sign in first, then accept the invitation",
                    ));
                }
                None => {
                    let pw = password.ok_or_else(|| AppError::bad_input("password", "choose a password to create your account"))?;
                    let hash = self.inner.hasher.hash(&Password::parse(pw)?)?;
                    let id = UserId::new();
                    tx.set_user(id).await?;
                    users::insert(&tx, id, &invited, hash, now).await?
                }
            },
        };
        let user_id = UserId(user.id);
        users::mark_email_verified(&tx, user_id, now).await?;
        if !invitations::accept(&tx, org, InvitationId(inv.id), now).await? {
            return Err(invalid());
        }
        let role = parse_role(&inv.role)?;
        match memberships::insert(&tx, org, user_id, role, now).await {
            Err(StoreError::Conflict(_)) => return Err(AppError::bad_input("token", "you are already a member of this organization")),
            other => other?,
        };
        self.record_for_user(&tx, org, user_id, meta, AuditAction::MemberJoined, json!({ "role": role.as_str(), "invitation": inv.id }))
            .await?;
        let user = users::by_id(&tx, user_id).await?.ok_or_else(invalid)?;
        let payload = self.open_new_session(&tx, &user, org, role, now).await?;
        tx.commit().await?;
        Ok(payload)
    }

    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn remove_member(&self, p: &Principal, target: UserId) -> AppResult<bool> {
        let leaving = p.user_id() == Some(target);
        if !leaving {
            p.require(perms::MEMBERS_MANAGE)?;
        }
        let now = Utc::now();
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let owners = memberships::owners_for_update(&tx, p.org).await?;
        let m = memberships::get(&tx, p.org, target).await?.ok_or_else(|| AppError::not_found("member"))?;
        let role = parse_role(&m.role)?;
        if role == Role::Owner && !leaving {
            check_can_assign(p.role().unwrap_or(Role::Viewer), Role::Owner)?;
        }
        if role == Role::Owner && owners.len() <= 1 {
            return Err(AppError::bad_input("userId", "the last owner cannot be removed; make another member an owner first"));
        }
        memberships::delete(&tx, p.org, target).await?;
        refresh_tokens::revoke_for_user(&tx, target, Some(p.org), now).await?;
        // A person who leaves takes their integrations' access with them:
        // keys act with their creator's authority, which has ended. (An
        // integration that must outlive a person belongs to a key made by
        // someone who stays; the audit entry counts what was revoked.)
        let keys_revoked = api_keys::revoke_created_by(&tx, p.org, target, now).await?;
        self.record(
            &tx,
            p.org,
            Some(p),
            &p.meta,
            AuditAction::MemberRemoved,
            Some(format!("user:{target}")),
            json!({ "role": role.as_str(), "apiKeysRevoked": keys_revoked }),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn change_role(&self, p: &Principal, target: UserId, new_role: Role) -> AppResult<MemberView> {
        p.require(perms::MEMBERS_MANAGE)?;
        let (_, actor_role, _) = p.person()?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let owners = memberships::owners_for_update(&tx, p.org).await?;
        let m = memberships::get(&tx, p.org, target).await?.ok_or_else(|| AppError::not_found("member"))?;
        let old_role = parse_role(&m.role)?;
        if old_role == Role::Owner || new_role == Role::Owner {
            check_can_assign(actor_role, Role::Owner)?;
        }
        if old_role == Role::Owner && new_role != Role::Owner && owners.len() <= 1 {
            return Err(AppError::bad_input("role", "the last owner cannot be demoted; make another member an owner first"));
        }
        memberships::set_role(&tx, p.org, target, new_role).await?;
        self.record(
            &tx,
            p.org,
            Some(p),
            &p.meta,
            AuditAction::MemberRoleChanged,
            Some(format!("user:{target}")),
            json!({ "from": old_role.as_str(), "to": new_role.as_str() }),
        )
        .await?;
        let u = users::by_id(&tx, target).await?.ok_or_else(|| AppError::not_found("member"))?;
        tx.commit().await?;
        Ok(MemberView { org: p.org, user: user_view(&u), role: new_role, joined_at: m.created_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invitation_tokens_name_their_org() {
        let org = OrgId::new();
        let token = format!("{INVITATION_PREFIX}{}_{}", org.0.simple(), secrets::random_base62(43));
        assert_eq!(parse_invitation_token(&token), Some(org));
        assert_eq!(parse_invitation_token("tfi_nonsense"), None);
        assert_eq!(parse_invitation_token(&format!("tfi_{}_short", org.0.simple())), None);
    }
}
