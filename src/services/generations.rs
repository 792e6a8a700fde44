//! Generations: one launch service for the portal's form and the API. A launch is checked in
//! PRODUCT.md's order (the subscription's state, plan feature, prompt, concurrency, daily cap,
//! monthly cap, balance) under the organisation's account lock, so that caps stay exact under
//! concurrency; a refusal holds nothing and is kept with its rule; a success places a hold. The
//! engine's report captures (succeeded) or releases (failed) it; 30 minutes without a report
//! expire it (the job runner).

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex, PoisonError};

use sqlx::{PgConnection, PgPool};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::catalog::Catalog;
use super::credits::{self, Actor, CreditError};
use super::fault::Fault;
use super::turns::Turns;
use crate::db;
use crate::db::credits::Placed;
use crate::db::generations::{
    Generation, LaunchContext, LaunchHold, NewGeneration, Opened, Reported,
};
use crate::domain::ledger::{HOLD_TIMEOUT, HoldState};
use crate::domain::limits::{Launch, Refusal, Usage, check_launch};
use crate::domain::money::Credits;
use crate::domain::pricing::{quote, request_pairs};
use crate::domain::prompt::PromptRules;
use crate::domain::simulation::{FieldError, FieldErrors, RawSimulation};

/// How long the test engine takes to report.
pub const TEST_ENGINE_DELAY: Duration = Duration::seconds(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Portal,
    Api,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Via::Portal => "portal",
            Via::Api => "api",
        }
    }
}

/// A launch as asked.
#[derive(Debug, Clone)]
pub struct LaunchRequest<'a> {
    pub organisation: Uuid,
    /// The simulator's fields (`plan` is ignored: the organisation's plan applies).
    pub raw: RawSimulation,
    pub via: Via,
    /// `user:…` or `api-key:…`.
    pub launched_by: &'a str,
    /// The hold's idempotency key (the API's Idempotency-Key); a new one when absent.
    pub key: Option<&'a str>,
}

#[derive(Debug, Clone)]
pub enum LaunchOutcome {
    /// A field is wrong: nothing is recorded.
    Invalid(FieldErrors),
    Launched {
        generation: Generation,
        available: Credits,
    },
    /// Nothing is held; the launch is kept with its rule.
    Refused {
        generation: Generation,
        refusal: Refusal,
    },
}

/// The launches of one organisation take turns in the process before they take a connection
/// (see `turns`): one queue per process, whatever the portal's pools.
static LAUNCH_TURNS: LazyLock<Turns> = LazyLock::new(Turns::default);

/// Launches in a transaction of its own, retried on a deadlock or a serialisation failure.
pub async fn launch(
    pool: &PgPool,
    catalog: &Catalog,
    rules: &PromptRules,
    request: &LaunchRequest<'_>,
    now: OffsetDateTime,
) -> Result<LaunchOutcome, CreditError> {
    let _turn = LAUNCH_TURNS.wait(request.organisation).await;
    credits::retrying(|| async move {
        let mut tx = pool.begin().await?;
        let outcome = launch_in(&mut tx, catalog, rules, request, now).await?;
        tx.commit().await?;
        Ok(outcome)
    })
    .await
}

/// The launch, inside the caller's transaction (without an Idempotency-Key: the portal's form).
pub async fn launch_in(
    conn: &mut PgConnection,
    catalog: &Catalog,
    rules: &PromptRules,
    request: &LaunchRequest<'_>,
    now: OffsetDateTime,
) -> Result<LaunchOutcome, CreditError> {
    match db::generations::launch_open(conn, request.organisation, None, now).await? {
        Opened::Open { context, usage } => {
            launch_opened(conn, catalog, rules, request, context, usage, now).await
        }
        _ => Err(CreditError::UnknownOrganisation),
    }
}

/// The launch once `launch_open` has locked the organisation's account: the request checked
/// and priced, then refused, or held and recorded. The lock is held from the usage read to the
/// commit, so that caps stay exact under concurrency.
async fn launch_opened(
    conn: &mut PgConnection,
    catalog: &Catalog,
    rules: &PromptRules,
    request: &LaunchRequest<'_>,
    context: LaunchContext,
    usage: Usage,
    now: OffsetDateTime,
) -> Result<LaunchOutcome, CreditError> {
    let organisation = request.organisation;
    let mut raw = request.raw.clone();
    raw.plan = Some(context.plan_id.clone());
    let simulation = match raw.parse(&catalog.ranges, &catalog.plan_ids(), catalog.default_plan()) {
        Ok(simulation) => simulation,
        Err(errors) => return Ok(LaunchOutcome::Invalid(errors)),
    };
    if simulation.request.quantity.get() != 1 {
        let mut errors = FieldErrors::new();
        errors.insert("quantite", FieldError::OutOfRange { min: 1, max: 1 });
        return Ok(LaunchOutcome::Invalid(errors));
    }
    let Some(mut plan) = catalog.plan(&context.plan_id).cloned() else {
        return Err(Fault::Unavailable(anyhow::anyhow!(
            "the organisation's plan is not in the catalog"
        ))
        .into());
    };
    if let Some(raise) = &context.raise {
        plan.daily_generations = raise.daily;
        plan.monthly_credits = raise.monthly;
        plan.concurrent_renders = raise.concurrent;
    }
    let Some(schedule) = catalog.schedule_at(now) else {
        return Err(Fault::Unavailable(anyhow::anyhow!("no price schedule in force")).into());
    };
    let creation_request = simulation.request;
    let creation_type = creation_request.creation.creation_type().id();
    let cost = quote(schedule, &plan, &catalog.plans, &creation_request).map(|q| Credits(q.total));
    let prompt = rules.check(&simulation.prompt).category;
    let check = Launch {
        suspended: context.suspended,
        plan: &plan,
        plans: &catalog.plans,
        via_api: request.via == Via::Api,
        prompt,
        cost: cost.clone(),
        usage,
        // The hold below checks the balance, under the same lock, in one round trip.
        balance: None,
    };
    let id = Uuid::new_v4();
    let described =
        serde_urlencoded::to_string(request_pairs(&creation_request)).unwrap_or_default();
    let row = NewGeneration {
        id,
        organisation,
        hold: None,
        creation_type,
        request: &described,
        prompt: &simulation.prompt,
        status: "refused",
        refusal_rule: None,
        refusal: None,
        credits_held: 0,
        via: request.via.as_str(),
        launched_by: request.launched_by,
        now,
    };
    if let Err(refusal) = check_launch(&check) {
        return refused(conn, row, refusal).await;
    }
    let Ok(cost) = cost else {
        return Err(Fault::Internal(anyhow::anyhow!(
            "a launch passed its checks without a price"
        ))
        .into());
    };
    // The hold's own key: the portal's form key (the same form sent twice holds once). An API
    // launch is made once per Idempotency-Key by its stored answer, in this transaction; its
    // hold gets the generation's key, so that a key reused once its answer is purged (days
    // later) launches anew instead of finding the old hold.
    let key = match (request.via, request.key) {
        (Via::Portal, Some(key)) => key.to_owned(),
        _ => format!("generation:{id}"),
    };
    let reference = format!("generation:{id}");
    // Microseconds, as PostgreSQL keeps it (the generation is returned as stored).
    let now = now
        .replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now);
    let launch = LaunchHold {
        generation: NewGeneration {
            status: "running",
            credits_held: cost.0,
            now,
            ..row
        },
        amount: cost,
        key: &key,
        reference: &reference,
        expires_at: now + HOLD_TIMEOUT,
    };
    match db::generations::launch_hold(conn, launch).await? {
        Placed::UnknownOrganisation => Err(CreditError::UnknownOrganisation),
        Placed::Placed { hold, available } => {
            let generation = Generation {
                id,
                organisation_id: organisation,
                hold_id: Some(hold),
                creation_type: creation_type.to_owned(),
                request: described,
                prompt: simulation.prompt,
                status: "running".to_owned(),
                refusal_rule: None,
                refusal: None,
                credits_held: cost.0,
                credits_charged: 0,
                via: request.via.as_str().to_owned(),
                created_at: now,
                finished_at: None,
            };
            Ok(LaunchOutcome::Launched {
                generation,
                available,
            })
        }
        Placed::Existing(hold) => {
            // The same key again: its generation is the answer.
            let generation = db::generations::by_hold(conn, hold)
                .await?
                .ok_or(CreditError::UnknownHold)?;
            let available = db::credits::available(conn, organisation, None, now).await?;
            Ok(LaunchOutcome::Launched {
                generation,
                available,
            })
        }
        // The last rule: what the buckets that serve the type hold does not cover the cost.
        Placed::Short { available } => {
            refused(
                conn,
                row,
                Refusal::Balance {
                    needed: cost,
                    available,
                },
            )
            .await
        }
    }
}

/// Keeps a refused launch with its rule (nothing held).
async fn refused(
    conn: &mut PgConnection,
    row: NewGeneration<'_>,
    refusal: Refusal,
) -> Result<LaunchOutcome, CreditError> {
    let rule = refusal.rule();
    let detail = serde_json::to_value(&refusal).ok();
    let generation = db::generations::insert(
        conn,
        NewGeneration {
            refusal_rule: Some(rule),
            refusal: detail.as_ref(),
            ..row
        },
    )
    .await?;
    Ok(LaunchOutcome::Refused {
        generation,
        refusal,
    })
}

/// What the engine reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
}

impl Outcome {
    pub fn status(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone)]
pub enum Report {
    /// Recorded now, or the same report again: the generation as it stands.
    Recorded(Generation),
    /// No such generation (or a refused launch, which the engine never saw).
    NotFound,
    /// Another outcome was recorded, or the generation expired: the report is refused.
    Conflict(Generation),
}

/// Records the engine's report on a generation: `succeeded` captures its hold, `failed`
/// releases it. The same report again gives the same answer; another outcome after one was
/// recorded, or any report after the generation expired, is a conflict.
pub async fn report(
    pool: &PgPool,
    id: Uuid,
    outcome: Outcome,
    now: OffsetDateTime,
) -> Result<Report, CreditError> {
    // One statement in the usual case (no BEGIN and COMMIT around it).
    let reported = credits::retrying(|| async move {
        let mut conn = pool.acquire().await?;
        Ok(db::generations::report(&mut conn, id, outcome.status(), now, HOLD_TIMEOUT).await?)
    })
    .await?;
    match reported {
        Reported::NotFound => Ok(Report::NotFound),
        Reported::Done(generation) => Ok(verdict(*generation, outcome)),
        Reported::Slow => {
            credits::retrying(|| async move {
                let mut tx = pool.begin().await?;
                let answer = report_in(&mut tx, id, outcome, now).await?;
                tx.commit().await?;
                Ok(answer)
            })
            .await
        }
    }
}

/// The answer to a report, once the generation is as it stands: recorded when its outcome is
/// the one reported, a conflict otherwise.
fn verdict(generation: Generation, outcome: Outcome) -> Report {
    if generation.status == outcome.status() {
        Report::Recorded(generation)
    } else {
        Report::Conflict(generation)
    }
}

async fn report_in(
    conn: &mut PgConnection,
    id: Uuid,
    outcome: Outcome,
    now: OffsetDateTime,
) -> Result<Report, CreditError> {
    let Some(mut generation) = db::generations::get(conn, id).await? else {
        return Ok(Report::NotFound);
    };
    let Some(hold) = generation.hold_id else {
        return Ok(Report::NotFound);
    };
    if generation.status == "running" {
        let mut finished = None;
        // Past its timeout, the generation is expired whatever arrives now.
        if now >= generation.created_at + HOLD_TIMEOUT {
            expire(conn, hold, now).await?;
        } else {
            let to = match outcome {
                Outcome::Succeeded => HoldState::Captured,
                Outcome::Failed => HoldState::Released,
            };
            let actor = Actor {
                actor: "engine",
                reason: outcome.status(),
            };
            let resolution = credits::resolve_in(conn, hold, to, actor, now).await?;
            if resolution.changed {
                let charged = if to == HoldState::Captured {
                    resolution.amount
                } else {
                    Credits(0)
                };
                finished =
                    db::generations::finish(conn, id, outcome.status(), charged, now).await?;
            }
        }
        // Written here, or (a race, an expiry) by someone else: read as it stands.
        generation = match finished {
            Some(finished) => finished,
            None => match db::generations::get(conn, id).await? {
                Some(current) => current,
                None => return Ok(Report::NotFound),
            },
        };
    }
    Ok(verdict(generation, outcome))
}

/// Releases a hold left without a report and marks its generation expired.
async fn expire(
    conn: &mut PgConnection,
    hold: Uuid,
    now: OffsetDateTime,
) -> Result<bool, CreditError> {
    let actor = Actor {
        actor: "system",
        reason: "timeout",
    };
    let resolution = credits::resolve_in(conn, hold, HoldState::Released, actor, now).await?;
    if resolution.changed
        && let Some(generation) = db::generations::by_hold(conn, hold).await?
    {
        db::generations::finish(conn, generation.id, "expired", Credits(0), now).await?;
    }
    Ok(resolution.changed)
}

/// The job: every hold past its timeout is released, its generation (if any) expired.
pub async fn expire_overdue(pool: &PgPool, now: OffsetDateTime) -> Result<u64, CreditError> {
    let mut expired = 0;
    loop {
        let ids = {
            let mut conn = pool.acquire().await?;
            db::credits::overdue_holds(&mut conn, now, 200).await?
        };
        for hold in &ids {
            let done = credits::retrying(|| async move {
                let mut tx = pool.begin().await?;
                let done = expire(&mut tx, *hold, now).await?;
                tx.commit().await?;
                Ok(done)
            })
            .await?;
            if done {
                expired += 1;
            }
        }
        if ids.len() < 200 {
            return Ok(expired);
        }
    }
}

/// The built-in test engine (`NANOCLIP_ENGINE=test`): reports each generation running for
/// `TEST_ENGINE_DELAY` as succeeded, or failed when its prompt contains « échec test ».
pub async fn run_test_engine(pool: &PgPool, now: OffsetDateTime) -> Result<u64, CreditError> {
    let running = {
        let mut conn = pool.acquire().await?;
        db::generations::running_since(&mut conn, now - TEST_ENGINE_DELAY, 500).await?
    };
    let mut reported = 0;
    for (id, prompt) in running {
        let outcome = if prompt.to_lowercase().contains("échec test") {
            Outcome::Failed
        } else {
            Outcome::Succeeded
        };
        if let Report::Recorded(_) = report(pool, id, outcome, now).await? {
            reported += 1;
        }
    }
    Ok(reported)
}

/// A generation of the organisation (another organisation's is not found).
pub async fn get(
    pool: &PgPool,
    organisation: Uuid,
    id: Uuid,
) -> Result<Option<Generation>, CreditError> {
    let mut conn = pool.acquire().await?;
    Ok(db::generations::get(&mut conn, id)
        .await?
        .filter(|g| g.organisation_id == organisation && g.status != "refused"))
}

pub async fn list(
    pool: &PgPool,
    organisation: Uuid,
    status: Option<&str>,
    with_refused: bool,
    limit: i64,
) -> Result<Vec<Generation>, CreditError> {
    let mut conn = pool.acquire().await?;
    Ok(db::generations::list(&mut conn, organisation, status, with_refused, limit).await?)
}

/// An API answer to keep with its Idempotency-Key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// What an Idempotency-Key gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idempotent {
    /// Answered now, or the stored answer to the same request.
    Answer(Answer),
    /// The same key is still being answered.
    InProgress,
    /// The same key with another body.
    Conflict,
}

/// The Idempotency-Keys being answered by this process: a duplicate gets `InProgress` at once,
/// without waiting for its organisation's turn behind the request it duplicates.
static IN_FLIGHT: LazyLock<Mutex<HashSet<(Uuid, String)>>> = LazyLock::new(Mutex::default);

/// A key of `IN_FLIGHT`, given back when the request ends (answered, refused or failed).
struct InFlight {
    entry: (Uuid, String),
}

impl InFlight {
    fn take(organisation: Uuid, key: &str) -> Option<Self> {
        let entry = (organisation, key.to_owned());
        let taken = IN_FLIGHT
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(entry.clone());
        // Built only once the set is unlocked (and only when taken: its drop gives it back).
        taken.then(|| InFlight { entry })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.entry);
    }
}

/// `POST /api/v1/generations` with its Idempotency-Key. The key's lock, the stored answer, the
/// launch and its answer (rendered by `answer`) are one transaction: a key never causes a
/// second hold, its answer is never lost, and a 5xx leaves nothing behind. A duplicate while
/// the first request is still being answered gets `InProgress`: at once from this process,
/// and from the key's advisory lock when the first request runs in another instance.
pub async fn launch_idempotent(
    pool: &PgPool,
    catalog: &Catalog,
    rules: &PromptRules,
    request: &LaunchRequest<'_>,
    fingerprint: &str,
    answer: impl Fn(&LaunchOutcome) -> Answer,
    now: OffsetDateTime,
) -> Result<Idempotent, CreditError> {
    let organisation = request.organisation;
    let Some(key) = request.key else {
        return Err(
            Fault::Internal(anyhow::anyhow!("an idempotent launch without its key")).into(),
        );
    };
    let Some(_in_flight) = InFlight::take(organisation, key) else {
        return Ok(Idempotent::InProgress);
    };
    let answer = &answer;
    let _turn = LAUNCH_TURNS.wait(organisation).await;
    credits::retrying(|| async move {
        let mut tx = pool.begin().await?;
        let (context, usage) = match db::generations::launch_open(
            &mut tx,
            organisation,
            Some((key, fingerprint)),
            now,
        )
        .await?
        {
            Opened::InProgress => return Ok(Idempotent::InProgress),
            Opened::Conflict => return Ok(Idempotent::Conflict),
            Opened::Answer { status, body } => {
                return Ok(Idempotent::Answer(Answer {
                    status: u16::try_from(status).unwrap_or(500),
                    body,
                }));
            }
            Opened::Unknown => return Err(CreditError::UnknownOrganisation),
            Opened::Open { context, usage } => (context, usage),
        };
        let outcome = launch_opened(&mut tx, catalog, rules, request, context, usage, now).await?;
        let reply = answer(&outcome);
        db::generations::store_answer(
            &mut tx,
            organisation,
            key,
            fingerprint,
            i32::from(reply.status),
            &reply.body,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Idempotent::Answer(reply))
    })
    .await
}

/// `GET /api/v1/solde`: the balance, the buckets, the limits in force and their use.
#[derive(Debug, Clone)]
pub struct Balance {
    pub overview: credits::Overview,
    pub caps: Caps,
    pub low_balance_threshold: i64,
    pub raise: Option<db::generations::Raise>,
}

/// The fair-use caps in force: the plan's, or a temporary raise's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub daily: i64,
    pub monthly: i64,
    pub concurrent: i64,
}

pub async fn balance(
    pool: &PgPool,
    catalog: &Catalog,
    organisation: Uuid,
    now: OffsetDateTime,
) -> Result<Balance, CreditError> {
    let mut conn = pool.acquire().await?;
    let overview = credits::overview_in(&mut conn, organisation, now).await?;
    let Some(context) = db::generations::launch_context(&mut conn, organisation, now).await? else {
        return Err(CreditError::UnknownOrganisation);
    };
    let plan = catalog.plan(&context.plan_id);
    let caps = match (&context.raise, plan) {
        (Some(r), _) => Caps {
            daily: r.daily,
            monthly: r.monthly,
            concurrent: r.concurrent,
        },
        (None, Some(p)) => Caps {
            daily: p.daily_generations,
            monthly: p.monthly_credits,
            concurrent: p.concurrent_renders,
        },
        (None, None) => {
            return Err(Fault::Unavailable(anyhow::anyhow!(
                "the organisation's plan is not in the catalog"
            ))
            .into());
        }
    };
    Ok(Balance {
        overview,
        caps,
        low_balance_threshold: context.low_balance_threshold,
        raise: context.raise,
    })
}
