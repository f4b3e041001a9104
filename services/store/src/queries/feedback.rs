//! Feedback on recommendations (a tenant table): impressions and clicks
//! against the usage event that answered, counted per model version.

use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, FromQueryResult, QueryFilter, QuerySelect};
use tenfold_domain::OrgId;
use uuid::Uuid;

use crate::entities::recommendation_events::{self, Entity as Events};
use crate::entities::usage_events::{self, Entity as Usage};
use crate::{Result, Tx};

/// The answered request a recommendation id names (the endpoint and
/// version that made it), if the organization has it.
pub async fn recommendation(tx: &Tx, org: OrgId, id: Uuid) -> Result<Option<usage_events::Model>> {
    Ok(Usage::find()
        .filter(usage_events::Column::OrgId.eq(org.0))
        .filter(usage_events::Column::Id.eq(id))
        .filter(usage_events::Column::StatusClass.eq(2))
        .one(tx.conn())
        .await?)
}

/// Records events whose ids are new; returns how many were.
pub async fn record(tx: &Tx, events: Vec<recommendation_events::Model>) -> Result<u64> {
    let mut new = 0;
    for event in events {
        new += Events::insert(recommendation_events::ActiveModel::from(event))
            .on_conflict(
                OnConflict::columns([recommendation_events::Column::OrgId, recommendation_events::Column::Id]).do_nothing().to_owned(),
            )
            .exec_without_returning(tx.conn())
            .await?;
    }
    Ok(new)
}

/// Events of one type for one version of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct Counted {
    pub model_version_id: Uuid,
    pub event_type: String,
    pub events: i64,
}

/// Impressions and clicks per version of an endpoint.
pub async fn counts(tx: &Tx, org: OrgId, endpoint: Uuid) -> Result<Vec<Counted>> {
    Ok(Events::find()
        .select_only()
        .column(recommendation_events::Column::ModelVersionId)
        .column(recommendation_events::Column::EventType)
        .column_as(recommendation_events::Column::Id.count(), "events")
        .filter(recommendation_events::Column::OrgId.eq(org.0))
        .filter(recommendation_events::Column::EndpointId.eq(endpoint))
        .group_by(recommendation_events::Column::ModelVersionId)
        .group_by(recommendation_events::Column::EventType)
        .into_model::<Counted>()
        .all(tx.conn())
        .await?)
}
