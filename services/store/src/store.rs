use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, SqliteTransactionMode, TransactionOptions, TransactionTrait};
use tenfold_domain::{OrgId, UserId};
use tracing::info;

use crate::{Result, Tx};

#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub url: String,
    pub max_connections: u32,
    pub statement_timeout_ms: u64,
    pub idle_in_transaction_timeout_ms: u64,
}

/// A pool of database connections. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    pub async fn connect(opts: &ConnectOptions) -> Result<Self> {
        let mut o = sea_orm::ConnectOptions::new(opts.url.clone());
        o.max_connections(opts.max_connections.max(1))
            .min_connections(0)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(10))
            .sqlx_logging(false);
        if opts.url.starts_with("sqlite:") {
            // SQLite serialises writers; WAL lets readers go on meanwhile and
            // busy_timeout makes a writer wait instead of failing at once.
            // In WAL mode `synchronous = NORMAL` keeps every commit through a
            // crash of the process (`kill -9`: the metering test) and skips
            // the fsync per commit; only an OS crash or power loss can lose
            // the last commits, which the embedded backend accepts
            // (PostgreSQL is the production database).
            o.map_sqlx_sqlite_opts(|so| {
                so.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
                    .create_if_missing(true)
            });
        } else {
            let timeout = opts.statement_timeout_ms.to_string();
            let idle = opts.idle_in_transaction_timeout_ms.to_string();
            o.map_sqlx_postgres_opts(move |po| {
                po.options([("statement_timeout", timeout.as_str()), ("idle_in_transaction_session_timeout", idle.as_str())])
            });
        }
        let db = Database::connect(o).await?;
        Ok(Self { db })
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> Result<()> {
        Migrator::up(&self.db, None).await?;
        info!("database migrations applied");
        Ok(())
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Why the connected role escapes row-level security (a superuser, or
    /// BYPASSRLS), if it does; `None` when RLS applies to it, and on SQLite,
    /// which has none.
    pub async fn rls_bypass(&self) -> Result<Option<String>> {
        if self.backend() != DbBackend::Postgres {
            return Ok(None);
        }
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                DbBackend::Postgres,
                "SELECT current_user::text AS name, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
            ))
            .await?;
        let Some(row) = row else { return Ok(None) };
        let name: String = row.try_get("", "name")?;
        let (superuser, bypass): (bool, bool) = (row.try_get("", "rolsuper")?, row.try_get("", "rolbypassrls")?);
        Ok(match (superuser, bypass) {
            (true, _) => Some(format!("the database role {name:?} is a superuser")),
            (_, true) => Some(format!("the database role {name:?} has BYPASSRLS")),
            _ => None,
        })
    }

    pub async fn ping(&self) -> Result<()> {
        self.db.ping().await?;
        Ok(())
    }

    /// A transaction with no tenant: for the global identity tables only
    /// (users, refresh tokens, emailed tokens). On PostgreSQL tenant rows are
    /// invisible inside it.
    pub async fn begin(&self) -> Result<Tx> {
        // SQLite: take the write lock at BEGIN (IMMEDIATE). A deferred
        // transaction that reads and then writes fails at once with
        // SQLITE_BUSY when another writer committed meanwhile; an immediate
        // one waits its turn (busy_timeout). PostgreSQL ignores the option.
        let options = TransactionOptions { sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate), ..Default::default() };
        Ok(Tx::new(self.db.begin_with_options(options).await?))
    }

    /// A transaction scoped to `org`, acting for `user` when there is one.
    pub async fn tenant(&self, org: OrgId, user: Option<UserId>) -> Result<Tx> {
        let tx = self.begin().await?;
        tx.set_tenant(org).await?;
        if let Some(user) = user {
            tx.set_user(user).await?;
        }
        Ok(tx)
    }

    pub async fn close(self) -> Result<()> {
        self.db.close().await?;
        Ok(())
    }
}
