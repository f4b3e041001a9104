//! Online feedback on recommendations: impressions and clicks that our
//! customers' apps report against a `recommendationId` (the id of the
//! answered request's usage event), kept with the model version that made
//! the recommendation, so an endpoint's click-through rate is known per
//! version (a canary is judged on live behaviour, not only offline NDCG).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::rls;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000010_recommendation_feedback"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("recommendation_events")
                .col(uuid("org_id"))
                // From the client's `eventId` when it gives one: a retried
                // report is counted once.
                .col(uuid("id"))
                .col(uuid("endpoint_id"))
                .col(uuid("model_version_id"))
                .col(uuid("recommendation_id"))
                // `impression` or `click`.
                .col(string_len("event_type", 16))
                .col(string_len_null("item_id", 256))
                .col(timestamp_with_time_zone("created_at"))
                .primary_key(Index::create().col("org_id").col("id"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_recommendation_events_org")
                        .from("recommendation_events", "org_id")
                        .to("organizations", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_recommendation_events_version")
                .table("recommendation_events")
                .col("org_id")
                .col("endpoint_id")
                .col("model_version_id")
                .to_owned(),
        )
        .await?;
        if m.get_database_backend() == DbBackend::Postgres {
            m.get_connection().execute_unprepared(&rls::enable_sql(rls::FEEDBACK_TABLES)).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("recommendation_events").if_exists().to_owned()).await
    }
}
