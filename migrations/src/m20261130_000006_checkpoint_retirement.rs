//! Checkpoints are working files: when a job ends their blobs are deleted
//! and the row stays as a record (epoch, attempt, size), marked retired.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261130_000006_checkpoint_retirement"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table("job_checkpoints").add_column(timestamp_with_time_zone_null("retired_at")).to_owned()).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table("job_checkpoints").drop_column("retired_at").to_owned()).await
    }
}
