//! Email verification and password reset by emailed single-use tokens.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tenfold_domain::{Email, OrgId, Password, UserId};
use tenfold_mail::Template;
use tenfold_store::Tx;
use tenfold_store::queries::{email_tokens, memberships, refresh_tokens, users};

use crate::App;
use crate::audit_action::AuditAction;
use crate::error::{AppError, AppResult};
use crate::principal::{Principal, RequestMeta, perms};
use crate::secrets::{self, opaque_token};

pub(crate) const VERIFY: &str = "verify_email";
pub(crate) const RESET: &str = "reset_password";

fn prefix(purpose: &str) -> &'static str {
    if purpose == RESET { "tfp_" } else { "tfv_" }
}

impl App {
    /// Stores the hash of a new single-use token and returns the token.
    pub(crate) async fn create_email_token(&self, tx: &Tx, user: UserId, purpose: &'static str, now: DateTime<Utc>) -> AppResult<String> {
        let auth = &self.inner.settings.auth;
        let ttl = if purpose == RESET { auth.password_reset_ttl_seconds } else { auth.email_verification_ttl_seconds };
        // A new link makes the older ones of the same kind useless.
        email_tokens::invalidate_all(tx, user, purpose, now).await?;
        let token = opaque_token(prefix(purpose));
        email_tokens::insert(tx, user, purpose, secrets::sha256_hex(&token), now + chrono::Duration::seconds(ttl as i64), now).await?;
        Ok(token)
    }

    /// Uses a token once; the user it was for, or a clear error.
    async fn consume_email_token(&self, tx: &Tx, purpose: &'static str, token: &str) -> AppResult<UserId> {
        let invalid = || AppError::bad_input("token", "this link is not valid, was already used or has expired; ask for a new email");
        if !token.starts_with(prefix(purpose)) || token.len() > 128 {
            return Err(invalid());
        }
        let now = Utc::now();
        let row = email_tokens::by_hash(tx, purpose, &secrets::sha256_hex(token)).await?.ok_or_else(invalid)?;
        if row.expires_at <= now || !email_tokens::consume(tx, row.id, now).await? {
            return Err(invalid());
        }
        Ok(UserId(row.user_id))
    }

    #[tracing::instrument(skip_all)]
    pub async fn verify_email(&self, token: &str) -> AppResult<bool> {
        let tx = self.inner.store.begin().await?;
        let user = self.consume_email_token(&tx, VERIFY, token).await?;
        users::mark_email_verified(&tx, user, Utc::now()).await?;
        tx.commit().await?;
        Ok(true)
    }

    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn resend_verification_email(&self, p: &Principal) -> AppResult<bool> {
        p.require(perms::SESSION)?;
        let (user_id, _, _) = p.person()?;
        self.throttle(&format!("verify:user:{user_id}"), 5, Duration::from_secs(3600), "verification emails").await?;
        let tx = self.inner.store.begin().await?;
        let user = users::by_id(&tx, user_id).await?.ok_or_else(|| AppError::unauthenticated("sign in again"))?;
        if user.email_verified_at.is_some() {
            return Err(AppError::bad_input("email", "your email address is already verified"));
        }
        let token = self.create_email_token(&tx, user_id, VERIFY, Utc::now()).await?;
        tx.commit().await?;
        self.send_mail(Template::VerifyEmail { link: &self.link("verify-email", &token) }.render(&user.email)).await;
        Ok(true)
    }

    /// Sends a reset link if the account exists. The answer is the same
    /// either way, so it cannot be used to find out who has an account.
    #[tracing::instrument(skip_all)]
    pub async fn request_password_reset(&self, meta: &RequestMeta, email: &str) -> AppResult<bool> {
        let email = Email::parse(email)?;
        let hour = Duration::from_secs(3600);
        if let Some(ip) = &meta.ip {
            self.throttle(&format!("reset:ip:{ip}"), 20, hour, "password-reset requests from your address").await?;
        }
        self.throttle(&format!("reset:email:{}", email.as_str()), 3, hour, "password-reset requests for this address").await?;
        let tx = self.inner.store.begin().await?;
        let Some(user) = users::by_email(&tx, &email).await? else {
            return Ok(true);
        };
        let token = self.create_email_token(&tx, UserId(user.id), RESET, Utc::now()).await?;
        tx.commit().await?;
        let ttl_minutes = self.inner.settings.auth.password_reset_ttl_seconds / 60;
        let mail = Template::PasswordReset { link: &self.link("reset-password", &token), ttl_minutes }.render(&user.email);
        // Sent after answering: waiting for SMTP would make the answer for a
        // real account slower than for an unknown one, telling who has one.
        let app = self.clone();
        tokio::spawn(async move { app.send_mail(mail).await });
        Ok(true)
    }

    /// Sets a new password from a reset link and ends every sign-in of the
    /// account (refresh tokens and, through `password_changed_at`, access tokens).
    #[tracing::instrument(skip_all)]
    pub async fn reset_password(&self, meta: &RequestMeta, token: &str, new_password: &str) -> AppResult<bool> {
        let password = Password::parse(new_password)?;
        let hash = self.inner.hasher.hash(&password)?;
        let tx = self.inner.store.begin().await?;
        let user = self.consume_email_token(&tx, RESET, token).await?;
        // Revoking the refresh families below also ends the access tokens of
        // those sign-ins (they name their family), at once.
        let now = Utc::now();
        users::set_password(&tx, user, hash, now).await?;
        // Proves control of the mailbox, too.
        users::mark_email_verified(&tx, user, now).await?;
        refresh_tokens::revoke_for_user(&tx, user, None, now).await?;
        tx.set_user(user).await?;
        for m in memberships::for_user(&tx, user).await? {
            let org = OrgId(m.org_id);
            tx.set_tenant(org).await?;
            self.record_for_user(&tx, org, user, meta, AuditAction::AuthPasswordReset, json!({})).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
