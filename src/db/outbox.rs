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

/// The outbox as staff see it: messages waiting, those among them that failed at least once,
/// and those given up on (10 attempts).
pub struct Backlog {
    pub pending: i64,
    pub failing: i64,
    pub given_up: i64,
    pub oldest_pending: Option<time::OffsetDateTime>,
}

pub async fn backlog(conn: &mut PgConnection) -> sqlx::Result<Backlog> {
    sqlx::query_as!(
        Backlog,
        r#"SELECT count(*) AS "pending!",
                  count(*) FILTER (WHERE last_error IS NOT NULL) AS "failing!",
                  count(*) FILTER (WHERE attempts >= 10) AS "given_up!",
                  min(created_at) AS oldest_pending
           FROM outbox WHERE sent_at IS NULL"#
    )
    .fetch_one(conn)
    .await
}

/// An unsent message whose last attempt failed.
#[derive(Debug, Clone)]
pub struct Failure {
    pub id: i64,
    pub to_address: String,
    pub subject: String,
    pub attempts: i32,
    pub next_try: time::OffsetDateTime,
    pub last_error: Option<String>,
    pub created_at: time::OffsetDateTime,
}

/// The failed unsent messages, newest first.
pub async fn failures(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<Failure>> {
    sqlx::query_as!(
        Failure,
        "SELECT id, to_address, subject, attempts, next_try, last_error, created_at FROM outbox
         WHERE sent_at IS NULL AND last_error IS NOT NULL ORDER BY id DESC LIMIT $1",
        limit
    )
    .fetch_all(conn)
    .await
}

/// Locks a failed unsent message (for a resend).
pub async fn lock_failure(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<Failure>> {
    sqlx::query_as!(
        Failure,
        "SELECT id, to_address, subject, attempts, next_try, last_error, created_at FROM outbox
         WHERE id = $1 AND sent_at IS NULL AND last_error IS NOT NULL FOR UPDATE",
        id
    )
    .fetch_optional(conn)
    .await
}

/// Makes an unsent message due now with its attempts counted afresh (the last error stays
/// until the next attempt).
pub async fn retry_now(
    conn: &mut PgConnection,
    id: i64,
    now: time::OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE outbox SET attempts = 0, next_try = $2 WHERE id = $1 AND sent_at IS NULL",
        id,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}
