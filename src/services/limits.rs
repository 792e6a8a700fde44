//! Temporary raises of an organisation's fair-use caps, for an event: one service for
//! `nanoclip limits raise` and the back office, each call audited with its actor.

use sqlx::PgPool;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::fault::Fault;
use crate::db;

/// The largest caps a raise may set (the same bounds for the command and the back office).
pub const MAX_DAILY: i64 = 100_000;
pub const MAX_MONTHLY: i64 = 10_000_000;
pub const MAX_CONCURRENT: i64 = 1_000;

/// A raise, parsed: caps within the bounds above, a reason of 1 to 500 characters.
pub struct Raise<'a> {
    pub organisation: Uuid,
    pub daily: i64,
    pub monthly: i64,
    pub concurrent: i64,
    /// The first day (Europe/Paris); today when absent.
    pub first_day: Option<Date>,
    /// The last day, inclusive.
    pub last_day: Date,
    pub reason: &'a str,
    /// `staff:<email>` or `cli`.
    pub actor: &'a str,
}

/// The raise as recorded (its first day filled in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    pub first_day: Date,
    pub last_day: Date,
}

#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("unknown organisation")]
    UnknownOrganisation,
    /// The last day is before the first.
    #[error("the raise ends before it starts")]
    DatesReversed,
    /// The last day is already past (Europe/Paris).
    #[error("the raise is over already")]
    Over,
    /// A cap outside 1 to its maximum.
    #[error("a cap is out of bounds")]
    CapOutOfBounds,
    #[error(transparent)]
    Fault(#[from] Fault),
}

impl From<sqlx::Error> for LimitError {
    fn from(e: sqlx::Error) -> Self {
        LimitError::Fault(e.into())
    }
}

/// Records the raise, replacing any raise in force, with its audit line, in one transaction.
pub async fn raise(
    pool: &PgPool,
    raise: Raise<'_>,
    now: OffsetDateTime,
) -> Result<Raised, LimitError> {
    let in_bounds = |n: i64, max: i64| (1..=max).contains(&n);
    if !(in_bounds(raise.daily, MAX_DAILY)
        && in_bounds(raise.monthly, MAX_MONTHLY)
        && in_bounds(raise.concurrent, MAX_CONCURRENT))
    {
        return Err(LimitError::CapOutOfBounds);
    }
    let mut tx = pool.begin().await?;
    if db::accounts::organisation(&mut tx, raise.organisation)
        .await?
        .is_none()
    {
        return Err(LimitError::UnknownOrganisation);
    }
    let today = db::credits::paris_date(&mut tx, now).await?;
    let first_day = raise.first_day.unwrap_or(today);
    // An end already past says so first, whatever the start (the command's order).
    if raise.last_day < today {
        return Err(LimitError::Over);
    }
    if first_day > raise.last_day {
        return Err(LimitError::DatesReversed);
    }
    let before = db::admin::current_raise(&mut tx, raise.organisation).await?;
    db::generations::raise_limits(
        &mut tx,
        raise.organisation,
        i32::try_from(raise.daily).map_err(|_| LimitError::CapOutOfBounds)?,
        raise.monthly,
        i32::try_from(raise.concurrent).map_err(|_| LimitError::CapOutOfBounds)?,
        first_day,
        raise.last_day,
        raise.reason,
        raise.actor,
        now,
    )
    .await?;
    db::audit::record(
        &mut tx,
        db::audit::Entry {
            actor: raise.actor,
            organisation: Some(raise.organisation),
            action: "limits.raise",
            reason: raise.reason,
            before: before.map(|r| {
                serde_json::json!({
                    "daily": r.daily, "monthly": r.monthly, "concurrent": r.concurrent,
                    "from": r.first_day.to_string(), "until": r.last_day.to_string(),
                })
            }),
            after: Some(serde_json::json!({
                "daily": raise.daily, "monthly": raise.monthly, "concurrent": raise.concurrent,
                "from": first_day.to_string(), "until": raise.last_day.to_string(),
            })),
            now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Raised {
        first_day,
        last_day: raise.last_day,
    })
}
