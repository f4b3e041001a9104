//! API keys for integrations: shown once, stored hashed, scoped, revocable.

use chrono::Utc;
use serde_json::json;
use tenfold_domain::{ApiKeyId, ScopeSet};
use tenfold_store::queries::api_keys::{self, NewApiKey};
use tenfold_store::queries::{Page, orgs};

use crate::App;
use crate::audit_action::AuditAction;
use crate::error::{AppError, AppResult};
use crate::principal::{Principal, perms};
use crate::secrets;
use crate::tenancy::{api_key_view, org_view};
use crate::views::ApiKeyView;

const MAX_NAME_CHARS: usize = 100;

impl App {
    /// Creates a key; the returned secret is never shown again. Nobody can
    /// create a key with a scope their own role could not use.
    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn create_api_key(&self, p: &Principal, name: &str, scopes: &[String]) -> AppResult<(ApiKeyView, String)> {
        p.require(perms::API_KEYS_MANAGE)?;
        let (creator, role, _) = p.person()?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(AppError::bad_input(
                "name",
                format!("give the key a name of 1–{MAX_NAME_CHARS} printable characters, e.g. \"CI pipeline\""),
            ));
        }
        let scopes = ScopeSet::parse(scopes)?;
        if let Some(s) = scopes.iter().find(|s| !role.at_least(s.role_to_grant())) {
            return Err(AppError::forbidden(format!("your role {role} cannot grant the scope \"{s}\"; it needs {}", s.role_to_grant())));
        }
        let tx = self.inner.store.tenant(p.org, Some(creator)).await?;
        let org = orgs::get(&tx, p.org).await?.ok_or_else(|| AppError::not_found("organization"))?;
        let max = org_view(&org)?.quotas().max_api_keys;
        if api_keys::count_active(&tx, p.org).await? >= u64::from(max) {
            return Err(AppError::quota(format!("your plan allows {max} active API keys; revoke one or upgrade the plan")));
        }
        let minted = secrets::mint_api_key();
        let new = NewApiKey {
            id: ApiKeyId::new(),
            name: name.to_owned(),
            lookup_id: minted.lookup_id,
            prefix: minted.display_prefix,
            secret_hash: minted.secret_hash,
            scopes_json: serde_json::to_string(&scopes.to_strings()).map_err(AppError::internal)?,
            created_by: creator,
        };
        let row = api_keys::insert(&tx, p.org, new, Utc::now()).await?;
        self.record(
            &tx,
            p.org,
            Some(p),
            &p.meta,
            AuditAction::ApiKeyCreated,
            Some(format!("api_key:{}", row.id)),
            json!({ "name": name, "scopes": scopes.to_strings(), "prefix": row.prefix }),
        )
        .await?;
        tx.commit().await?;
        Ok((api_key_view(&row)?, minted.secret))
    }

    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn revoke_api_key(&self, p: &Principal, id: ApiKeyId) -> AppResult<ApiKeyView> {
        p.require(perms::API_KEYS_MANAGE)?;
        let now = Utc::now();
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let row = api_keys::get(&tx, p.org, id).await?.ok_or_else(|| AppError::not_found("API key"))?;
        if !api_keys::revoke(&tx, p.org, id, now).await? {
            return Err(AppError::bad_input("id", "this API key is already revoked"));
        }
        self.record(
            &tx,
            p.org,
            Some(p),
            &p.meta,
            AuditAction::ApiKeyRevoked,
            Some(format!("api_key:{id}")),
            json!({ "name": row.name, "prefix": row.prefix }),
        )
        .await?;
        tx.commit().await?;
        let mut view = api_key_view(&row)?;
        view.revoked_at = Some(now);
        Ok(view)
    }

    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn api_keys(&self, p: &Principal, after: Option<ApiKeyId>, first: Option<i32>) -> AppResult<Page<ApiKeyView>> {
        p.require(perms::API_KEYS_READ)?;
        let limit = self.page_size(first)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let page = api_keys::list_active(&tx, p.org, after, limit).await?;
        tx.commit().await?;
        Ok(Page { rows: page.rows.iter().map(api_key_view).collect::<AppResult<_>>()?, has_next: page.has_next })
    }

    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn api_key(&self, p: &Principal, id: ApiKeyId) -> AppResult<ApiKeyView> {
        p.require(perms::API_KEYS_READ)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let row = api_keys::get(&tx, p.org, id).await?.ok_or_else(|| AppError::not_found("API key"))?;
        tx.commit().await?;
        api_key_view(&row)
    }
}
