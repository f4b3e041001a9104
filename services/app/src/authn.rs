//! Turning an `Authorization: Bearer …` credential into a [`Principal`].

use chrono::Utc;
use tenfold_domain::{ApiKeyId, OrgId, ScopeSet};
use tenfold_store::queries::{api_keys, memberships, refresh_tokens, users};

use crate::App;
use crate::error::{AppError, AppResult, stored};
use crate::principal::{Actor, Principal, RequestMeta};
use crate::secrets::{self, API_KEY_PREFIX};
use crate::tenancy::parse_role;

/// `last_used_at` is written at most this often per key, so a busy
/// integration does not turn every read into a write.
const TOUCH_INTERVAL_SECONDS: i64 = 60;

impl App {
    /// Authenticates a bearer credential: an access token (JWT) or an API key.
    /// Every failure is UNAUTHENTICATED with a message that does not say
    /// which check failed.
    #[tracing::instrument(skip_all)]
    pub async fn authenticate(&self, credential: &str, meta: RequestMeta) -> AppResult<Principal> {
        if credential.starts_with(API_KEY_PREFIX) {
            self.authenticate_api_key(credential, meta).await
        } else {
            self.authenticate_access_token(credential, meta).await
        }
    }

    async fn authenticate_access_token(&self, token: &str, meta: RequestMeta) -> AppResult<Principal> {
        let verified = self.inner.tokens.verify(token)?;
        let invalid = || AppError::unauthenticated("the access token is no longer valid; sign in again");
        let tx = self.inner.store.tenant(verified.org, Some(verified.user)).await?;
        // Re-read what the token claims: a removed member, a changed
        // password or an ended session invalidates it before it expires.
        let membership = memberships::get(&tx, verified.org, verified.user).await?.ok_or_else(invalid)?;
        let user = users::by_id(&tx, verified.user).await?.ok_or_else(invalid)?;
        if user.password_changed_at.timestamp() > verified.issued_at {
            return Err(invalid());
        }
        if !refresh_tokens::family_is_live(&tx, verified.session).await? {
            return Err(invalid());
        }
        tx.commit().await?;
        Ok(Principal {
            org: verified.org,
            actor: Actor::User { id: verified.user, role: parse_role(&membership.role)?, session: verified.session },
            meta,
        })
    }

    async fn authenticate_api_key(&self, key: &str, meta: RequestMeta) -> AppResult<Principal> {
        let invalid = || AppError::unauthenticated("the API key is not valid or was revoked; check it or create a new one");
        // The checksum is checked first: typos and scanners' guesses never
        // reach the database.
        let lookup_id = secrets::parse_api_key(key).ok_or_else(invalid)?;
        let tx = self.inner.store.begin().await?;
        tx.set_api_key_lookup(lookup_id).await?;
        let row = api_keys::by_lookup_id(&tx, lookup_id).await?.ok_or_else(invalid)?;
        if row.revoked_at.is_some() || !secrets::constant_time_eq(&secrets::sha256_hex(key), &row.secret_hash) {
            return Err(invalid());
        }
        let org = OrgId(row.org_id);
        let id = ApiKeyId(row.id);
        let now = Utc::now();
        let stale = row.last_used_at.is_none_or(|t| (now - t).num_seconds() >= TOUCH_INTERVAL_SECONDS);
        if stale {
            tx.set_tenant(org).await?;
            api_keys::touch(&tx, org, id, now).await?;
        }
        tx.commit().await?;
        let scope_names: Vec<String> = serde_json::from_str(&row.scopes).map_err(AppError::internal)?;
        let scopes = stored(ScopeSet::parse(&scope_names), "API key scopes")?;
        Ok(Principal { org, actor: Actor::ApiKey { id, scopes }, meta })
    }
}
