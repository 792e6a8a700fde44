//! Generations: one launch service for the portal's form and the API. A launch is checked in
//! PRODUCT.md's order (the subscription's state, plan feature, prompt, concurrency, daily cap,
//! monthly cap, balance) under the organisation's account lock, so that caps stay exact under
//! concurrency; a refusal holds nothing and is kept with its rule; a success places a hold. The
//! engine's report captures (succeeded) or releases (failed) it; 30 minutes without a report
//! expire it (the job runner).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
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
    Fast, FastLaunch, Generation, LaunchContext, LaunchHold, NewGeneration, Opened, Reported,
};
use crate::domain::ledger::{HOLD_TIMEOUT, HoldState};
use crate::domain::limits::{Launch, Refusal, Usage, check_launch, usage_bounds};
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
            remember(request.organisation, &context);
            launch_opened(conn, catalog, rules, request, context, usage, now).await
        }
        _ => Err(CreditError::UnknownOrganisation),
    }
}

/// A launch request checked against the catalog and the organisation's context, before its
/// usage is known: its fields parsed, its plan (with the raise in force), its price, its prompt
/// checked, and the generation it would record.
struct Prepared {
    id: Uuid,
    plan: crate::domain::catalog::Plan,
    cost: Result<Credits, Refusal>,
    prompt_category: Option<crate::domain::prompt::Category>,
    creation_type: &'static str,
    described: String,
    prompt: String,
}

impl Prepared {
    /// Parses and prices `request` for the organisation's `context`: `Ok(Err(_))` when a field
    /// is wrong (nothing is recorded).
    fn new(
        catalog: &Catalog,
        rules: &PromptRules,
        request: &LaunchRequest<'_>,
        context: &LaunchContext,
        now: OffsetDateTime,
    ) -> Result<Result<Self, FieldErrors>, CreditError> {
        let mut raw = request.raw.clone();
        raw.plan = Some(context.plan_id.clone());
        let simulation =
            match raw.parse(&catalog.ranges, &catalog.plan_ids(), catalog.default_plan()) {
                Ok(simulation) => simulation,
                Err(errors) => return Ok(Err(errors)),
            };
        if simulation.request.quantity.get() != 1 {
            let mut errors = FieldErrors::new();
            errors.insert("quantite", FieldError::OutOfRange { min: 1, max: 1 });
            return Ok(Err(errors));
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
        let cost =
            quote(schedule, &plan, &catalog.plans, &creation_request).map(|q| Credits(q.total));
        let prompt_category = rules.check(&simulation.prompt).category;
        Ok(Ok(Prepared {
            id: Uuid::new_v4(),
            creation_type: creation_request.creation.creation_type().id(),
            described: serde_urlencoded::to_string(request_pairs(&creation_request))
                .unwrap_or_default(),
            prompt: simulation.prompt,
            plan,
            cost,
            prompt_category,
        }))
    }

    /// The rules' check with `usage` (the balance is left to the hold, under the same lock).
    fn check<'p>(
        &'p self,
        catalog: &'p Catalog,
        context: &LaunchContext,
        request: &LaunchRequest<'_>,
        usage: Usage,
    ) -> Launch<'p> {
        Launch {
            suspended: context.suspended,
            plan: &self.plan,
            plans: &catalog.plans,
            via_api: request.via == Via::Api,
            prompt: self.prompt_category,
            cost: self.cost.clone(),
            usage,
            balance: None,
        }
    }

    /// The generation as recorded when refused (`status` and `credits_held` changed when held).
    fn row<'r>(&'r self, request: &'r LaunchRequest<'_>, now: OffsetDateTime) -> NewGeneration<'r> {
        NewGeneration {
            id: self.id,
            organisation: request.organisation,
            hold: None,
            creation_type: self.creation_type,
            request: &self.described,
            prompt: &self.prompt,
            status: "refused",
            refusal_rule: None,
            refusal: None,
            credits_held: 0,
            via: request.via.as_str(),
            launched_by: request.launched_by,
            now,
        }
    }

    /// The generation as a placed hold records it.
    fn launched(
        &self,
        request: &LaunchRequest<'_>,
        hold: Uuid,
        cost: Credits,
        now: OffsetDateTime,
    ) -> Generation {
        Generation {
            id: self.id,
            organisation_id: request.organisation,
            hold_id: Some(hold),
            creation_type: self.creation_type.to_owned(),
            request: self.described.clone(),
            prompt: self.prompt.clone(),
            status: "running".to_owned(),
            refusal_rule: None,
            refusal: None,
            credits_held: cost.0,
            credits_charged: 0,
            via: request.via.as_str().to_owned(),
            created_at: now,
            finished_at: None,
        }
    }

    /// The generation's reference, on its hold's ledger rows (and the key of an API launch's
    /// hold).
    fn reference(&self) -> String {
        format!("generation:{}", self.id)
    }
}

/// Microseconds, as PostgreSQL keeps it (a launched generation is returned as stored).
fn to_micros(now: OffsetDateTime) -> OffsetDateTime {
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
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
    let prepared = match Prepared::new(catalog, rules, request, &context, now)? {
        Ok(prepared) => prepared,
        Err(errors) => return Ok(LaunchOutcome::Invalid(errors)),
    };
    let row = prepared.row(request, now);
    if let Err(refusal) = check_launch(&prepared.check(catalog, &context, request, usage)) {
        return refused(conn, row, refusal).await;
    }
    let Ok(cost) = prepared.cost else {
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
        _ => prepared.reference(),
    };
    let reference = prepared.reference();
    let now = to_micros(now);
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
        Placed::Placed { hold, available } => Ok(LaunchOutcome::Launched {
            generation: prepared.launched(request, hold, cost, now),
            available,
        }),
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
        // It expired when its time ran out, not when the job (late after a restart, or a late
        // report) noticed: the release itself is dated now, in the ledger.
        let expired_at = (generation.created_at + HOLD_TIMEOUT).min(now);
        db::generations::finish(conn, generation.id, "expired", Credits(0), expired_at).await?;
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
        db::generations::running_since(&mut conn, now - TEST_ENGINE_DELAY, HOLD_TIMEOUT, 500)
            .await?
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
    Ok(of_organisation(pool, organisation, id)
        .await?
        .filter(|g| g.status != "refused"))
}

/// A generation of `organisation`, a refused one included (the portal's pages keep refusals;
/// the API does not show them).
pub async fn of_organisation(
    pool: &PgPool,
    organisation: Uuid,
    id: Uuid,
) -> Result<Option<Generation>, CreditError> {
    let mut conn = pool.acquire().await?;
    Ok(db::generations::get(&mut conn, id)
        .await?
        .filter(|g| g.organisation_id == organisation))
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

impl Idempotent {
    /// The answer stored with a key.
    fn stored(status: i32, body: String) -> Self {
        Idempotent::Answer(Answer {
            status: u16::try_from(status).unwrap_or(500),
            body,
        })
    }
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
    if let Some(done) =
        launch_fast(pool, catalog, rules, request, key, fingerprint, answer, now).await?
    {
        return Ok(done);
    }
    credits::retrying(|| async move {
        let mut tx = pool.begin().await?;
        let step = launch_keyed(
            &mut tx,
            catalog,
            rules,
            request,
            key,
            fingerprint,
            answer,
            now,
        )
        .await;
        credits::end(tx, step).await
    })
    .await
}

/// `launch_idempotent`'s transaction, up to its end: `Keep` what it launched or refused, with
/// its answer stored; `Drop` when the key was already answered or is in use.
#[allow(clippy::too_many_arguments)]
async fn launch_keyed(
    tx: &mut PgConnection,
    catalog: &Catalog,
    rules: &PromptRules,
    request: &LaunchRequest<'_>,
    key: &str,
    fingerprint: &str,
    answer: &impl Fn(&LaunchOutcome) -> Answer,
    now: OffsetDateTime,
) -> Result<credits::End<Idempotent>, CreditError> {
    use credits::End::Drop;
    let organisation = request.organisation;
    let opened =
        db::generations::launch_open(tx, organisation, Some((key, fingerprint)), now).await?;
    let (context, usage) = match given(opened) {
        Ok(given) => return Ok(Drop(given)),
        Err(Opened::Open { context, usage }) => (context, usage),
        Err(_) => return Err(CreditError::UnknownOrganisation),
    };
    remember(organisation, &context);
    let outcome = launch_opened(tx, catalog, rules, request, context, usage, now).await?;
    keep(tx, organisation, key, fingerprint, answer(&outcome), now).await
}

/// What a key already opened answers (in use, another body, its stored answer), or the opening
/// itself when the key is new.
fn given(opened: Opened) -> Result<Idempotent, Opened> {
    match opened {
        Opened::InProgress => Ok(Idempotent::InProgress),
        Opened::Conflict => Ok(Idempotent::Conflict),
        Opened::Answer { status, body } => Ok(Idempotent::stored(status, body)),
        other => Err(other),
    }
}

/// Stores `reply` with its key, to keep with the transaction.
async fn keep(
    tx: &mut PgConnection,
    organisation: Uuid,
    key: &str,
    fingerprint: &str,
    reply: Answer,
    now: OffsetDateTime,
) -> Result<credits::End<Idempotent>, CreditError> {
    db::generations::store_answer(
        tx,
        organisation,
        key,
        fingerprint,
        i32::from(reply.status),
        &reply.body,
        now,
    )
    .await?;
    Ok(credits::End::Keep(Idempotent::Answer(reply)))
}

/// `POST /api/v1/generations` answered before any launch (a body that is not a JSON object, a
/// wrong content type, a field of the wrong type): `answer` kept with its Idempotency-Key as a
/// launch's answer is, so that the same key with the same body gets it again, with another body
/// 422, and a key once answered never launches. The stored answer wins over `answer`.
pub async fn answer_idempotent(
    pool: &PgPool,
    organisation: Uuid,
    key: &str,
    fingerprint: &str,
    answer: Answer,
    now: OffsetDateTime,
) -> Result<Idempotent, CreditError> {
    let Some(_in_flight) = InFlight::take(organisation, key) else {
        return Ok(Idempotent::InProgress);
    };
    let answer = &answer;
    credits::retrying(|| async move {
        let mut tx = pool.begin().await?;
        let step = answer_keyed(&mut tx, organisation, key, fingerprint, answer, now).await;
        credits::end(tx, step).await
    })
    .await
}

/// `answer_idempotent`'s transaction: `Keep` the answer stored with a new key, `Drop` when the
/// key already has one or is in use.
async fn answer_keyed(
    tx: &mut PgConnection,
    organisation: Uuid,
    key: &str,
    fingerprint: &str,
    answer: &Answer,
    now: OffsetDateTime,
) -> Result<credits::End<Idempotent>, CreditError> {
    // `idempotency_key_open` opens no account: anything but an answer given is a new key.
    let opened = db::generations::idempotency_key_open(tx, organisation, key, fingerprint).await?;
    if let Some(Ok(given)) = opened.map(given) {
        return Ok(credits::End::Drop(given));
    }
    keep(tx, organisation, key, fingerprint, answer.clone(), now).await
}

/// The context each organisation's last launch in a transaction found, in this process: what
/// its next API launch expects when it tries one statement (`launch_fast`). The database
/// compares it with the organisation as it stands, so an old one costs a second attempt (in a
/// transaction), never a wrong answer.
static CONTEXTS: LazyLock<Mutex<HashMap<Uuid, LaunchContext>>> = LazyLock::new(Mutex::default);

/// Past this many organisations, `CONTEXTS` starts again (a bound on memory).
const CONTEXTS_CAPACITY: usize = 10_000;

fn remember(organisation: Uuid, context: &LaunchContext) {
    let mut contexts = CONTEXTS.lock().unwrap_or_else(PoisonError::into_inner);
    if contexts.len() >= CONTEXTS_CAPACITY && !contexts.contains_key(&organisation) {
        contexts.clear();
    }
    contexts.insert(organisation, context.clone());
}

fn remembered(organisation: Uuid) -> Option<LaunchContext> {
    CONTEXTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&organisation)
        .cloned()
}

/// How many API launches this process answered in one statement (read by the tests).
static FAST_ANSWERS: AtomicU64 = AtomicU64::new(0);

pub fn fast_answers() -> u64 {
    FAST_ANSWERS.load(Ordering::Relaxed)
}

/// An API launch in one statement, when the rules let it through before its usage is known:
/// checked and priced against the context the organisation's last launch found, then sent with
/// the bounds the rules set on the usage (`usage_bounds`) and its answer, written around the
/// balance after the hold (`db::generations::launch_fast`). `None` when the launch needs its
/// transaction: no context known yet, a field wrong or a rule refusing (the transaction records
/// the refusal), or the database finding the organisation or its usage other than expected
/// (nothing written).
#[allow(clippy::too_many_arguments)]
async fn launch_fast(
    pool: &PgPool,
    catalog: &Catalog,
    rules: &PromptRules,
    request: &LaunchRequest<'_>,
    key: &str,
    fingerprint: &str,
    answer: &impl Fn(&LaunchOutcome) -> Answer,
    now: OffsetDateTime,
) -> Result<Option<Idempotent>, CreditError> {
    let Some(context) = remembered(request.organisation) else {
        return Ok(None);
    };
    let Ok(prepared) = Prepared::new(catalog, rules, request, &context, now)? else {
        return Ok(None);
    };
    if check_launch(&prepared.check(catalog, &context, request, Usage::default())).is_err() {
        return Ok(None);
    }
    let Ok(cost) = prepared.cost else {
        return Ok(None);
    };
    let now = to_micros(now);
    // The answer with a balance no hold can leave, cut where it stands.
    let sketch = answer(&LaunchOutcome::Launched {
        generation: prepared.launched(request, Uuid::nil(), cost, now),
        available: Credits(i64::MIN),
    });
    let mark = i64::MIN.to_string();
    let mut parts = sketch.body.split(mark.as_str());
    let (201, Some(head), Some(tail), None) =
        (sketch.status, parts.next(), parts.next(), parts.next())
    else {
        return Ok(None);
    };
    let reference = prepared.reference();
    let launch = FastLaunch {
        key,
        fingerprint,
        expected: &context,
        bounds: usage_bounds(&prepared.plan, cost),
        hold: LaunchHold {
            generation: NewGeneration {
                status: "running",
                credits_held: cost.0,
                ..prepared.row(request, now)
            },
            amount: cost,
            key: &reference,
            reference: &reference,
            expires_at: now + HOLD_TIMEOUT,
        },
        body_head: head,
        body_tail: tail,
    };
    let done = credits::retrying(|| async move {
        let mut conn = pool.acquire().await?;
        Ok(db::generations::launch_fast(&mut conn, launch).await?)
    })
    .await?;
    let answered = match done {
        Fast::Slow => return Ok(None),
        Fast::InProgress => Idempotent::InProgress,
        Fast::Conflict => Idempotent::Conflict,
        Fast::Answer { status, body } => Idempotent::stored(status, body),
    };
    FAST_ANSWERS.fetch_add(1, Ordering::Relaxed);
    Ok(Some(answered))
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
