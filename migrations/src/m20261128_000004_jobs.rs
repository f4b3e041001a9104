//! Jobs: the job row (the truth), its events and checkpoints, the model
//! versions and usage it produces, and the scheduling index the workers
//! share across organizations.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::rls;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000004_jobs"
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

fn job_fk(table: &str) -> ForeignKeyCreateStatement {
    // Composite: a child row can only ever point at a job of its own organization.
    ForeignKey::create()
        .name(format!("fk_{table}_job"))
        .from(table.to_owned(), ("org_id", "job_id"))
        .to("jobs", ("org_id", "id"))
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("jobs")
                .col(uuid("org_id"))
                .col(uuid("id"))
                .col(string_len("kind", 16))
                .col(string_len("family", 32))
                .col(string_len("status", 16))
                .col(uuid("dataset_version_id"))
                .col(string_len_null("architecture", 32))
                .col(uuid_null("base_model_version_id"))
                .col(uuid_null("teacher_model_version_id"))
                .col(text("hyperparameters"))
                .col(integer("priority"))
                .col(string_len_null("idempotency_key", 255))
                .col(string_len("request_hash", 64))
                .col(string_len("device", 16))
                .col(integer("memory_mb"))
                // The fencing token: bumped by every claim; every write of a
                // worker must name the attempt it holds.
                .col(integer("attempt").default(0))
                .col(integer("failures").default(0))
                .col(integer("max_attempts"))
                .col(string_len_null("lease_owner", 128))
                .col(timestamp_with_time_zone_null("lease_until"))
                .col(timestamp_with_time_zone("run_after"))
                .col(boolean("cancel_requested").default(false))
                .col(big_integer("event_seq").default(0))
                .col(big_integer("estimate_seconds"))
                .col(double("compute_seconds").default(0.0))
                .col(string_len_null("error_code", 64))
                .col(text_null("error_message"))
                .col(boolean("dead_lettered").default(false))
                .col(text_null("result"))
                .col(uuid_null("model_version_id"))
                .col(uuid_null("submitted_by"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone_null("started_at"))
                .col(timestamp_with_time_zone_null("finished_at"))
                .primary_key(Index::create().col("org_id").col("id"))
                .foreign_key(&mut org_fk("jobs"))
                .to_owned(),
        )
        .await?;
        // The same key twice is the same job (NULL keys never collide).
        m.create_index(Index::create().name("ux_jobs_idempotency").table("jobs").col("org_id").col("idempotency_key").unique().to_owned())
            .await?;
        m.create_index(Index::create().name("ix_jobs_status").table("jobs").col("org_id").col("status").to_owned()).await?;

        m.create_table(
            Table::create()
                .table("job_events")
                .col(uuid("org_id"))
                .col(uuid("job_id"))
                .col(big_integer("seq"))
                .col(integer("attempt"))
                .col(string_len("kind", 16))
                .col(text("payload"))
                .col(timestamp_with_time_zone("created_at"))
                .primary_key(Index::create().col("org_id").col("job_id").col("seq"))
                .foreign_key(&mut job_fk("job_events"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("job_checkpoints")
                .col(uuid("org_id"))
                .col(uuid("job_id"))
                .col(integer("epoch"))
                .col(integer("attempt"))
                // {file name: sha256} of the blobs that make up the checkpoint.
                .col(text("files"))
                .col(big_integer("size_bytes"))
                .col(timestamp_with_time_zone("created_at"))
                .primary_key(Index::create().col("org_id").col("job_id").col("epoch"))
                .foreign_key(&mut job_fk("job_checkpoints"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("model_versions")
                .col(uuid("org_id"))
                .col(uuid("id"))
                .col(uuid("job_id"))
                .col(string_len("family", 32))
                .col(string_len("architecture", 32))
                .col(text("classes"))
                .col(text("files"))
                .col(big_integer("size_bytes"))
                .col(text("metrics"))
                .col(timestamp_with_time_zone("created_at"))
                .primary_key(Index::create().col("org_id").col("id"))
                .foreign_key(&mut org_fk("model_versions"))
                .to_owned(),
        )
        .await?;
        // One model version per job, whatever happens to its attempts.
        m.create_index(
            Index::create().name("ux_model_versions_job").table("model_versions").col("org_id").col("job_id").unique().to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("usage_records")
                .col(uuid("org_id"))
                .col(uuid("id"))
                // Idempotency: the same fact recorded twice is one record.
                .col(string_len("source_key", 200))
                .col(string_len("meter", 32))
                .col(string_len("device", 16))
                .col(double("quantity"))
                .col(uuid_null("job_id"))
                .col(timestamp_with_time_zone("created_at"))
                .primary_key(Index::create().col("org_id").col("id"))
                .foreign_key(&mut org_fk("usage_records"))
                .to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("ux_usage_source").table("usage_records").col("org_id").col("source_key").unique().to_owned())
            .await?;

        // Global: the scheduling index of unfinished jobs (ids and
        // scheduling facts only, no customer data). It is the outbox too:
        // a `waiting` row is written in the job's own transaction, and the
        // relay hands it to the broker.
        m.create_table(
            Table::create()
                .table("job_dispatch")
                .col(uuid("job_id").primary_key())
                .col(uuid("org_id"))
                .col(string_len("state", 16))
                .col(integer("priority"))
                .col(string_len("device", 16))
                .col(integer("memory_mb"))
                .col(integer("concurrency"))
                .col(big_integer("estimate_seconds"))
                .col(timestamp_with_time_zone("run_after"))
                .col(timestamp_with_time_zone_null("lease_until"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone_null("dispatched_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("ix_job_dispatch_state").table("job_dispatch").col("state").col("device").to_owned()).await?;
        m.create_index(Index::create().name("ix_job_dispatch_org").table("job_dispatch").col("org_id").col("state").to_owned()).await?;

        // Global: when each organization last got a slot (fair share).
        m.create_table(
            Table::create()
                .table("job_fair_share")
                .col(uuid("org_id").primary_key())
                .col(timestamp_with_time_zone("last_started_at"))
                .to_owned(),
        )
        .await?;

        // Global: the workers alive, for capacity and ETAs.
        m.create_table(
            Table::create()
                .table("workers")
                .col(string_len("id", 128).primary_key())
                .col(string_len("device", 16))
                .col(integer("slots"))
                .col(integer("memory_mb"))
                .col(timestamp_with_time_zone("started_at"))
                .col(timestamp_with_time_zone("heartbeat_at"))
                .to_owned(),
        )
        .await?;

        if m.get_database_backend() == DbBackend::Postgres {
            m.get_connection().execute_unprepared(&rls::enable_sql(rls::JOB_TABLES)).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in
            ["workers", "job_fair_share", "job_dispatch", "usage_records", "model_versions", "job_checkpoints", "job_events", "jobs"]
        {
            m.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
