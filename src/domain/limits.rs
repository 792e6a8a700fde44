//! Fair-use limits and refusals. A generation launch is checked in PRODUCT.md's order (the
//! subscription's state, then plan feature, forbidden prompt, concurrency, daily cap, monthly
//! cap, balance): `Refusal` is ordered the same way, so that the first refusal is the smallest.
//! For the simulator: which cap of the plan would stop a batch, and after how many renders.

use serde::Serialize;

use super::catalog::Plan;
use super::money::Credits;
use super::prompt::Category;

/// Why a generation does not start (nothing is held or debited), with what the French sentence
/// needs to name the rule and the way out. Variants are declared in check order and `Ord` is
/// derived: `a < b` when `a`'s rule is checked first, so the first refusal is the minimum.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub enum Refusal {
    /// The subscription is suspended (unpaid past its retries, or by staff): every launch.
    Suspended,
    /// 4K on a plan without it; `available_in` names a plan that has it.
    FourKNotInPlan { available_in: Option<String> },
    /// A launch through the API on a plan without it.
    ApiNotInPlan { available_in: Option<String> },
    /// The schedule in force has no price for this request (a data error staff must fix). Found
    /// while pricing, with the plan's features, before any cap can be weighed.
    NotPriced,
    /// The prompt falls in a forbidden category.
    Prompt { category: Category },
    /// As many renders as the plan allows are running: a new launch is refused (not queued)
    /// until one of them finishes.
    Concurrency { allowed: i64 },
    /// The organisation has launched its plan's generations for today.
    DailyCap { cap: i64 },
    /// This launch would take the credits spent this month past the plan's cap.
    MonthlyCap { cap: Credits },
    /// The balance does not cover the cost.
    Balance { needed: Credits, available: Credits },
}

impl Refusal {
    /// The rule name of the JSON contract.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::Suspended => "suspended",
            Self::FourKNotInPlan { .. } | Self::ApiNotInPlan { .. } => "plan_feature",
            Self::NotPriced => "not_priced",
            Self::Prompt { .. } => "prompt",
            Self::Concurrency { .. } => "concurrency",
            Self::DailyCap { .. } => "daily_cap",
            Self::MonthlyCap { .. } => "monthly_cap",
            Self::Balance { .. } => "balance",
        }
    }
}

/// What a launch is checked against. `cost` is the outcome of pricing (which refuses 4K on a
/// plan without it, or a request the schedule does not price).
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    pub suspended: bool,
    pub plan: &'a Plan,
    /// Every plan, to name the way out of a plan-feature refusal.
    pub plans: &'a [Plan],
    pub via_api: bool,
    /// The forbidden category the prompt falls in, if any.
    pub prompt: Option<Category>,
    pub cost: Result<Credits, Refusal>,
    pub usage: Usage,
    /// The credits available to the creation type; `None` when the hold that follows the
    /// checks decides, under the same lock (the balance is the last rule: a short hold is
    /// refused with `Refusal::Balance` and what it found).
    pub balance: Option<Credits>,
}

/// Every rule that refuses `launch`, in check order (empty: it may start).
pub fn refusals(launch: &Launch) -> Vec<Refusal> {
    let plan = launch.plan;
    let mut found = Vec::new();
    if launch.suspended {
        found.push(Refusal::Suspended);
    }
    if launch.via_api && !plan.allows_api {
        let available_in = launch.plans.iter().find(|p| p.allows_api);
        found.push(Refusal::ApiNotInPlan {
            available_in: available_in.map(|p| p.name.clone()),
        });
    }
    if let Err(refusal) = &launch.cost {
        found.push(refusal.clone());
    }
    if let Some(category) = launch.prompt {
        found.push(Refusal::Prompt { category });
    }
    let usage = launch.usage;
    if usage.renders_running >= plan.concurrent_renders {
        found.push(Refusal::Concurrency {
            allowed: plan.concurrent_renders,
        });
    }
    if usage.generations_today >= plan.daily_generations {
        found.push(Refusal::DailyCap {
            cap: plan.daily_generations,
        });
    }
    if let Ok(cost) = launch.cost {
        if usage.credits_this_month + cost.0 > plan.monthly_credits {
            found.push(Refusal::MonthlyCap {
                cap: Credits(plan.monthly_credits),
            });
        }
        if let Some(balance) = launch.balance
            && cost > balance
        {
            found.push(Refusal::Balance {
                needed: cost,
                available: balance.max(Credits(0)),
            });
        }
    }
    found.sort();
    found
}

/// The most usage a launch of `cost` may find and still pass the caps of `plan` (concurrency,
/// daily, monthly): each rule of `refusals` compares its own figure, so a launch that passes
/// every other rule passes the caps exactly when `usage.renders_running <= max_running`,
/// `usage.generations_today <= max_today` and `usage.credits_this_month <= max_month`. The
/// database compares the usage it reads under the account's lock with these when a launch
/// is made in one statement (`db::generations::launch_fast`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageBounds {
    pub max_running: i64,
    pub max_today: i64,
    pub max_month: i64,
}

pub fn usage_bounds(plan: &Plan, cost: Credits) -> UsageBounds {
    UsageBounds {
        max_running: plan.concurrent_renders - 1,
        max_today: plan.daily_generations - 1,
        max_month: plan.monthly_credits - cost.0,
    }
}

/// The refusal the user is shown: the first rule, in check order, that refuses `launch`.
pub fn check_launch(launch: &Launch) -> Result<(), Refusal> {
    match refusals(launch).into_iter().next() {
        Some(refusal) => Err(refusal),
        None => Ok(()),
    }
}

/// What has been used already in the current day, month and right now (zero for a visitor).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub generations_today: i64,
    pub credits_this_month: i64,
    pub renders_running: i64,
}

/// The caps that can stop a batch, in check order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
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
    /// Renders that may run at the same time: beyond them, a new launch is refused until one
    /// finishes (the user waits and launches again; nothing is queued).
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
    // Earliest first; at the same render, in check order.
    stops.sort_by_key(|s| (s.after, s.rule));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(id: &str, name: &str, network: bool) -> Plan {
        Plan {
            id: id.into(),
            name: name.into(),
            price_cents: crate::domain::money::Cents(if network { 9900 } else { 2900 }),
            credits_per_period: if network { 150 } else { 30 },
            rollover_cap: 10,
            features: vec![],
            allows_4k: network,
            allows_api: network,
            daily_generations: if network { 60 } else { 15 },
            monthly_credits: if network { 450 } else { 90 },
            concurrent_renders: if network { 4 } else { 1 },
        }
    }

    /// One refusal of each rule, listed in PRODUCT.md's check order.
    fn one_of_each() -> Vec<Refusal> {
        vec![
            Refusal::Suspended,
            Refusal::FourKNotInPlan {
                available_in: Some("Plan Réseau".into()),
            },
            Refusal::ApiNotInPlan {
                available_in: Some("Plan Réseau".into()),
            },
            Refusal::NotPriced,
            Refusal::Prompt {
                category: Category::DrugsDanger,
            },
            Refusal::Concurrency { allowed: 1 },
            Refusal::DailyCap { cap: 15 },
            Refusal::MonthlyCap { cap: Credits(90) },
            Refusal::Balance {
                needed: Credits(4),
                available: Credits(1),
            },
        ]
    }

    #[test]
    fn refusals_are_ordered_as_product_md_checks_them() {
        let ordered = one_of_each();
        let rules: Vec<&str> = ordered.iter().map(Refusal::rule).collect();
        assert_eq!(
            rules,
            [
                "suspended",
                "plan_feature",
                "plan_feature",
                "not_priced",
                "prompt",
                "concurrency",
                "daily_cap",
                "monthly_cap",
                "balance"
            ]
        );
        let mut shuffled = ordered.clone();
        shuffled.reverse();
        shuffled.swap(1, 5);
        shuffled.sort();
        assert_eq!(shuffled, ordered);
        for (i, first) in ordered.iter().enumerate() {
            for later in &ordered[i + 1..] {
                assert!(first < later, "{first:?} is checked before {later:?}");
            }
        }
        // Whatever its numbers, a rule keeps its place.
        assert!(Refusal::Concurrency { allowed: 99 } < Refusal::DailyCap { cap: 0 });
        assert!(
            Refusal::MonthlyCap { cap: Credits(1000) }
                < Refusal::Balance {
                    needed: Credits(0),
                    available: Credits(0)
                }
        );
    }

    fn launch<'a>(plan: &'a Plan, plans: &'a [Plan]) -> Launch<'a> {
        Launch {
            suspended: false,
            plan,
            plans,
            via_api: false,
            prompt: None,
            cost: Ok(Credits(3)),
            usage: Usage::default(),
            balance: Some(Credits(30)),
        }
    }

    #[test]
    fn a_launch_within_every_limit_starts() {
        let plans = [
            plan("eglise", "Plan Église", false),
            plan("reseau", "Plan Réseau", true),
        ];
        assert_eq!(check_launch(&launch(&plans[0], &plans)), Ok(()));
    }

    #[test]
    fn the_first_refusal_is_shown_when_several_rules_refuse() {
        let plans = [
            plan("eglise", "Plan Église", false),
            plan("reseau", "Plan Réseau", true),
        ];
        let mut everything_wrong = launch(&plans[0], &plans);
        everything_wrong.suspended = true;
        everything_wrong.via_api = true;
        everything_wrong.prompt = Some(Category::Sexual);
        everything_wrong.usage = Usage {
            generations_today: 15,
            credits_this_month: 89,
            renders_running: 1,
        };
        everything_wrong.balance = Some(Credits(2));
        let rules: Vec<&str> = refusals(&everything_wrong)
            .iter()
            .map(Refusal::rule)
            .collect();
        assert_eq!(
            rules,
            [
                "suspended",
                "plan_feature",
                "prompt",
                "concurrency",
                "daily_cap",
                "monthly_cap",
                "balance"
            ]
        );
        assert_eq!(check_launch(&everything_wrong), Err(Refusal::Suspended));
        everything_wrong.suspended = false;
        assert_eq!(
            check_launch(&everything_wrong),
            Err(Refusal::ApiNotInPlan {
                available_in: Some("Plan Réseau".into())
            })
        );
        everything_wrong.via_api = false;
        everything_wrong.prompt = None;
        assert_eq!(
            check_launch(&everything_wrong),
            Err(Refusal::Concurrency { allowed: 1 })
        );
    }

    #[test]
    fn beyond_the_concurrent_renders_a_launch_is_refused_not_queued() {
        let plans = [
            plan("eglise", "Plan Église", false),
            plan("reseau", "Plan Réseau", true),
        ];
        let mut busy = launch(&plans[0], &plans);
        busy.usage.renders_running = 1;
        assert_eq!(
            check_launch(&busy),
            Err(Refusal::Concurrency { allowed: 1 })
        );
        let mut network = launch(&plans[1], &plans);
        network.usage.renders_running = 3;
        assert_eq!(
            check_launch(&network),
            Ok(()),
            "a fourth render on Plan Réseau"
        );
        network.usage.renders_running = 4;
        assert_eq!(
            check_launch(&network),
            Err(Refusal::Concurrency { allowed: 4 })
        );
    }

    #[test]
    fn a_pricing_refusal_takes_its_place_in_the_order() {
        let plans = [
            plan("eglise", "Plan Église", false),
            plan("reseau", "Plan Réseau", true),
        ];
        let mut four_k = launch(&plans[0], &plans);
        four_k.cost = Err(Refusal::FourKNotInPlan {
            available_in: Some("Plan Réseau".into()),
        });
        four_k.usage.renders_running = 1;
        assert_eq!(check_launch(&four_k), Err(four_k.cost.clone().unwrap_err()));
        four_k.suspended = true;
        assert_eq!(check_launch(&four_k), Err(Refusal::Suspended));
    }

    #[test]
    fn caps_count_this_launch_and_the_balance_covers_its_cost() {
        let plans = [
            plan("eglise", "Plan Église", false),
            plan("reseau", "Plan Réseau", true),
        ];
        let mut month = launch(&plans[0], &plans);
        month.usage.credits_this_month = 87;
        assert_eq!(check_launch(&month), Ok(()), "87 + 3 = 90, the cap itself");
        month.usage.credits_this_month = 88;
        assert_eq!(
            check_launch(&month),
            Err(Refusal::MonthlyCap { cap: Credits(90) })
        );
        let mut poor = launch(&plans[0], &plans);
        poor.balance = Some(Credits(2));
        assert_eq!(
            check_launch(&poor),
            Err(Refusal::Balance {
                needed: Credits(3),
                available: Credits(2)
            })
        );
        let mut today = launch(&plans[0], &plans);
        today.usage.generations_today = 14;
        assert_eq!(check_launch(&today), Ok(()));
        today.usage.generations_today = 15;
        assert_eq!(check_launch(&today), Err(Refusal::DailyCap { cap: 15 }));
    }

    #[test]
    fn batch_stops_at_the_same_render_are_listed_in_check_order() {
        let eglise = plan("eglise", "Plan Église", false);
        let usage = Usage {
            generations_today: 5,
            credits_this_month: 80,
            renders_running: 0,
        };
        let limits = batch_limits(&eglise, 1, 20, usage, Some(10));
        let rules: Vec<LimitRule> = limits.stops.iter().map(|s| s.rule).collect();
        assert_eq!(
            rules,
            [LimitRule::Daily, LimitRule::Monthly, LimitRule::Balance]
        );
        assert!(limits.stops.iter().all(|s| s.after == 10));
        assert_eq!(limits.concurrent, 1);
    }

    /// The bounds the database checks for a launch in one statement let through exactly the
    /// usages the rules let through: every usage around each bound, for both plans and several
    /// costs (a raise changes the plan's figures the same way).
    #[test]
    fn usage_bounds_let_through_exactly_what_the_rules_do() {
        let plans = [
            plan("eglise", "Plan Église", false),
            plan("reseau", "Plan Réseau", true),
        ];
        for p in &plans {
            for cost in [0, 1, 3, 12, p.monthly_credits, p.monthly_credits + 1] {
                let bounds = usage_bounds(p, Credits(cost));
                for running in bounds.max_running - 1..=bounds.max_running + 2 {
                    for today in bounds.max_today - 1..=bounds.max_today + 2 {
                        for month in bounds.max_month - 2..=bounds.max_month + 2 {
                            let usage = Usage {
                                generations_today: today,
                                credits_this_month: month,
                                renders_running: running,
                            };
                            let launch = Launch {
                                suspended: false,
                                plan: p,
                                plans: &plans,
                                via_api: p.allows_api,
                                prompt: None,
                                cost: Ok(Credits(cost)),
                                usage,
                                balance: None,
                            };
                            let within = running <= bounds.max_running
                                && today <= bounds.max_today
                                && month <= bounds.max_month;
                            assert_eq!(
                                check_launch(&launch).is_ok(),
                                within,
                                "{} cost {cost}: {usage:?} against {bounds:?}",
                                p.id
                            );
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod refusal_json {
    use super::*;

    #[test]
    fn a_refusal_reads_back_from_its_json() {
        for refusal in [
            Refusal::FourKNotInPlan {
                available_in: Some("Plan Réseau".into()),
            },
            Refusal::Balance {
                needed: Credits(3),
                available: Credits(1),
            },
            Refusal::Prompt {
                category: crate::domain::prompt::Category::DrugsDanger,
            },
            Refusal::Suspended,
        ] {
            let json = serde_json::to_value(&refusal).unwrap();
            assert_eq!(
                serde_json::from_value::<Refusal>(json.clone()).unwrap(),
                refusal,
                "{json}"
            );
        }
    }
}

/// How long, in seconds, before a launch refused by `rule` may pass: until midnight in Paris for
/// the daily cap, until the first of the next month for the monthly cap (Paris's midnights,
/// summer time or not), a short while for a render to finish; `None` for a rule that time does
/// not lift.
pub fn wait_after_refusal(rule: &str, now: time::OffsetDateTime) -> Option<i64> {
    use super::price_edit::paris_midnight;
    /// A render takes seconds to minutes: a client looks again after this.
    const RENDER_WAIT_SECS: i64 = 15;
    let today = super::format::paris(now).date();
    let until = |at: time::OffsetDateTime| (at - now).whole_seconds();
    match rule {
        "concurrency" => Some(RENDER_WAIT_SECS),
        "daily_cap" => Some(until(paris_midnight(today.next_day()?))),
        "monthly_cap" => {
            let first = today.replace_day(1).ok()?;
            let next_month = first
                .checked_add(time::Duration::days(31))?
                .replace_day(1)
                .ok()?;
            Some(until(paris_midnight(next_month)))
        }
        _ => None,
    }
}
