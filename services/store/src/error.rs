use std::panic::Location;

use sea_orm::{DbErr, SqlErr};

/// A failed store call, with the place in the store that made it: the
/// conversion runs at each query's `?` (`#[track_caller]`), so a logged
/// error names the query that failed, not just "database error".
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write; the message names it.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error in {}:{}", at.file(), at.line())]
    Db {
        #[source]
        source: DbErr,
        at: &'static Location<'static>,
    },
}

impl From<DbErr> for StoreError {
    #[track_caller]
    fn from(err: DbErr) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(detail)) => StoreError::Conflict(detail),
            _ => StoreError::Db { source: err, at: Location::caller() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failing() -> Result<(), StoreError> {
        Err(DbErr::Custom("boom".into()))?;
        Ok(())
    }

    #[test]
    fn a_database_error_names_the_line_that_made_the_call() {
        let err = failing().unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with("database error in services/store/src/error.rs:"), "{shown}");
        let line = shown.rsplit(':').next().unwrap().parse::<u32>().unwrap();
        assert_eq!(line, line!() - 10, "the `?` in failing()");
    }
}
