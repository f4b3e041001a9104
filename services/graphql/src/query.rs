use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object};
use tenfold_domain::{ApiKeyId, AuditEventId, InvitationId, OrgId, UserId};

use crate::context::{GqlResult, app, principal};
use crate::ids::{GlobalId, NodeKind, decode_cursor};
use crate::types::*;

#[derive(Default)]
pub struct Query;

#[Object]
impl Query {
    /// The signed-in user, their organizations, and the current one.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Me> {
        let p = principal(ctx)?;
        let app = app(ctx)?;
        let me = app.me(p).await.gql(ctx)?;
        let current = me
            .memberships
            .iter()
            .find(|m| m.organization.id == me.current_org)
            .map(|m| m.organization.clone())
            .ok_or_else(|| tenfold_app::AppError::unauthenticated("sign in again"))
            .gql(ctx)?;
        Ok(Me {
            user: me.user.into(),
            memberships: me
                .memberships
                .into_iter()
                .map(|m| Membership { role: m.role.into(), organization: m.organization.into(), joined_at: m.joined_at })
                .collect(),
            organization: current.into(),
        })
    }

    /// The organization the credential acts for.
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Organization> {
        Ok(app(ctx)?.organization(principal(ctx)?, None).await.gql(ctx)?.into())
    }

    /// Security-relevant actions, newest first. Owners and admins only.
    #[graphql(complexity = "first.unwrap_or(20).clamp(1, crate::MAX_PAGE_SIZE) as usize * child_complexity")]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, AuditEvent>> {
        let cursor = after.as_deref().map(decode_cursor).transpose().gql(ctx)?.map(AuditEventId);
        let page = app(ctx)?.audit_log(principal(ctx)?, cursor, first).await.gql(ctx)?;
        Ok(connection(page, cursor.is_some(), |e| e.id.0, AuditEvent::from))
    }

    /// The organization's datasets, optionally of one family.
    #[graphql(complexity = "first.unwrap_or(20).clamp(1, crate::MAX_PAGE_SIZE) as usize * child_complexity")]
    async fn datasets(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        family: Option<Family>,
    ) -> async_graphql::Result<Connection<String, Dataset>> {
        let cursor = after.as_deref().map(decode_cursor).transpose().gql(ctx)?;
        let page =
            app(ctx)?.datasets(principal(ctx)?, family.map(|f| tenfold_domain::Family::from(f).as_str()), cursor, first).await.gql(ctx)?;
        Ok(connection(page, cursor.is_some(), |d| d.id, Dataset::from))
    }

    async fn dataset(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Dataset> {
        let id = GlobalId::decode_kind(&id, NodeKind::Dataset, "dataset").gql(ctx)?;
        Ok(app(ctx)?.dataset(principal(ctx)?, id).await.gql(ctx)?.into())
    }

    /// The model families jobs can train, each with its architectures and
    /// hyperparameters (types, ranges, defaults).
    async fn families(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<FamilyInfo>> {
        principal(ctx)?.require(tenfold_app::perms::JOBS_READ).gql(ctx)?;
        Ok(app(ctx)?.families().plans().map(FamilyInfo::from).collect())
    }

    /// The organization's jobs, newest first, optionally in one status.
    /// Without `kind`: the training work (FINE_TUNE, DISTILL, EVALUATE);
    /// `kind: VALIDATE` lists the checks of uploaded dataset versions.
    #[graphql(complexity = "first.unwrap_or(20).clamp(1, crate::MAX_PAGE_SIZE) as usize * child_complexity")]
    async fn jobs(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        status: Option<JobStatus>,
        kind: Option<JobKind>,
    ) -> async_graphql::Result<Connection<String, Job>> {
        let cursor = after.as_deref().map(decode_cursor).transpose().gql(ctx)?;
        let page = app(ctx)?.jobs(principal(ctx)?, kind.map(Into::into), status.map(Into::into), cursor, first).await.gql(ctx)?;
        Ok(connection(page, cursor.is_some(), |j| j.id, Job::from))
    }

    async fn job(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Job> {
        let id = GlobalId::decode_kind(&id, NodeKind::Job, "job").gql(ctx)?;
        Ok(app(ctx)?.job(principal(ctx)?, id).await.gql(ctx)?.into())
    }

    async fn model_version(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ModelVersion> {
        let id = GlobalId::decode_kind(&id, NodeKind::ModelVersion, "model version").gql(ctx)?;
        Ok(app(ctx)?.model_version(principal(ctx)?, id).await.gql(ctx)?.into())
    }

    /// The organization's models (named lines of versions), optionally of one family.
    #[graphql(complexity = "first.unwrap_or(20).clamp(1, crate::MAX_PAGE_SIZE) as usize * child_complexity")]
    async fn models(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        family: Option<Family>,
    ) -> async_graphql::Result<Connection<String, Model>> {
        let cursor = after.as_deref().map(decode_cursor).transpose().gql(ctx)?;
        let page = app(ctx)?.models(principal(ctx)?, family.map(Into::into), cursor, first).await.gql(ctx)?;
        Ok(connection(page, cursor.is_some(), |m| m.id, Model::from))
    }

    /// The organization's hosted endpoints.
    #[graphql(complexity = "first.unwrap_or(20).clamp(1, crate::MAX_PAGE_SIZE) as usize * child_complexity")]
    async fn endpoints(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Endpoint>> {
        let cursor = after.as_deref().map(decode_cursor).transpose().gql(ctx)?;
        let page = app(ctx)?.endpoints(principal(ctx)?, cursor, first).await.gql(ctx)?;
        Ok(connection(page, cursor.is_some(), |e| e.id, Endpoint::from))
    }

    /// Keys issued to the organization's customers (revoked ones on request).
    #[graphql(complexity = "first.unwrap_or(20).clamp(1, crate::MAX_PAGE_SIZE) as usize * child_complexity")]
    async fn customer_keys(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(default = false)] include_revoked: bool,
    ) -> async_graphql::Result<Connection<String, CustomerKey>> {
        let cursor = after.as_deref().map(decode_cursor).transpose().gql(ctx)?;
        let page = app(ctx)?.customer_keys(principal(ctx)?, include_revoked, cursor, first).await.gql(ctx)?;
        Ok(connection(page, cursor.is_some(), |k| k.id, CustomerKey::from))
    }

    /// Usage in `[from, to)`: endpoint requests, images, tokens and model
    /// time, and the compute of jobs, in the plan's units, grouped as asked
    /// (rows are always per unit: units do not add up).
    async fn usage(
        &self,
        ctx: &Context<'_>,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
        #[graphql(default)] group_by: Vec<UsageGroupBy>,
    ) -> async_graphql::Result<Vec<UsageRow>> {
        let groups: Vec<tenfold_app::UsageGroup> = group_by.into_iter().map(Into::into).collect();
        Ok(app(ctx)?.usage(principal(ctx)?, from, to, &groups).await.gql(ctx)?.into_iter().map(UsageRow::from).collect())
    }

    /// A model by id or by name.
    async fn model(&self, ctx: &Context<'_>, id: Option<ID>, name: Option<String>) -> async_graphql::Result<Model> {
        let app = app(ctx)?;
        let p = principal(ctx)?;
        let model = match (id, name) {
            (Some(id), None) => {
                let id = GlobalId::decode_kind(&id, NodeKind::Model, "model").gql(ctx)?;
                app.model(p, id).await
            }
            (None, Some(name)) => app.model_by_name(p, &name).await,
            _ => Err(tenfold_app::AppError::bad_input("id", "give either the model's id or its name")),
        };
        Ok(model.gql(ctx)?.into())
    }

    /// Version A against version B: every metric with its difference and
    /// whether it is beyond noise (paired bootstrap over the shared test
    /// examples), per-class changes, and examples that flipped.
    async fn compare_model_versions(&self, ctx: &Context<'_>, a: ID, b: ID) -> async_graphql::Result<ModelComparison> {
        let a = GlobalId::decode_kind(&a, NodeKind::ModelVersion, "model version").gql(ctx)?;
        let b = GlobalId::decode_kind(&b, NodeKind::ModelVersion, "model version").gql(ctx)?;
        Ok(app(ctx)?.compare_model_versions(principal(ctx)?, a, b).await.gql(ctx)?.into())
    }

    /// The organization's webhook endpoints. Owners and admins.
    async fn webhooks(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Webhook>> {
        Ok(app(ctx)?.webhooks(principal(ctx)?).await.gql(ctx)?.into_iter().map(Webhook::from).collect())
    }

    /// Any object by its global id, if it belongs to the caller's
    /// organization; otherwise NOT_FOUND, exactly as for an id that never existed.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Node> {
        let p = principal(ctx)?;
        let app = app(ctx)?;
        let gid = GlobalId::decode(&id, "object").gql(ctx)?;
        let node = match gid.kind {
            NodeKind::User => {
                // Seen through membership of the caller's organization only.
                let m = app.member(p, UserId(gid.id)).await.map_err(|_| tenfold_app::AppError::not_found("object")).gql(ctx)?;
                Node::User(m.user.into())
            }
            NodeKind::Organization => {
                let o = app.organization(p, Some(OrgId(gid.id))).await.map_err(|_| tenfold_app::AppError::not_found("object")).gql(ctx)?;
                Node::Organization(o.into())
            }
            NodeKind::Invitation => {
                Node::Invitation(app.invitation(p, InvitationId(gid.id)).await.map_err(not_found_unless_forbidden).gql(ctx)?.into())
            }
            NodeKind::ApiKey => Node::ApiKey(app.api_key(p, ApiKeyId(gid.id)).await.map_err(not_found_unless_forbidden).gql(ctx)?.into()),
            NodeKind::Dataset => Node::Dataset(app.dataset(p, gid.id).await.map_err(not_found_unless_forbidden).gql(ctx)?.into()),
            NodeKind::DatasetVersion => {
                Node::DatasetVersion(app.dataset_version(p, gid.id).await.map_err(not_found_unless_forbidden).gql(ctx)?.into())
            }
            NodeKind::Job => Node::Job(app.job(p, gid.id).await.map_err(not_found_unless_forbidden).gql(ctx)?.into()),
            NodeKind::Model => Node::Model(app.model(p, gid.id).await.map_err(not_found_unless_forbidden).gql(ctx)?.into()),
            NodeKind::ModelVersion => {
                Node::ModelVersion(app.model_version(p, gid.id).await.map_err(not_found_unless_forbidden).gql(ctx)?.into())
            }
            NodeKind::Webhook => {
                let hooks = app.webhooks(p).await.gql(ctx)?;
                let hook = hooks.into_iter().find(|w| w.id == gid.id).ok_or_else(|| tenfold_app::AppError::not_found("object")).gql(ctx)?;
                Node::Webhook(hook.into())
            }
            NodeKind::Endpoint => Node::Endpoint(app.endpoint(p, gid.id).await.map_err(not_found_unless_forbidden).gql(ctx)?.into()),
            NodeKind::CustomerKey => {
                Node::CustomerKey(app.customer_key(p, gid.id).await.map_err(not_found_unless_forbidden).gql(ctx)?.into())
            }
            NodeKind::AuditEvent => {
                Node::AuditEvent(app.audit_event(p, AuditEventId(gid.id)).await.map_err(not_found_unless_forbidden).gql(ctx)?.into())
            }
        };
        Ok(node)
    }
}

/// `node` answers every miss with the same NOT_FOUND; a lack of permission
/// stays FORBIDDEN, since it says nothing about the object.
fn not_found_unless_forbidden(e: tenfold_app::AppError) -> tenfold_app::AppError {
    match e.code {
        tenfold_app::ErrorCode::Forbidden | tenfold_app::ErrorCode::Internal => e,
        _ => tenfold_app::AppError::not_found("object"),
    }
}
