//! The black-box test harness (after zero-to-production's `spawn_app`):
//! every test gets its own database with real migrations, a server on port
//! 0, a captured SMTP mailbox and typed GraphQL helpers.
//!
//! Backends come from the environment, so the same tests run embedded
//! (SQLite + in-process broker) and on PostgreSQL + Redis:
//! - `TENFOLD_TEST_DATABASE_URL`: an admin URL of a PostgreSQL server
//!   (`postgres://postgres@127.0.0.1:5432/postgres`); each test creates a
//!   fresh database on it and runs as the restricted `tenfold_app` role.
//! - `TENFOLD_TEST_REDIS_URL`: a Redis URL; each test gets its own key prefix.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod app;
mod db;
mod gql;
mod jobs;
mod receiver;
mod redis;
mod serve;
mod smtp;
mod ws;

pub mod browser;
pub use app::{Session, TestApp, fixtures_dir};
pub use db::{APP_ROLE_PASSWORD, TestDb};
pub use gql::GqlResponse;
pub use jobs::{JOB, SUBMIT, WorkerProcess, events, import_chat_base, insert_model_version, mnist_subset, tenfold_binary};
pub use receiver::{Received, Receiver};
pub use redis::RedisServer;
pub use serve::{ServerProcess, free_port};
pub use smtp::{CapturedMail, Mailbox};
pub use ws::{GqlSocket, WsRefused};

pub const PASSWORD: &str = "correct horse battery staple";
