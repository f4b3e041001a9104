//! The gateway's questions to the platform on every inference request:
//! who is calling, which endpoint and which version answers them. Both
//! answers are cached for seconds, so a busy endpoint costs no database
//! round trip per request: a revoked key or a paused endpoint takes effect
//! within `CREDENTIAL_TTL` / `ROUTE_TTL` on every replica (at once on the
//! one that made the change).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tenfold_domain::{
    ApiKeyId, CustomerKeyId, EndpointId, EndpointSlug, EndpointState, Family, ModelVersionId, OrgId, Scaling, UserId, canary_takes,
};
use tenfold_store::queries::{customer_keys, endpoints, jobs, models};
use uuid::Uuid;

use super::views::{EndpointTarget, endpoint_view};
use crate::App;
use crate::error::{AppError, AppResult};
use crate::models::LATEST;
use crate::principal::{Actor, RequestMeta, perms};
use crate::secrets::{self, CUSTOMER_KEY_PREFIX};

const CREDENTIAL_TTL: Duration = Duration::from_secs(5);
const ROUTE_TTL: Duration = Duration::from_secs(1);
/// Entries kept before a cache is cleared (a flood of random keys must
/// not grow memory).
const MAX_ENTRIES: usize = 10_000;

/// Who calls an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    ApiKey(ApiKeyId),
    User(UserId),
    Customer(CustomerGrant),
}

/// A customer key's limits, as the gateway enforces them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerGrant {
    pub id: CustomerKeyId,
    pub name: String,
    pub endpoint_ids: Vec<Uuid>,
    pub rate_per_minute: Option<u32>,
    pub monthly_quota: Option<u64>,
}

impl Caller {
    /// A stable id of the caller: canary buckets and rate limits key on it.
    pub fn id(&self) -> Uuid {
        match self {
            Caller::ApiKey(id) => id.0,
            Caller::User(id) => id.0,
            Caller::Customer(grant) => grant.id.0,
        }
    }
}

/// One inference request, authorized and routed.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub org: OrgId,
    pub caller: Caller,
    pub endpoint: EndpointId,
    pub slug: String,
    pub family: Family,
    pub scaling: Scaling,
    /// The version that answers this caller.
    pub version: ModelVersionId,
    /// Whether that is the canary.
    pub canary: bool,
    /// Every version the endpoint serves now.
    pub live: Vec<ModelVersionId>,
    /// The canary's rollback rules, when the endpoint has one.
    pub canary_rules: Option<tenfold_domain::CanaryRules>,
}

/// An endpoint as the gateway routes it.
#[derive(Debug, Clone)]
struct Route {
    endpoint: EndpointId,
    slug: String,
    family: Family,
    scaling: Scaling,
    state: EndpointState,
    /// `None`: the alias it follows was removed.
    version: Option<ModelVersionId>,
    canary: Option<(ModelVersionId, u32, tenfold_domain::CanaryRules)>,
}

/// What the protocol says about a served version (versions are immutable,
/// so this is cached for as long as the process lives, within a bound).
#[derive(Debug, Clone)]
pub struct ServedVersion {
    pub id: ModelVersionId,
    /// 1, 2, … within its model.
    pub number: i32,
    pub architecture: String,
    /// Output classes in the model's order.
    pub classes: Vec<String>,
    /// The model card (`model.json`): input shape and preprocessing.
    pub card: serde_json::Value,
}

/// An endpoint a credential may call, as a protocol's model listing shows it.
#[derive(Debug, Clone)]
pub struct Callable {
    pub slug: String,
    pub family: Family,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Endpoints a listing shows at most (an organization has far fewer).
const MAX_LISTED: u64 = 1000;

/// Values with the time they were cached.
type Expiring<K, V> = Mutex<HashMap<K, (Instant, V)>>;

#[derive(Default)]
pub(crate) struct GatewayCache {
    /// By the SHA-256 of the credential (the secret itself is never kept).
    credentials: Expiring<[u8; 32], (OrgId, Caller)>,
    routes: Expiring<(OrgId, String), Option<Route>>,
    versions: Expiring<(OrgId, ModelVersionId), std::sync::Arc<ServedVersion>>,
    plans: Expiring<OrgId, tenfold_domain::Quotas>,
}

/// A plan change reaches the gateway within this.
const PLAN_TTL: Duration = Duration::from_secs(30);

impl GatewayCache {
    pub(crate) fn plan(&self, org: OrgId) -> Option<tenfold_domain::Quotas> {
        get_fresh(&self.plans, &org, PLAN_TTL)
    }

    pub(crate) fn remember_plan(&self, org: OrgId, quotas: tenfold_domain::Quotas) {
        put(&self.plans, org, quotas);
    }
}

/// Card files are small; anything larger is not a card.
const MAX_CARD_BYTES: u64 = 1 << 20;

fn get_fresh<K: Eq + Hash, V: Clone>(map: &Expiring<K, V>, key: &K, ttl: Duration) -> Option<V> {
    let map = map.lock().unwrap_or_else(PoisonError::into_inner);
    map.get(key).filter(|(at, _)| at.elapsed() < ttl).map(|(_, v)| v.clone())
}

fn put<K: Eq + Hash, V>(map: &Expiring<K, V>, key: K, value: V) {
    let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map.insert(key, (Instant::now(), value));
}

/// 0–99, stable per caller and endpoint.
fn bucket(caller: Uuid, endpoint: EndpointId) -> u32 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    // DefaultHasher's keys are fixed (SipHash 0, 0): stable across processes.
    caller.hash(&mut h);
    endpoint.0.hash(&mut h);
    (h.finish() % 100) as u32
}

impl App {
    /// Authorizes a call of endpoint `slug` and picks the version that
    /// answers it. Errors are the gateway's answer (401, 403, 404, 503).
    #[tracing::instrument(skip_all, fields(slug = %slug))]
    pub async fn invocation(&self, credential: Option<&str>, slug: &str, meta: RequestMeta) -> AppResult<Invocation> {
        let credential = credential.ok_or_else(|| {
            AppError::unauthenticated(
                "send the endpoint key as `Authorization: Bearer <key>` (an API key with endpoints:invoke, or a customer key)",
            )
        })?;
        let (org, caller) = self.caller(credential, meta).await?;
        // A name no endpoint can have (a protocol's body may carry any
        // string, NUL bytes included) is not looked up.
        if EndpointSlug::parse(slug).is_err() {
            return Err(AppError::not_found("endpoint"));
        }
        let route = self.route(org, slug).await?.ok_or_else(|| AppError::not_found("endpoint"))?;
        if let Caller::Customer(grant) = &caller
            && !grant.endpoint_ids.contains(&route.endpoint.0)
        {
            return Err(AppError::forbidden(format!("this customer key may not call the endpoint {slug:?}; ask its issuer to add it")));
        }
        if route.state == EndpointState::Paused {
            return Err(AppError::unavailable(format!("the endpoint {slug:?} is paused; its owner can resume it"), 60));
        }
        let stable = route.version.ok_or_else(|| {
            AppError::unavailable(
                format!("the endpoint {slug:?} follows an alias that points nowhere now; its owner must set the alias"),
                60,
            )
        })?;
        let mut live = vec![stable];
        let mut chosen = (stable, false);
        if let Some((canary, percent, _)) = route.canary {
            live.push(canary);
            if canary_takes(percent, bucket(caller.id(), route.endpoint)) {
                chosen = (canary, true);
            }
        }
        Ok(Invocation {
            org,
            caller,
            endpoint: route.endpoint,
            slug: route.slug,
            family: route.family,
            scaling: route.scaling,
            version: chosen.0,
            canary: chosen.1,
            live,
            canary_rules: route.canary.map(|(_, _, rules)| rules),
        })
    }

    /// Checks that `credential` may call endpoints at all (before a
    /// protocol reads a body that names the endpoint).
    pub async fn check_caller(&self, credential: Option<&str>, meta: RequestMeta) -> AppResult<()> {
        let credential = credential.ok_or_else(|| {
            AppError::unauthenticated(
                "send the endpoint key as `Authorization: Bearer <key>` (an API key with endpoints:invoke, or a customer key)",
            )
        })?;
        self.caller(credential, meta).await.map(|_| ())
    }

    /// The active endpoints of `family` that `credential` may call (a
    /// customer key: those it was issued for), by slug.
    #[tracing::instrument(skip_all)]
    pub async fn callable_endpoints(&self, credential: Option<&str>, meta: RequestMeta, family: Family) -> AppResult<Vec<Callable>> {
        let credential = credential.ok_or_else(|| {
            AppError::unauthenticated(
                "send the endpoint key as `Authorization: Bearer <key>` (an API key with endpoints:invoke, or a customer key)",
            )
        })?;
        let (org, caller) = self.caller(credential, meta).await?;
        let tx = self.inner.store.tenant(org, None).await?;
        let rows = endpoints::list(&tx, org, None, MAX_LISTED).await?.rows;
        tx.commit().await?;
        let mut listed = Vec::new();
        for row in rows {
            let view = endpoint_view(&row)?;
            let granted = match &caller {
                Caller::Customer(grant) => grant.endpoint_ids.contains(&view.id),
                Caller::ApiKey(_) | Caller::User(_) => true,
            };
            if granted && view.family == family && view.state == EndpointState::Active {
                listed.push(Callable { slug: view.slug.to_string(), family: view.family, created_at: row.created_at });
            }
        }
        listed.sort_by(|a, b| a.slug.cmp(&b.slug));
        Ok(listed)
    }

    /// Drops cached routes after a change made here (other replicas see it
    /// within `ROUTE_TTL`).
    pub(crate) fn forget_routes(&self) {
        self.inner.gateway.routes.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    pub(crate) fn forget_credentials(&self) {
        self.inner.gateway.credentials.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    async fn caller(&self, credential: &str, meta: RequestMeta) -> AppResult<(OrgId, Caller)> {
        let digest: [u8; 32] = Sha256::digest(credential.as_bytes()).into();
        if let Some(hit) = get_fresh(&self.inner.gateway.credentials, &digest, CREDENTIAL_TTL) {
            return Ok(hit);
        }
        let (org, caller) = if credential.starts_with(CUSTOMER_KEY_PREFIX) {
            self.authenticate_customer_key(credential).await?
        } else {
            let p = self.authenticate(credential, meta).await?;
            p.require(perms::ENDPOINTS_INVOKE)?;
            let caller = match p.actor {
                Actor::ApiKey { id, .. } => Caller::ApiKey(id),
                Actor::User { id, .. } => Caller::User(id),
            };
            (p.org, caller)
        };
        put(&self.inner.gateway.credentials, digest, (org, caller.clone()));
        Ok((org, caller))
    }

    async fn authenticate_customer_key(&self, key: &str) -> AppResult<(OrgId, Caller)> {
        let invalid = || AppError::unauthenticated("the customer key is not valid or was revoked; ask its issuer for a new one");
        let lookup_id = secrets::parse_key(CUSTOMER_KEY_PREFIX, key).ok_or_else(invalid)?;
        let tx = self.inner.store.begin().await?;
        tx.set_api_key_lookup(lookup_id).await?;
        let row = customer_keys::by_lookup_id(&tx, lookup_id).await?.ok_or_else(invalid)?;
        tx.commit().await?;
        if row.revoked_at.is_some() || !secrets::constant_time_eq(&secrets::sha256_hex(key), &row.secret_hash) {
            return Err(invalid());
        }
        let endpoint_ids: Vec<Uuid> = serde_json::from_str(&row.endpoint_ids).map_err(AppError::internal)?;
        let grant = CustomerGrant {
            id: CustomerKeyId(row.id),
            name: row.name.clone(),
            endpoint_ids,
            rate_per_minute: row.rate_per_minute.and_then(|r| u32::try_from(r).ok()),
            monthly_quota: row.monthly_quota.and_then(|q| u64::try_from(q).ok()),
        };
        Ok((OrgId(row.org_id), Caller::Customer(grant)))
    }

    async fn route(&self, org: OrgId, slug: &str) -> AppResult<Option<Route>> {
        let key = (org, slug.to_owned());
        if let Some(route) = get_fresh(&self.inner.gateway.routes, &key, ROUTE_TTL) {
            return Ok(route);
        }
        let tx = self.inner.store.tenant(org, None).await?;
        let route = match endpoints::by_slug(&tx, org, slug).await? {
            None => None,
            Some(row) => {
                let view = endpoint_view(&row)?;
                let version = match &view.target {
                    EndpointTarget::Version(id) => Some(*id),
                    EndpointTarget::Alias(alias) if alias == LATEST => {
                        models::versions(&tx, org, view.model_id, None, 1).await?.rows.first().map(|v| v.id)
                    }
                    EndpointTarget::Alias(alias) => models::alias(&tx, org, view.model_id, alias).await?.map(|a| a.model_version_id),
                };
                Some(Route {
                    endpoint: EndpointId(view.id),
                    slug: view.slug.to_string(),
                    family: view.family,
                    scaling: view.scaling,
                    state: view.state,
                    version: version.map(ModelVersionId),
                    canary: view.canary.map(|c| (ModelVersionId(c.model_version_id), c.percent, c.rules)),
                })
            }
        };
        tx.commit().await?;
        put(&self.inner.gateway.routes, key, route.clone());
        Ok(route)
    }

    /// The versions an endpoint serves now; none when it is paused or gone
    /// (the serving runtime's sweeper unloads the rest).
    pub async fn live_versions(&self, org: OrgId, endpoint: EndpointId) -> AppResult<Vec<ModelVersionId>> {
        let tx = self.inner.store.tenant(org, None).await?;
        let row = endpoints::get(&tx, org, endpoint.0).await?;
        tx.commit().await?;
        let Some(row) = row else { return Ok(Vec::new()) };
        let Some(route) = self.route(org, &row.slug).await? else { return Ok(Vec::new()) };
        if route.state == EndpointState::Paused || route.endpoint != endpoint {
            return Ok(Vec::new());
        }
        Ok(route.version.into_iter().chain(route.canary.map(|(v, _, _)| v)).collect())
    }

    /// A served version's number, classes and card, for the protocol's
    /// metadata and outputs.
    pub async fn served_version(&self, org: OrgId, version: ModelVersionId) -> AppResult<std::sync::Arc<ServedVersion>> {
        let key = (org, version);
        if let Some(hit) = get_fresh(&self.inner.gateway.versions, &key, Duration::MAX) {
            return Ok(hit);
        }
        let tx = self.inner.store.tenant(org, None).await?;
        let row = jobs::model_version(&tx, org, version.0).await?.ok_or_else(|| AppError::not_found("model version"))?;
        tx.commit().await?;
        let files = crate::models::version_files(&row)?;
        let card = match files.get(crate::models::CARD_FILE) {
            Some(sha) => {
                let bytes = self.inner.blobs.read_small(org, sha, MAX_CARD_BYTES).await.map_err(AppError::internal)?;
                serde_json::from_slice(&bytes).map_err(AppError::internal)?
            }
            None => serde_json::Value::Null,
        };
        let served = std::sync::Arc::new(ServedVersion {
            id: version,
            number: row.version,
            architecture: row.architecture.clone(),
            classes: serde_json::from_str(&row.classes).map_err(AppError::internal)?,
            card,
        });
        put(&self.inner.gateway.versions, key, served.clone());
        Ok(served)
    }

    /// A served version's files (name → sha256), for the serving runtime;
    /// no principal: the gateway authorized the request that needs them.
    pub async fn serving_files(&self, org: OrgId, version: ModelVersionId) -> AppResult<std::collections::BTreeMap<String, String>> {
        let tx = self.inner.store.tenant(org, None).await?;
        let row = jobs::model_version(&tx, org, version.0).await?.ok_or_else(|| AppError::not_found("model version"))?;
        tx.commit().await?;
        crate::models::version_files(&row)
    }

    /// Records how long the endpoint took from unloaded to its first answer.
    pub async fn record_cold_start(&self, org: OrgId, endpoint: EndpointId, took: Duration) -> AppResult<()> {
        let tx = self.inner.store.tenant(org, None).await?;
        endpoints::set_cold_start(&tx, org, endpoint.0, i64::try_from(took.as_millis()).unwrap_or(i64::MAX), chrono::Utc::now()).await?;
        tx.commit().await?;
        Ok(())
    }
}
