//! Announcing changes to every instance (`crate::cache`): PostgreSQL's `NOTIFY`.

use sqlx::PgPool;

/// Sends `payload` on `channel`, after this call's own commit and without waiting for the disk:
/// a lost notification only matters if the server crashed, and then every listener reconnects
/// and forgets all it kept.
pub async fn notify(pool: &PgPool, channel: &str, payload: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, $2)",
        channel,
        payload
    )
    .fetch_one(pool)
    .await
    .map(|_| ())
}
