//! The registry migration files model versions made before it under
//! models, numbered by age, without losing a row (SQLite and PostgreSQL).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Database, Statement, Value};
use tenfold_tests::TestDb;
use uuid::Uuid;

const BEFORE_REGISTRY: u32 = 7;

#[tokio::test]
async fn versions_made_before_the_registry_are_filed_under_models() {
    let db = TestDb::create().await;
    let conn = Database::connect(db.owner_url()).await.unwrap();
    Migrator::up(&conn, Some(BEFORE_REGISTRY)).await.unwrap();
    let backend = conn.get_database_backend();
    let exec = |sql: &'static str, values: Vec<Value>| {
        let conn = &conn;
        async move { conn.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await.unwrap() }
    };
    let (org_a, org_b) = (Uuid::now_v7(), Uuid::now_v7());
    for (org, slug) in [(org_a, "a"), (org_b, "b")] {
        exec(
            "INSERT INTO organizations (id, name, slug, plan, created_at) VALUES ($1, $2, $3, 'FREE', $4)",
            vec![
                org.into(),
                format!("Org {slug}").into(),
                format!("org-{slug}-{}", Uuid::new_v4().simple()).into(),
                chrono::Utc::now().into(),
            ],
        )
        .await;
    }
    let t0 = chrono::Utc::now();
    let mut versions = Vec::new();
    for (org, age) in [(org_a, 2), (org_a, 1), (org_b, 5)] {
        let id = Uuid::now_v7();
        let job = Uuid::now_v7();
        versions.push((org, id, job));
        exec(
            "INSERT INTO model_versions (org_id, id, job_id, family, architecture, classes, files, size_bytes, metrics, created_at) \
             VALUES ($1, $2, $3, 'IMAGE_CLASSIFICATION', 'cnn-tiny', '[\"0\",\"1\"]', '{}', 10, '{}', $4)",
            vec![org.into(), id.into(), job.into(), (t0 - chrono::Duration::minutes(age)).into()],
        )
        .await;
    }

    Migrator::up(&conn, None).await.unwrap();

    let rows = conn
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT v.id, v.org_id, v.version, v.job_id, v.lineage, m.name, m.family, m.org_id AS model_org \
             FROM model_versions v JOIN models m ON m.org_id = v.org_id AND m.id = v.model_id ORDER BY v.org_id, v.version",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 3, "every version survives, each under a model");
    let got: Vec<(Uuid, Uuid, i32, String)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get("", "org_id").unwrap(),
                r.try_get("", "id").unwrap(),
                r.try_get("", "version").unwrap(),
                r.try_get("", "name").unwrap(),
            )
        })
        .collect();
    // Org A's two versions: one model, numbered oldest first.
    let in_a: Vec<&(Uuid, Uuid, i32, String)> = got.iter().filter(|r| r.0 == org_a).collect();
    assert_eq!(in_a.len(), 2);
    assert_eq!((in_a[0].1, in_a[0].2), (versions[0].1, 1), "{got:?}");
    assert_eq!((in_a[1].1, in_a[1].2), (versions[1].1, 2), "{got:?}");
    assert!(got.iter().all(|r| r.3 == "model"), "no dataset to name them after: {got:?}");
    for r in &rows {
        let lineage: serde_json::Value = serde_json::from_str(&r.try_get::<String>("", "lineage").unwrap()).unwrap();
        let job: Uuid = r.try_get::<Option<Uuid>>("", "job_id").unwrap().unwrap();
        assert_eq!(lineage["jobId"], serde_json::json!(job), "{lineage}");
        assert_eq!(r.try_get::<Uuid>("", "org_id").unwrap(), r.try_get::<Uuid>("", "model_org").unwrap());
    }
    let models: i64 = conn
        .query_one_raw(Statement::from_string(backend, "SELECT COUNT(*) AS n FROM models"))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "n")
        .unwrap();
    assert_eq!(models, 2, "one model per organization");

    // And back: the versions survive a rollback and a second upgrade.
    Migrator::down(&conn, Some(1)).await.unwrap();
    let count = |sql: &'static str| {
        let conn = &conn;
        async move { conn.query_one_raw(Statement::from_string(backend, sql)).await.unwrap().unwrap().try_get::<i64>("", "n").unwrap() }
    };
    assert_eq!(count("SELECT COUNT(*) AS n FROM model_versions").await, 3);
    Migrator::up(&conn, None).await.unwrap();
    assert_eq!(count("SELECT COUNT(*) AS n FROM model_versions WHERE version > 0").await, 3);
}
