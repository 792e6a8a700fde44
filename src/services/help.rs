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

/// Keeps a search that found nothing, for staff, counted in the week of `now`; a query that
/// looks like personal data (an address, a phone number) is not kept.
pub async fn record_miss(
    pool: &PgPool,
    folded_query: &str,
    now: time::OffsetDateTime,
) -> Result<(), HelpError> {
    if looks_personal(folded_query) {
        return Ok(());
    }
    let mut conn = pool.acquire().await?;
    db::help::record_miss(&mut conn, folded_query, week_of(now)).await?;
    Ok(())
}

/// The Monday (Europe/Paris) of the week of `at`.
pub fn week_of(at: time::OffsetDateTime) -> time::Date {
    let day = crate::domain::format::paris(at).date();
    day - time::Duration::days(day.weekday().number_days_from_monday().into())
}

/// An e-mail address, a link, or a number of six digits or more (a phone, an account): what a
/// visitor may type but staff need not read.
pub fn looks_personal(query: &str) -> bool {
    let mut digits = 0;
    for c in query.chars() {
        if c.is_ascii_digit() {
            digits += 1;
            if digits >= 6 {
                return true;
            }
        } else if !matches!(c, ' ' | '.' | '-') {
            digits = 0;
        }
    }
    query.contains('@') || query.contains("http") || query.contains("www.")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_phones_and_links_are_not_kept_as_missed_searches() {
        for personal in [
            "jean.dupont@paroisse.fr",
            "06 12 34 56 78",
            "0612345678",
            "facture 2026000123",
            "https://exemple.fr",
        ] {
            assert!(looks_personal(personal), "{personal}");
        }
        for kept in ["remboursement", "video 4k", "pack 500 credits", "noel 2026"] {
            assert!(!looks_personal(kept), "{kept}");
        }
    }

    #[test]
    fn a_week_starts_on_monday_in_paris() {
        use time::macros::{date, datetime};
        // Sunday 6 December 2026, 23:30 UTC is Monday 7 December in Paris.
        assert_eq!(
            week_of(datetime!(2026-12-06 23:30 UTC)),
            date!(2026 - 12 - 07)
        );
        assert_eq!(
            week_of(datetime!(2026-12-06 22:30 UTC)),
            date!(2026 - 11 - 30)
        );
        assert_eq!(
            week_of(datetime!(2026-12-03 12:00 UTC)),
            date!(2026 - 11 - 30)
        );
    }
}
