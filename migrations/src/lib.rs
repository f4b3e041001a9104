//! Schema migrations of Tenfold, one DSL for SQLite and PostgreSQL.
//!
//! Rules every migration follows (checked by `tests/`):
//! - every tenant-owned table has `org_id`, and its primary key and unique
//!   constraints start with it;
//! - on PostgreSQL every tenant table gets row-level security, enabled and
//!   forced, keyed on `app.org_id` set per transaction (see `rls`).

pub use sea_orm_migration::prelude::*;

mod m20261128_000001_identity;
mod m20261128_000002_row_level_security;
mod m20261128_000003_datasets;
mod m20261128_000004_jobs;
mod m20261128_000005_webhooks;
mod m20261130_000006_checkpoint_retirement;
mod m20261201_000007_uploads;
mod m20261201_000008_model_registry;
mod m20261201_000009_endpoints;
mod m20261202_000010_recommendation_feedback;
pub mod rls;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_identity::Migration),
            Box::new(m20261128_000002_row_level_security::Migration),
            Box::new(m20261128_000003_datasets::Migration),
            Box::new(m20261128_000004_jobs::Migration),
            Box::new(m20261128_000005_webhooks::Migration),
            Box::new(m20261130_000006_checkpoint_retirement::Migration),
            Box::new(m20261201_000007_uploads::Migration),
            Box::new(m20261201_000008_model_registry::Migration),
            Box::new(m20261201_000009_endpoints::Migration),
            Box::new(m20261202_000010_recommendation_feedback::Migration),
        ]
    }
}
