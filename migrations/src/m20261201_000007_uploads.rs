//! Resumable uploads (tus 1.0): one row per upload in progress, its bytes
//! staged in blob storage as parts, and the global index of when uploads
//! expire, for the sweeper.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::rls;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000007_uploads"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("uploads")
                .col(uuid("org_id"))
                .col(uuid("id"))
                // The dataset it becomes, from `Upload-Metadata`.
                .col(string_len("name", 128))
                .col(string_len("family", 32))
                .col(string_len("file_name", 255))
                .col(boolean("redact").default(false))
                // Hex SHA-256 of the whole file, when the client gave one.
                .col(string_len_null("sha256", 64))
                // The raw `Upload-Metadata` header, echoed by HEAD.
                .col(text("metadata"))
                .col(big_integer("length"))
                .col(big_integer("offset"))
                // JSON `[[sha256, bytes], …]`: the staged parts, in order.
                .col(text("parts"))
                .col(uuid_null("dataset_version_id"))
                .col(uuid_null("created_by"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("expires_at"))
                .primary_key(Index::create().col("org_id").col("id"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_uploads_org")
                        .from("uploads", "org_id")
                        .to("organizations", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // Global: when each upload expires, across organizations (ids and a time only).
        m.create_table(
            Table::create()
                .table("upload_expiry")
                .col(uuid("upload_id").primary_key())
                .col(uuid("org_id"))
                .col(timestamp_with_time_zone("expires_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("ix_upload_expiry_at").table("upload_expiry").col("expires_at").to_owned()).await?;
        if m.get_database_backend() == DbBackend::Postgres {
            m.get_connection().execute_unprepared(&rls::enable_sql(rls::UPLOAD_TABLES)).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["upload_expiry", "uploads"] {
            m.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
