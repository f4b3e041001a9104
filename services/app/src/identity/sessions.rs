//! Sign-up, sign-in, refresh-token rotation with reuse detection, sign-out,
//! switching organization and `me`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tenfold_domain::{Email, OrgId, OrgName, Password, Plan, RefreshTokenId, Role, Slug, UserId};
use tenfold_mail::Template;
use tenfold_store::entities::users;
use tenfold_store::queries::{memberships, orgs, refresh_tokens, users as users_q};
use tenfold_store::{StoreError, Tx};
use uuid::Uuid;

use crate::App;
use crate::audit_action::AuditAction;
use crate::error::{AppError, AppResult};
use crate::principal::{Principal, RequestMeta, perms};
use crate::secrets::{self, opaque_token};
use crate::tenancy::{org_view, parse_role, user_view};
use crate::views::{AuthPayload, MeView, MembershipView};

const REFRESH_PREFIX: &str = "tfr_";

pub struct SignUpInput {
    pub email: String,
    pub password: String,
    pub organization_name: String,
}

/// A refresh-token family to continue, or none to start a new sign-in.
struct Family {
    id: Uuid,
    expires_at: DateTime<Utc>,
}

impl App {
    /// Creates an account and its organization; the user becomes `OWNER`.
    #[tracing::instrument(skip_all)]
    pub async fn sign_up(&self, meta: &RequestMeta, input: SignUpInput) -> AppResult<AuthPayload> {
        let email = Email::parse(&input.email)?;
        let password = Password::parse(&input.password)?;
        let name = OrgName::parse(&input.organization_name)?;
        if let Some(ip) = &meta.ip {
            self.throttle(&format!("signup:ip:{ip}"), 20, Duration::from_secs(3600), "sign-ups from your address").await?;
        }
        let hash = self.inner.hasher.hash(&password)?;
        let now = Utc::now();
        let (user_id, org_id) = (UserId::new(), OrgId::new());
        let tx = self.inner.store.begin().await?;
        tx.set_tenant(org_id).await?;
        tx.set_user(user_id).await?;
        let user = match users_q::insert(&tx, user_id, &email, hash, now).await {
            Err(StoreError::Conflict(_)) => {
                return Err(AppError::bad_input("email", "an account with this email already exists; log in, or reset the password"));
            }
            other => other?,
        };
        let slug = Slug::from_name(&name);
        let org = orgs::insert(&tx, org_id, &name, &slug, &secrets::random_base62(6).to_lowercase(), Plan::Free, now).await?;
        memberships::insert(&tx, org_id, user_id, Role::Owner, now).await?;
        self.record_for_user(&tx, org_id, user_id, meta, AuditAction::UserSignedUp, json!({ "email": email.as_str() })).await?;
        let verify_token = self.create_email_token(&tx, user_id, super::email_flows::VERIFY, now).await?;
        let payload = self.open_session(&tx, &user, org_id, Role::Owner, None, now).await?;
        tx.commit().await?;
        self.send_mail(Template::VerifyEmail { link: &self.link("verify-email", &verify_token) }.render(email.as_str())).await;
        Ok(AuthPayload { organization: org_view(&org)?, ..payload })
    }

    /// Signs in. Unknown email and wrong password get the same error and
    /// take the same time; attempts are throttled per account and per IP.
    #[tracing::instrument(skip_all)]
    pub async fn log_in(&self, meta: &RequestMeta, email: &str, password: &str) -> AppResult<AuthPayload> {
        let auth = &self.inner.settings.auth;
        let window = Duration::from_secs(auth.login_window_seconds);
        let bad = || AppError::unauthenticated("the email or password is wrong");
        if let Some(ip) = &meta.ip {
            self.throttle(
                &format!("login:ip:{ip}"),
                u64::from(auth.login_max_attempts_per_ip),
                window,
                "sign-in attempts from your address",
            )
            .await?;
        }
        // An unparsable email cannot match an account: same answer as a wrong one.
        let email = Email::parse(email).map_err(|_| bad())?;
        let account_key = format!("login:acct:{}", email.as_str());
        self.throttle_check(&account_key, u64::from(auth.login_max_failures_per_account), window, "failed sign-ins for this account")
            .await?;

        let tx = self.inner.store.begin().await?;
        let user = users_q::by_email(&tx, &email).await?;
        if !self.inner.hasher.verify(password, user.as_ref().map(|u| u.password_hash.as_str())) {
            drop(tx);
            self.inner.limiter.hit(&account_key, u64::from(auth.login_max_failures_per_account), window).await?;
            if let Some(user) = user {
                // Recorded off the request path, so that a wrong password for a
                // real account takes as long as one for an unknown email.
                let (app, meta) = (self.clone(), meta.clone());
                tokio::spawn(async move {
                    if let Err(err) = app.record_failed_sign_in(UserId(user.id), &meta).await {
                        tracing::error!(error = %err, "recording a failed sign-in");
                    }
                });
            }
            return Err(bad());
        }
        let Some(user) = user else { return Err(bad()) };
        self.inner.limiter.reset(&account_key).await?;
        let user_id = UserId(user.id);
        tx.set_user(user_id).await?;
        let first = memberships::for_user(&tx, user_id)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| AppError::forbidden("your account is not a member of any organization; accept an invitation to join one"))?;
        let org_id = OrgId(first.org_id);
        tx.set_tenant(org_id).await?;
        self.record_for_user(&tx, org_id, user_id, meta, AuditAction::AuthSignedIn, json!({})).await?;
        let payload = self.open_session(&tx, &user, org_id, parse_role(&first.role)?, None, Utc::now()).await?;
        tx.commit().await?;
        Ok(payload)
    }

    async fn record_failed_sign_in(&self, user_id: UserId, meta: &RequestMeta) -> AppResult<()> {
        let tx = self.inner.store.begin().await?;
        tx.set_user(user_id).await?;
        for m in memberships::for_user(&tx, user_id).await? {
            let org = OrgId(m.org_id);
            tx.set_tenant(org).await?;
            self.record_for_user(&tx, org, user_id, meta, AuditAction::AuthSignInFailed, json!({})).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Exchanges a refresh token for a new pair (rotation). A token that was
    /// already used revokes its whole family: whoever holds the newest token
    /// is signed out too, and the user is told by email.
    #[tracing::instrument(skip_all)]
    pub async fn refresh_session(&self, meta: &RequestMeta, token: &str) -> AppResult<AuthPayload> {
        let invalid = || AppError::unauthenticated("the refresh token is not valid or has expired; sign in again");
        if !token.starts_with(REFRESH_PREFIX) || token.len() > 128 {
            return Err(invalid());
        }
        let now = Utc::now();
        let tx = self.inner.store.begin().await?;
        let row = refresh_tokens::by_hash(&tx, &secrets::sha256_hex(token)).await?.ok_or_else(invalid)?;
        if row.revoked_at.is_some() {
            return Err(invalid());
        }
        let (user_id, org_id) = (UserId(row.user_id), OrgId(row.org_id));
        let won = row.used_at.is_none() && refresh_tokens::mark_used(&tx, RefreshTokenId(row.id), now).await?;
        if !won {
            refresh_tokens::revoke_family(&tx, row.family_id, now).await?;
            tx.set_tenant(org_id).await?;
            self.record_for_user(&tx, org_id, user_id, meta, AuditAction::AuthRefreshTokenReused, json!({ "session": row.family_id }))
                .await?;
            let user = users_q::by_id(&tx, user_id).await?;
            tx.commit().await?;
            if let Some(user) = user {
                self.send_mail(Template::RefreshReuse.render(&user.email)).await;
            }
            return Err(AppError::unauthenticated(
                "this refresh token was already used, so the session was ended for safety; sign in again",
            ));
        }
        if row.expires_at <= now || row.family_expires_at <= now {
            return Err(invalid());
        }
        tx.set_tenant(org_id).await?;
        tx.set_user(user_id).await?;
        let Some(membership) = memberships::get(&tx, org_id, user_id).await? else {
            refresh_tokens::revoke_family(&tx, row.family_id, now).await?;
            tx.commit().await?;
            return Err(invalid());
        };
        let user = users_q::by_id(&tx, user_id).await?.ok_or_else(invalid)?;
        let family = Family { id: row.family_id, expires_at: row.family_expires_at };
        let payload = self.open_session(&tx, &user, org_id, parse_role(&membership.role)?, Some(family), now).await?;
        tx.commit().await?;
        Ok(payload)
    }

    /// Ends the caller's sign-in: its refresh tokens and access tokens.
    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn log_out(&self, p: &Principal) -> AppResult<bool> {
        p.require(perms::SESSION)?;
        let (_, _, session) = p.person()?;
        let tx = self.inner.store.begin().await?;
        refresh_tokens::revoke_family(&tx, session, Utc::now()).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// New tokens for another organization the user belongs to. The current
    /// sign-in ends; a non-member gets the same NOT_FOUND as a random id.
    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn switch_organization(&self, p: &Principal, target: OrgId) -> AppResult<AuthPayload> {
        p.require(perms::SESSION)?;
        let (user_id, _, session) = p.person()?;
        let now = Utc::now();
        let tx = self.inner.store.tenant(target, Some(user_id)).await?;
        let membership = memberships::get(&tx, target, user_id).await?.ok_or_else(|| AppError::not_found("organization"))?;
        let user = users_q::by_id(&tx, user_id).await?.ok_or_else(|| AppError::unauthenticated("sign in again"))?;
        refresh_tokens::revoke_family(&tx, session, now).await?;
        self.record(&tx, target, Some(p), &p.meta, AuditAction::AuthSwitchedOrganization, None, json!({})).await?;
        let payload = self.open_session(&tx, &user, target, parse_role(&membership.role)?, None, now).await?;
        tx.commit().await?;
        Ok(payload)
    }

    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn me(&self, p: &Principal) -> AppResult<MeView> {
        p.require(perms::SESSION)?;
        let (user_id, _, _) = p.person()?;
        let tx = self.inner.store.tenant(p.org, Some(user_id)).await?;
        let user = users_q::by_id(&tx, user_id).await?.ok_or_else(|| AppError::unauthenticated("sign in again"))?;
        let rows = memberships::for_user(&tx, user_id).await?;
        let ids: Vec<Uuid> = rows.iter().map(|m| m.org_id).collect();
        let org_rows = orgs::by_ids(&tx, &ids).await?;
        tx.commit().await?;
        let mut out = Vec::with_capacity(rows.len());
        for m in &rows {
            if let Some(o) = org_rows.iter().find(|o| o.id == m.org_id) {
                out.push(MembershipView { role: parse_role(&m.role)?, organization: org_view(o)?, joined_at: m.created_at });
            }
        }
        Ok(MeView { user: user_view(&user), memberships: out, current_org: p.org })
    }

    /// Starts a new sign-in (refresh-token family) inside the caller's transaction.
    pub(super) async fn open_new_session(
        &self,
        tx: &Tx,
        user: &users::Model,
        org: OrgId,
        role: Role,
        now: DateTime<Utc>,
    ) -> AppResult<AuthPayload> {
        self.open_session(tx, user, org, role, None, now).await
    }

    /// Issues a refresh token (new family unless one is continued) and an
    /// access token, inside the caller's transaction.
    async fn open_session(
        &self,
        tx: &Tx,
        user: &users::Model,
        org: OrgId,
        role: Role,
        family: Option<Family>,
        now: DateTime<Utc>,
    ) -> AppResult<AuthPayload> {
        let auth = &self.inner.settings.auth;
        let family = family.unwrap_or_else(|| Family {
            id: Uuid::now_v7(),
            expires_at: now + chrono::Duration::seconds(auth.refresh_token_ttl_seconds as i64),
        });
        let refresh = opaque_token(REFRESH_PREFIX);
        let idle_expiry = now + chrono::Duration::seconds(auth.refresh_idle_ttl_seconds as i64);
        refresh_tokens::insert(
            tx,
            refresh_tokens::NewRefreshToken {
                id: RefreshTokenId::new(),
                family_id: family.id,
                user: UserId(user.id),
                org,
                token_hash: secrets::sha256_hex(&refresh),
                expires_at: idle_expiry.min(family.expires_at),
                family_expires_at: family.expires_at,
            },
            now,
        )
        .await?;
        let org_row = orgs::get(tx, org).await?.ok_or_else(|| AppError::internal(anyhow::anyhow!("organization {org} vanished")))?;
        let access = self.inner.tokens.issue(UserId(user.id), org, family.id)?;
        Ok(AuthPayload {
            access_token: access,
            refresh_token: refresh,
            expires_in_seconds: self.inner.tokens.ttl_seconds(),
            user: user_view(user),
            organization: org_view(&org_row)?,
            role,
        })
    }
}
