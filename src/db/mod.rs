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
///
/// Every connection asks for `synchronous_commit = on`, whatever the server's default: a
/// committed credit movement is on disk before the portal answers. At most `size` connections
/// (`Config::database_pool`).
pub fn pool(options: PgConnectOptions, size: u32) -> PgPool {
    let options = options.options([("synchronous_commit", "on")]);
    PgPoolOptions::new()
        .max_connections(size)
        .min_connections(0)
        // No ping before each use: a dead connection fails its query, is dropped by the pool,
        // and the request answers 503 like any outage (one round trip saved per request).
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(3))
        .idle_timeout(Duration::from_secs(300))
        .connect_lazy_with(options)
}

/// Whether `error` means the database is unreachable or saturated (a 503, and the pool
/// recovers by itself), rather than a bug.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    // A connection closed by a server that is going down shows as an I/O error, or as a
    // protocol error when it closes during the handshake.
    matches!(
        error,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::Io(_)
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed
    )
}

/// One round trip to the database (the health check).
pub async fn ping(pool: &PgPool) -> sqlx::Result<()> {
    sqlx::query_scalar!(r#"SELECT 1 AS "one!""#)
        .fetch_one(pool)
        .await?;
    Ok(())
}

pub mod accounts;
pub mod admin;
pub mod audit;
pub mod billing;
pub mod catalog;
pub mod changes;
pub mod credits;
pub mod generations;
pub mod help;
pub mod help_quality;
pub mod jobs;
pub mod outbox;
pub mod rate_limit;
pub mod second_factor;
pub mod sessions;
pub mod types;
