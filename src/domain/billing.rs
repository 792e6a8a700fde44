//! Billing rules: the order's states (they only move forward), VAT on integer cents, and
//! document numbers.

use super::account::text_enum;
use super::catalog::vat_included;
use super::money::Cents;

text_enum! {
    /// Where an order stands.
    OrderState ("order state") {
        Created => "created",
        Pending => "pending",
        Failed => "failed",
        Cancelled => "cancelled",
        Expired => "expired",
        Paid => "paid",
        Refunded => "refunded",
    }
}

impl OrderState {
    /// Orders move only to a higher rank: a payment confirmed late still makes a failed,
    /// cancelled or expired order paid (the money was taken); nothing undoes « paid » but a
    /// refund.
    fn rank(self) -> u8 {
        match self {
            OrderState::Created => 0,
            OrderState::Pending => 1,
            OrderState::Failed | OrderState::Cancelled | OrderState::Expired => 2,
            OrderState::Paid => 3,
            OrderState::Refunded => 4,
        }
    }

    pub fn may_become(self, next: OrderState) -> bool {
        next.rank() > self.rank()
    }

    /// The states an order may leave for `next`.
    pub fn before(next: OrderState) -> Vec<&'static str> {
        OrderState::ALL
            .iter()
            .filter(|s| s.may_become(next))
            .map(|s| s.as_str())
            .collect()
    }

    pub fn is_open(self) -> bool {
        matches!(self, OrderState::Created | OrderState::Pending)
    }
}

/// A TTC price split into HT and TVA at 20 %: HT = TTC × 100 / 120 rounded to the nearest cent,
/// TVA = TTC − HT.
pub fn split_ttc(ttc: Cents) -> (Cents, Cents) {
    let tva = vat_included(ttc);
    (ttc - tva, tva)
}

/// « FA-2026-000001 » (invoices) or « AV-2026-000001 » (credit notes).
pub fn document_number(series: &str, year: i32, sequence: i32) -> String {
    format!("{series}-{year}-{sequence:06}")
}

/// The payment outcomes the test provider offers the payer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestOutcome {
    Approve,
    Decline,
    InsufficientFunds,
    ExpiredCard,
    NoAnswer,
}

impl TestOutcome {
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "approuver" => TestOutcome::Approve,
            "refuser" => TestOutcome::Decline,
            "fonds-insuffisants" => TestOutcome::InsufficientFunds,
            "carte-expiree" => TestOutcome::ExpiredCard,
            "sans-reponse" => TestOutcome::NoAnswer,
            _ => return None,
        })
    }

    /// The failure reason recorded (None: approved or no answer yet).
    pub fn failure(self) -> Option<&'static str> {
        match self {
            TestOutcome::Decline => Some("card_declined"),
            TestOutcome::InsufficientFunds => Some("insufficient_funds"),
            TestOutcome::ExpiredCard => Some("expired_card"),
            TestOutcome::Approve | TestOutcome::NoAnswer => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_only_move_forward() {
        use OrderState::*;
        assert!(Created.may_become(Pending));
        assert!(Pending.may_become(Paid));
        assert!(Expired.may_become(Paid), "a late confirmation still counts");
        assert!(Paid.may_become(Refunded));
        assert!(!Paid.may_become(Failed));
        assert!(!Failed.may_become(Expired));
        assert!(!Refunded.may_become(Paid));
        assert_eq!(
            OrderState::before(Paid),
            ["created", "pending", "failed", "cancelled", "expired"]
        );
    }

    #[test]
    fn vat_is_split_on_integer_cents() {
        assert_eq!(split_ttc(Cents(1200)), (Cents(1000), Cents(200)));
        assert_eq!(split_ttc(Cents(3300)), (Cents(2750), Cents(550)));
        assert_eq!(split_ttc(Cents(400)), (Cents(333), Cents(67)));
        assert_eq!(split_ttc(Cents(2900)), (Cents(2417), Cents(483)));
    }

    #[test]
    fn document_numbers_are_zero_padded_per_year() {
        assert_eq!(document_number("FA", 2026, 1), "FA-2026-000001");
        assert_eq!(document_number("AV", 2027, 123456), "AV-2027-123456");
    }
}

/// An upgrade in the middle of a period: the price difference and the extra credits, each
/// prorated to the time left in the period and rounded to the nearest cent or credit. Half a
/// period left of Église → Réseau: 35,00 € and 60 credits (the guide's example).
pub fn prorate(difference: i64, left_seconds: i64, period_seconds: i64) -> i64 {
    if period_seconds <= 0 || difference <= 0 {
        return 0;
    }
    let left = left_seconds.clamp(0, period_seconds);
    (difference * left + period_seconds / 2) / period_seconds
}

#[cfg(test)]
mod prorate_tests {
    use super::*;

    #[test]
    fn half_a_period_costs_half_the_difference_as_the_guide_says() {
        let period = 31 * 86_400;
        assert_eq!(prorate(9900 - 2900, period / 2, period), 3500);
        assert_eq!(prorate(150 - 30, period / 2, period), 60);
        assert_eq!(prorate(7000, period, period), 7000);
        assert_eq!(prorate(7000, 0, period), 0);
        assert_eq!(prorate(120, 86_400, period), 4, "a day of 31: 3,87 → 4");
    }
}

/// A purchase's last day (Europe/Paris) when paid on `paid_on`: the same day a year on, or
/// 28 February for a payment on the 29th (« valables 12 mois », the same date on every page).
pub fn purchase_last_day(paid_on: time::Date) -> time::Date {
    paid_on
        .replace_year(paid_on.year() + 1)
        .or_else(|_| {
            paid_on
                .replace_day(28)
                .and_then(|d| d.replace_year(d.year() + 1))
        })
        .unwrap_or(paid_on + time::Duration::days(365))
}

/// When a purchase paid at `paid_at` expires: at the end of its last day in Paris, so that its
/// credits last at least twelve months.
pub fn purchase_expiry(paid_at: time::OffsetDateTime) -> time::OffsetDateTime {
    let last_day = purchase_last_day(super::format::paris(paid_at).date());
    super::price_edit::paris_midnight(last_day + time::Duration::DAY)
}

#[cfg(test)]
mod purchase_tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn a_purchase_lasts_to_the_end_of_the_same_day_a_year_on() {
        // 15:55 in Paris on 7 December 2026: to the end of 7 December 2027 (winter time).
        assert_eq!(
            purchase_expiry(datetime!(2026-12-07 14:55 UTC)),
            datetime!(2027-12-07 23:00 UTC)
        );
        // Paid at 00:30 in Paris on 1 July (still 30 June in UTC): summer time, +2 h.
        assert_eq!(
            purchase_expiry(datetime!(2026-06-30 22:30 UTC)),
            datetime!(2027-07-01 22:00 UTC)
        );
        assert_eq!(
            purchase_last_day(date!(2028 - 02 - 29)),
            date!(2029 - 02 - 28)
        );
    }
}

/// Days after the first failed renewal charge on which it is tried again.
pub const RETRY_DAYS: [i64; 3] = [1, 3, 7];

/// What follows a failed renewal charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Past due: charged again at this instant.
    RetryAt(time::OffsetDateTime),
    /// The last retry failed: the subscription is suspended until it is paid.
    Suspend,
}

/// The retry schedule: `failures` charges have failed (the first one included), the first at
/// `first_failure`. Retries come 1, 3 and 7 days after the first failure; the failure of the
/// last one suspends.
pub fn after_failure(first_failure: time::OffsetDateTime, failures: u32) -> AfterFailure {
    let index = usize::try_from(failures.max(1) - 1).unwrap_or(usize::MAX);
    match RETRY_DAYS.get(index) {
        Some(days) => AfterFailure::RetryAt(first_failure + time::Duration::days(*days)),
        None => AfterFailure::Suspend,
    }
}

/// What the provider answers to an off-session charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeOutcome {
    Paid,
    CardDeclined,
    InsufficientFunds,
    ExpiredCard,
    /// No answer in time: not paid (it counts as a failure; a late confirmation still pays).
    NoAnswer,
}

impl ChargeOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ChargeOutcome::Paid => "paid",
            ChargeOutcome::CardDeclined => "card_declined",
            ChargeOutcome::InsufficientFunds => "insufficient_funds",
            ChargeOutcome::ExpiredCard => "expired_card",
            ChargeOutcome::NoAnswer => "no_answer",
        }
    }

    /// The test provider's setting (`approve` or a failure's name).
    pub fn from_setting(raw: &str) -> Option<Self> {
        Some(match raw {
            "approve" => ChargeOutcome::Paid,
            "card_declined" => ChargeOutcome::CardDeclined,
            "insufficient_funds" => ChargeOutcome::InsufficientFunds,
            "expired_card" => ChargeOutcome::ExpiredCard,
            "no_answer" => ChargeOutcome::NoAnswer,
            _ => return None,
        })
    }

    /// The setting's name (`approve` for `Paid`).
    pub fn setting(self) -> &'static str {
        match self {
            ChargeOutcome::Paid => "approve",
            other => other.as_str(),
        }
    }
}

#[cfg(test)]
mod retry_tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn retries_come_on_days_1_3_and_7_after_the_first_failure_then_suspension() {
        let first = datetime!(2026-12-31 23:00 UTC);
        assert_eq!(
            after_failure(first, 1),
            AfterFailure::RetryAt(datetime!(2027-01-01 23:00 UTC))
        );
        assert_eq!(
            after_failure(first, 2),
            AfterFailure::RetryAt(datetime!(2027-01-03 23:00 UTC))
        );
        assert_eq!(
            after_failure(first, 3),
            AfterFailure::RetryAt(datetime!(2027-01-07 23:00 UTC))
        );
        assert_eq!(after_failure(first, 4), AfterFailure::Suspend);
        assert_eq!(after_failure(first, 40), AfterFailure::Suspend);
    }

    #[test]
    fn the_schedule_counts_from_the_first_failure_not_the_last() {
        let first = datetime!(2026-06-10 08:30 UTC);
        // However late the second retry ran, the third is still day 7.
        assert_eq!(
            after_failure(first, 3),
            AfterFailure::RetryAt(datetime!(2026-06-17 08:30 UTC))
        );
        assert_eq!(
            after_failure(first, 0),
            AfterFailure::RetryAt(datetime!(2026-06-11 08:30 UTC)),
            "no failure counted yet reads as the first"
        );
    }

    #[test]
    fn charge_outcomes_round_trip_through_their_settings() {
        for o in [
            ChargeOutcome::Paid,
            ChargeOutcome::CardDeclined,
            ChargeOutcome::InsufficientFunds,
            ChargeOutcome::ExpiredCard,
            ChargeOutcome::NoAnswer,
        ] {
            assert_eq!(ChargeOutcome::from_setting(o.setting()), Some(o));
        }
        assert_eq!(ChargeOutcome::from_setting("paid"), None);
    }
}
