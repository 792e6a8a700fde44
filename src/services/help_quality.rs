//! The help centre's quality, for staff: votes on guides and missed searches by week, and the
//! one-click synonym that turns a missed query into a word of the search lexicon (stored,
//! audited; every instance's search picks it up, see `web::aide::lexique`).

use sqlx::PgPool;
use time::OffsetDateTime;

use super::fault::Fault;
use crate::db::{self, help_quality::Synonym};

/// Weeks shown in the back office.
pub const WEEKS_SHOWN: i64 = 12;
/// Missed queries shown per week.
pub const MISSES_PER_WEEK_SHOWN: i64 = 50;

pub struct Report {
    pub feedback: Vec<db::help_quality::FeedbackWeek>,
    pub misses: Vec<db::help_quality::MissWeek>,
    pub synonyms: Vec<Synonym>,
}

pub async fn report(pool: &PgPool, now: OffsetDateTime) -> Result<Report, Fault> {
    let since = super::help::week_of(now) - time::Duration::weeks(WEEKS_SHOWN - 1);
    let mut conn = pool.acquire().await?;
    Ok(Report {
        feedback: db::help_quality::feedback_by_week(&mut conn, since).await?,
        misses: db::help_quality::misses_by_week(&mut conn, since, MISSES_PER_WEEK_SHOWN).await?,
        synonyms: db::help_quality::synonyms(&mut conn).await?,
    })
}

/// The query of a missed search, if it exists.
pub async fn miss(pool: &PgPool, id: i64) -> Result<Option<String>, Fault> {
    let mut conn = pool.acquire().await?;
    Ok(db::help_quality::miss(&mut conn, id).await?)
}

#[derive(Debug, thiserror::Error)]
pub enum SynonymError {
    #[error("this query is a synonym already")]
    AlreadyThere,
    #[error(transparent)]
    Fault(#[from] Fault),
}

impl From<sqlx::Error> for SynonymError {
    fn from(error: sqlx::Error) -> Self {
        SynonymError::Fault(error.into())
    }
}

/// Stores `synonym` with the audit line (who, why, the synonym after), in one transaction.
pub async fn add_synonym(
    pool: &PgPool,
    synonym: &Synonym,
    actor: &str,
    reason: &str,
    now: OffsetDateTime,
) -> Result<(), SynonymError> {
    let mut tx = pool.begin().await?;
    if !db::help_quality::add_synonym(&mut tx, synonym, actor, now).await? {
        return Err(SynonymError::AlreadyThere);
    }
    db::audit::record(
        &mut tx,
        db::audit::Entry {
            actor,
            organisation: None,
            action: "search.synonym",
            reason,
            before: None,
            after: Some(serde_json::json!({ "query": synonym.query, "word": synonym.word })),
            now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
