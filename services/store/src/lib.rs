//! Persistence: sea-orm entities and the queries the use cases need.
//!
//! Tenant safety works in two layers. Every query on a tenant-owned table
//! takes the `OrgId` as a required parameter and filters on it (the only
//! lock on SQLite). On PostgreSQL, `Store::tenant` also sets `app.org_id`
//! for the transaction, so row-level security refuses anything the first
//! layer might miss.

pub mod blobs;
pub mod entities;
mod error;
pub mod queries;
mod store;
mod tx;

pub use blobs::{BlobError, BlobStore, LocalBlob, S3Options, sha256_of};
pub use error::StoreError;
pub use sea_orm::DbBackend;
pub use store::{ConnectOptions, Store};
pub use tx::Tx;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
