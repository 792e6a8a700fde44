//! What staff read of the help centre's quality (votes on guides and missed searches, by
//! week), and the synonyms they add to the search lexicon.

use sqlx::PgConnection;
use time::{Date, OffsetDateTime};

/// The votes on one guide in one week (its Monday, Europe/Paris).
pub struct FeedbackWeek {
    pub slug: String,
    pub week: Date,
    pub helpful: i64,
    pub not_helpful: i64,
    pub comments: i64,
}

/// Votes by guide and by week, since `since` (a Monday), most recent week first.
pub async fn feedback_by_week(
    conn: &mut PgConnection,
    since: Date,
) -> sqlx::Result<Vec<FeedbackWeek>> {
    sqlx::query_as!(
        FeedbackWeek,
        r#"SELECT slug, date_trunc('week', created_at AT TIME ZONE 'Europe/Paris')::date AS "week!",
                  count(*) FILTER (WHERE helpful) AS "helpful!",
                  count(*) FILTER (WHERE NOT helpful) AS "not_helpful!",
                  count(comment) AS "comments!"
           FROM guide_feedback
           WHERE created_at >= ($1::date::timestamp AT TIME ZONE 'Europe/Paris')
           GROUP BY 1, 2 ORDER BY 2 DESC, 1"#,
        since
    )
    .fetch_all(conn)
    .await
}

/// A query that found nothing in one week, and the synonym it became, if any.
pub struct MissWeek {
    pub id: i64,
    pub week: Date,
    pub query: String,
    pub count: i64,
    pub synonym_of: Option<String>,
}

/// Missed queries by week since `since`, most recent week first, then the most frequent;
/// `per_week` of them at most each week.
pub async fn misses_by_week(
    conn: &mut PgConnection,
    since: Date,
    per_week: i64,
) -> sqlx::Result<Vec<MissWeek>> {
    sqlx::query_as!(
        MissWeek,
        r#"SELECT m.id AS "id!", m.week AS "week!", m.query AS "query!", m.count AS "count!",
                  s.word AS "synonym_of?"
           FROM (SELECT id, week, query, count,
                        row_number() OVER (PARTITION BY week ORDER BY count DESC, last_at DESC) AS rank
                 FROM search_misses WHERE week >= $1) m
           LEFT JOIN search_synonyms s ON s.query = m.query
           WHERE m.rank <= $2
           ORDER BY m.week DESC, m.count DESC, m.query"#,
        since,
        per_week
    )
    .fetch_all(conn)
    .await
}

/// The query of a missed search.
pub async fn miss(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!("SELECT query FROM search_misses WHERE id = $1", id)
        .fetch_optional(conn)
        .await
}

/// A synonym staff added: the query (folded) and the word it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synonym {
    pub query: String,
    pub word: String,
}

/// Adds a synonym; false if the query is one already.
pub async fn add_synonym(
    conn: &mut PgConnection,
    synonym: &Synonym,
    actor: &str,
    now: OffsetDateTime,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "INSERT INTO search_synonyms (query, word, created_by, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (query) DO NOTHING",
        synonym.query,
        synonym.word,
        actor,
        now
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Every stored synonym, oldest first.
pub async fn synonyms(conn: &mut PgConnection) -> sqlx::Result<Vec<Synonym>> {
    sqlx::query_as!(
        Synonym,
        "SELECT query, word FROM search_synonyms ORDER BY id"
    )
    .fetch_all(conn)
    .await
}

/// Changes whenever a synonym is added or removed: (how many, the newest id).
pub async fn lexicon_version(conn: &mut PgConnection) -> sqlx::Result<(i64, i64)> {
    let row = sqlx::query!(
        r#"SELECT count(*) AS "n!", coalesce(max(id), 0) AS "last!" FROM search_synonyms"#
    )
    .fetch_one(conn)
    .await?;
    Ok((row.n, row.last))
}
