use std::sync::Mutex;

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement};
use tenfold_domain::{OrgId, UserId};

use crate::Result;

type Hook = Box<dyn FnOnce() + Send>;

/// One database transaction. Dropping it without `commit` rolls back.
pub struct Tx {
    txn: DatabaseTransaction,
    /// Run after a successful commit only: side effects (live events) that
    /// must not be seen for work that was rolled back.
    after_commit: Mutex<Vec<Hook>>,
}

impl Tx {
    pub(crate) fn new(txn: DatabaseTransaction) -> Self {
        Self { txn, after_commit: Mutex::new(Vec::new()) }
    }

    /// Registers `hook` to run once the transaction has committed.
    pub fn after_commit(&self, hook: impl FnOnce() + Send + 'static) {
        self.after_commit.lock().unwrap_or_else(|p| p.into_inner()).push(Box::new(hook));
    }

    pub fn conn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    pub async fn commit(self) -> Result<()> {
        let hooks = std::mem::take(&mut *self.after_commit.lock().unwrap_or_else(|p| p.into_inner()));
        self.txn.commit().await?;
        for hook in hooks {
            hook();
        }
        Ok(())
    }

    /// Sets the tenant for row-level security until the transaction ends
    /// (`is_local = true`: never leaks to the next user of the connection).
    pub async fn set_tenant(&self, org: OrgId) -> Result<()> {
        self.set_local("app.org_id", org.to_string()).await
    }

    /// Lets the user see their own memberships in other organizations.
    pub async fn set_user(&self, user: UserId) -> Result<()> {
        self.set_local("app.user_id", user.to_string()).await
    }

    /// Lets the API-key authenticator see the one key with this public id.
    pub async fn set_api_key_lookup(&self, lookup_id: &str) -> Result<()> {
        self.set_local("app.api_key_lookup", lookup_id.to_owned()).await
    }

    /// Makes transactions that call this with the same `name` run one at a
    /// time (until commit or rollback). PostgreSQL: a transaction-scoped
    /// advisory lock on the name's hash. SQLite needs nothing: its
    /// transactions begin IMMEDIATE, so writers are serial already.
    pub async fn serialize(&self, name: &str) -> Result<()> {
        if self.txn.get_database_backend() == DbBackend::Postgres {
            self.txn
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                    [name.into()],
                ))
                .await?;
        }
        Ok(())
    }

    async fn set_local(&self, name: &str, value: String) -> Result<()> {
        if self.txn.get_database_backend() == DbBackend::Postgres {
            self.txn
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT set_config($1, $2, true)",
                    [name.into(), value.into()],
                ))
                .await?;
        }
        Ok(())
    }
}
