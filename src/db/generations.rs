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
pub async fn list(
    conn: &mut PgConnection,
    organisation: Uuid,
    status: Option<&str>,
    with_refused: bool,
    limit: i64,
) -> sqlx::Result<Vec<Generation>> {
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

/// Running generations launched at or before `before` (the test engine's work).
pub async fn running_since(
    conn: &mut PgConnection,
    before: OffsetDateTime,
    limit: i64,
) -> sqlx::Result<Vec<(Uuid, String)>> {
    let rows = sqlx::query!(
        "SELECT id, prompt FROM generations WHERE status = 'running' AND created_at <= $1 ORDER BY created_at LIMIT $2",
        before,
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
/// its retries, or a sign-up not paid yet), and the
/// raise in force on `now`'s day (Europe/Paris).
pub async fn launch_context(
    conn: &mut PgConnection,
    organisation: Uuid,
    now: OffsetDateTime,
) -> sqlx::Result<Option<LaunchContext>> {
    let row = sqlx::query!(
        r#"SELECT o.plan_id,
                  -- Suspended by staff, or its subscription (unpaid past its retries, or a
                  -- sign-up not paid yet: no subscription).
                  (o.suspended_at IS NOT NULL
                   OR coalesce((SELECT s.status FROM subscriptions s WHERE s.organisation_id = o.id), 'suspended') = 'suspended')
                  AS "suspended!", o.low_balance_threshold,
                  r.daily AS "daily?", r.monthly AS "monthly?", r.concurrent AS "concurrent?",
                  r.first_day AS "first_day?", r.last_day AS "last_day?", r.reason AS "reason?"
           FROM organisations o
           LEFT JOIN LATERAL (
               SELECT * FROM limit_raises r
               WHERE r.organisation_id = o.id AND r.replaced_at IS NULL
                 AND ($2::timestamptz AT TIME ZONE 'Europe/Paris')::date BETWEEN r.first_day AND r.last_day
               ORDER BY r.created_at DESC LIMIT 1) r ON true
           WHERE o.id = $1"#,
        organisation,
        now
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| LaunchContext {
        plan_id: r.plan_id,
        suspended: r.suspended,
        low_balance_threshold: r.low_balance_threshold,
        raise: match (
            r.daily,
            r.monthly,
            r.concurrent,
            r.first_day,
            r.last_day,
            r.reason,
        ) {
            (
                Some(daily),
                Some(monthly),
                Some(concurrent),
                Some(first_day),
                Some(last_day),
                Some(reason),
            ) => Some(Raise {
                daily: i64::from(daily),
                monthly,
                concurrent: i64::from(concurrent),
                first_day,
                last_day,
                reason,
            }),
            _ => None,
        },
    }))
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

/// The key with this hash, if not revoked; notes its use (at most once a minute).
pub async fn use_api_key(
    conn: &mut PgConnection,
    secret_hash: &str,
    now: OffsetDateTime,
) -> sqlx::Result<Option<ApiKey>> {
    let key = sqlx::query_as!(
        ApiKey,
        "SELECT k.id, k.organisation_id, o.plan_id, k.name, k.hint, k.created_at, k.last_used_at, k.revoked_at
         FROM api_keys k JOIN organisations o ON o.id = k.organisation_id
         WHERE k.secret_hash = $1 AND k.revoked_at IS NULL",
        secret_hash
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(k) = &key
        && k.last_used_at
            .is_none_or(|at| now - at > time::Duration::minutes(1))
    {
        sqlx::query!(
            "UPDATE api_keys SET last_used_at = $2 WHERE id = $1",
            k.id,
            now
        )
        .execute(conn)
        .await?;
    }
    Ok(key)
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
/// with the transaction, so a request that dies leaves nothing behind.
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

/// The answer stored with `key`, if any. Read after `try_lock_idempotency_key`: the statement's
/// snapshot then includes the answer of a transaction that held the lock before.
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
