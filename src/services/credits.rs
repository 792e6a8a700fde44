//! Credit operations, each one transaction: grant, hold, capture, release, expire, adjust, and
//! the renewals of plan periods. Each is idempotent by its key (a grant's key, a hold's
//! operation key, a hold's id for its resolution, an adjustment's key), serialised per
//! organisation by its account row, and retried inside the portal when PostgreSQL reports a
//! deadlock or a serialisation failure, so that callers see an answer, never a conflict.

use std::future::Future;

use sqlx::{PgConnection, PgPool};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::fault::Fault;
use super::mail::{self, Email};
use crate::db;
use crate::db::credits::{Difference, HoldRequest, Movement, Placed};
use crate::domain::account::SubscriptionStatus;
use crate::domain::ledger::{self, BucketSource, EntryKind, HOLD_TIMEOUT, HoldState};
use crate::domain::money::Credits;

#[derive(Debug, thiserror::Error)]
pub enum CreditError {
    #[error("unknown organisation")]
    UnknownOrganisation,
    #[error("not enough credits")]
    NotEnough { available: Credits },
    #[error("unknown hold")]
    UnknownHold,
    #[error("the expiry date has passed")]
    ExpiryPassed,
    #[error(transparent)]
    Fault(#[from] Fault),
}

impl From<sqlx::Error> for CreditError {
    fn from(e: sqlx::Error) -> Self {
        CreditError::Fault(e.into())
    }
}

/// Whether PostgreSQL asks for the transaction to be tried again.
pub(crate) fn is_retryable(error: &CreditError) -> bool {
    match error {
        CreditError::Fault(Fault::Internal(e)) | CreditError::Fault(Fault::Unavailable(e)) => e
            .downcast_ref::<sqlx::Error>()
            .and_then(|e| match e {
                sqlx::Error::Database(db) => db.code(),
                _ => None,
            })
            .is_some_and(|code| code == "40001" || code == "40P01"),
        _ => false,
    }
}

/// Runs `attempt` again (up to 10 times, with a short growing pause) while PostgreSQL reports a
/// deadlock or a serialisation failure.
pub(crate) async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, CreditError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CreditError>>,
{
    let mut tries = 0u64;
    loop {
        match attempt().await {
            Err(error) if is_retryable(&error) && tries < 10 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(2 * tries)).await;
            }
            outcome => return outcome,
        }
    }
}

/// How a transaction's work ends: `Keep` commits it, `Drop` rolls it back (nothing to keep: an
/// answer already given, a key in use).
pub(crate) enum End<T> {
    Keep(T),
    Drop(T),
}

/// Ends `tx` as `step` says, rolling it back at once when there is nothing to keep or `step`
/// failed. Not when the pool next pings the connection: until then its locks (an
/// Idempotency-Key's, the account's row) stay held, and a retry of the same launch would find its
/// own key in use and answer 409.
pub(crate) async fn end<T>(
    tx: sqlx::Transaction<'_, sqlx::Postgres>,
    step: Result<End<T>, CreditError>,
) -> Result<T, CreditError> {
    match step {
        Ok(End::Keep(value)) => {
            tx.commit().await?;
            Ok(value)
        }
        Ok(End::Drop(value)) => {
            // Nothing was written: the answer stands even if the rollback fails (the pool's
            // ping then finishes it).
            if let Err(error) = tx.rollback().await {
                tracing::warn!(%error, "rollback of a transaction with nothing to keep");
            }
            Ok(value)
        }
        Err(error) => {
            // The error is what the caller needs; a failed rollback leaves the pool's ping to
            // finish the job.
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(error = %rollback, "rollback after a failed step");
            }
            Err(error)
        }
    }
}

/// Who acts and why, for the ledger.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub actor: &'a str,
    pub reason: &'a str,
}

/// What a hold asks for: `amount` credits for one generation of `creation_type`.
#[derive(Debug, Clone, Copy)]
pub struct HoldInput<'a> {
    pub organisation: Uuid,
    pub amount: Credits,
    pub creation_type: &'a str,
    /// The caller's idempotency key.
    pub key: &'a str,
    /// What the credits are for (`generation:…`).
    pub reference: &'a str,
    pub actor: &'a str,
}

#[derive(Debug, Clone)]
pub enum HoldOutcome {
    /// The credits are set aside; `available` is what is left to use.
    Placed {
        hold: db::credits::Hold,
        available: Credits,
    },
    /// A hold with that key exists already: it is the answer (no second hold).
    Existing { hold: db::credits::Hold },
    /// The buckets that serve the type hold fewer credits: nothing is held.
    Short { available: Credits },
}

/// Places a hold: the credits leave the available balance until the hold is captured or
/// released (by the job runner after `HOLD_TIMEOUT`). One statement, atomic by itself: no
/// transaction of its own to open and commit around it.
pub async fn hold(
    pool: &PgPool,
    input: HoldInput<'_>,
    now: OffsetDateTime,
) -> Result<HoldOutcome, CreditError> {
    retrying(|| async move {
        let mut conn = pool.acquire().await?;
        hold_in(&mut conn, input, now).await
    })
    .await
}

/// `hold` on the caller's connection or in its transaction (a generation is recorded in the
/// same one).
pub async fn hold_in(
    conn: &mut PgConnection,
    input: HoldInput<'_>,
    now: OffsetDateTime,
) -> Result<HoldOutcome, CreditError> {
    let request = HoldRequest {
        organisation: input.organisation,
        amount: input.amount,
        creation_type: input.creation_type,
        operation_key: input.key,
        expires_at: now + HOLD_TIMEOUT,
    };
    let movement = Movement {
        actor: input.actor,
        reason: "generation",
        reference: input.reference,
        now,
    };
    // One round trip: the account's lock, the hold already placed with this key, the hold.
    match db::credits::place_hold(conn, request, movement).await? {
        Placed::UnknownOrganisation => Err(CreditError::UnknownOrganisation),
        Placed::Existing(existing) => {
            let hold = db::credits::hold(conn, existing)
                .await?
                .ok_or(CreditError::UnknownHold)?;
            Ok(HoldOutcome::Existing { hold })
        }
        Placed::Placed {
            hold: id,
            available,
        } => {
            let hold = db::credits::Hold {
                id,
                organisation_id: input.organisation,
                amount: input.amount,
                creation_type: input.creation_type.to_owned(),
                operation_key: input.key.to_owned(),
                reference: input.reference.to_owned(),
                state: HoldState::Held,
                created_at: now,
                expires_at: request.expires_at,
                resolved_at: None,
            };
            Ok(HoldOutcome::Placed { hold, available })
        }
        Placed::Short { available } => Ok(HoldOutcome::Short { available }),
    }
}

/// How a hold stands after a capture or a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolution {
    /// The hold's state now (`Captured` after a release means it had been captured before).
    pub state: HoldState,
    pub amount: Credits,
    /// Whether this call resolved it (false: it had been resolved already).
    pub changed: bool,
}

/// Captures a hold (the generation succeeded): its credits are spent. Idempotent; a hold
/// released already stays released (the answer says so). One statement, atomic by itself.
pub async fn capture(
    pool: &PgPool,
    hold: Uuid,
    actor: Actor<'_>,
    now: OffsetDateTime,
) -> Result<Resolution, CreditError> {
    resolve(pool, hold, HoldState::Captured, actor, now).await
}

/// Releases a hold (the generation failed or timed out): its credits go back to their buckets
/// (and expire at once if a bucket's expiry has passed meanwhile). Idempotent.
pub async fn release(
    pool: &PgPool,
    hold: Uuid,
    actor: Actor<'_>,
    now: OffsetDateTime,
) -> Result<Resolution, CreditError> {
    resolve(pool, hold, HoldState::Released, actor, now).await
}

async fn resolve(
    pool: &PgPool,
    hold: Uuid,
    to: HoldState,
    actor: Actor<'_>,
    now: OffsetDateTime,
) -> Result<Resolution, CreditError> {
    retrying(|| async move {
        let mut conn = pool.acquire().await?;
        resolve_in(&mut conn, hold, to, actor, now).await
    })
    .await
}

/// `capture` or `release`, on the caller's connection or in its transaction. The hold leaves
/// `held` in one statement (its open row deleted: one resolver gets it), whatever races it, so
/// it is resolved exactly once. Lock order: the open row, then (a release, through the ledger's
/// trigger) the account, then the bucket; a hold creates its open row last, so no writer takes
/// them the other way round. A capture moves no credits and takes no account lock.
pub async fn resolve_in(
    conn: &mut PgConnection,
    hold: Uuid,
    to: HoldState,
    actor: Actor<'_>,
    now: OffsetDateTime,
) -> Result<Resolution, CreditError> {
    match db::credits::resolve_hold(conn, hold, to, actor.actor, actor.reason, now).await? {
        Some(resolved) => {
            if resolved.back_in_expired_bucket {
                carry_late_releases(conn, resolved.organisation_id, hold, now).await?;
                let expiry = Movement {
                    actor: "system",
                    reason: "expired",
                    reference: "",
                    now,
                };
                db::credits::expire_due(conn, Some(resolved.organisation_id), None, expiry).await?;
            }
            Ok(Resolution {
                state: to,
                amount: resolved.amount,
                changed: true,
            })
        }
        None => match db::credits::hold(conn, hold).await? {
            None => Err(CreditError::UnknownHold),
            Some(current) => Ok(Resolution {
                state: current.state,
                amount: current.amount,
                changed: false,
            }),
        },
    }
}

/// Who grants a rollover bucket: the renewal, and a late release carried after it.
const ROLLOVER: Actor<'static> = Actor {
    actor: "system",
    reason: "rollover",
};

/// Credits released into an allotment whose period has been renewed meanwhile (a render
/// launched before the period's end, failed after it): had they not been held, the renewal
/// would have carried them over, up to the rollover cap. So they are carried now, into a
/// rollover bucket of the next period (one per hold), up to the room that renewal left; the
/// rest expires as usual. Runs under the account's lock (taken by the release's ledger row).
async fn carry_late_releases(
    conn: &mut PgConnection,
    organisation: Uuid,
    hold: Uuid,
    now: OffsetDateTime,
) -> Result<(), CreditError> {
    let late = db::credits::late_releases(conn, organisation, now).await?;
    // By period (the allotments of one period, the period's own and an upgrade's, share its
    // room): one carry for the hold, taken from them in the renewal's order.
    let mut periods: Vec<i32> = late.iter().map(|l| l.period).collect();
    periods.dedup();
    for period in periods {
        let buckets: Vec<_> = late.iter().filter(|l| l.period == period).collect();
        let Some(first) = buckets.first() else {
            continue;
        };
        let (room, next_end) = (first.room.0, first.next_end);
        let back: i64 = buckets.iter().map(|b| b.remaining.0).sum();
        let carried = back.min(room);
        if carried <= 0 {
            continue;
        }
        let period_ref = format!("period:{period}");
        let mut to_take = carried;
        for bucket in &buckets {
            let n = bucket.remaining.0.min(to_take);
            if n <= 0 {
                break;
            }
            db::credits::debit_bucket(
                conn,
                organisation,
                bucket.bucket_id,
                EntryKind::Expiry,
                Credits(n),
                Movement {
                    actor: "system",
                    reason: "carried_over",
                    reference: &period_ref,
                    now,
                },
            )
            .await?;
            to_take -= n;
        }
        grant_in(
            conn,
            organisation,
            BucketSource::Rollover,
            None,
            Credits(carried),
            next_end,
            &format!("rollover:{}:hold:{hold}", period + 1),
            ROLLOVER,
            now,
        )
        .await?;
        db::credits::add_carried(conn, organisation, period, Credits(carried)).await?;
    }
    Ok(())
}

/// Expires what is left in every bucket whose expiry has come.
pub async fn expire_due(conn: &mut PgConnection, now: OffsetDateTime) -> Result<i64, CreditError> {
    let movement = Movement {
        actor: "system",
        reason: "expired",
        reference: "",
        now,
    };
    Ok(db::credits::expire_due(conn, None, None, movement).await?)
}

/// Grants `amount` credits in a new bucket, once per `key` (an order, a period). Returns the
/// bucket, new or granted before with that key.
#[allow(clippy::too_many_arguments)]
pub async fn grant_in(
    conn: &mut PgConnection,
    organisation: Uuid,
    source: BucketSource,
    restricted_to: Option<&str>,
    amount: Credits,
    expires_at: OffsetDateTime,
    key: &str,
    actor: Actor<'_>,
    now: OffsetDateTime,
) -> Result<Option<i64>, CreditError> {
    if amount.0 <= 0 {
        return Ok(None);
    }
    let movement = Movement {
        actor: actor.actor,
        reason: actor.reason,
        reference: key,
        now,
    };
    let kind = if source == BucketSource::Adjustment {
        EntryKind::Adjustment
    } else {
        EntryKind::Grant
    };
    Ok(db::credits::grant(
        conn,
        organisation,
        kind,
        source,
        restricted_to,
        amount,
        expires_at,
        key,
        movement,
    )
    .await?)
}

/// What a staff adjustment asks for.
#[derive(Debug, Clone, Copy)]
pub struct Adjustment<'a> {
    pub organisation: Uuid,
    /// Added when positive, removed when negative (never below zero).
    pub credits: Credits,
    pub reason: &'a str,
    /// The last day added credits can be used (Europe/Paris); default: a year.
    pub last_day: Option<Date>,
    pub key: &'a str,
    pub actor: &'a str,
}

/// A staff adjustment. Positive: a new bucket expiring after `last_day`. Negative: credits
/// taken from the buckets, soonest to expire first; refused when the balance is smaller.
/// Returns the available balance after it. Idempotent by key.
pub async fn adjust(
    pool: &PgPool,
    adjustment: Adjustment<'_>,
    now: OffsetDateTime,
) -> Result<Credits, CreditError> {
    retrying(|| async move {
        let mut tx = pool.begin().await?;
        let after = adjust_in(&mut tx, adjustment, now).await?;
        tx.commit().await?;
        Ok(after)
    })
    .await
}

async fn adjust_in(
    conn: &mut PgConnection,
    a: Adjustment<'_>,
    now: OffsetDateTime,
) -> Result<Credits, CreditError> {
    if !db::credits::lock_account(conn, a.organisation).await? {
        return Err(CreditError::UnknownOrganisation);
    }
    if let Some(after) = db::credits::adjustment_by_key(conn, a.organisation, a.key).await? {
        return Ok(after);
    }
    let id = Uuid::new_v4();
    let reference = format!("adjustment:{id}");
    let movement = Movement {
        actor: a.actor,
        reason: a.reason,
        reference: &reference,
        now,
    };
    let mut expires_at = None;
    if a.credits.0 > 0 {
        let end = match a.last_day {
            Some(day) => db::credits::paris_midnight_after(conn, day).await?,
            None => {
                let today = db::credits::paris_date(conn, now).await?;
                db::credits::paris_midnight_after(
                    conn,
                    today.saturating_add(time::Duration::days(365)),
                )
                .await?
            }
        };
        if end <= now {
            return Err(CreditError::ExpiryPassed);
        }
        expires_at = Some(end);
        db::credits::grant(
            conn,
            a.organisation,
            EntryKind::Adjustment,
            BucketSource::Adjustment,
            None,
            a.credits,
            end,
            &reference,
            movement,
        )
        .await?;
    } else {
        let wanted = Credits(-a.credits.0);
        let buckets: Vec<ledger::Bucket> = db::credits::buckets(conn, a.organisation)
            .await?
            .iter()
            .map(db::credits::BucketRow::as_domain)
            .collect();
        let available = ledger::available_for(&buckets, None, now);
        if available < wanted {
            return Err(CreditError::NotEnough { available });
        }
        // Soonest to expire first, whatever the restriction.
        let mut usable: Vec<&ledger::Bucket> = buckets
            .iter()
            .filter(|b| b.remaining.0 > 0 && b.expires_at > now)
            .collect();
        usable.sort_by_key(|b| (b.expires_at, b.id));
        let mut left = wanted.0;
        for bucket in usable {
            if left == 0 {
                break;
            }
            let n = bucket.remaining.0.min(left);
            db::credits::debit_bucket(
                conn,
                a.organisation,
                bucket.id,
                EntryKind::Adjustment,
                Credits(n),
                movement,
            )
            .await?;
            left -= n;
        }
    }
    let after = db::credits::available(conn, a.organisation, None, now).await?;
    db::credits::record_adjustment(
        conn,
        id,
        a.organisation,
        a.key,
        a.credits,
        a.reason,
        a.actor,
        expires_at,
        after,
        now,
    )
    .await?;
    db::audit::record(
        conn,
        db::audit::Entry {
            actor: a.actor,
            organisation: Some(a.organisation),
            action: "credits.adjust",
            reason: a.reason,
            before: Some(serde_json::json!({ "available": after.0 - a.credits.0 })),
            after: Some(serde_json::json!({
                "available": after.0,
                "credits": a.credits.0,
                "expires_at": expires_at.map(|t| t.unix_timestamp()),
            })),
            now,
        },
    )
    .await?;
    Ok(after)
}

/// Starts a new subscription's first period (anchored on today, Europe/Paris) with its
/// allotment.
pub async fn start_subscription(
    conn: &mut PgConnection,
    organisation: Uuid,
    plan: &str,
    status: SubscriptionStatus,
    now: OffsetDateTime,
) -> Result<(), CreditError> {
    db::accounts::create_subscription(conn, organisation, plan, status, now).await?;
    let Some(sub) = db::credits::lock_subscription(conn, organisation).await? else {
        return Err(CreditError::UnknownOrganisation);
    };
    db::credits::open_period(
        conn,
        organisation,
        &sub.plan_id,
        1,
        sub.period_start,
        sub.period_end,
    )
    .await?;
    let actor = Actor {
        actor: "system",
        reason: "allotment",
    };
    grant_in(
        conn,
        organisation,
        BucketSource::Allotment,
        None,
        sub.credits_per_period,
        sub.period_end,
        "period:1",
        actor,
        now,
    )
    .await?;
    Ok(())
}

/// A period opened by `roll_period`.
#[derive(Debug, Clone)]
pub struct Rolled {
    pub number: i32,
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    /// The new period's plan (a scheduled downgrade applies from it).
    pub plan_id: String,
}

/// Closes the subscription's current period if it has ended, in the caller's transaction (the
/// subscription's row locked by it): up to the plan's rollover cap of what its allotments left
/// carries over into a bucket expiring with the next period, the rest (and the previous
/// rollover) expires, a scheduled downgrade applies, and the next period opens, without its
/// allotment: the renewal charge grants it when paid (`grant_allotment`). Idempotent per
/// (subscription, period): `None` when nothing was due.
pub async fn roll_period(
    conn: &mut PgConnection,
    sub: &db::credits::Subscription,
    now: OffsetDateTime,
) -> Result<Option<Rolled>, CreditError> {
    if sub.period_end > now {
        return Ok(None);
    }
    let organisation = sub.organisation_id;
    db::credits::lock_account(conn, organisation).await?;
    let n = sub.period_number;
    let period_ref = format!("period:{n}");
    let (next_start, next_end) = db::credits::period_bounds(conn, sub.anchor_date, n + 1).await?;
    // What the period's allotments left (the period's, and an upgrade's): up to the next
    // plan's rollover cap carries over, taken from them in order.
    let allotments = db::credits::allotments_ending(conn, organisation, sub.period_end).await?;
    let left: Credits = allotments.iter().map(|b| b.remaining).sum();
    let (carried, _) = ledger::carry_over(left, sub.rollover_cap);
    let close = Movement {
        actor: "system",
        reason: "carried_over",
        reference: &period_ref,
        now,
    };
    let mut to_carry = carried.0;
    for bucket in &allotments {
        if to_carry == 0 {
            break;
        }
        let n = bucket.remaining.0.min(to_carry);
        db::credits::debit_bucket(
            conn,
            organisation,
            bucket.id,
            EntryKind::Expiry,
            Credits(n),
            close,
        )
        .await?;
        to_carry -= n;
    }
    // Everything else whose expiry has come: the rest of the allotment, the previous rollover,
    // purchases and adjustments that ended.
    let expired = db::credits::expire_due(
        conn,
        Some(organisation),
        Some(sub.period_end),
        Movement {
            reason: "expired",
            reference: "",
            ..close
        },
    )
    .await?;
    grant_in(
        conn,
        organisation,
        BucketSource::Rollover,
        None,
        carried,
        next_end,
        &format!("rollover:{}", n + 1),
        ROLLOVER,
        now,
    )
    .await?;
    db::credits::close_period(conn, organisation, n, Credits(expired), carried, now).await?;
    // A downgrade scheduled for the end of the period takes effect now.
    let next_plan = sub
        .scheduled_plan_id
        .clone()
        .unwrap_or_else(|| sub.plan_id.clone());
    if sub.scheduled_plan_id.is_some() {
        db::credits::switch_plan(conn, organisation, &next_plan).await?;
    }
    db::credits::open_period(conn, organisation, &next_plan, n + 1, next_start, next_end).await?;
    Ok(Some(Rolled {
        number: n + 1,
        start: next_start,
        end: next_end,
        plan_id: next_plan,
    }))
}

/// Grants period `n`'s allotment (once: its key is the period), expiring with the period.
pub async fn grant_allotment(
    conn: &mut PgConnection,
    organisation: Uuid,
    n: i32,
    credits: Credits,
    period_end: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<(), CreditError> {
    grant_in(
        conn,
        organisation,
        BucketSource::Allotment,
        None,
        credits,
        period_end,
        &format!("period:{n}"),
        Actor {
            actor: "system",
            reason: "allotment",
        },
        now,
    )
    .await?;
    Ok(())
}

/// `check-ledger`: every disagreement between the ledger and the balances.
pub async fn check(pool: &PgPool) -> Result<Vec<Difference>, CreditError> {
    let mut conn = pool.acquire().await?;
    Ok(db::credits::check(&mut conn).await?)
}

/// The credits an organisation can use now.
pub async fn available(
    pool: &PgPool,
    organisation: Uuid,
    now: OffsetDateTime,
) -> Result<Credits, CreditError> {
    let mut conn = pool.acquire().await?;
    Ok(db::credits::available(&mut conn, organisation, None, now).await?)
}

/// Sends the pending low-balance and expiry alerts to each organisation's owner, through the
/// outbox, in the job's transaction. Returns how many were sent.
pub async fn send_alerts(
    conn: &mut PgConnection,
    public_url: &str,
    now: OffsetDateTime,
) -> Result<u64, CreditError> {
    let alerts = db::credits::claim_alerts(conn, 100).await?;
    let mut sent = 0;
    for alert in &alerts {
        let dashboard_link = format!("{public_url}/tableau-de-bord");
        let email = match (alert.kind.as_str(), alert.credits, alert.last_day) {
            ("low_balance", _, _) => Some(Email::LowBalance {
                organisation: alert.organisation_name.clone(),
                available: alert.available,
                threshold: alert.threshold,
                dashboard_link,
                buy_link: format!("{public_url}/achats"),
            }),
            (_, Some(credits), Some(last_day)) if credits > 0 => Some(Email::CreditsExpiring {
                organisation: alert.organisation_name.clone(),
                credits,
                last_day: crate::domain::format::date_fr(last_day),
                days: days_until(now, last_day),
                dashboard_link,
            }),
            _ => None,
        };
        if let (Some(email), Some(to)) = (email, &alert.owner_email) {
            mail::queue(conn, to, &email).await.map_err(Fault::from)?;
            sent += 1;
        }
        db::credits::mark_alert_sent(conn, alert.id, now).await?;
    }
    Ok(sent)
}

/// Whole days from `now` to the end of `last_day` (at least 1).
fn days_until(now: OffsetDateTime, last_day: Date) -> i64 {
    ((last_day - now.date()).whole_days() + 1).max(1)
}

/// What the dashboard shows of an organisation's credits at `now`.
#[derive(Debug, Clone)]
pub struct Overview {
    /// Credits usable now (expired buckets left out).
    pub available: Credits,
    /// Set aside by running generations.
    pub held: Credits,
    /// The buckets that hold credits, in the consumption order.
    pub buckets: Vec<db::credits::BucketRow>,
    pub usage: crate::domain::limits::Usage,
    pub subscription: Option<db::credits::Subscription>,
    /// Credits spent per day over the last 30 days (Europe/Paris), oldest first.
    pub spent_per_day: Vec<(Date, i64)>,
    /// The balance is below the organisation's threshold (since this crossing).
    pub low_balance: bool,
    /// The day `now` falls on, Europe/Paris.
    pub today: Date,
}

/// Days the dashboard's chart covers.
pub const CHART_DAYS: i32 = 30;

pub async fn overview(
    pool: &PgPool,
    organisation: Uuid,
    now: OffsetDateTime,
) -> Result<Overview, CreditError> {
    let mut conn = pool.acquire().await?;
    overview_in(&mut conn, organisation, now).await
}

/// `overview` on the caller's connection (the dashboard reads everything on one).
pub async fn overview_in(
    conn: &mut PgConnection,
    organisation: Uuid,
    now: OffsetDateTime,
) -> Result<Overview, CreditError> {
    let conn = &mut *conn;
    let Some(account) = db::credits::account(conn, organisation).await? else {
        return Err(CreditError::UnknownOrganisation);
    };
    let buckets: Vec<_> = db::credits::buckets(conn, organisation)
        .await?
        .into_iter()
        .filter(|b| b.expires_at > now)
        .collect();
    let available = buckets.iter().map(|b| b.remaining).sum();
    let usage = db::credits::usage(conn, organisation, now).await?;
    let subscription = db::credits::subscription(conn, organisation).await?;
    let spent_per_day = db::credits::spent_per_day(conn, organisation, now, CHART_DAYS).await?;
    let today = spent_per_day.last().map_or(now.date(), |d| d.0);
    Ok(Overview {
        available,
        held: account.held,
        buckets,
        usage,
        subscription,
        spent_per_day,
        low_balance: account.low_balance_since.is_some(),
        today,
    })
}

/// A page of the history and what the filter matches in all.
pub struct HistoryPage {
    pub entries: Vec<db::credits::Entry>,
    pub total: i64,
}

/// Lines of the history, newest first, `per_page` from `offset`.
pub async fn history(
    pool: &PgPool,
    organisation: Uuid,
    filter: &db::credits::HistoryFilter,
    offset: i64,
    per_page: i64,
) -> Result<HistoryPage, CreditError> {
    let mut conn = pool.acquire().await?;
    let total = db::credits::history_count(&mut conn, organisation, filter).await?;
    let entries =
        db::credits::history(&mut conn, organisation, filter, None, offset, per_page).await?;
    Ok(HistoryPage { entries, total })
}

/// The next chunk of the history for an export: lines older than `before`, newest first.
pub async fn history_chunk(
    pool: &PgPool,
    organisation: Uuid,
    filter: &db::credits::HistoryFilter,
    before: Option<i64>,
    size: i64,
) -> Result<Vec<db::credits::Entry>, CreditError> {
    let mut conn = pool.acquire().await?;
    Ok(db::credits::history(&mut conn, organisation, filter, before, 0, size).await?)
}

/// What the simulator needs of a signed-in organisation: its buckets and its use of the limits.
#[derive(Debug, Clone)]
pub struct SimulatorCredits {
    pub buckets: Vec<db::credits::BucketRow>,
    pub usage: crate::domain::limits::Usage,
}

pub async fn for_simulator(
    pool: &PgPool,
    organisation: Uuid,
    now: OffsetDateTime,
) -> Result<SimulatorCredits, CreditError> {
    let mut conn = pool.acquire().await?;
    let buckets = db::credits::buckets(&mut conn, organisation).await?;
    let usage = db::credits::usage(&mut conn, organisation, now).await?;
    Ok(SimulatorCredits { buckets, usage })
}
