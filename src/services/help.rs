//! The help centre's data: views, votes and comments on guides, searches that found nothing,
//! contact messages. Guides themselves live in memory (`content`).

use sqlx::PgPool;

use super::fault::Fault;
use crate::db;

#[derive(Debug, thiserror::Error)]
pub enum HelpError {
    /// Too many votes or messages from this client; retry after this many seconds.
    #[error("too many requests")]
    TooMany(i64),
    #[error(transparent)]
    Fault(#[from] Fault),
}

impl From<sqlx::Error> for HelpError {
    fn from(error: sqlx::Error) -> Self {
        HelpError::Fault(error.into())
    }
}

const VOTES_PER_HOUR: i32 = 30;
const MESSAGES_PER_HOUR: i32 = 5;
const HOUR: i32 = 3600;

/// Adds a batch of guide views (counted in memory).
pub async fn add_views(pool: &PgPool, slugs: &[String], counts: &[i64]) -> Result<(), HelpError> {
    let mut conn = pool.acquire().await?;
    db::help::add_views(&mut conn, slugs, counts).await?;
    Ok(())
}

/// The `n` most read guides' slugs.
pub async fn most_read(pool: &PgPool, n: i64) -> Result<Vec<String>, HelpError> {
    let mut conn = pool.acquire().await?;
    Ok(db::help::most_read(&mut conn, n).await?)
}

/// Keeps a search that found nothing, for staff.
pub async fn record_miss(pool: &PgPool, folded_query: &str) -> Result<(), HelpError> {
    let mut conn = pool.acquire().await?;
    db::help::record_miss(&mut conn, folded_query).await?;
    Ok(())
}

/// « Cet article vous a-t-il aidé ? »: one vote, limited per client; returns the vote's id.
pub async fn vote(
    pool: &PgPool,
    slug: &str,
    helpful: bool,
    client: &str,
) -> Result<i64, HelpError> {
    let mut tx = pool.begin().await?;
    let key = format!("avis:{client}");
    if let Some(retry) = db::rate_limit::hit(&mut tx, &key, HOUR, VOTES_PER_HOUR).await? {
        tx.commit().await?;
        return Err(HelpError::TooMany(retry));
    }
    let id = db::help::add_feedback(&mut tx, slug, helpful, None).await?;
    tx.commit().await?;
    Ok(id)
}

/// The comment that completes a « non » vote (once).
pub async fn comment(pool: &PgPool, vote: i64, slug: &str, text: &str) -> Result<bool, HelpError> {
    let mut conn = pool.acquire().await?;
    Ok(db::help::comment_feedback(&mut conn, vote, slug, text).await?)
}

/// Stores a contact message, limited per client; returns its id.
pub async fn send_contact(
    pool: &PgPool,
    client: &str,
    message: &db::help::NewContact<'_>,
) -> Result<i64, HelpError> {
    let mut tx = pool.begin().await?;
    let key = format!("contact:{client}");
    if let Some(retry) = db::rate_limit::hit(&mut tx, &key, HOUR, MESSAGES_PER_HOUR).await? {
        tx.commit().await?;
        return Err(HelpError::TooMany(retry));
    }
    let id = db::help::add_contact(&mut tx, message).await?;
    tx.commit().await?;
    Ok(id)
}
