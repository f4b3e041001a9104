//! The model registry: models (a named line of versions per organization),
//! numbered immutable versions with their lineage, and aliases that move.
//!
//! `model_versions` is rebuilt rather than altered: a version may now come
//! from an import (no job), and SQLite cannot drop a NOT NULL in place.
//! Versions made before the registry are filed under a model named after
//! their job's dataset and numbered by age.

use std::collections::BTreeMap;

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use uuid::Uuid;

use crate::rls;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000008_model_registry"
    }
}

const NEW: &str = "model_versions";

fn versions_table(name: &str) -> TableCreateStatement {
    Table::create()
        .table(name.to_owned())
        .col(uuid("org_id"))
        .col(uuid("id"))
        .col(uuid("model_id"))
        // 1, 2, … within the model, never reused.
        .col(integer("version"))
        // `job` or `import`.
        .col(string_len("source", 16))
        .col(uuid_null("job_id"))
        .col(string_len("family", 32))
        .col(string_len("architecture", 32))
        .col(text("classes"))
        .col(text("files"))
        .col(big_integer("size_bytes"))
        .col(text("metrics"))
        // JSON: dataset version and sha256, job, hyperparameters, base or
        // teacher, engine, split and seed. Written once.
        .col(text("lineage"))
        .col(uuid_null("created_by"))
        .col(timestamp_with_time_zone("created_at"))
        .primary_key(Index::create().col("org_id").col("id"))
        .foreign_key(
            ForeignKey::create()
                .name("fk_model_versions_model")
                .from(name.to_owned(), ("org_id", "model_id"))
                .to("models", ("org_id", "id"))
                .on_delete(ForeignKeyAction::Cascade),
        )
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// One transaction on SQLite too: the rebuild must run on one
    /// connection (another pooled connection can still see the old table
    /// and its indexes), and a failure must leave nothing half done.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let postgres = m.get_database_backend() == DbBackend::Postgres;
        m.create_table(
            Table::create()
                .table("models")
                .col(uuid("org_id"))
                .col(uuid("id"))
                .col(string_len("name", 128))
                .col(string_len("family", 32))
                // JSON: the ship gate's rules for moving `production`.
                .col(text_null("promotion_rules"))
                .col(uuid_null("created_by"))
                .col(timestamp_with_time_zone("created_at"))
                .primary_key(Index::create().col("org_id").col("id"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_models_org")
                        .from("models", "org_id")
                        .to("organizations", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("ux_models_name").table("models").col("org_id").col("name").unique().to_owned()).await?;
        m.create_table(
            Table::create()
                .table("model_aliases")
                .col(uuid("org_id"))
                .col(uuid("model_id"))
                .col(string_len("alias", 64))
                .col(uuid("model_version_id"))
                .col(uuid_null("moved_by"))
                .col(timestamp_with_time_zone("moved_at"))
                .primary_key(Index::create().col("org_id").col("model_id").col("alias"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_model_aliases_model")
                        .from("model_aliases", ("org_id", "model_id"))
                        .to("models", ("org_id", "id"))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("ix_model_aliases_version").table("model_aliases").col("org_id").col("model_version_id").to_owned(),
        )
        .await?;
        m.alter_table(Table::alter().table("jobs").add_column(uuid_null("model_id")).to_owned()).await?;

        if postgres {
            // The owner reads every organization's versions to file them.
            m.get_connection().execute_unprepared("ALTER TABLE model_versions NO FORCE ROW LEVEL SECURITY").await?;
        }
        let old = read_existing_versions(m).await?;
        m.drop_table(Table::drop().table("model_versions").to_owned()).await?;
        m.create_table(versions_table(NEW)).await?;
        file_existing_versions(m, old).await?;
        m.create_index(
            Index::create().name("ux_model_versions_job").table("model_versions").col("org_id").col("job_id").unique().to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_model_versions_number")
                .table("model_versions")
                .col("org_id")
                .col("model_id")
                .col("version")
                .unique()
                .to_owned(),
        )
        .await?;
        if postgres {
            let versions = rls::JOB_TABLES.iter().filter(|(t, _, _)| *t == "model_versions");
            let tables: Vec<_> = rls::REGISTRY_TABLES.iter().chain(versions).copied().collect();
            m.get_connection().execute_unprepared(&rls::enable_sql(&tables)).await?;
        }
        Ok(())
    }

    /// Back to versions without models: refused while an imported version
    /// (which has no job) exists.
    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        let backend = m.get_database_backend();
        let postgres = backend == DbBackend::Postgres;
        if postgres {
            db.execute_unprepared("ALTER TABLE model_versions NO FORCE ROW LEVEL SECURITY").await?;
        }
        let imported =
            db.query_one_raw(Statement::from_string(backend, "SELECT COUNT(*) AS n FROM model_versions WHERE job_id IS NULL")).await?;
        if imported.map(|r| r.try_get::<i64>("", "n")).transpose()?.unwrap_or(0) > 0 {
            return Err(DbErr::Migration("imported model versions have no job; delete them before rolling back the registry".into()));
        }
        let rows = db
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT org_id, id, job_id, family, architecture, classes, files, size_bytes, metrics, created_at FROM model_versions",
            ))
            .await?;
        let mut old = Vec::with_capacity(rows.len());
        for r in rows {
            let created: chrono::DateTime<chrono::Utc> = r.try_get("", "created_at")?;
            let values: Vec<Value> = vec![
                r.try_get::<Uuid>("", "org_id")?.into(),
                r.try_get::<Uuid>("", "id")?.into(),
                r.try_get::<Uuid>("", "job_id")?.into(),
                r.try_get::<String>("", "family")?.into(),
                r.try_get::<String>("", "architecture")?.into(),
                r.try_get::<String>("", "classes")?.into(),
                r.try_get::<String>("", "files")?.into(),
                r.try_get::<i64>("", "size_bytes")?.into(),
                r.try_get::<String>("", "metrics")?.into(),
                created.into(),
            ];
            old.push(values);
        }
        m.drop_table(Table::drop().table("model_versions").to_owned()).await?;
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
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_model_versions_org")
                        .from("model_versions", "org_id")
                        .to("organizations", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("ux_model_versions_job").table("model_versions").col("org_id").col("job_id").unique().to_owned(),
        )
        .await?;
        for values in old {
            db.execute_raw(Statement::from_sql_and_values(
                backend,
                "INSERT INTO model_versions (org_id, id, job_id, family, architecture, classes, files, size_bytes, metrics, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                values,
            ))
            .await?;
        }
        m.drop_table(Table::drop().table("model_aliases").to_owned()).await?;
        m.drop_table(Table::drop().table("models").to_owned()).await?;
        m.alter_table(Table::alter().table("jobs").drop_column("model_id").to_owned()).await?;
        if postgres {
            let versions: Vec<_> = rls::JOB_TABLES.iter().filter(|(t, _, _)| *t == "model_versions").copied().collect();
            db.execute_unprepared(&rls::enable_sql(&versions)).await?;
        }
        Ok(())
    }
}

struct OldVersion {
    org: Uuid,
    id: Uuid,
    job: Uuid,
    family: String,
    dataset: Option<String>,
    values: Vec<Value>,
}

/// The versions made before the registry, oldest first, held in memory
/// while the table is rebuilt (a development database holds a few).
async fn read_existing_versions(m: &SchemaManager<'_>) -> Result<Vec<OldVersion>, DbErr> {
    let db = m.get_connection();
    let backend = m.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT v.org_id, v.id, v.job_id, v.family, v.architecture, v.classes, v.files, v.size_bytes, v.metrics, v.created_at, \
             d.name AS dataset FROM model_versions v \
             LEFT JOIN jobs j ON j.org_id = v.org_id AND j.id = v.job_id \
             LEFT JOIN dataset_versions dv ON dv.org_id = j.org_id AND dv.id = j.dataset_version_id \
             LEFT JOIN datasets d ON d.org_id = dv.org_id AND d.id = dv.dataset_id \
             ORDER BY v.created_at, v.id",
        ))
        .await?;
    let mut old = Vec::with_capacity(rows.len());
    for r in rows {
        let created: chrono::DateTime<chrono::Utc> = r.try_get("", "created_at")?;
        old.push(OldVersion {
            org: r.try_get("", "org_id")?,
            id: r.try_get("", "id")?,
            job: r.try_get("", "job_id")?,
            family: r.try_get("", "family")?,
            dataset: r.try_get("", "dataset")?,
            values: vec![
                r.try_get::<String>("", "architecture")?.into(),
                r.try_get::<String>("", "classes")?.into(),
                r.try_get::<String>("", "files")?.into(),
                r.try_get::<i64>("", "size_bytes")?.into(),
                r.try_get::<String>("", "metrics")?.into(),
                created.into(),
            ],
        });
    }
    Ok(old)
}

/// Files every old version under a model named after its job's dataset,
/// numbered by age, in the new table.
async fn file_existing_versions(m: &SchemaManager<'_>, old: Vec<OldVersion>) -> Result<(), DbErr> {
    let db = m.get_connection();
    let backend = m.get_database_backend();
    // (org, name) → (model id, family, versions so far)
    let mut models: BTreeMap<(Uuid, String), (Uuid, String, i32)> = BTreeMap::new();
    for v in old {
        let base = v.dataset.clone().unwrap_or_else(|| "model".to_owned());
        let mut name = base.clone();
        let mut n = 2;
        // A name is one model of one family.
        while models.get(&(v.org, name.clone())).is_some_and(|(_, f, _)| *f != v.family) {
            name = format!("{base}-{n}");
            n += 1;
        }
        let created = v.values[5].clone();
        let entry = match models.get_mut(&(v.org, name.clone())) {
            Some(e) => e,
            None => {
                let id = Uuid::now_v7();
                db.execute_raw(Statement::from_sql_and_values(
                    backend,
                    "INSERT INTO models (org_id, id, name, family, promotion_rules, created_by, created_at) VALUES ($1, $2, $3, $4, NULL, NULL, $5)",
                    [v.org.into(), id.into(), name.clone().into(), v.family.clone().into(), created.clone()],
                ))
                .await?;
                models.entry((v.org, name)).or_insert((id, v.family.clone(), 0))
            }
        };
        entry.2 += 1;
        let lineage = serde_json::json!({ "source": "job", "jobId": v.job }).to_string();
        let mut values: Vec<Value> = vec![v.org.into(), v.id.into(), entry.0.into(), entry.2.into(), v.job.into(), v.family.into()];
        values.extend(v.values);
        values.push(lineage.into());
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "INSERT INTO {NEW} (org_id, id, model_id, version, source, job_id, family, architecture, classes, files, size_bytes, \
                 metrics, created_at, lineage, created_by) VALUES ($1, $2, $3, $4, 'job', $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL)"
            ),
            values,
        ))
        .await?;
    }
    Ok(())
}
