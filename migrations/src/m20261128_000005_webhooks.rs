//! Webhooks: an organization's endpoints, every delivery with its attempts,
//! and the global index of deliveries due.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::rls;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000005_webhooks"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("webhooks")
                .col(uuid("org_id"))
                .col(uuid("id"))
                .col(string_len("url", 2048))
                // The signing secret: HMAC needs it, so it is kept (under RLS), shown once.
                .col(string_len("secret", 128))
                // JSON: the event types it receives.
                .col(text("events"))
                .col(uuid_null("created_by"))
                .col(timestamp_with_time_zone("created_at"))
                .primary_key(Index::create().col("org_id").col("id"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_webhooks_org")
                        .from("webhooks", "org_id")
                        .to("organizations", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("webhook_deliveries")
                .col(uuid("org_id"))
                .col(uuid("id"))
                .col(uuid("webhook_id"))
                .col(string_len("event", 64))
                .col(text("payload"))
                // pending, delivered or failed.
                .col(string_len("status", 16))
                .col(integer("attempts").default(0))
                .col(integer_null("last_status"))
                .col(text_null("last_error"))
                .col(timestamp_with_time_zone("next_attempt_at"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone_null("delivered_at"))
                .primary_key(Index::create().col("org_id").col("id"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_webhook_deliveries_webhook")
                        .from("webhook_deliveries", ("org_id", "webhook_id"))
                        .to("webhooks", ("org_id", "id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // Global: which deliveries are due, across organizations (ids and times only).
        m.create_table(
            Table::create()
                .table("webhook_outbox")
                .col(uuid("delivery_id").primary_key())
                .col(uuid("org_id"))
                .col(timestamp_with_time_zone("due_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("ix_webhook_outbox_due").table("webhook_outbox").col("due_at").to_owned()).await?;
        if m.get_database_backend() == DbBackend::Postgres {
            m.get_connection().execute_unprepared(&rls::enable_sql(rls::WEBHOOK_TABLES)).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["webhook_outbox", "webhook_deliveries", "webhooks"] {
            m.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
