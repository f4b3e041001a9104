//! Keys our tenants issue to their own customers: each calls only the
//! endpoints it names, with its own rate limit, monthly quota and usage.

use std::collections::BTreeSet;

use chrono::Utc;
use serde_json::{Map, Value, json};
use tenfold_store::entities::customer_keys as rows;
use tenfold_store::queries::{Page, customer_keys, endpoints};
use uuid::Uuid;

use super::views::{CustomerKeyView, customer_key_view};
use crate::App;
use crate::audit_action::AuditAction;
use crate::error::{AppError, AppResult};
use crate::principal::{Principal, perms};
use crate::secrets;

const MAX_NAME_CHARS: usize = 100;
const MAX_ENDPOINTS: usize = 100;
const MAX_METADATA_ENTRIES: usize = 32;
const MAX_METADATA_KEY_CHARS: usize = 64;
const MAX_METADATA_VALUE_CHARS: usize = 256;
const MAX_RATE_PER_MINUTE: u32 = 1_000_000;
const MAX_MONTHLY_QUOTA: u64 = 1_000_000_000_000;

#[derive(Debug, Clone, Default)]
pub struct CustomerKeyInput {
    pub name: String,
    pub endpoint_ids: Vec<Uuid>,
    /// Requests per minute (none: only the organization's limits apply).
    pub rate_per_minute: Option<u32>,
    /// Answered requests per calendar month (UTC).
    pub monthly_quota: Option<u64>,
    /// The organization's own strings (its customer id, plan…), shown back.
    pub metadata: Option<Value>,
}

fn check_metadata(metadata: Option<Value>) -> AppResult<Map<String, Value>> {
    let bad = |why: String| AppError::bad_input("metadata", why);
    let map = match metadata {
        None | Some(Value::Null) => return Ok(Map::new()),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(bad("metadata is a JSON object of strings, e.g. {\"customer\": \"c_42\"}".into())),
    };
    if map.len() > MAX_METADATA_ENTRIES {
        return Err(bad(format!("at most {MAX_METADATA_ENTRIES} entries; got {}", map.len())));
    }
    for (key, value) in &map {
        if key.is_empty() || key.chars().count() > MAX_METADATA_KEY_CHARS {
            return Err(bad(format!("keys have 1–{MAX_METADATA_KEY_CHARS} characters; {key:?} does not")));
        }
        match value {
            Value::String(s) if s.chars().count() <= MAX_METADATA_VALUE_CHARS => {}
            Value::String(_) => return Err(bad(format!("the value of {key:?} is longer than {MAX_METADATA_VALUE_CHARS} characters"))),
            _ => return Err(bad(format!("the value of {key:?} must be a string"))),
        }
    }
    Ok(map)
}

impl App {
    /// Issues a key for the organization's customer; the secret is shown once.
    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn create_customer_key(&self, p: &Principal, input: CustomerKeyInput) -> AppResult<(CustomerKeyView, String)> {
        p.require(perms::ENDPOINTS_WRITE)?;
        let name = input.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(AppError::bad_input(
                "name",
                format!("give the key a name of 1–{MAX_NAME_CHARS} printable characters, e.g. \"Acme Corp\""),
            ));
        }
        let endpoint_ids: BTreeSet<Uuid> = input.endpoint_ids.iter().copied().collect();
        if endpoint_ids.is_empty() || endpoint_ids.len() > MAX_ENDPOINTS {
            return Err(AppError::bad_input("endpointIds", format!("name 1–{MAX_ENDPOINTS} endpoints the key may call")));
        }
        if let Some(rate) = input.rate_per_minute
            && !(1..=MAX_RATE_PER_MINUTE).contains(&rate)
        {
            return Err(AppError::bad_input("rateLimit", format!("a rate limit is 1–{MAX_RATE_PER_MINUTE} requests per minute")));
        }
        if let Some(quota) = input.monthly_quota
            && !(1..=MAX_MONTHLY_QUOTA).contains(&quota)
        {
            return Err(AppError::bad_input("monthlyQuota", format!("a monthly quota is 1–{MAX_MONTHLY_QUOTA} requests")));
        }
        let metadata = check_metadata(input.metadata)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        for id in &endpoint_ids {
            if endpoints::get(&tx, p.org, *id).await?.is_none() {
                return Err(AppError::not_found("endpoint"));
            }
        }
        let minted = secrets::mint_key(secrets::CUSTOMER_KEY_PREFIX);
        let row = rows::Model {
            org_id: p.org.0,
            id: Uuid::now_v7(),
            lookup_id: minted.lookup_id,
            secret_hash: minted.secret_hash,
            name,
            metadata: Value::Object(metadata).to_string(),
            endpoint_ids: json!(endpoint_ids).to_string(),
            rate_per_minute: input.rate_per_minute.map(|r| i32::try_from(r).unwrap_or(i32::MAX)),
            monthly_quota: input.monthly_quota.map(|q| i64::try_from(q).unwrap_or(i64::MAX)),
            created_by: p.user_id().map(|u| u.0),
            created_at: Utc::now(),
            revoked_at: None,
        };
        let row = customer_keys::insert(&tx, row).await?;
        self.record(
            &tx,
            p.org,
            Some(p),
            &p.meta,
            AuditAction::CustomerKeyCreated,
            Some(format!("customer_key:{}", row.id)),
            json!({ "name": row.name, "endpoints": endpoint_ids, "ratePerMinute": input.rate_per_minute, "monthlyQuota": input.monthly_quota }),
        )
        .await?;
        tx.commit().await?;
        Ok((customer_key_view(&row)?, minted.secret))
    }

    /// Revokes a customer key; it stops working within the gateway's cache
    /// lifetime (seconds).
    #[tracing::instrument(skip_all, fields(org = %p.org, key = %id))]
    pub async fn revoke_customer_key(&self, p: &Principal, id: Uuid) -> AppResult<bool> {
        p.require(perms::ENDPOINTS_WRITE)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let row = customer_keys::get(&tx, p.org, id).await?.ok_or_else(|| AppError::not_found("customer key"))?;
        let revoked = customer_keys::revoke(&tx, p.org, id, Utc::now()).await?;
        if revoked {
            self.record(
                &tx,
                p.org,
                Some(p),
                &p.meta,
                AuditAction::CustomerKeyRevoked,
                Some(format!("customer_key:{id}")),
                json!({ "name": row.name }),
            )
            .await?;
        }
        tx.commit().await?;
        self.forget_credentials();
        Ok(revoked)
    }

    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn customer_keys(
        &self,
        p: &Principal,
        include_revoked: bool,
        after: Option<Uuid>,
        first: Option<i32>,
    ) -> AppResult<Page<CustomerKeyView>> {
        p.require(perms::ENDPOINTS_READ)?;
        let limit = self.page_size(first)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let page = customer_keys::list(&tx, p.org, include_revoked, after, limit).await?;
        tx.commit().await?;
        Ok(Page { rows: page.rows.iter().map(customer_key_view).collect::<AppResult<_>>()?, has_next: page.has_next })
    }

    #[tracing::instrument(skip_all, fields(org = %p.org, key = %id))]
    pub async fn customer_key(&self, p: &Principal, id: Uuid) -> AppResult<CustomerKeyView> {
        p.require(perms::ENDPOINTS_READ)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let row = customer_keys::get(&tx, p.org, id).await?.ok_or_else(|| AppError::not_found("customer key"))?;
        tx.commit().await?;
        customer_key_view(&row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_a_small_object_of_strings() {
        assert!(check_metadata(None).unwrap().is_empty());
        assert_eq!(check_metadata(Some(json!({ "customer": "c_42" }))).unwrap().len(), 1);
        for bad in [json!([1]), json!({ "n": 1 }), json!({ "": "x" }), json!({ "k": "v".repeat(300) })] {
            assert_eq!(check_metadata(Some(bad)).unwrap_err().field, Some("metadata"));
        }
    }
}
