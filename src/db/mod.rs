//! Database access: the server (embedded default), the pool and migrations, and one module per
//! table group. Query functions take `&mut PgConnection` so that services compose them in one
//! transaction.

pub mod server;

use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub static MIGRATOR: Migrator = sqlx::migrate!();

/// A pool that connects lazily and gives up quickly, so that a database outage turns into a 503
/// page and `/healthz` rather than hanging requests, and the pool recovers by itself afterwards.
pub fn pool(options: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(10)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(3))
        .idle_timeout(Duration::from_secs(300))
        .connect_lazy_with(options)
}

pub mod accounts;
pub mod catalog;
pub mod help;
pub mod jobs;
pub mod outbox;
pub mod rate_limit;
pub mod sessions;
pub mod types;
