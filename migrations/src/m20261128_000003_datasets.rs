//! Datasets and their immutable versions.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::rls;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000003_datasets"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("datasets")
                .col(uuid("org_id"))
                .col(uuid("id"))
                .col(string_len("name", 100))
                .col(string_len("family", 32))
                .col(uuid_null("created_by"))
                .col(timestamp_with_time_zone("created_at"))
                .primary_key(Index::create().col("org_id").col("id"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_datasets_org")
                        .from("datasets", "org_id")
                        .to("organizations", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("ux_datasets_name").table("datasets").col("org_id").col("name").unique().to_owned()).await?;

        m.create_table(
            Table::create()
                .table("dataset_versions")
                .col(uuid("org_id"))
                .col(uuid("id"))
                .col(uuid("dataset_id"))
                .col(integer("version"))
                .col(string_len("status", 16))
                .col(string_len("file_name", 255))
                .col(big_integer("size_bytes"))
                .col(string_len("sha256", 64))
                .col(text_null("stats"))
                .col(text_null("problems"))
                .col(text_null("warnings"))
                .col(text_null("preview"))
                .col(text_null("splits"))
                .col(text_null("redaction"))
                .col(big_integer("problem_count").default(0))
                .col(uuid_null("created_by"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone_null("validated_at"))
                .primary_key(Index::create().col("org_id").col("id"))
                // Composite: a version can only ever point at a dataset of its own organization.
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_dataset_versions_dataset")
                        .from("dataset_versions", ("org_id", "dataset_id"))
                        .to("datasets", ("org_id", "id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_dataset_versions_number")
                .table("dataset_versions")
                .col("org_id")
                .col("dataset_id")
                .col("version")
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("ix_dataset_versions_sha").table("dataset_versions").col("org_id").col("sha256").to_owned())
            .await?;

        if m.get_database_backend() == DbBackend::Postgres {
            m.get_connection().execute_unprepared(&rls::enable_sql(rls::DATASET_TABLES)).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("dataset_versions").if_exists().to_owned()).await?;
        m.drop_table(Table::drop().table("datasets").if_exists().to_owned()).await?;
        Ok(())
    }
}
