use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement};
use tenfold_domain::{OrgId, UserId};

use crate::Result;

/// One database transaction. Dropping it without `commit` rolls back.
pub struct Tx {
    txn: DatabaseTransaction,
}

impl Tx {
    pub(crate) fn new(txn: DatabaseTransaction) -> Self {
        Self { txn }
    }

    pub fn conn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    pub async fn commit(self) -> Result<()> {
        self.txn.commit().await?;
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
