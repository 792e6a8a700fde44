//! Help-centre tables: views, feedback, missed searches, contact messages.

use sqlx::PgConnection;

/// Adds the counted views to each guide (one statement for the whole batch).
pub async fn add_views(
    conn: &mut PgConnection,
    slugs: &[String],
    counts: &[i64],
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO guide_views (slug, views) SELECT * FROM UNNEST($1::text[], $2::bigint[])
         ON CONFLICT (slug) DO UPDATE SET views = guide_views.views + EXCLUDED.views",
        slugs,
        counts
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn most_read(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar!(
        "SELECT slug FROM guide_views ORDER BY views DESC, slug LIMIT $1",
        limit
    )
    .fetch_all(conn)
    .await
}

/// Distinct missed queries kept per week; beyond, only those already counted grow.
pub const MISSES_PER_WEEK: i64 = 1000;
/// Weeks of missed queries kept.
pub const MISS_WEEKS: i32 = 26;

/// Counts a search that found nothing in `week` (its Monday), within `MISSES_PER_WEEK`
/// distinct queries; a new week's first miss drops the weeks older than `MISS_WEEKS`.
pub async fn record_miss(
    conn: &mut PgConnection,
    query: &str,
    week: time::Date,
) -> sqlx::Result<()> {
    let counted = sqlx::query!(
        "UPDATE search_misses SET count = count + 1, last_at = now() WHERE week = $1 AND query = $2",
        week,
        query
    )
    .execute(&mut *conn)
    .await?;
    if counted.rows_affected() > 0 {
        return Ok(());
    }
    let inserted = sqlx::query!(
        "INSERT INTO search_misses (week, query)
         SELECT $1, $2 WHERE (SELECT count(*) FROM search_misses WHERE week = $1) < $3
         ON CONFLICT (week, query) DO UPDATE SET count = search_misses.count + 1, last_at = now()",
        week,
        query,
        MISSES_PER_WEEK
    )
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() > 0 {
        sqlx::query!(
            "DELETE FROM search_misses WHERE week < $1::date - 7 * $2::int",
            week,
            MISS_WEEKS
        )
        .execute(conn)
        .await?;
    }
    Ok(())
}

pub async fn add_feedback(
    conn: &mut PgConnection,
    slug: &str,
    helpful: bool,
    comment: Option<&str>,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "INSERT INTO guide_feedback (slug, helpful, comment) VALUES ($1, $2, $3) RETURNING id",
        slug,
        helpful,
        comment
    )
    .fetch_one(conn)
    .await
}

pub struct NewContact<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub organisation: &'a str,
    pub subject: &'a str,
    pub event_start: Option<time::Date>,
    pub event_end: Option<time::Date>,
    pub event_volume: Option<&'a str>,
    pub page: Option<&'a str>,
    pub message: &'a str,
}

pub async fn add_contact(conn: &mut PgConnection, m: &NewContact<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "INSERT INTO contact_messages (name, email, organisation, subject, event_start, event_end, event_volume, page, message)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        m.name,
        m.email,
        m.organisation,
        m.subject,
        m.event_start,
        m.event_end,
        m.event_volume,
        m.page,
        m.message
    )
    .fetch_one(conn)
    .await
}

/// Adds the comment to a « non » vote, once; false if the vote is not found or has one already.
pub async fn comment_feedback(
    conn: &mut PgConnection,
    id: i64,
    slug: &str,
    comment: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE guide_feedback SET comment = $3 WHERE id = $1 AND slug = $2 AND NOT helpful AND comment IS NULL",
        id,
        slug,
        comment
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[derive(Debug, Clone)]
pub struct ContactSummary {
    pub name: String,
    pub email: String,
    pub organisation: String,
    pub subject: String,
    pub message: String,
    pub event_start: Option<time::Date>,
    pub event_end: Option<time::Date>,
    pub created_at: time::OffsetDateTime,
}

pub async fn recent_contacts(
    conn: &mut PgConnection,
    limit: i64,
) -> sqlx::Result<Vec<ContactSummary>> {
    sqlx::query_as!(
        ContactSummary,
        "SELECT name, email, organisation, subject, message, event_start, event_end, created_at
         FROM contact_messages ORDER BY created_at DESC LIMIT $1",
        limit
    )
    .fetch_all(conn)
    .await
}

#[derive(Debug, Clone)]
pub struct FeedbackSummary {
    pub slug: String,
    pub helpful: i64,
    pub not_helpful: i64,
    pub comments: Vec<String>,
}

pub async fn feedback_summary(conn: &mut PgConnection) -> sqlx::Result<Vec<FeedbackSummary>> {
    sqlx::query_as!(
        FeedbackSummary,
        r#"SELECT slug,
                  count(*) FILTER (WHERE helpful) AS "helpful!",
                  count(*) FILTER (WHERE NOT helpful) AS "not_helpful!",
                  coalesce(array_agg(comment ORDER BY created_at DESC) FILTER (WHERE comment IS NOT NULL), '{}') AS "comments!"
           FROM guide_feedback GROUP BY slug ORDER BY count(*) FILTER (WHERE NOT helpful) DESC, slug"#
    )
    .fetch_all(conn)
    .await
}

/// The most missed queries over the weeks kept.
pub async fn top_misses(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<(String, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT query, sum(count)::bigint AS "count!" FROM search_misses
           GROUP BY query ORDER BY sum(count) DESC, max(last_at) DESC LIMIT $1"#,
        limit
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.query, r.count)).collect())
}
