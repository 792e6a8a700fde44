//! Rate limits kept in Postgres, so that every portal instance shares them: hits are counted in
//! fixed windows, and a limit reads the current and the previous one (`domain::throttle`).

use sqlx::PgConnection;

use crate::domain::throttle::Windows;

/// Counts one hit for `key` in the current window of `window_secs`; returns `Ok(None)` when it
/// is allowed, or `Ok(Some(seconds))` to wait before one more is, when the hits of the last
/// window (this one included, see `domain::throttle`) are over `max`. A window counts `max + 1`
/// hits at most: taps on a refused button do not push the wait into the next window.
pub async fn hit(
    conn: &mut PgConnection,
    key: &str,
    window_secs: i32,
    max: i32,
) -> sqlx::Result<Option<i64>> {
    let row = sqlx::query!(
        r#"WITH w AS (
               SELECT to_timestamp(floor(extract(epoch FROM now())::float8 / $2::float8) * $2::float8) AS start
           ), counted AS (
               INSERT INTO rate_limits (key, window_start, hits)
               SELECT $1, w.start, 1 FROM w
               ON CONFLICT (key, window_start)
                  DO UPDATE SET hits = least(rate_limits.hits + 1, $3::bigint + 1)
               RETURNING hits, window_start
           )
           SELECT counted.hits::bigint AS "current!",
                  coalesce((SELECT p.hits FROM rate_limits p
                            WHERE p.key = $1
                              AND p.window_start = counted.window_start - make_interval(secs => $2::float8)), 0)::bigint AS "previous!",
                  extract(epoch FROM now() - counted.window_start)::float8 AS "elapsed!"
           FROM counted"#,
        key,
        f64::from(window_secs),
        i64::from(max)
    )
    .fetch_one(&mut *conn)
    .await?;
    // Now and then, forget windows that have ended.
    if row.current == 1 {
        sqlx::query!("DELETE FROM rate_limits WHERE window_start < now() - interval '1 day'")
            .execute(&mut *conn)
            .await?;
    }
    let windows = Windows {
        previous: row.previous,
        current: row.current,
        elapsed: row.elapsed,
        length: i64::from(window_secs),
    };
    let max = i64::from(max);
    Ok((windows.count() > max).then(|| windows.wait_below(max)))
}

/// The hits counted for `key` in the current and the previous window, without adding one.
pub async fn current(
    conn: &mut PgConnection,
    key: &str,
    window_secs: i32,
) -> sqlx::Result<Windows> {
    let row = sqlx::query!(
        r#"SELECT coalesce(sum(r.hits) FILTER (WHERE r.window_start = w.start), 0)::bigint AS "current!",
                  coalesce(sum(r.hits) FILTER (WHERE r.window_start < w.start), 0)::bigint AS "previous!",
                  extract(epoch FROM now() - w.start)::float8 AS "elapsed!"
           FROM (SELECT to_timestamp(floor(extract(epoch FROM now())::float8 / $2::float8) * $2::float8) AS start) w
           LEFT JOIN rate_limits r
             ON r.key = $1
            AND r.window_start IN (w.start, w.start - make_interval(secs => $2::float8))
           GROUP BY w.start"#,
        key,
        f64::from(window_secs)
    )
    .fetch_one(conn)
    .await?;
    Ok(Windows {
        previous: row.previous,
        current: row.current,
        elapsed: row.elapsed,
        length: i64::from(window_secs),
    })
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
