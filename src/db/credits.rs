//! The credit ledger's queries. Every movement is an INSERT into `credit_ledger`; its trigger
//! takes the account's lock and moves the bucket's credits, save for a hold, whose SQL function
//! does both itself (migration `holds_in_the_ledger`); the schema's constraints refuse what
//! cannot be, and `check-ledger` verifies the rest. Services compose these in one transaction each.

use sqlx::PgConnection;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::domain::ledger::{BucketSource, EntryKind, HoldState};
use crate::domain::money::Credits;

/// What the account row knows: its low-balance flag; and the credits its open holds keep aside.
/// (The balance is the buckets': `available`, `buckets`.)
#[derive(Debug, Clone, Copy)]
pub struct Account {
    pub held: Credits,
    pub low_balance_since: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub struct Hold {
    pub id: Uuid,
    pub organisation_id: Uuid,
    pub amount: Credits,
    pub creation_type: String,
    pub operation_key: String,
    pub reference: String,
    pub state: HoldState,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub resolved_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub struct BucketRow {
    pub id: i64,
    pub source: BucketSource,
    pub restricted_to: Option<String>,
    pub amount: Credits,
    pub remaining: Credits,
    pub expires_at: OffsetDateTime,
    /// The last day its credits can be used, in Europe/Paris (the day before `expires_at`'s
    /// midnight).
    pub last_day: Date,
    pub created_at: OffsetDateTime,
}

impl BucketRow {
    pub fn as_domain(&self) -> crate::domain::ledger::Bucket {
        crate::domain::ledger::Bucket {
            id: self.id,
            source: self.source,
            restricted_to: self.restricted_to.clone(),
            remaining: self.remaining,
            expires_at: self.expires_at,
        }
    }
}

/// Who moved the credits, why, and what for: recorded on every ledger row.
#[derive(Debug, Clone, Copy)]
pub struct Movement<'a> {
    pub actor: &'a str,
    pub reason: &'a str,
    pub reference: &'a str,
    pub now: OffsetDateTime,
}

/// The organisation's account row, locked until the end of the transaction: every writer of
/// its credits takes it first. False when the organisation has no account.
pub async fn lock_account(conn: &mut PgConnection, organisation: Uuid) -> sqlx::Result<bool> {
    Ok(sqlx::query_scalar!(
        "SELECT 1 AS one FROM credit_accounts WHERE organisation_id = $1 FOR UPDATE",
        organisation
    )
    .fetch_optional(conn)
    .await?
    .is_some())
}

/// The account's figures: the credits its open holds keep aside, and its low-balance flag.
pub async fn account(conn: &mut PgConnection, organisation: Uuid) -> sqlx::Result<Option<Account>> {
    sqlx::query_as!(
        Account,
        r#"SELECT (SELECT coalesce(sum(o.amount), 0) FROM credit_holds_open o
                    WHERE o.organisation_id = a.organisation_id)::bigint AS "held!: Credits",
                  a.low_balance_since
           FROM credit_accounts a WHERE a.organisation_id = $1"#,
        organisation
    )
    .fetch_optional(conn)
    .await
}

/// Adds a bucket and its grant (or positive adjustment) row, once per `grant_key`: `None` when
/// that key was granted already.
#[allow(clippy::too_many_arguments)]
pub async fn grant(
    conn: &mut PgConnection,
    organisation: Uuid,
    kind: EntryKind,
    source: BucketSource,
    restricted_to: Option<&str>,
    amount: Credits,
    expires_at: OffsetDateTime,
    grant_key: &str,
    movement: Movement<'_>,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!(
        r#"WITH b AS (
               INSERT INTO credit_buckets (organisation_id, source, restricted_to, amount, expires_at, grant_key, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7)
               ON CONFLICT (organisation_id, grant_key) DO NOTHING
               RETURNING id, organisation_id, amount)
           INSERT INTO credit_ledger (organisation_id, bucket_id, kind, delta, amount, actor, reason, reference, created_at)
           SELECT organisation_id, id, $8, amount, amount, $9, $10, $11, $7 FROM b
           RETURNING bucket_id"#,
        organisation,
        source.as_str(),
        restricted_to,
        amount.0,
        expires_at,
        grant_key,
        movement.now,
        kind.as_str(),
        movement.actor,
        movement.reason,
        movement.reference,
    )
    .fetch_optional(conn)
    .await
}

/// A hold, from its ledger rows: the first carries its key, type and timeout; its state is
/// « held » while its open row exists, else that of its resolution rows.
pub async fn hold(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Hold>> {
    sqlx::query_as!(
        Hold,
        r#"SELECT h.hold_id AS "id!", h.organisation_id, h.amount AS "amount!: Credits",
                  h.creation_type AS "creation_type!", h.operation_key AS "operation_key!", h.reference,
                  CASE WHEN EXISTS (SELECT 1 FROM credit_holds_open o WHERE o.hold_id = $1) THEN 'held'
                       WHEN r.kind = 'capture' THEN 'captured' ELSE 'released' END AS "state!: HoldState",
                  h.created_at, h.expires_at AS "expires_at!", r.created_at AS "resolved_at?"
           FROM (SELECT hold_id, organisation_id, (sum(amount) OVER ())::bigint AS amount, creation_type, operation_key,
                        reference, created_at, expires_at
                   FROM credit_ledger WHERE hold_id = $1 AND kind = 'hold') h
           LEFT JOIN LATERAL (SELECT kind, created_at FROM credit_ledger
                               WHERE hold_id = $1 AND kind IN ('capture', 'release') LIMIT 1) r ON true
           WHERE h.operation_key IS NOT NULL"#,
        id
    )
    .fetch_optional(conn)
    .await
}

/// What a hold asks for.
#[derive(Debug, Clone, Copy)]
pub struct HoldRequest<'a> {
    pub organisation: Uuid,
    pub amount: Credits,
    pub creation_type: &'a str,
    pub operation_key: &'a str,
    pub expires_at: OffsetDateTime,
}

/// How `place_hold` went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// The organisation has no account: nothing written.
    UnknownOrganisation,
    /// A hold with that key exists already: nothing written.
    Existing(Uuid),
    /// The hold, and the credits left usable (every type).
    Placed { hold: Uuid, available: Credits },
    /// The buckets that serve the type hold fewer credits (given): nothing written.
    Short { available: Credits },
}

/// Sets `amount` credits aside in one call (SQL function `credit_hold_place`, migration
/// `holds_in_the_ledger`), so in one round trip: it takes the account's lock, looks for the
/// hold placed with this key, then takes the credits from the buckets and writes one ledger row
/// per bucket drawn and the hold's open row, in the consumption order (restricted to the type
/// first, then earliest expiry, then oldest).
/// Called outside a transaction, it is one by itself (no BEGIN and COMMIT to wait for while
/// the lock is held).
pub async fn place_hold(
    conn: &mut PgConnection,
    request: HoldRequest<'_>,
    movement: Movement<'_>,
) -> sqlx::Result<Placed> {
    let row = sqlx::query!(
        r#"SELECT outcome AS "outcome!", hold_id, available AS "available: Credits"
           FROM credit_hold_place($1, $2, $3, $4, $5, $6, $7, $8, $9)"#,
        request.organisation,
        request.amount.0,
        request.creation_type,
        request.operation_key,
        movement.reference,
        movement.actor,
        movement.reason,
        movement.now,
        request.expires_at,
    )
    .fetch_one(conn)
    .await?;
    Placed::from_columns(&row.outcome, row.hold_id, row.available)
}

impl Placed {
    /// From the columns of `credit_hold_place` (or a function that answers as it does).
    pub(crate) fn from_columns(
        outcome: &str,
        hold: Option<Uuid>,
        available: Option<Credits>,
    ) -> sqlx::Result<Self> {
        let unexpected = || {
            sqlx::Error::Protocol(format!(
                "credit_hold_place answered {outcome:?} without its values"
            ))
        };
        Ok(match outcome {
            "unknown" => Placed::UnknownOrganisation,
            "existing" => Placed::Existing(hold.ok_or_else(unexpected)?),
            "placed" => Placed::Placed {
                hold: hold.ok_or_else(unexpected)?,
                available: available.ok_or_else(unexpected)?,
            },
            "short" => Placed::Short {
                available: available.ok_or_else(unexpected)?,
            },
            _ => return Err(unexpected()),
        })
    }
}

/// The credits that can be used at `now` (by a generation of `creation_type`, or any).
pub async fn available(
    conn: &mut PgConnection,
    organisation: Uuid,
    creation_type: Option<&str>,
    now: OffsetDateTime,
) -> sqlx::Result<Credits> {
    sqlx::query_scalar!(
        r#"SELECT coalesce(sum(remaining), 0)::bigint AS "n!: Credits" FROM credit_buckets
           WHERE organisation_id = $1 AND remaining > 0 AND expires_at > $2
             AND ($3::text IS NULL OR restricted_to IS NULL OR restricted_to = $3)"#,
        organisation,
        now,
        creation_type
    )
    .fetch_one(conn)
    .await
}

/// The day `now` falls on in Europe/Paris.
pub async fn paris_date(conn: &mut PgConnection, now: OffsetDateTime) -> sqlx::Result<Date> {
    sqlx::query_scalar!(
        r#"SELECT ($1::timestamptz AT TIME ZONE 'Europe/Paris')::date AS "d!""#,
        now
    )
    .fetch_one(conn)
    .await
}

/// The midnight (Europe/Paris) that ends `day`.
pub async fn paris_midnight_after(
    conn: &mut PgConnection,
    day: Date,
) -> sqlx::Result<OffsetDateTime> {
    sqlx::query_scalar!(
        r#"SELECT (($1::date + 1)::timestamp AT TIME ZONE 'Europe/Paris') AS "t!""#,
        day
    )
    .fetch_one(conn)
    .await
}

/// Resolves a hold still held: captured (its credits are spent) or released (they go back to
/// their buckets). One statement: its open row deleted, its capture or release rows written
/// (one per bucket, in the buckets' order); `None` when the hold is not held any more (resolved
/// already, or unknown), so that a hold is resolved exactly once whatever races it (and the
/// unique index `credit_ledger_resolved_once` refuses a second resolution of any of its rows). Returns the hold's
/// amount and whether a bucket it went back to has expired meanwhile.
///
/// The hold's rows are found by `hold_id = $1` (the id itself, not `h.id` through the CTE): an
/// index condition whatever the statistics say. Joined on `h.id`, the planner could pick a
/// nested loop over the whole `credit_ledger_by_hold` index when its statistics are older than
/// the holds (an analyze before the first holds), making each capture read every hold's row.
///
/// Its rows are dated `now`, or the hold's own moment when `now` is earlier: an engine's report
/// may reach an instance whose clock is behind the one that placed the hold, and a resolution
/// dated before its hold would be counted on the wrong day (`credit_usage`) and reported by
/// `check-ledger` for ever (the ledger is append-only).
pub async fn resolve_hold(
    conn: &mut PgConnection,
    id: Uuid,
    to: HoldState,
    actor: &str,
    reason: &str,
    now: OffsetDateTime,
) -> sqlx::Result<Option<Resolved>> {
    let kind = match to {
        HoldState::Captured => EntryKind::Capture,
        HoldState::Released | HoldState::Held => EntryKind::Release,
    };
    let row = sqlx::query!(
        r#"SELECT organisation_id AS "organisation_id!", amount AS "amount!: Credits", expired AS "expired!"
           FROM credit_hold_resolve($1, $2, $3, $4, $5)"#,
        id,
        kind.as_str(),
        actor,
        reason,
        now,
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| Resolved {
        organisation_id: r.organisation_id,
        amount: r.amount,
        back_in_expired_bucket: r.expired && kind == EntryKind::Release,
    }))
}

/// A hold resolved by `resolve_hold`.
#[derive(Debug, Clone, Copy)]
pub struct Resolved {
    pub organisation_id: Uuid,
    pub amount: Credits,
    /// A released credit went back to a bucket whose expiry has passed (expire it now).
    pub back_in_expired_bucket: bool,
}

/// Unresolved holds past their timeout (oldest first), claimed so that concurrent runners
/// release different ones.
pub async fn overdue_holds(
    conn: &mut PgConnection,
    now: OffsetDateTime,
    limit: i64,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT hold_id FROM credit_holds_open WHERE expires_at <= $1
         ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        now,
        limit
    )
    .fetch_all(conn)
    .await
}

/// Expires what is left in the buckets whose expiry has come (of one organisation, or all):
/// one expiry row per bucket, under the organisations' locks (held by the caller's transaction:
/// the job runs it in its run's). Returns the credits expired.
///
/// An allotment whose period has ended but is not renewed yet waits for its renewal, which
/// carries part of it over before expiring the rest (the expiry job may run first, and a render
/// may fail in between); the renewal itself passes the end of the period it renews (`renewing`)
/// to expire that period's allotments.
pub async fn expire_due(
    conn: &mut PgConnection,
    organisation: Option<Uuid>,
    renewing: Option<OffsetDateTime>,
    movement: Movement<'_>,
) -> sqlx::Result<i64> {
    // The organisations' locks first (in one order), then, by a statement of its own (a fresh
    // snapshot), the credits left: read before the lock, a bucket's credits could be those of
    // before a hold that was waiting to commit, and expiring them all would go below zero.
    sqlx::query!(
        "SELECT 1 AS one FROM credit_accounts a
         WHERE a.organisation_id IN (
               SELECT b.organisation_id FROM credit_buckets b
               WHERE b.remaining > 0 AND b.expires_at <= $1 AND ($2::uuid IS NULL OR b.organisation_id = $2))
         ORDER BY a.organisation_id
         FOR NO KEY UPDATE OF a",
        movement.now,
        organisation,
    )
    .fetch_all(&mut *conn)
    .await?;
    let total = sqlx::query_scalar!(
        r#"WITH e AS (
               INSERT INTO credit_ledger (organisation_id, bucket_id, kind, delta, amount, actor, reason, reference, created_at)
               SELECT b.organisation_id, b.id, 'expiry', -b.remaining, b.remaining, $2, $3,
                      CASE WHEN $4 = '' THEN b.grant_key ELSE $4 END, $1
               FROM credit_buckets b
               WHERE b.remaining > 0 AND b.expires_at <= $1 AND ($5::uuid IS NULL OR b.organisation_id = $5)
                 AND (b.expires_at = $6 OR b.source <> 'allotment' OR NOT EXISTS (
                       SELECT 1 FROM subscription_periods p
                        WHERE p.organisation_id = b.organisation_id AND p.ends_at = b.expires_at
                          AND p.renewed_at IS NULL))
               ORDER BY b.organisation_id, b.id
               RETURNING amount)
           SELECT coalesce(sum(amount), 0)::bigint AS "total!" FROM e"#,
        movement.now,
        movement.actor,
        movement.reason,
        movement.reference,
        organisation,
        renewing,
    )
    .fetch_one(conn)
    .await?;
    Ok(total)
}

/// Takes `amount` credits out of one bucket (an expiry at renewal, a negative adjustment, a
/// refund).
pub async fn debit_bucket(
    conn: &mut PgConnection,
    organisation: Uuid,
    bucket: i64,
    kind: EntryKind,
    amount: Credits,
    movement: Movement<'_>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO credit_ledger (organisation_id, bucket_id, kind, delta, amount, actor, reason, reference, created_at)
         VALUES ($1, $2, $3, -$4::bigint, $4, $5, $6, $7, $8)",
        organisation,
        bucket,
        kind.as_str(),
        amount.0,
        movement.actor,
        movement.reason,
        movement.reference,
        movement.now,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The organisation's buckets that still hold credits, in the consumption order.
pub async fn buckets(conn: &mut PgConnection, organisation: Uuid) -> sqlx::Result<Vec<BucketRow>> {
    sqlx::query_as!(
        BucketRow,
        r#"SELECT id, source AS "source: BucketSource", restricted_to, amount AS "amount: Credits",
                  remaining AS "remaining: Credits", expires_at,
                  ((expires_at - interval '1 microsecond') AT TIME ZONE 'Europe/Paris')::date AS "last_day!",
                  created_at
           FROM credit_buckets WHERE organisation_id = $1 AND remaining > 0
           ORDER BY restricted_to IS NULL, expires_at, id"#,
        organisation
    )
    .fetch_all(conn)
    .await
}

pub async fn bucket_by_key(
    conn: &mut PgConnection,
    organisation: Uuid,
    grant_key: &str,
) -> sqlx::Result<Option<BucketRow>> {
    sqlx::query_as!(
        BucketRow,
        r#"SELECT id, source AS "source: BucketSource", restricted_to, amount AS "amount: Credits",
                  remaining AS "remaining: Credits", expires_at,
                  ((expires_at - interval '1 microsecond') AT TIME ZONE 'Europe/Paris')::date AS "last_day!",
                  created_at
           FROM credit_buckets WHERE organisation_id = $1 AND grant_key = $2"#,
        organisation,
        grant_key
    )
    .fetch_optional(conn)
    .await
}

/// A staff adjustment already made with this key.
pub async fn adjustment_by_key(
    conn: &mut PgConnection,
    organisation: Uuid,
    operation_key: &str,
) -> sqlx::Result<Option<Credits>> {
    sqlx::query_scalar!(
        r#"SELECT available_after AS "available_after: Credits" FROM credit_adjustments
           WHERE organisation_id = $1 AND operation_key = $2"#,
        organisation,
        operation_key
    )
    .fetch_optional(conn)
    .await
}

#[allow(clippy::too_many_arguments)]
pub async fn record_adjustment(
    conn: &mut PgConnection,
    id: Uuid,
    organisation: Uuid,
    operation_key: &str,
    credits: Credits,
    reason: &str,
    actor: &str,
    expires_at: Option<OffsetDateTime>,
    available_after: Credits,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO credit_adjustments (id, organisation_id, operation_key, credits, reason, actor, expires_at, available_after, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        id,
        organisation,
        operation_key,
        credits.0,
        reason,
        actor,
        expires_at,
        available_after.0,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Usage of the fair-use limits at `now` (Europe/Paris days and months): generations launched
/// today that are running or succeeded, credits held by running ones plus those captured this
/// month, and the running ones. A generation is one hold: held while it runs, captured when it
/// succeeds, released when it fails or expires. (SQL function `credit_usage`, migration
/// `usage_counters`: read from the day's counters, which the ledger's trigger keeps, and the
/// open holds.)
pub async fn usage(
    conn: &mut PgConnection,
    organisation: Uuid,
    now: OffsetDateTime,
) -> sqlx::Result<crate::domain::limits::Usage> {
    let row = sqlx::query!(
        r#"SELECT today AS "today!", month AS "month!", running AS "running!"
           FROM credit_usage($1, $2, false)"#,
        organisation,
        now
    )
    .fetch_one(conn)
    .await?;
    Ok(crate::domain::limits::Usage {
        generations_today: row.today,
        credits_this_month: row.month,
        renders_running: row.running,
    })
}

/// Credits spent (captured) per day over the `days` days up to `now`'s day, oldest first,
/// Europe/Paris days; days without use are 0. Read from the day counters the ledger's trigger
/// keeps (`credit_capture_days`, one row per day with captures): a few rows, whatever the
/// history.
pub async fn spent_per_day(
    conn: &mut PgConnection,
    organisation: Uuid,
    now: OffsetDateTime,
    days: i32,
) -> sqlx::Result<Vec<(Date, i64)>> {
    let rows = sqlx::query!(
        r#"WITH days AS (
               SELECT generate_series(($2 AT TIME ZONE 'Europe/Paris')::date - ($3::int - 1),
                                      ($2 AT TIME ZONE 'Europe/Paris')::date, interval '1 day')::date AS day)
           SELECT d.day AS "day!", coalesce(c.credits, 0)::bigint AS "spent!"
           FROM days d LEFT JOIN credit_capture_days c ON c.organisation_id = $1 AND c.day = d.day
           ORDER BY d.day"#,
        organisation,
        now,
        days
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.day, r.spent)).collect())
}

/// A line of the history.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: i64,
    pub kind: EntryKind,
    pub delta: i64,
    pub amount: i64,
    pub actor: String,
    pub reason: String,
    pub reference: String,
    pub created_at: OffsetDateTime,
    /// `created_at` in Europe/Paris.
    pub local_at: time::PrimitiveDateTime,
    pub bucket_source: BucketSource,
    pub bucket_restricted_to: Option<String>,
    pub bucket_last_day: Date,
    /// Who `actor` names, for a member (`user:…`: the e-mail) or an API key (`api-key:…`: its
    /// name); `None` for the others, or when they are gone.
    pub actor_name: Option<String>,
}

/// Which lines of the history: kinds (empty: all) and Europe/Paris days, inclusive.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub kinds: Vec<EntryKind>,
    pub from: Option<Date>,
    pub to: Option<Date>,
}

impl HistoryFilter {
    fn kinds(&self) -> Vec<String> {
        self.kinds.iter().map(|k| k.as_str().to_owned()).collect()
    }
}

/// A page of the history, newest first: lines older than `before` (an id; `None` from the
/// newest), at most `limit`.
pub async fn history(
    conn: &mut PgConnection,
    organisation: Uuid,
    filter: &HistoryFilter,
    before: Option<i64>,
    offset: i64,
    limit: i64,
) -> sqlx::Result<Vec<Entry>> {
    sqlx::query_as!(
        Entry,
        r#"SELECT l.id, l.kind AS "kind: EntryKind", l.delta, l.amount, l.actor, l.reason, l.reference, l.created_at,
                  (l.created_at AT TIME ZONE 'Europe/Paris') AS "local_at!",
                  b.source AS "bucket_source: BucketSource", b.restricted_to AS bucket_restricted_to,
                  ((b.expires_at - interval '1 microsecond') AT TIME ZONE 'Europe/Paris')::date AS "bucket_last_day!",
                  CASE WHEN l.actor ~ '^user:[0-9a-f-]{36}$'
                       THEN (SELECT u.email FROM users u
                              WHERE u.id = substr(l.actor, 6)::uuid AND u.organisation_id = l.organisation_id)
                       WHEN l.actor ~ '^api-key:[0-9a-f-]{36}$'
                       THEN (SELECT k.name FROM api_keys k
                              WHERE k.id = substr(l.actor, 9)::uuid AND k.organisation_id = l.organisation_id)
                  END AS actor_name
           FROM credit_ledger l JOIN credit_buckets b ON b.id = l.bucket_id
           WHERE l.organisation_id = $1
             AND (cardinality($2::text[]) = 0 OR l.kind = ANY($2))
             AND ($3::date IS NULL OR l.created_at >= ($3::date::timestamp AT TIME ZONE 'Europe/Paris'))
             AND ($4::date IS NULL OR l.created_at < (($4::date + 1)::timestamp AT TIME ZONE 'Europe/Paris'))
             AND ($5::bigint IS NULL OR l.id < $5)
           ORDER BY l.id DESC
           OFFSET $6 LIMIT $7"#,
        organisation,
        &filter.kinds() as &[String],
        filter.from,
        filter.to,
        before,
        offset,
        limit
    )
    .fetch_all(conn)
    .await
}

pub async fn history_count(
    conn: &mut PgConnection,
    organisation: Uuid,
    filter: &HistoryFilter,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM credit_ledger l
           WHERE l.organisation_id = $1
             AND (cardinality($2::text[]) = 0 OR l.kind = ANY($2))
             AND ($3::date IS NULL OR l.created_at >= ($3::date::timestamp AT TIME ZONE 'Europe/Paris'))
             AND ($4::date IS NULL OR l.created_at < (($4::date + 1)::timestamp AT TIME ZONE 'Europe/Paris'))"#,
        organisation,
        &filter.kinds() as &[String],
        filter.from,
        filter.to,
    )
    .fetch_one(conn)
    .await
}

/// A subscription as its renewal needs it.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub organisation_id: Uuid,
    pub plan_id: String,
    pub status: crate::domain::account::SubscriptionStatus,
    pub anchor_date: Date,
    pub period_number: i32,
    pub period_start: OffsetDateTime,
    pub period_end: OffsetDateTime,
    /// The allotment and rollover cap of the next period's plan (the scheduled one if any).
    pub credits_per_period: Credits,
    pub rollover_cap: Credits,
    /// A downgrade waiting for the end of the period.
    pub scheduled_plan_id: Option<String>,
    /// The first failed renewal charge of the arrears, and the next retry (past due).
    pub past_due_since: Option<OffsetDateTime>,
    pub next_retry_at: Option<OffsetDateTime>,
    pub failed_charges: i32,
    /// The price of the next period's plan (what the renewal charges).
    pub next_price: crate::domain::money::Cents,
}

/// Subscriptions whose current period has ended (a batch).
/// Subscriptions whose period has ended, after `after` in the organisations' order (a batch):
/// each one is visited once per run, even one that cannot be renewed yet (a charge still
/// processing) and stays due.
pub async fn due_subscriptions(
    conn: &mut PgConnection,
    now: OffsetDateTime,
    after: Uuid,
    limit: i64,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT organisation_id FROM subscriptions WHERE period_end <= $1 AND organisation_id > $2
         ORDER BY organisation_id LIMIT $3",
        now,
        after,
        limit
    )
    .fetch_all(conn)
    .await
}

pub async fn lock_subscription(
    conn: &mut PgConnection,
    organisation: Uuid,
) -> sqlx::Result<Option<Subscription>> {
    sqlx::query_as!(
        Subscription,
        r#"SELECT s.organisation_id, s.plan_id, s.status AS "status: crate::domain::account::SubscriptionStatus",
                  s.anchor_date, s.period_number, s.period_start, s.period_end,
                  p.credits_per_period AS "credits_per_period: Credits", p.rollover_cap AS "rollover_cap: Credits",
                  s.scheduled_plan_id, s.past_due_since, s.next_retry_at, s.failed_charges,
                  p.price_cents AS "next_price: crate::domain::money::Cents"
           FROM subscriptions s JOIN plans p ON p.id = coalesce(s.scheduled_plan_id, s.plan_id)
           WHERE s.organisation_id = $1 FOR UPDATE OF s"#,
        organisation
    )
    .fetch_optional(conn)
    .await
}

pub async fn subscription(
    conn: &mut PgConnection,
    organisation: Uuid,
) -> sqlx::Result<Option<Subscription>> {
    sqlx::query_as!(
        Subscription,
        r#"SELECT s.organisation_id, s.plan_id, s.status AS "status: crate::domain::account::SubscriptionStatus",
                  s.anchor_date, s.period_number, s.period_start, s.period_end,
                  p.credits_per_period AS "credits_per_period: Credits", p.rollover_cap AS "rollover_cap: Credits",
                  s.scheduled_plan_id, s.past_due_since, s.next_retry_at, s.failed_charges,
                  p.price_cents AS "next_price: crate::domain::money::Cents"
           FROM subscriptions s JOIN plans p ON p.id = coalesce(s.scheduled_plan_id, s.plan_id)
           WHERE s.organisation_id = $1"#,
        organisation
    )
    .fetch_optional(conn)
    .await
}

/// The bounds of period `n` of a subscription anchored on `anchor` (Europe/Paris midnights).
pub async fn period_bounds(
    conn: &mut PgConnection,
    anchor: Date,
    n: i32,
) -> sqlx::Result<(OffsetDateTime, OffsetDateTime)> {
    let row = sqlx::query!(
        r#"SELECT paris_period_bound($1, $2 - 1) AS "start!", paris_period_bound($1, $2) AS "end!""#,
        anchor,
        n
    )
    .fetch_one(conn)
    .await?;
    Ok((row.start, row.end))
}

/// Records period `n` (idempotent) and makes it the subscription's current one.
pub async fn open_period(
    conn: &mut PgConnection,
    organisation: Uuid,
    plan_id: &str,
    n: i32,
    start: OffsetDateTime,
    end: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO subscription_periods (organisation_id, number, plan_id, starts_at, ends_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        organisation,
        n,
        plan_id,
        start,
        end
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE subscriptions SET period_number = $2, period_start = $3, period_end = $4 WHERE organisation_id = $1",
        organisation,
        n,
        start,
        end
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Credits back in an allotment whose period was renewed (a render held before the period's
/// end, released after it): the bucket, its credits, the period, the room its renewal left
/// under the rollover cap, and when the next period (where they would carry) ends.
#[derive(Debug, Clone)]
pub struct LateRelease {
    pub bucket_id: i64,
    pub remaining: Credits,
    pub period: i32,
    pub room: Credits,
    pub next_end: OffsetDateTime,
}

pub async fn late_releases(
    conn: &mut PgConnection,
    organisation: Uuid,
    now: OffsetDateTime,
) -> sqlx::Result<Vec<LateRelease>> {
    sqlx::query_as!(
        LateRelease,
        r#"SELECT b.id AS bucket_id, b.remaining AS "remaining: Credits", p.number AS period,
                  greatest(pl.rollover_cap - coalesce(p.carried, 0), 0) AS "room!: Credits",
                  nx.ends_at AS next_end
           FROM credit_buckets b
           JOIN subscription_periods p
             ON p.organisation_id = b.organisation_id AND p.ends_at = b.expires_at AND p.renewed_at IS NOT NULL
           JOIN subscription_periods nx ON nx.organisation_id = p.organisation_id AND nx.number = p.number + 1
           JOIN plans pl ON pl.id = nx.plan_id
           WHERE b.organisation_id = $1 AND b.source = 'allotment' AND b.remaining > 0
             AND b.expires_at <= $2 AND nx.ends_at > $2
           ORDER BY b.expires_at, b.id"#,
        organisation,
        now
    )
    .fetch_all(conn)
    .await
}

/// Records credits carried over after the period's renewal (a late release).
pub async fn add_carried(
    conn: &mut PgConnection,
    organisation: Uuid,
    period: i32,
    credits: Credits,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE subscription_periods SET carried = coalesce(carried, 0) + $3
         WHERE organisation_id = $1 AND number = $2",
        organisation,
        period,
        credits.0
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn close_period(
    conn: &mut PgConnection,
    organisation: Uuid,
    n: i32,
    expired: Credits,
    carried: Credits,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE subscription_periods SET renewed_at = $3, expired = $4, carried = $5
         WHERE organisation_id = $1 AND number = $2 AND renewed_at IS NULL",
        organisation,
        n,
        now,
        expired.0,
        carried.0
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// One disagreement found by `check-ledger`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub organisation_id: Uuid,
    pub what: String,
    pub expected: i64,
    pub found: i64,
}

/// Recomputes every balance from the ledger and lists what disagrees: each organisation's
/// available credits (the buckets' sum) and held credits (its open holds), each bucket's
/// remaining credits, each hold's rows against its state (and each resolution row against the
/// hold row of its bucket, and not dated before the hold: the day's usage counts on it), each
/// ledger row against the rules of its kind (the sign of its delta, its hold, its bucket), each
/// generation's hold, organisation and type, and each Idempotency-Key's organisation.
pub async fn check(conn: &mut PgConnection) -> sqlx::Result<Vec<Difference>> {
    let rows = sqlx::query!(
        r#"WITH ledger AS (
               SELECT organisation_id, sum(delta) AS available,
                      sum(CASE kind WHEN 'hold' THEN amount WHEN 'capture' THEN -amount WHEN 'release' THEN -amount ELSE 0 END) AS held
               FROM credit_ledger GROUP BY organisation_id),
           buckets AS (SELECT organisation_id, sum(remaining) AS remaining FROM credit_buckets GROUP BY organisation_id),
           open AS (SELECT organisation_id, sum(amount) AS held FROM credit_holds_open GROUP BY organisation_id),
           holds AS (
               SELECT l.hold_id, (array_agg(l.organisation_id))[1] AS organisation_id,
                      coalesce(sum(l.amount) FILTER (WHERE l.kind = 'hold'), 0) AS held,
                      coalesce(sum(l.amount) FILTER (WHERE l.kind IN ('capture', 'release')), 0) AS resolved,
                      bool_or(l.kind = 'capture') AND bool_or(l.kind = 'release') AS both_ways,
                      count(l.operation_key) AS keys,
                      max(l.created_at) FILTER (WHERE l.kind = 'hold') AS placed_at,
                      min(l.created_at) FILTER (WHERE l.kind IN ('capture', 'release')) AS resolved_at
               FROM credit_ledger l WHERE l.hold_id IS NOT NULL GROUP BY l.hold_id)
           SELECT a.organisation_id AS "organisation_id!", 'available (buckets)' AS "what!",
                  coalesce(l.available, 0)::bigint AS "expected!", coalesce(b.remaining, 0)::bigint AS "found!"
             FROM credit_accounts a LEFT JOIN ledger l USING (organisation_id) LEFT JOIN buckets b USING (organisation_id)
            WHERE coalesce(b.remaining, 0) <> coalesce(l.available, 0)
           UNION ALL
           SELECT a.organisation_id, 'held (open holds)', coalesce(l.held, 0)::bigint, coalesce(o.held, 0)::bigint
             FROM credit_accounts a LEFT JOIN ledger l USING (organisation_id) LEFT JOIN open o USING (organisation_id)
            WHERE coalesce(o.held, 0) <> coalesce(l.held, 0)
           UNION ALL
           SELECT b.organisation_id, 'bucket ' || b.id || ' remaining', coalesce(sum(l.delta), 0)::bigint, b.remaining
             FROM credit_buckets b LEFT JOIN credit_ledger l ON l.bucket_id = b.id
            GROUP BY b.id HAVING b.remaining <> coalesce(sum(l.delta), 0)
           UNION ALL
           SELECT h.organisation_id,
                  'hold ' || h.hold_id || ' (' || CASE WHEN o.hold_id IS NOT NULL THEN 'held'
                       WHEN h.resolved > 0 THEN 'resolved' ELSE 'no resolution' END || ') resolved credits',
                  CASE WHEN o.hold_id IS NOT NULL THEN 0 ELSE h.held END::bigint, h.resolved::bigint
             FROM holds h LEFT JOIN credit_holds_open o ON o.hold_id = h.hold_id
            WHERE h.resolved <> CASE WHEN o.hold_id IS NOT NULL THEN 0 ELSE h.held END
               OR h.both_ways OR h.keys <> 1 OR o.amount <> h.held OR o.organisation_id <> h.organisation_id
           UNION ALL
           SELECT h.organisation_id, 'hold ' || h.hold_id || ' resolved before it was placed', 1, 0
             FROM holds h WHERE h.resolved_at < h.placed_at
           UNION ALL
           SELECT r.organisation_id, 'hold ' || r.hold_id || ' bucket ' || r.bucket_id || ' ' || r.kind,
                  coalesce(d.amount, 0), r.amount
             FROM credit_ledger r
             LEFT JOIN credit_ledger d ON d.hold_id = r.hold_id AND d.bucket_id = r.bucket_id AND d.kind = 'hold'
            WHERE r.kind IN ('capture', 'release') AND r.amount <> coalesce(d.amount, 0)
           UNION ALL
           SELECT l.organisation_id, 'hold ' || l.hold_id || ' first row (type, timeout)', 1, 0
             FROM credit_ledger l
            WHERE l.operation_key IS NOT NULL AND (l.kind <> 'hold' OR l.creation_type IS NULL OR l.expires_at IS NULL)
           UNION ALL
           SELECT g.organisation_id, 'generation ' || g.id || ' hold', 1, 0
             FROM generations g
            WHERE g.hold_id IS NOT NULL AND NOT EXISTS (
                  SELECT 1 FROM credit_ledger l
                   WHERE l.hold_id = g.hold_id AND l.kind = 'hold' AND l.organisation_id = g.organisation_id)
           UNION ALL
           SELECT g.organisation_id, 'generation ' || g.id || ' (organisation or type unknown)', 1, 0
             FROM generations g
            WHERE NOT EXISTS (SELECT 1 FROM organisations o WHERE o.id = g.organisation_id)
               OR NOT EXISTS (SELECT 1 FROM creation_types t WHERE t.id = g.creation_type)
           UNION ALL
           SELECT k.organisation_id, 'Idempotency-Key ' || k.key || ' (organisation unknown)', 1, 0
             FROM idempotency_keys k
            WHERE NOT EXISTS (SELECT 1 FROM organisations o WHERE o.id = k.organisation_id)
           UNION ALL
           SELECT coalesce(e.organisation_id, c.organisation_id),
                  'launches of ' || coalesce(e.day, c.day) || ' (usage counter)',
                  coalesce(e.launches, 0)::bigint, coalesce(c.launches, 0)::bigint
             FROM (SELECT h.organisation_id, (h.created_at AT TIME ZONE 'Europe/Paris')::date AS day, count(*) AS launches
                     FROM credit_ledger h
                    WHERE h.operation_key IS NOT NULL
                      AND NOT EXISTS (SELECT 1 FROM credit_ledger r WHERE r.hold_id = h.hold_id AND r.kind = 'release')
                    GROUP BY 1, 2) e
             FULL JOIN credit_usage_days c ON c.organisation_id = e.organisation_id AND c.day = e.day
            WHERE coalesce(e.launches, 0) <> coalesce(c.launches, 0)
           UNION ALL
           SELECT coalesce(e.organisation_id, c.organisation_id),
                  'captures of ' || coalesce(e.day, c.day) || ' (usage counter)',
                  coalesce(e.credits, 0)::bigint, coalesce(c.credits, 0)::bigint
             FROM (SELECT organisation_id, (created_at AT TIME ZONE 'Europe/Paris')::date AS day, sum(amount) AS credits
                     FROM credit_ledger WHERE kind = 'capture' GROUP BY 1, 2) e
             FULL JOIN credit_capture_days c ON c.organisation_id = e.organisation_id AND c.day = e.day
            WHERE coalesce(e.credits, 0) <> coalesce(c.credits, 0)
           UNION ALL
           SELECT o.organisation_id, 'open hold ' || o.hold_id || ' without its rows', o.amount, 0
             FROM credit_holds_open o WHERE NOT EXISTS (SELECT 1 FROM credit_ledger l WHERE l.hold_id = o.hold_id AND l.kind = 'hold')
           UNION ALL
           SELECT l.organisation_id, 'ledger row ' || l.id || ' (' || l.kind || ') delta',
                  CASE l.kind WHEN 'grant' THEN l.amount WHEN 'release' THEN l.amount WHEN 'capture' THEN 0
                       WHEN 'adjustment' THEN CASE WHEN l.delta < 0 THEN -l.amount ELSE l.amount END ELSE -l.amount END,
                  l.delta
             FROM credit_ledger l
            WHERE l.kind NOT IN ('grant', 'hold', 'capture', 'release', 'expiry', 'adjustment', 'refund')
               OR l.amount <= 0
               OR l.delta <> CASE l.kind WHEN 'grant' THEN l.amount WHEN 'release' THEN l.amount WHEN 'capture' THEN 0
                                  WHEN 'adjustment' THEN CASE WHEN l.delta < 0 THEN -l.amount ELSE l.amount END ELSE -l.amount END
               OR (l.kind IN ('hold', 'capture', 'release')) <> (l.hold_id IS NOT NULL)
               OR NOT EXISTS (SELECT 1 FROM credit_buckets b WHERE b.id = l.bucket_id AND b.organisation_id = l.organisation_id)
           ORDER BY 1, 2"#
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Difference {
            organisation_id: r.organisation_id,
            what: r.what,
            expected: r.expected,
            found: r.found,
        })
        .collect())
}

/// Low-balance and expiry alerts not sent yet, with the owner's address.
#[derive(Debug, Clone)]
pub struct PendingAlert {
    pub id: i64,
    pub organisation_id: Uuid,
    pub organisation_name: String,
    pub owner_email: Option<String>,
    pub kind: String,
    pub available: i64,
    pub threshold: i64,
    pub credits: Option<i64>,
    pub last_day: Option<Date>,
}

pub async fn claim_alerts(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<PendingAlert>> {
    sqlx::query_as!(
        PendingAlert,
        r#"SELECT a.id, a.organisation_id, o.name AS organisation_name,
                  (SELECT u.email FROM users u WHERE u.organisation_id = a.organisation_id AND u.role = 'owner') AS owner_email,
                  a.kind, a.available, o.low_balance_threshold AS threshold, a.credits,
                  ((a.expires_at - interval '1 microsecond') AT TIME ZONE 'Europe/Paris')::date AS last_day
           FROM credit_alerts a JOIN organisations o ON o.id = a.organisation_id
           WHERE a.sent_at IS NULL ORDER BY a.id LIMIT $1
           FOR UPDATE OF a SKIP LOCKED"#,
        limit
    )
    .fetch_all(conn)
    .await
}

pub async fn mark_alert_sent(
    conn: &mut PgConnection,
    id: i64,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE credit_alerts SET sent_at = $2 WHERE id = $1",
        id,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Notes the expiry notices due at `now` (14 and 3 days before a bucket expires), once per
/// bucket and kind, for the credits that will be lost: all that is left in a bucket, except an
/// allotment's share under the plan's rollover cap, which carries over.
pub async fn note_expiry_notices(
    conn: &mut PgConnection,
    now: OffsetDateTime,
) -> sqlx::Result<u64> {
    let done = sqlx::query!(
        r#"INSERT INTO credit_alerts (organisation_id, kind, available, bucket_id, credits, expires_at, created_at)
           SELECT b.organisation_id, k.kind,
                  (SELECT coalesce(sum(x.remaining), 0) FROM credit_buckets x WHERE x.organisation_id = b.organisation_id)::bigint,
                  b.id,
                  CASE WHEN b.source = 'allotment' THEN b.remaining - least(b.remaining, p.rollover_cap) ELSE b.remaining END,
                  b.expires_at, $1
           FROM credit_buckets b
           JOIN organisations o ON o.id = b.organisation_id
           JOIN plans p ON p.id = o.plan_id
           CROSS JOIN (VALUES ('expiry_14', 14), ('expiry_3', 3)) AS k (kind, days)
           WHERE b.remaining > 0 AND b.expires_at > $1 AND b.expires_at <= $1 + make_interval(days => k.days)
             AND CASE WHEN b.source = 'allotment' THEN b.remaining > p.rollover_cap ELSE true END
             AND NOT (k.kind = 'expiry_14' AND b.expires_at <= $1 + interval '3 days')
           ON CONFLICT (bucket_id, kind) WHERE bucket_id IS NOT NULL DO NOTHING"#,
        now
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// The allotment buckets (the period's, and an upgrade's) that end with the period.
pub async fn allotments_ending(
    conn: &mut PgConnection,
    organisation: Uuid,
    period_end: OffsetDateTime,
) -> sqlx::Result<Vec<BucketRow>> {
    sqlx::query_as!(
        BucketRow,
        r#"SELECT id, source AS "source: BucketSource", restricted_to, amount AS "amount: Credits",
                  remaining AS "remaining: Credits", expires_at,
                  ((expires_at - interval '1 microsecond') AT TIME ZONE 'Europe/Paris')::date AS "last_day!",
                  created_at
           FROM credit_buckets
           WHERE organisation_id = $1 AND source = 'allotment' AND expires_at = $2 AND remaining > 0
           ORDER BY id"#,
        organisation,
        period_end
    )
    .fetch_all(conn)
    .await
}

/// Switches the organisation and its subscription to `plan` (an upgrade now, a downgrade at
/// renewal), clearing any scheduled change.
pub async fn switch_plan(
    conn: &mut PgConnection,
    organisation: Uuid,
    plan: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE organisations SET plan_id = $2 WHERE id = $1",
        organisation,
        plan
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE subscriptions SET plan_id = $2, scheduled_plan_id = NULL, scheduled_at = NULL WHERE organisation_id = $1",
        organisation,
        plan
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Schedules (or, with `None`, cancels) a change of plan at the end of the period.
pub async fn schedule_plan(
    conn: &mut PgConnection,
    organisation: Uuid,
    plan: Option<&str>,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE subscriptions SET scheduled_plan_id = $2, scheduled_at = CASE WHEN $2::text IS NULL THEN NULL ELSE $3::timestamptz END
         WHERE organisation_id = $1",
        organisation,
        plan,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}
