//! Fair-use limits. For the simulator: which limit of the plan would stop a batch, and after how
//! many renders. Generation launches check the same caps, in PRODUCT.md's order.

use serde::Serialize;

use super::catalog::Plan;

/// What has been used already in the current day, month and right now (zero for a visitor).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub generations_today: i64,
    pub credits_this_month: i64,
    pub renders_running: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LimitRule {
    Daily,
    Monthly,
    Balance,
}

/// A limit that would stop the batch after `after` renders (possibly 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stop {
    pub rule: LimitRule,
    pub after: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchLimits {
    /// The earliest stop, if any limit stops the batch before its end.
    pub stop: Option<Stop>,
    /// Every limit that stops it, earliest first (the page explains each).
    pub stops: Vec<Stop>,
    /// Renders that fit under each cap, from `usage`.
    pub daily_room: i64,
    pub monthly_room: i64,
    /// Renders that run at the same time; the rest wait their turn (never a refusal).
    pub concurrent: i64,
    /// Days needed for the whole batch at the daily cap.
    pub days_needed: i64,
}

/// Which caps of `plan` stop `quantity` renders of `unit` credits each, given `usage` and, for a
/// signed-in organisation, its `balance` (credits available).
pub fn batch_limits(
    plan: &Plan,
    unit: i64,
    quantity: i64,
    usage: Usage,
    balance: Option<i64>,
) -> BatchLimits {
    let daily_room = (plan.daily_generations - usage.generations_today).max(0);
    let monthly_credits_left = (plan.monthly_credits - usage.credits_this_month).max(0);
    let monthly_room = if unit == 0 {
        quantity
    } else {
        monthly_credits_left / unit
    };
    let mut stops = Vec::new();
    if daily_room < quantity {
        stops.push(Stop {
            rule: LimitRule::Daily,
            after: daily_room,
        });
    }
    if monthly_room < quantity {
        stops.push(Stop {
            rule: LimitRule::Monthly,
            after: monthly_room,
        });
    }
    if let Some(balance) = balance {
        let covered = if unit == 0 {
            quantity
        } else {
            balance.max(0) / unit
        };
        if covered < quantity {
            stops.push(Stop {
                rule: LimitRule::Balance,
                after: covered,
            });
        }
    }
    stops.sort_by_key(|s| s.after);
    let days_needed = if plan.daily_generations > 0 {
        (quantity + plan.daily_generations - 1) / plan.daily_generations
    } else {
        0
    };
    BatchLimits {
        stop: stops.first().copied(),
        stops,
        daily_room,
        monthly_room,
        concurrent: plan.concurrent_renders,
        days_needed,
    }
}
