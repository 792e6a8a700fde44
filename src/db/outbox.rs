//! The e-mail outbox: messages are written in the transaction that causes them and delivered
//! afterwards by a worker, so nothing is lost when the mail server is down.

use sqlx::{PgConnection, PgPool};

pub async fn enqueue(
    conn: &mut PgConnection,
    to: &str,
    subject: &str,
    text: &str,
    html: &str,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "INSERT INTO outbox (to_address, subject, body_text, body_html) VALUES ($1, $2, $3, $4) RETURNING id",
        to,
        subject,
        text,
        html
    )
    .fetch_one(conn)
    .await
}

#[derive(Debug, Clone)]
pub struct Pending {
    pub id: i64,
    pub to_address: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub attempts: i32,
}

/// Claims up to `limit` messages due now; several workers (instances) never claim the same one.
pub async fn claim(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<Pending>> {
    sqlx::query_as!(
        Pending,
        "SELECT id, to_address, subject, body_text, body_html, attempts FROM outbox
         WHERE sent_at IS NULL AND next_try <= now() AND attempts < 10
         ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        limit
    )
    .fetch_all(conn)
    .await
}

pub async fn mark_sent(conn: &mut PgConnection, id: i64) -> sqlx::Result<()> {
    sqlx::query!("UPDATE outbox SET sent_at = now(), attempts = attempts + 1, last_error = NULL WHERE id = $1", id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Retries later, backing off exponentially (1 min, 2, 4… up to about 8 hours).
pub async fn mark_failed(conn: &mut PgConnection, id: i64, error: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE outbox SET attempts = attempts + 1, last_error = $2,
                next_try = now() + make_interval(mins => least(power(2, attempts)::int, 512))
         WHERE id = $1",
        id,
        error
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn pending_count(pool: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM outbox WHERE sent_at IS NULL"#)
        .fetch_one(pool)
        .await
}

/// Replaces the token of every link in the e-mails sent before `sent_before` (the
/// `redact-sent-mail` job): the outbox keeps what was said, not working links.
pub async fn redact_sent(
    conn: &mut PgConnection,
    sent_before: time::OffsetDateTime,
) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        r#"UPDATE outbox
           SET body_text = regexp_replace(body_text, 'jeton=[A-Za-z0-9_-]+', 'jeton=retire', 'g'),
               body_html = regexp_replace(body_html, 'jeton=[A-Za-z0-9_-]+', 'jeton=retire', 'g'),
               redacted_at = now()
           WHERE sent_at IS NOT NULL AND sent_at < $1 AND redacted_at IS NULL"#,
        sent_before
    )
    .execute(conn)
    .await?
    .rows_affected())
}
