use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use tenfold_app::{AppError, views};
use tenfold_domain::{ApiKeyId, InvitationId, UserId};

use super::{ApiKey, Invitation, Member, Plan, connection};
use crate::context::{GqlResult, app, principal};
use crate::ids::{GlobalId, NodeKind, decode_cursor};

/// An organization: the tenant that owns datasets, jobs, models and endpoints.
#[derive(Clone)]
pub struct Organization {
    gid: ID,
    view: views::OrgView,
}

impl From<views::OrgView> for Organization {
    fn from(view: views::OrgView) -> Self {
        Self { gid: GlobalId::new(NodeKind::Organization, view.id.0).to_id(), view }
    }
}

/// Limits of the organization's plan.
#[derive(SimpleObject)]
pub struct Quotas {
    pub storage_bytes: u64,
    pub max_upload_bytes: u64,
    pub concurrent_jobs: u32,
    pub monthly_compute_seconds: u64,
    pub monthly_endpoint_requests: u64,
    pub monthly_endpoint_images: u64,
    pub monthly_endpoint_tokens: u64,
    pub max_api_keys: u32,
    pub max_members: u32,
}

impl Organization {
    /// Lists are only for the organization the credential acts for.
    fn ensure_current(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let p = principal(ctx)?;
        if p.org != self.view.id {
            return Err(AppError::forbidden("switch to this organization (switchOrganization) to see its details")).gql(ctx);
        }
        Ok(())
    }
}

fn after<T: From<uuid::Uuid>>(raw: Option<&String>) -> Result<Option<T>, AppError> {
    raw.map(|c| decode_cursor(c).map(T::from)).transpose()
}

#[Object]
impl Organization {
    pub async fn id(&self) -> &ID {
        &self.gid
    }

    async fn name(&self) -> &str {
        &self.view.name
    }

    async fn slug(&self) -> &str {
        &self.view.slug
    }

    async fn plan(&self) -> Plan {
        self.view.plan.into()
    }

    /// Bytes the organization keeps (datasets, model artifacts, checkpoints
    /// of running jobs), against `quotas.storageBytes`.
    async fn storage_used_bytes(&self, ctx: &Context<'_>) -> async_graphql::Result<f64> {
        self.ensure_current(ctx)?;
        Ok(app(ctx)?.storage_used(principal(ctx)?).await.gql(ctx)? as f64)
    }

    async fn quotas(&self) -> Quotas {
        let q = self.view.quotas();
        Quotas {
            storage_bytes: q.storage_bytes,
            max_upload_bytes: q.max_upload_bytes,
            concurrent_jobs: q.concurrent_jobs,
            monthly_compute_seconds: q.monthly_compute_seconds,
            monthly_endpoint_requests: q.monthly_endpoint_requests,
            monthly_endpoint_images: q.monthly_endpoint_images,
            monthly_endpoint_tokens: q.monthly_endpoint_tokens,
            max_api_keys: q.max_api_keys,
            max_members: q.max_members,
        }
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.view.created_at
    }

    #[graphql(complexity = "first.unwrap_or(20).clamp(1, crate::MAX_PAGE_SIZE) as usize * child_complexity")]
    async fn members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Member>> {
        self.ensure_current(ctx)?;
        let cursor: Option<UserId> = self::after(after.as_ref()).gql(ctx)?;
        let page = app(ctx)?.members(principal(ctx)?, cursor, first).await.gql(ctx)?;
        Ok(connection(page, cursor.is_some(), |m| m.user.id.0, Member::from))
    }

    #[graphql(complexity = "first.unwrap_or(20).clamp(1, crate::MAX_PAGE_SIZE) as usize * child_complexity")]
    async fn invitations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Invitation>> {
        self.ensure_current(ctx)?;
        let cursor: Option<InvitationId> = self::after(after.as_ref()).gql(ctx)?;
        let page = app(ctx)?.invitations(principal(ctx)?, cursor, first).await.gql(ctx)?;
        Ok(connection(page, cursor.is_some(), |i| i.id.0, Invitation::from))
    }

    #[graphql(complexity = "first.unwrap_or(20).clamp(1, crate::MAX_PAGE_SIZE) as usize * child_complexity")]
    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, ApiKey>> {
        self.ensure_current(ctx)?;
        let cursor: Option<ApiKeyId> = self::after(after.as_ref()).gql(ctx)?;
        let page = app(ctx)?.api_keys(principal(ctx)?, cursor, first).await.gql(ctx)?;
        Ok(connection(page, cursor.is_some(), |k| k.id.0, ApiKey::from))
    }
}
