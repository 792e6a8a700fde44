//! The simulator's verdict: price on the reader's plan and on every plan, the fair-use limits
//! that would stop the batch, the prompt check, and advice that saves credits.

use time::OffsetDateTime;

use super::catalog::Catalog;
use crate::domain::catalog::Plan;
use crate::domain::limits::Refusal;
use crate::domain::limits::{BatchLimits, Usage, batch_limits};
use crate::domain::pricing::{Creation, Quote, Request, Schedule, quote, range_of};
use crate::domain::prompt::{Fields, PromptCheck, PromptRules};
use crate::domain::simulation::{FieldErrors, RawSimulation, Simulation};

/// What the reader's organisation has, when signed in; visitors get the plan's allotment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Account {
    pub balance: Option<i64>,
    pub usage: Usage,
}

/// Borrowed from the catalog: a verdict copies no plan (names, features) per request.
#[derive(Debug, Clone)]
pub struct PlanQuote<'c> {
    pub plan: &'c Plan,
    pub outcome: Result<Quote, Refusal>,
}

#[derive(Debug, Clone)]
pub struct Verdict<'c> {
    pub simulation: Simulation,
    pub plan: &'c Plan,
    pub schedule_from: OffsetDateTime,
    pub outcome: Result<Quote, Refusal>,
    /// The same request on every plan, in plan order.
    pub per_plan: Vec<PlanQuote<'c>>,
    pub limits: Option<BatchLimits>,
    pub prompt: PromptCheck,
    /// « Itérer court »: the same creation at the shortest duration, when it is cheaper.
    pub short_test: Option<(u16, Quote)>,
    /// Credits the batch is measured against: the balance when signed in, else the allotment.
    pub budget: i64,
    pub budget_is_balance: bool,
}

impl Verdict<'_> {
    pub fn balance_after(&self) -> Option<i64> {
        self.outcome.as_ref().ok().map(|q| self.budget - q.total)
    }

    /// How many renders of this kind the budget covers.
    pub fn renders_covered(&self) -> Option<i64> {
        self.outcome.as_ref().ok().map(|q| {
            if q.unit == 0 {
                0
            } else {
                self.budget.max(0) / q.unit
            }
        })
    }
}

#[derive(Debug)]
pub enum SimulationError {
    Invalid(FieldErrors),
    /// No schedule in force or the plan vanished: a data problem for staff, a 503 for readers.
    Unavailable,
}

pub fn simulate<'c>(
    catalog: &'c Catalog,
    rules: &PromptRules,
    raw: &RawSimulation,
    now: OffsetDateTime,
    account: Account,
) -> Result<Verdict<'c>, SimulationError> {
    let plan_ids = catalog.plan_ids();
    let simulation = raw
        .parse(&catalog.ranges, &plan_ids, catalog.default_plan())
        .map_err(SimulationError::Invalid)?;
    let plan = catalog
        .plan(&simulation.plan)
        .ok_or(SimulationError::Unavailable)?;
    let schedule = catalog
        .schedule_at(now)
        .ok_or(SimulationError::Unavailable)?;
    let request = simulation.request;
    let outcome = quote(schedule, plan, &catalog.plans, &request);
    let per_plan = catalog
        .plans
        .iter()
        .map(|p| PlanQuote {
            plan: p,
            outcome: quote(schedule, p, &catalog.plans, &request),
        })
        .collect();
    let budget_is_balance = account.balance.is_some();
    let budget = account.balance.unwrap_or(plan.credits_per_period);
    let limits = outcome.as_ref().ok().map(|q| {
        batch_limits(
            plan,
            q.unit,
            i64::from(request.quantity.get()),
            account.usage,
            account.balance,
        )
    });
    let short_test = short_test(catalog, schedule, plan, &request, outcome.as_ref().ok());
    Ok(Verdict {
        prompt: rules.check_for(
            &simulation.prompt,
            Fields {
                creation_type: request.creation.creation_type(),
                format_given: simulation.format_given,
            },
        ),
        simulation,
        plan,
        schedule_from: schedule.effective_from,
        outcome,
        per_plan,
        limits,
        short_test,
        budget,
        budget_is_balance,
    })
}

/// The seed's advice « testez 5–10 s avant une version longue », priced.
fn short_test(
    catalog: &Catalog,
    schedule: &Schedule,
    plan: &Plan,
    request: &Request,
    full: Option<&Quote>,
) -> Option<(u16, Quote)> {
    let full = full?;
    let (min, _) = range_of(&catalog.ranges, request.creation.creation_type());
    let min = min?;
    let creation = match request.creation {
        Creation::Video {
            seconds,
            format,
            resolution,
        } if seconds > min => Creation::Video {
            seconds: min,
            format,
            resolution,
        },
        Creation::Music { seconds } if seconds > min => Creation::Music { seconds: min },
        _ => return None,
    };
    let one = crate::domain::pricing::Quantity::new(1)?;
    let test = quote(
        schedule,
        plan,
        &catalog.plans,
        &Request {
            creation,
            quantity: one,
        },
    )
    .ok()?;
    (test.unit < full.unit).then_some((min, test))
}
