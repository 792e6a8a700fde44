//! Credits as the ledger sees them: where a bucket's credits come from, the kinds of movement,
//! the consumption order, what a renewal carries over, and the projection the dashboard shows.
//! The database applies the same rules (`db::credits`); these pure versions serve the simulator
//! and are the model the property tests compare the database with.

use std::cmp::Ordering;

use time::{Duration, OffsetDateTime};

use super::account::text_enum;
use super::money::Credits;

/// A hold not resolved within this time is released by the job runner.
pub const HOLD_TIMEOUT: Duration = Duration::minutes(30);

text_enum! {
    /// Where a bucket's credits come from.
    BucketSource ("bucket source") {
        Allotment => "allotment",
        Rollover => "rollover",
        Purchase => "purchase",
        Adjustment => "adjustment",
    }
}

text_enum! {
    /// A movement of the ledger.
    EntryKind ("ledger entry kind") {
        Grant => "grant",
        Hold => "hold",
        Capture => "capture",
        Release => "release",
        Expiry => "expiry",
        Adjustment => "adjustment",
        Refund => "refund",
    }
}

text_enum! {
    /// Where a hold stands: resolved exactly once, by a capture or a release.
    HoldState ("hold state") {
        Held => "held",
        Captured => "captured",
        Released => "released",
    }
}

/// A bucket as the consumption order sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub id: i64,
    pub source: BucketSource,
    /// `None`: any creation type.
    pub restricted_to: Option<String>,
    pub remaining: Credits,
    pub expires_at: OffsetDateTime,
}

impl Bucket {
    /// Whether a generation of `creation_type` may draw from it at `now`.
    pub fn serves(&self, creation_type: &str, now: OffsetDateTime) -> bool {
        self.remaining.0 > 0
            && self.expires_at > now
            && self
                .restricted_to
                .as_deref()
                .is_none_or(|only| only == creation_type)
    }
}

/// The consumption order: buckets restricted to the type first, then earliest expiry, then
/// oldest (the smallest id).
pub fn consumption_order(a: &Bucket, b: &Bucket) -> Ordering {
    (a.restricted_to.is_none(), a.expires_at, a.id).cmp(&(
        b.restricted_to.is_none(),
        b.expires_at,
        b.id,
    ))
}

/// The credits `cost` takes from each bucket, in the consumption order; `None` when the buckets
/// that serve `creation_type` hold fewer than `cost`.
pub fn draw(
    buckets: &[Bucket],
    creation_type: &str,
    cost: Credits,
    now: OffsetDateTime,
) -> Option<Vec<(i64, Credits)>> {
    let mut usable: Vec<&Bucket> = buckets
        .iter()
        .filter(|b| b.serves(creation_type, now))
        .collect();
    usable.sort_by(|a, b| consumption_order(a, b));
    let mut left = cost.0;
    let mut taken = Vec::new();
    for bucket in usable {
        if left == 0 {
            break;
        }
        let n = bucket.remaining.0.min(left);
        taken.push((bucket.id, Credits(n)));
        left -= n;
    }
    (left == 0).then_some(taken)
}

/// The credits that serve `creation_type` at `now`.
pub fn available_for(
    buckets: &[Bucket],
    creation_type: Option<&str>,
    now: OffsetDateTime,
) -> Credits {
    buckets
        .iter()
        .filter(|b| match creation_type {
            Some(t) => b.serves(t, now),
            None => b.remaining.0 > 0 && b.expires_at > now,
        })
        .map(|b| b.remaining)
        .sum()
}

/// At the end of a period, what the period's allotment left: up to the plan's rollover cap
/// carries over into the next period, the rest expires. Returns (carried, expired).
pub fn carry_over(allotment_left: Credits, rollover_cap: Credits) -> (Credits, Credits) {
    let carried = allotment_left.min(rollover_cap).max(Credits(0));
    (carried, allotment_left - carried)
}

/// The days of use a pace is read from, at least: one busy day (a first video for Christmas) is
/// not a pace, and a projection read from it would be off by weeks.
pub const PACE_MIN_DAYS: usize = 7;

/// « At the current pace, your balance covers about N days ».
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// The days `available` covers at the average use per day.
    Covers(i64),
    /// Credits used, but on fewer than `PACE_MIN_DAYS` days of subscription.
    TooEarly,
    /// No credit used.
    Unused,
}

/// The pace of the days given (oldest first, each day's use), and what `available` covers at it.
pub fn pace(used_per_day: &[i64], available: Credits) -> Pace {
    let used: i64 = used_per_day.iter().sum();
    if used <= 0 {
        return Pace::Unused;
    }
    if used_per_day.len() < PACE_MIN_DAYS {
        return Pace::TooEarly;
    }
    // available / (used / days), rounded down.
    Pace::Covers(available.0.max(0) * used_per_day.len() as i64 / used)
}

/// An operator's `--credits` value: a whole number, not zero.
pub fn parse_adjustment(raw: &str) -> Result<Credits, AdjustmentError> {
    match raw.trim().parse::<i64>() {
        Ok(0) => Err(AdjustmentError::Zero),
        Ok(n) if n.abs() <= 1_000_000 => Ok(Credits(n)),
        Ok(_) => Err(AdjustmentError::TooLarge),
        Err(_) => Err(AdjustmentError::NotANumber),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AdjustmentError {
    #[error("not a whole number")]
    NotANumber,
    #[error("zero")]
    Zero,
    #[error("too large")]
    TooLarge,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn bucket(id: i64, only: Option<&str>, remaining: i64, expires: OffsetDateTime) -> Bucket {
        Bucket {
            id,
            source: BucketSource::Allotment,
            restricted_to: only.map(str::to_owned),
            remaining: Credits(remaining),
            expires_at: expires,
        }
    }

    #[test]
    fn restricted_buckets_go_first_then_the_earliest_expiry_then_the_oldest() {
        let now = datetime!(2026-12-04 12:00 UTC);
        let later = datetime!(2027-06-01 0:00 UTC);
        let sooner = datetime!(2026-12-31 23:00 UTC);
        let buckets = [
            bucket(1, None, 5, later),
            bucket(2, None, 2, sooner),
            bucket(3, Some("musique"), 3, later),
            bucket(4, None, 4, sooner),
            bucket(5, Some("mini-livre"), 10, sooner),
            bucket(6, None, 9, datetime!(2026-12-01 0:00 UTC)), // expired
        ];
        assert_eq!(
            draw(&buckets, "musique", Credits(8), now),
            Some(vec![(3, Credits(3)), (2, Credits(2)), (4, Credits(3))])
        );
        assert_eq!(
            draw(&buckets, "video", Credits(7), now),
            Some(vec![(2, Credits(2)), (4, Credits(4)), (1, Credits(1))])
        );
        assert_eq!(draw(&buckets, "video", Credits(12), now), None);
        assert_eq!(available_for(&buckets, Some("video"), now), Credits(11));
        assert_eq!(available_for(&buckets, None, now), Credits(24));
    }

    #[test]
    fn a_renewal_carries_up_to_the_cap_and_expires_the_rest() {
        assert_eq!(
            carry_over(Credits(12), Credits(10)),
            (Credits(10), Credits(2))
        );
        assert_eq!(
            carry_over(Credits(4), Credits(10)),
            (Credits(4), Credits(0))
        );
        assert_eq!(
            carry_over(Credits(0), Credits(10)),
            (Credits(0), Credits(0))
        );
    }

    #[test]
    fn the_projection_divides_the_balance_by_the_pace_of_a_week_at_least() {
        assert_eq!(pace(&[2, 0, 1, 3, 0, 0, 1], Credits(21)), Pace::Covers(21));
        assert_eq!(pace(&[2, 0, 1, 3, 0, 0], Credits(18)), Pace::TooEarly);
        assert_eq!(pace(&[3], Credits(27)), Pace::TooEarly);
        assert_eq!(pace(&[0; 30], Credits(18)), Pace::Unused);
        assert_eq!(pace(&[], Credits(18)), Pace::Unused);
    }

    #[test]
    fn an_adjustment_is_a_whole_number_other_than_zero() {
        assert_eq!(parse_adjustment("-30"), Ok(Credits(-30)));
        assert_eq!(parse_adjustment(" 12 "), Ok(Credits(12)));
        assert_eq!(parse_adjustment("0"), Err(AdjustmentError::Zero));
        assert_eq!(parse_adjustment("1,5"), Err(AdjustmentError::NotANumber));
        assert_eq!(parse_adjustment("99999999"), Err(AdjustmentError::TooLarge));
    }
}
