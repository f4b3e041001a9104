//! Hosted endpoints: deployments of a model version or alias, the keys our
//! tenants issue to their own customers, and exact usage metering (one
//! event per answered request, rolled up by hour in the same transaction).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::rls;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000009_endpoints"
    }
}

fn org_fk(table: &str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{table}_org"))
        .from(table.to_owned(), "org_id")
        .to("organizations", "id")
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("endpoints")
                .col(uuid("org_id"))
                .col(uuid("id"))
                // The name in `/v2/models/<slug>`, unique in the organization.
                .col(string_len("slug", 64))
                .col(uuid("model_id"))
                .col(string_len("family", 32))
                // Exactly one of: a pinned version, or an alias it follows.
                .col(uuid_null("model_version_id"))
                .col(string_len_null("alias", 64))
                // A canary: a second version taking a share of the callers.
                .col(uuid_null("canary_version_id"))
                .col(integer("canary_percent").default(0))
                // JSON: when the canary is rolled back by itself.
                .col(text_null("canary_rules"))
                .col(integer("min_replicas"))
                .col(integer("max_replicas"))
                .col(integer("max_batch_size"))
                .col(integer("max_batch_delay_ms"))
                .col(integer("idle_unload_seconds"))
                // `active` or `paused`.
                .col(string_len("state", 16))
                // The last measured load of the model, unloaded to first answer.
                .col(big_integer_null("cold_start_ms"))
                .col(uuid_null("created_by"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .primary_key(Index::create().col("org_id").col("id"))
                .foreign_key(&mut org_fk("endpoints"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_endpoints_model")
                        .from("endpoints", ("org_id", "model_id"))
                        .to("models", ("org_id", "id"))
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("ux_endpoints_slug").table("endpoints").col("org_id").col("slug").unique().to_owned()).await?;

        m.create_table(
            Table::create()
                .table("customer_keys")
                .col(uuid("org_id"))
                .col(uuid("id"))
                // Public part of the key, found before the tenant is known.
                .col(string_len("lookup_id", 16))
                .col(string_len("secret_hash", 64))
                .col(string_len("name", 128))
                // JSON object of the tenant's own strings (their customer id…).
                .col(text("metadata"))
                // JSON array of endpoint ids the key may call.
                .col(text("endpoint_ids"))
                .col(integer_null("rate_per_minute"))
                .col(big_integer_null("monthly_quota"))
                .col(uuid_null("created_by"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone_null("revoked_at"))
                .primary_key(Index::create().col("org_id").col("id"))
                .foreign_key(&mut org_fk("customer_keys"))
                .to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("ux_customer_keys_lookup").table("customer_keys").col("lookup_id").unique().to_owned()).await?;

        // The outbox of metering: written before the answer leaves; its id is
        // the dedupe key (a retried request with the same idempotency key
        // maps to the same id and is counted once).
        m.create_table(
            Table::create()
                .table("usage_events")
                .col(uuid("org_id"))
                .col(uuid("id"))
                .col(uuid("endpoint_id"))
                .col(uuid("model_version_id"))
                .col(uuid_null("api_key_id"))
                .col(uuid_null("customer_key_id"))
                .col(integer("requests"))
                .col(integer("images"))
                .col(integer("input_tokens"))
                .col(integer("output_tokens"))
                .col(big_integer("compute_ms"))
                // 2, 4 or 5: the class of the HTTP status answered.
                .col(small_integer("status_class"))
                .col(timestamp_with_time_zone("created_at"))
                .primary_key(Index::create().col("org_id").col("id"))
                .foreign_key(&mut org_fk("usage_events"))
                .to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("ix_usage_events_time").table("usage_events").col("org_id").col("created_at").to_owned())
            .await?;

        // Hourly sums of the events, grown in the transaction that inserts
        // each new event. "No key" is the nil id (keys are part of the key).
        m.create_table(
            Table::create()
                .table("usage_rollups")
                .col(uuid("org_id"))
                .col(timestamp_with_time_zone("hour"))
                .col(uuid("endpoint_id"))
                .col(uuid("model_version_id"))
                .col(uuid("api_key_id"))
                .col(uuid("customer_key_id"))
                .col(small_integer("status_class"))
                .col(big_integer("requests"))
                .col(big_integer("images"))
                .col(big_integer("input_tokens"))
                .col(big_integer("output_tokens"))
                .col(big_integer("compute_ms"))
                .primary_key(
                    Index::create()
                        .col("org_id")
                        .col("hour")
                        .col("endpoint_id")
                        .col("model_version_id")
                        .col("api_key_id")
                        .col("customer_key_id")
                        .col("status_class"),
                )
                .foreign_key(&mut org_fk("usage_rollups"))
                .to_owned(),
        )
        .await?;
        if m.get_database_backend() == DbBackend::Postgres {
            m.get_connection().execute_unprepared(&rls::enable_sql(rls::ENDPOINT_TABLES)).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["usage_rollups", "usage_events", "customer_keys", "endpoints"] {
            m.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
