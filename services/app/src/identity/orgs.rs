//! The organization itself, its audit log, and the platform admin's plan change.

use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::json;
use tenfold_domain::{AuditEventId, OrgId, Plan};
use tenfold_store::queries::{Page, audit, orgs};

use crate::App;
use crate::audit_action::AuditAction;
use crate::error::{AppError, AppResult};
use crate::principal::{Principal, RequestMeta, perms};
use crate::tenancy::{audit_topic, audit_view, org_view};
use crate::views::{AuditEventView, OrgView};

impl App {
    /// The caller's organization; another id gets NOT_FOUND.
    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn organization(&self, p: &Principal, id: Option<OrgId>) -> AppResult<OrgView> {
        p.require(perms::ORG_READ)?;
        if id.is_some_and(|id| id != p.org) {
            return Err(AppError::not_found("organization"));
        }
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let row = orgs::get(&tx, p.org).await?.ok_or_else(|| AppError::not_found("organization"))?;
        tx.commit().await?;
        org_view(&row)
    }

    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn audit_log(&self, p: &Principal, after: Option<AuditEventId>, first: Option<i32>) -> AppResult<Page<AuditEventView>> {
        p.require(perms::AUDIT_READ)?;
        let limit = self.page_size(first)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let page = audit::list(&tx, p.org, after, limit).await?;
        tx.commit().await?;
        Ok(Page { rows: page.rows.iter().map(audit_view).collect(), has_next: page.has_next })
    }

    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn audit_event(&self, p: &Principal, id: AuditEventId) -> AppResult<AuditEventView> {
        p.require(perms::AUDIT_READ)?;
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let row = audit::get(&tx, p.org, id).await?.ok_or_else(|| AppError::not_found("audit event"))?;
        tx.commit().await?;
        Ok(audit_view(&row))
    }

    /// The organization's audit events as they happen (owners and admins).
    /// The bus carries only event ids; each event is re-read through the
    /// same permission and tenant checks as `auditLog`.
    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn subscribe_audit_events(&self, p: &Principal) -> AppResult<BoxStream<'static, AppResult<AuditEventView>>> {
        p.require(perms::AUDIT_READ)?;
        let ids = self.inner.bus.subscribe(&audit_topic(p.org)).await?;
        let (app, p) = (self.clone(), p.clone());
        Ok(ids
            .filter_map(|raw| async move { uuid::Uuid::try_parse(&raw).ok() })
            .then(move |id| {
                let (app, p) = (app.clone(), p.clone());
                async move { app.audit_event(&p, AuditEventId(id)).await }
            })
            .boxed())
    }

    /// Changes an organization's plan: a platform operator's action (the
    /// `tenfold admin set-plan` command), never reachable from the API.
    #[tracing::instrument(skip_all, fields(org = %org))]
    pub async fn set_plan(&self, org: OrgId, plan: Plan) -> AppResult<OrgView> {
        let tx = self.inner.store.tenant(org, None).await?;
        let before = orgs::get(&tx, org).await?.ok_or_else(|| AppError::not_found("organization"))?;
        orgs::set_plan(&tx, org, plan).await?;
        let meta = RequestMeta { ip: None, request_id: "admin-cli".into() };
        self.record(
            &tx,
            org,
            None,
            &meta,
            AuditAction::OrgPlanChanged,
            Some(format!("org:{org}")),
            json!({ "from": before.plan, "to": plan.as_str() }),
        )
        .await?;
        let row = orgs::get(&tx, org).await?.ok_or_else(|| AppError::not_found("organization"))?;
        tx.commit().await?;
        org_view(&row)
    }
}
