//! Fixed-window rate limits kept in Postgres, so that every portal instance shares them.

use sqlx::PgConnection;

/// Counts one hit for `key` in the current window of `window_secs`; returns `Ok(None)` when it
/// is allowed, or `Ok(Some(seconds))` to wait before the window ends when over `max`.
pub async fn hit(
    conn: &mut PgConnection,
    key: &str,
    window_secs: i32,
    max: i32,
) -> sqlx::Result<Option<i64>> {
    let row = sqlx::query!(
        r#"WITH w AS (
               SELECT to_timestamp(floor(extract(epoch FROM now())::float8 / $2::float8) * $2::float8) AS start
           )
           INSERT INTO rate_limits (key, window_start, hits)
           SELECT $1, w.start, 1 FROM w
           ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_limits.hits + 1
           RETURNING hits, ceil(extract(epoch FROM window_start + make_interval(secs => $2::float8) - now()))::bigint AS "retry_after!""#,
        key,
        f64::from(window_secs)
    )
    .fetch_one(&mut *conn)
    .await?;
    // Now and then, forget windows that have ended.
    if row.hits == 1 {
        sqlx::query!("DELETE FROM rate_limits WHERE window_start < now() - interval '1 day'")
            .execute(conn)
            .await?;
    }
    Ok((row.hits > max).then_some(row.retry_after.max(1)))
}

/// Hits counted for `key` in the current window, without adding one.
pub async fn current(conn: &mut PgConnection, key: &str, window_secs: i32) -> sqlx::Result<i64> {
    let hits = sqlx::query_scalar!(
        "SELECT hits FROM rate_limits
         WHERE key = $1 AND window_start = to_timestamp(floor(extract(epoch FROM now())::float8 / $2::float8) * $2::float8)",
        key,
        f64::from(window_secs)
    )
    .fetch_optional(conn)
    .await?;
    Ok(hits.map(i64::from).unwrap_or(0))
}

/// Seconds left in the current window.
pub fn window_left(window_secs: i32) -> i64 {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let window = i64::from(window_secs);
    window - now.rem_euclid(window)
}

pub async fn clear(conn: &mut PgConnection, key: &str) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM rate_limits WHERE key = $1", key)
        .execute(conn)
        .await?;
    Ok(())
}

/// Forgets the windows that started before `before` (the `purge-rate-limits` job).
pub async fn purge(conn: &mut PgConnection, before: time::OffsetDateTime) -> sqlx::Result<u64> {
    Ok(
        sqlx::query!("DELETE FROM rate_limits WHERE window_start < $1", before)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

/// Forgets every key that starts with `prefix` (a successful reset clears an account's
/// failures from every client).
pub async fn clear_prefix(conn: &mut PgConnection, prefix: &str) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM rate_limits WHERE starts_with(key, $1)", prefix)
        .execute(conn)
        .await?;
    Ok(())
}
