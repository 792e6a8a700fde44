//! Generations, API keys, idempotency keys and temporary raises of the fair-use limits.

use sqlx::PgConnection;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::domain::money::Credits;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    pub id: Uuid,
    pub organisation_id: Uuid,
    pub hold_id: Option<Uuid>,
    pub creation_type: String,
    pub request: String,
    pub prompt: String,
    pub status: String,
    pub refusal_rule: Option<String>,
    pub refusal: Option<serde_json::Value>,
    pub credits_held: i64,
    pub credits_charged: i64,
    pub via: String,
    pub created_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
}

/// A new generation row.
#[derive(Debug, Clone, Copy)]
pub struct NewGeneration<'a> {
    pub id: Uuid,
    pub organisation: Uuid,
    pub hold: Option<Uuid>,
    pub creation_type: &'a str,
    pub request: &'a str,
    pub prompt: &'a str,
    pub status: &'a str,
    pub refusal_rule: Option<&'a str>,
    pub refusal: Option<&'a serde_json::Value>,
    pub credits_held: i64,
    pub via: &'a str,
    pub launched_by: &'a str,
    pub now: OffsetDateTime,
}

/// Records a launch and gives it back as stored (one round trip, under the account's lock).
pub async fn insert(conn: &mut PgConnection, g: NewGeneration<'_>) -> sqlx::Result<Generation> {
    let finished = (g.status != "running").then_some(g.now);
    sqlx::query_as!(
        Generation,
        "INSERT INTO generations (id, organisation_id, hold_id, creation_type, request, prompt, status, refusal_rule,
                                  credits_held, via, launched_by, created_at, finished_at, refusal)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         RETURNING id, organisation_id, hold_id, creation_type, request, prompt, status, refusal_rule, refusal,
                   credits_held, credits_charged, via, created_at, finished_at",
        g.id,
        g.organisation,
        g.hold,
        g.creation_type,
        g.request,
        g.prompt,
        g.status,
        g.refusal_rule,
        g.credits_held,
        g.via,
        g.launched_by,
        g.now,
        finished,
        g.refusal
    )
    .fetch_one(conn)
    .await
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Generation>> {
    sqlx::query_as!(
        Generation,
        "SELECT id, organisation_id, hold_id, creation_type, request, prompt, status, refusal_rule, refusal,
                credits_held, credits_charged, via, created_at, finished_at
         FROM generations WHERE id = $1",
        id
    )
    .fetch_optional(conn)
    .await
}

pub async fn by_hold(conn: &mut PgConnection, hold: Uuid) -> sqlx::Result<Option<Generation>> {
    sqlx::query_as!(
        Generation,
        "SELECT id, organisation_id, hold_id, creation_type, request, prompt, status, refusal_rule, refusal,
                credits_held, credits_charged, via, created_at, finished_at
         FROM generations WHERE hold_id = $1",
        hold
    )
    .fetch_optional(conn)
    .await
}

/// The organisation's generations, newest first (refused launches only when `with_refused`).
/// The running ones are read through their open holds (`credit_holds_open_by_organisation`, a
/// few rows): `generations` has no index on its status, so that a report's update stays on its
/// page, and a client polling them would otherwise walk the organisation's whole history.
pub async fn list(
    conn: &mut PgConnection,
    organisation: Uuid,
    status: Option<&str>,
    with_refused: bool,
    limit: i64,
) -> sqlx::Result<Vec<Generation>> {
    if status == Some("running") {
        return sqlx::query_as!(
            Generation,
            "SELECT g.id, g.organisation_id, g.hold_id, g.creation_type, g.request, g.prompt, g.status,
                    g.refusal_rule, g.refusal, g.credits_held, g.credits_charged, g.via, g.created_at,
                    g.finished_at
             FROM credit_holds_open h JOIN generations g ON g.hold_id = h.hold_id
             WHERE h.organisation_id = $1 AND g.organisation_id = $1 AND g.status = 'running'
             ORDER BY g.created_at DESC, g.id DESC LIMIT $2",
            organisation,
            limit
        )
        .fetch_all(conn)
        .await;
    }
    sqlx::query_as!(
        Generation,
        "SELECT id, organisation_id, hold_id, creation_type, request, prompt, status, refusal_rule, refusal,
                credits_held, credits_charged, via, created_at, finished_at
         FROM generations
         WHERE organisation_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3 OR status <> 'refused')
         ORDER BY created_at DESC, id DESC LIMIT $4",
        organisation,
        status,
        with_refused,
        limit
    )
    .fetch_all(conn)
    .await
}

/// Records the outcome of a running generation (`None`: it was not running any more).
pub async fn finish(
    conn: &mut PgConnection,
    id: Uuid,
    status: &str,
    charged: Credits,
    now: OffsetDateTime,
) -> sqlx::Result<Option<Generation>> {
    sqlx::query_as!(
        Generation,
        "UPDATE generations SET status = $2, credits_charged = $3, finished_at = $4
         WHERE id = $1 AND status = 'running'
         RETURNING id, organisation_id, hold_id, creation_type, request, prompt, status, refusal_rule, refusal,
                   credits_held, credits_charged, via, created_at, finished_at",
        id,
        status,
        charged.0,
        now
    )
    .fetch_optional(conn)
    .await
}

/// Running generations launched at or before `before` (the test engine's work), oldest first.
/// Read through their open holds, which end `timeout` after the launch (`credit_holds_open_due`):
/// `generations` has no index on its status, so that a report's update stays on its page.
pub async fn running_since(
    conn: &mut PgConnection,
    before: OffsetDateTime,
    timeout: time::Duration,
    limit: i64,
) -> sqlx::Result<Vec<(Uuid, String)>> {
    let rows = sqlx::query!(
        "SELECT g.id, g.prompt
           FROM credit_holds_open h JOIN generations g ON g.hold_id = h.hold_id
          WHERE h.expires_at <= $2 AND g.status = 'running' AND g.created_at <= $1
          ORDER BY h.expires_at LIMIT $3",
        before,
        before + timeout,
        limit
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.prompt)).collect())
}

/// What a launch is checked against besides the catalog.
#[derive(Debug, Clone)]
pub struct LaunchContext {
    pub plan_id: String,
    pub suspended: bool,
    pub low_balance_threshold: i64,
    pub raise: Option<Raise>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raise {
    pub daily: i64,
    pub monthly: i64,
    pub concurrent: i64,
    pub first_day: Date,
    pub last_day: Date,
    pub reason: String,
}

/// The organisation's plan, whether it is suspended (by staff, or its subscription: unpaid past
/// its retries, or a sign-up not paid yet), and the raise in force on `now`'s day
/// (Europe/Paris). (SQL function `organisation_launch_context`, also read by a launch's
/// `launch_open`.)
pub async fn launch_context(
    conn: &mut PgConnection,
    organisation: Uuid,
    now: OffsetDateTime,
) -> sqlx::Result<Option<LaunchContext>> {
    let row = sqlx::query!(
        r#"SELECT plan_id AS "plan_id!", suspended AS "suspended!",
                  low_balance_threshold AS "low_balance_threshold!",
                  raise_daily, raise_monthly, raise_concurrent, raise_first_day, raise_last_day, raise_reason
           FROM organisation_launch_context($1, $2)"#,
        organisation,
        now
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| LaunchContext {
        plan_id: r.plan_id,
        suspended: r.suspended,
        low_balance_threshold: r.low_balance_threshold,
        raise: Raise::from_columns(
            r.raise_daily,
            r.raise_monthly,
            r.raise_concurrent,
            r.raise_first_day,
            r.raise_last_day,
            r.raise_reason,
        ),
    }))
}

impl Raise {
    /// The raise from `organisation_launch_context`'s columns (all set, or none).
    fn from_columns(
        daily: Option<i32>,
        monthly: Option<i64>,
        concurrent: Option<i32>,
        first_day: Option<Date>,
        last_day: Option<Date>,
        reason: Option<String>,
    ) -> Option<Self> {
        Some(Raise {
            daily: i64::from(daily?),
            monthly: monthly?,
            concurrent: i64::from(concurrent?),
            first_day: first_day?,
            last_day: last_day?,
            reason: reason?,
        })
    }
}

/// What a launch's first call found (`launch_open`).
#[derive(Debug, Clone)]
pub enum Opened {
    /// The same Idempotency-Key is held by another transaction: still being answered.
    InProgress,
    /// The Idempotency-Key was used with another request.
    Conflict,
    /// The answer stored with the Idempotency-Key.
    Answer { status: i32, body: String },
    /// No such organisation, or no credit account.
    Unknown,
    /// The account is locked to the end of the transaction; its context and usage.
    Open {
        context: LaunchContext,
        usage: crate::domain::limits::Usage,
    },
}

/// A launch's first call, in its transaction, in one round trip (SQL function
/// `generation_launch_open`): with an Idempotency-Key (`idempotency`: the key and the request's
/// fingerprint), the key's advisory lock without waiting and the answer stored with it; then
/// the organisation's context, and its account's lock with the usage read under it (what the
/// launches it waited for committed). The key's lock and the account's are held to the end of
/// the transaction: a request that dies leaves nothing behind.
pub async fn launch_open(
    conn: &mut PgConnection,
    organisation: Uuid,
    idempotency: Option<(&str, &str)>,
    now: OffsetDateTime,
) -> sqlx::Result<Opened> {
    let (key, fingerprint) = idempotency.unzip();
    let r = sqlx::query!(
        r#"SELECT outcome AS "outcome!", answer_status, answer_body, plan_id, suspended, low_balance_threshold,
                  raise_daily, raise_monthly, raise_concurrent, raise_first_day, raise_last_day, raise_reason,
                  today, month, running
           FROM generation_launch_open($1, $2, $3, $4)"#,
        organisation,
        key,
        fingerprint,
        now
    )
    .fetch_one(conn)
    .await?;
    let unexpected =
        |what: &str| sqlx::Error::Protocol(format!("generation_launch_open answered {what}"));
    if let Some(given) = key_given(&r.outcome, r.answer_status, r.answer_body) {
        return given.map_err(|_| unexpected("an answer without its status or body"));
    }
    Ok(match r.outcome.as_str() {
        "unknown" => Opened::Unknown,
        "open" => match (
            r.plan_id,
            r.suspended,
            r.low_balance_threshold,
            r.today,
            r.month,
            r.running,
        ) {
            (
                Some(plan_id),
                Some(suspended),
                Some(low_balance_threshold),
                Some(today),
                Some(month),
                Some(running),
            ) => Opened::Open {
                context: LaunchContext {
                    plan_id,
                    suspended,
                    low_balance_threshold,
                    raise: Raise::from_columns(
                        r.raise_daily,
                        r.raise_monthly,
                        r.raise_concurrent,
                        r.raise_first_day,
                        r.raise_last_day,
                        r.raise_reason,
                    ),
                },
                usage: crate::domain::limits::Usage {
                    generations_today: today,
                    credits_this_month: month,
                    renders_running: running,
                },
            },
            _ => return Err(unexpected("open without its context or usage")),
        },
        other => return Err(unexpected(other)),
    })
}

/// A launch's hold and, when placed, its running generation (`generation.status` is
/// `running`, its `hold` is ignored).
#[derive(Debug, Clone, Copy)]
pub struct LaunchHold<'a> {
    pub generation: NewGeneration<'a>,
    pub amount: Credits,
    /// The hold's key (unique per organisation).
    pub key: &'a str,
    pub reference: &'a str,
    pub expires_at: OffsetDateTime,
}

/// Places a launch's hold under the lock `launch_open` took and records its running generation,
/// in one round trip (SQL function `generation_launch_hold`, which calls `credit_hold_place`).
/// Nothing is written unless placed.
pub async fn launch_hold(
    conn: &mut PgConnection,
    launch: LaunchHold<'_>,
) -> sqlx::Result<crate::db::credits::Placed> {
    let g = launch.generation;
    let row = sqlx::query!(
        r#"SELECT outcome AS "outcome!", hold_id, available AS "available: Credits"
           FROM generation_launch_hold($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"#,
        g.organisation,
        launch.amount.0,
        g.creation_type,
        launch.key,
        launch.reference,
        g.launched_by,
        g.now,
        launch.expires_at,
        g.id,
        g.request,
        g.prompt,
        g.via,
    )
    .fetch_one(conn)
    .await?;
    crate::db::credits::Placed::from_columns(&row.outcome, row.hold_id, row.available)
}

/// An API launch in one statement (`launch_fast`): what the portal expects of the organisation
/// (the context its last launch found), the bounds its rules set on the usage, the launch, and
/// its answer around the balance after the hold.
#[derive(Debug, Clone, Copy)]
pub struct FastLaunch<'a> {
    pub key: &'a str,
    pub fingerprint: &'a str,
    pub expected: &'a LaunchContext,
    pub bounds: crate::domain::limits::UsageBounds,
    pub hold: LaunchHold<'a>,
    /// The answer's body is `body_head`, the balance after the hold, then `body_tail`.
    pub body_head: &'a str,
    pub body_tail: &'a str,
}

/// What a launch in one statement did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fast {
    /// The same Idempotency-Key is held by another transaction: still being answered.
    InProgress,
    /// The Idempotency-Key was used with another request.
    Conflict,
    /// The answer stored with the Idempotency-Key (now, or by an earlier request).
    Answer { status: i32, body: String },
    /// Nothing written: the caller launches in its own transaction, where the rules decide.
    Slow,
}

/// An API launch in one statement, without BEGIN and COMMIT around it (SQL function
/// `generation_launch_fast`): the key's lock and stored answer, the account's lock, the context
/// and usage compared with what the caller expects, then the hold, the running generation and
/// the stored answer; or nothing written (`Fast::Slow`).
pub async fn launch_fast(conn: &mut PgConnection, launch: FastLaunch<'_>) -> sqlx::Result<Fast> {
    let g = launch.hold.generation;
    let expected = launch.expected;
    let raise = expected.raise.as_ref();
    let narrow = |v: i64| i32::try_from(v).unwrap_or(i32::MAX);
    let r = sqlx::query!(
        r#"SELECT outcome AS "outcome!", answer_status, answer_body
           FROM generation_launch_fast($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                                       $15, $16, $17, $18, $19, $20, $21, $22)"#,
        g.organisation,
        launch.key,
        launch.fingerprint,
        g.now,
        expected.plan_id,
        raise.map(|r| narrow(r.daily)),
        raise.map(|r| r.monthly),
        raise.map(|r| narrow(r.concurrent)),
        launch.bounds.max_running,
        launch.bounds.max_today,
        launch.bounds.max_month,
        launch.hold.amount.0,
        g.creation_type,
        launch.hold.reference,
        g.launched_by,
        launch.hold.expires_at,
        g.id,
        g.request,
        g.prompt,
        g.via,
        launch.body_head,
        launch.body_tail,
    )
    .fetch_one(conn)
    .await?;
    let unexpected =
        |what: &str| sqlx::Error::Protocol(format!("generation_launch_fast answered {what}"));
    Ok(match r.outcome.as_str() {
        "in_progress" => Fast::InProgress,
        "conflict" => Fast::Conflict,
        "slow" => Fast::Slow,
        "answer" | "launched" => match (r.answer_status, r.answer_body) {
            (Some(status), Some(body)) => Fast::Answer { status, body },
            _ => return Err(unexpected("an answer without its status or body")),
        },
        other => return Err(unexpected(other)),
    })
}

/// What an engine's report did (`report`).
#[derive(Debug, Clone)]
pub enum Reported {
    /// No such generation, or a refused one.
    NotFound,
    /// Left to the caller's transaction: past its timeout, or a release into an expired bucket.
    Slow,
    /// Recorded now, or finished before: the generation as it stands.
    Done(Box<Generation>),
}

/// An engine's report (`succeeded` or `failed`) in one statement (SQL function
/// `generation_report`): the hold captured or released and the outcome written, or the
/// generation found finished; `Slow` (nothing written) for the cases the caller's
/// transaction handles.
pub async fn report(
    conn: &mut PgConnection,
    id: Uuid,
    status: &str,
    now: OffsetDateTime,
    timeout: time::Duration,
) -> sqlx::Result<Reported> {
    let r = sqlx::query!(
        r#"SELECT outcome AS "outcome!", id, organisation_id, hold_id, creation_type, request, prompt, status,
                  refusal_rule, refusal, credits_held, credits_charged, via, created_at, finished_at
           FROM generation_report($1, $2, $3, $4)"#,
        id,
        status,
        now,
        sqlx::postgres::types::PgInterval {
            months: 0,
            days: 0,
            microseconds: i64::try_from(timeout.whole_microseconds()).unwrap_or(i64::MAX),
        }
    )
    .fetch_one(conn)
    .await?;
    Ok(match r.outcome.as_str() {
        "not_found" => Reported::NotFound,
        "slow" => Reported::Slow,
        _ => match (
            r.id,
            r.organisation_id,
            r.creation_type,
            r.request,
            r.prompt,
            r.status,
            r.credits_held,
            r.credits_charged,
            r.via,
            r.created_at,
        ) {
            (
                Some(id),
                Some(organisation_id),
                Some(creation_type),
                Some(request),
                Some(prompt),
                Some(status),
                Some(credits_held),
                Some(credits_charged),
                Some(via),
                Some(created_at),
            ) => Reported::Done(Box::new(Generation {
                id,
                organisation_id,
                hold_id: r.hold_id,
                creation_type,
                request,
                prompt,
                status,
                refusal_rule: r.refusal_rule,
                refusal: r.refusal,
                credits_held,
                credits_charged,
                via,
                created_at,
                finished_at: r.finished_at,
            })),
            _ => {
                return Err(sqlx::Error::Protocol(
                    "generation_report answered without the generation".to_owned(),
                ));
            }
        },
    })
}

/// Records a raise, replacing the one in force or to come.
#[allow(clippy::too_many_arguments)]
pub async fn raise_limits(
    conn: &mut PgConnection,
    organisation: Uuid,
    daily: i32,
    monthly: i64,
    concurrent: i32,
    first_day: Date,
    last_day: Date,
    reason: &str,
    actor: &str,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE limit_raises SET replaced_at = $2 WHERE organisation_id = $1 AND replaced_at IS NULL",
        organisation,
        now
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO limit_raises (organisation_id, daily, monthly, concurrent, first_day, last_day, reason, actor, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        organisation,
        daily,
        monthly,
        concurrent,
        first_day,
        last_day,
        reason,
        actor,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// An API key as the account page lists it.
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: Uuid,
    pub organisation_id: Uuid,
    /// The organisation's plan (whether it has the API).
    pub plan_id: String,
    pub name: String,
    pub hint: String,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

/// A new key; `None` when the organisation has a key made from the same form already.
#[allow(clippy::too_many_arguments)]
pub async fn create_api_key(
    conn: &mut PgConnection,
    organisation: Uuid,
    name: &str,
    hint: &str,
    secret_hash: &str,
    created_by: &str,
    form_key: Option<&str>,
    now: OffsetDateTime,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!(
        "INSERT INTO api_keys (organisation_id, name, hint, secret_hash, created_by, form_key, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (organisation_id, form_key) WHERE form_key IS NOT NULL DO NOTHING
         RETURNING id",
        organisation,
        name,
        hint,
        secret_hash,
        created_by,
        form_key,
        now
    )
    .fetch_optional(conn)
    .await
}

/// The name of the key made from this form, if any.
pub async fn api_key_of_form(
    conn: &mut PgConnection,
    organisation: Uuid,
    form_key: &str,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "SELECT name FROM api_keys WHERE organisation_id = $1 AND form_key = $2",
        organisation,
        form_key
    )
    .fetch_optional(conn)
    .await
}

pub async fn api_keys(conn: &mut PgConnection, organisation: Uuid) -> sqlx::Result<Vec<ApiKey>> {
    sqlx::query_as!(
        ApiKey,
        "SELECT k.id, k.organisation_id, o.plan_id, k.name, k.hint, k.created_at, k.last_used_at, k.revoked_at
         FROM api_keys k JOIN organisations o ON o.id = k.organisation_id
         WHERE k.organisation_id = $1 ORDER BY k.revoked_at IS NOT NULL, k.created_at DESC",
        organisation
    )
    .fetch_all(conn)
    .await
}

/// The key with this hash, if not revoked, with its organisation's plan.
pub async fn api_key_by_hash(
    conn: &mut PgConnection,
    secret_hash: &str,
) -> sqlx::Result<Option<ApiKey>> {
    sqlx::query_as!(
        ApiKey,
        "SELECT k.id, k.organisation_id, o.plan_id, k.name, k.hint, k.created_at, k.last_used_at, k.revoked_at
         FROM api_keys k JOIN organisations o ON o.id = k.organisation_id
         WHERE k.secret_hash = $1 AND k.revoked_at IS NULL",
        secret_hash
    )
    .fetch_optional(conn)
    .await
}

/// Notes the key's use at `now` (its date of last use).
pub async fn note_api_key_use(
    conn: &mut PgConnection,
    id: Uuid,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE api_keys SET last_used_at = $2 WHERE id = $1",
        id,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn revoke_api_key(
    conn: &mut PgConnection,
    organisation: Uuid,
    id: Uuid,
    now: OffsetDateTime,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE api_keys SET revoked_at = $3 WHERE id = $1 AND organisation_id = $2 AND revoked_at IS NULL",
        id,
        organisation,
        now
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A stored answer (`status` None: a claim left by an earlier version of the portal).
#[derive(Debug, Clone)]
pub struct Idempotent {
    pub fingerprint: String,
    pub status: Option<i32>,
    pub body: Option<String>,
}

/// Takes `key`'s lock for the rest of the transaction, without waiting: false when another
/// transaction (of this process or another) holds it, i.e. the same key is still being
/// answered. An advisory lock on a 64-bit hash of the organisation and the key: it goes away
/// with the transaction, so a request that dies leaves nothing behind. A launch takes the same
/// lock inside `generation_launch_open` (`launch_open`); this is how another instance holds it
/// (the tests that play one).
pub async fn try_lock_idempotency_key(
    conn: &mut PgConnection,
    organisation: Uuid,
    key: &str,
) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_xact_lock(hashtextextended($1::uuid::text || ' ' || $2, 0)) AS "locked!""#,
        organisation,
        key
    )
    .fetch_one(conn)
    .await
}

/// The answer stored with `key`, if any (as `launch_open` reads it, after the key's lock: the
/// statement's snapshot then includes the answer of a transaction that held the lock before).
pub async fn idempotency_answer(
    conn: &mut PgConnection,
    organisation: Uuid,
    key: &str,
) -> sqlx::Result<Option<Idempotent>> {
    sqlx::query_as!(
        Idempotent,
        "SELECT fingerprint, status, body FROM idempotency_keys WHERE organisation_id = $1 AND key = $2",
        organisation,
        key
    )
    .fetch_optional(conn)
    .await
}

/// `key`'s lock for the rest of the transaction and its stored answer, by the database's
/// `idempotency_key_open` (the rule `generation_launch_open` applies): `InProgress`, `Conflict`
/// or `Answer`; `None` when the key is new (or a claim of an earlier version): go on.
pub async fn idempotency_key_open(
    conn: &mut PgConnection,
    organisation: Uuid,
    key: &str,
    fingerprint: &str,
) -> sqlx::Result<Option<Opened>> {
    let r = sqlx::query!(
        "SELECT outcome, answer_status, answer_body FROM idempotency_key_open($1, $2, $3)",
        organisation,
        key,
        fingerprint
    )
    .fetch_one(conn)
    .await?;
    let Some(outcome) = r.outcome else {
        return Ok(None);
    };
    match key_given(&outcome, r.answer_status, r.answer_body) {
        Some(given) => given.map(Some),
        None => Err(sqlx::Error::Protocol(format!(
            "idempotency_key_open answered {outcome}"
        ))),
    }
}

/// What opening a key already seen gives (the outcomes `idempotency_key_open` and
/// `generation_launch_open` share): in use, another body, or its stored answer; `None` for any
/// other outcome. An answer without its status or body is an error.
fn key_given(
    outcome: &str,
    status: Option<i32>,
    body: Option<String>,
) -> Option<sqlx::Result<Opened>> {
    match outcome {
        "in_progress" => Some(Ok(Opened::InProgress)),
        "conflict" => Some(Ok(Opened::Conflict)),
        "answer" => Some(match (status, body) {
            (Some(status), Some(body)) => Ok(Opened::Answer { status, body }),
            _ => Err(sqlx::Error::Protocol(format!(
                "{outcome} without its status or body"
            ))),
        }),
        _ => None,
    }
}

/// Keeps the answer to `key`, in the launch's transaction. A row without an answer can only
/// be a claim left by an earlier version of the portal (which claimed keys in a transaction
/// of their own): it is replaced.
pub async fn store_answer(
    conn: &mut PgConnection,
    organisation: Uuid,
    key: &str,
    fingerprint: &str,
    status: i32,
    body: &str,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO idempotency_keys (organisation_id, key, fingerprint, status, body, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (organisation_id, key) DO UPDATE
            SET fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status, body = EXCLUDED.body,
                created_at = EXCLUDED.created_at
          WHERE idempotency_keys.status IS NULL",
        organisation,
        key,
        fingerprint,
        status,
        body,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn purge_idempotency_keys(
    conn: &mut PgConnection,
    before: OffsetDateTime,
) -> sqlx::Result<u64> {
    let done = sqlx::query!("DELETE FROM idempotency_keys WHERE created_at < $1", before)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}
