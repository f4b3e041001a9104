use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use tenfold_domain::{ApiKeyId, AuditEventId, OrgId, UserId};

use super::Page;
use crate::entities::audit_events::{self, Entity as AuditEvents};
use crate::{Result, Tx};

pub struct NewAuditEvent {
    pub actor_user: Option<UserId>,
    pub actor_api_key: Option<ApiKeyId>,
    pub action: &'static str,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub details: serde_json::Value,
}

pub async fn insert(tx: &Tx, org: OrgId, event: NewAuditEvent, now: DateTime<Utc>) -> Result<audit_events::Model> {
    let row = audit_events::ActiveModel {
        org_id: Set(org.0),
        id: Set(AuditEventId::new().0),
        actor_user_id: Set(event.actor_user.map(|u| u.0)),
        actor_api_key_id: Set(event.actor_api_key.map(|k| k.0)),
        action: Set(event.action.to_owned()),
        target: Set(event.target),
        ip: Set(event.ip),
        details: Set(event.details.to_string()),
        created_at: Set(now),
    };
    Ok(row.insert(tx.conn()).await?)
}

/// Newest first: ids are time-ordered (UUIDv7), so `after` pages backwards.
pub async fn list(tx: &Tx, org: OrgId, after: Option<AuditEventId>, limit: u64) -> Result<Page<audit_events::Model>> {
    let mut q = AuditEvents::find().filter(audit_events::Column::OrgId.eq(org.0));
    if let Some(after) = after {
        q = q.filter(audit_events::Column::Id.lt(after.0));
    }
    let rows = q.order_by_desc(audit_events::Column::Id).limit(limit + 1).all(tx.conn()).await?;
    Ok(Page::from_overfetch(rows, limit))
}

pub async fn get(tx: &Tx, org: OrgId, id: AuditEventId) -> Result<Option<audit_events::Model>> {
    Ok(AuditEvents::find().filter(audit_events::Column::OrgId.eq(org.0)).filter(audit_events::Column::Id.eq(id.0)).one(tx.conn()).await?)
}
