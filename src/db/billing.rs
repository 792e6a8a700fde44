//! Orders, the provider's events, and gap-free invoice numbers.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::billing::OrderState;
use crate::domain::money::Cents;

#[derive(Debug, Clone)]
pub struct Order {
    pub id: Uuid,
    pub organisation_id: Uuid,
    pub kind: String,
    pub pack_id: Option<String>,
    pub plan_id: Option<String>,
    pub label: String,
    pub amount_cents: Cents,
    pub credits: i64,
    pub restricted_to: Option<String>,
    pub state: OrderState,
    pub failure: Option<String>,
    pub provider: String,
    pub provider_ref: Option<String>,
    pub idempotency_key: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub paid_at: Option<OffsetDateTime>,
    pub invoice: Option<String>,
    /// The credit note (AV-…) of a refunded order.
    pub credit_note: Option<String>,
    /// The period a renewal pays for.
    pub period_number: Option<i32>,
    /// How many of its provider's sessions were forgotten (ended unpaid): the next session is
    /// asked for under a key of this round.
    pub session_round: i32,
}

impl Order {
    /// Whether the payer may pay it on the provider's page: an open order, or a renewal whose
    /// off-session charge failed (the owner pays it by hand).
    pub fn payable(&self) -> bool {
        self.state.is_open() || (self.is_renewal() && self.state == OrderState::Failed)
    }

    /// A period's renewal: a debt of the subscription, which the renewals charge and retry, and
    /// which the payment's end at the provider never ends.
    pub fn is_renewal(&self) -> bool {
        self.kind == "renewal"
    }
}

/// A new order, as the service prices it (never from the form).
#[derive(Debug, Clone, Copy)]
pub struct NewOrder<'a> {
    pub organisation: Uuid,
    pub kind: &'a str,
    pub pack_id: Option<&'a str>,
    pub plan_id: Option<&'a str>,
    pub label: &'a str,
    pub amount: Cents,
    pub credits: i64,
    pub restricted_to: Option<&'a str>,
    pub provider: &'a str,
    pub form_key: &'a str,
    pub created_by: Option<Uuid>,
    pub now: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// A renewal's period: its number and first instant.
    pub period: Option<(i32, OffsetDateTime)>,
}

/// Creates the order, or gives the one made with the same form key (a double submit).
pub async fn create_order(conn: &mut PgConnection, o: NewOrder<'_>) -> sqlx::Result<Uuid> {
    let key = Uuid::new_v4().to_string();
    let created = sqlx::query_scalar!(
        "INSERT INTO orders (organisation_id, kind, pack_id, plan_id, label, amount_cents, credits, restricted_to,
                             provider, idempotency_key, form_key, created_by, created_at, updated_at, expires_at,
                             period_number, period_start)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14, $15, $16)
         ON CONFLICT DO NOTHING RETURNING id",
        o.organisation,
        o.kind,
        o.pack_id,
        o.plan_id,
        o.label,
        o.amount.0,
        o.credits,
        o.restricted_to,
        o.provider,
        key,
        o.form_key,
        o.created_by,
        o.now,
        o.expires_at,
        o.period.map(|p| p.0),
        o.period.map(|p| p.1)
    )
    .fetch_optional(&mut *conn)
    .await?;
    match created {
        Some(id) => Ok(id),
        None => {
            sqlx::query_scalar!(
                "SELECT id FROM orders WHERE organisation_id = $1 AND form_key = $2",
                o.organisation,
                o.form_key
            )
            .fetch_one(conn)
            .await
        }
    }
}

/// An upgrade order still open for payment: what it charges and grants.
#[derive(Debug, Clone, Copy)]
pub struct OpenUpgrade {
    pub id: Uuid,
    pub amount: Cents,
    pub credits: i64,
}

/// The organisation's upgrade to `plan` still open for payment (made in another tab), if any,
/// quoted in the current period (from `period_start`).
pub async fn open_upgrade(
    conn: &mut PgConnection,
    organisation: Uuid,
    plan: &str,
    period_start: OffsetDateTime,
    now: OffsetDateTime,
) -> sqlx::Result<Option<OpenUpgrade>> {
    sqlx::query_as!(
        OpenUpgrade,
        r#"SELECT id, amount_cents AS "amount: Cents", credits FROM orders
         WHERE organisation_id = $1 AND kind = 'upgrade' AND plan_id = $2
           AND state IN ('created', 'pending') AND expires_at > $4 AND created_at >= $3
         ORDER BY created_at DESC LIMIT 1"#,
        organisation,
        plan,
        period_start,
        now
    )
    .fetch_optional(conn)
    .await
}

pub async fn order(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Order>> {
    sqlx::query_as!(
        Order,
        r#"SELECT o.id, o.organisation_id, o.kind, o.pack_id, o.plan_id, o.label, o.amount_cents AS "amount_cents: Cents",
                  o.credits, o.restricted_to, o.state AS "state: OrderState", o.failure, o.provider, o.provider_ref,
                  o.idempotency_key, o.created_at, o.expires_at, o.paid_at,
                  (SELECT number FROM invoices i WHERE i.order_id = o.id AND i.series = 'FA') AS invoice,
                  (SELECT number FROM invoices i WHERE i.order_id = o.id AND i.series = 'AV') AS credit_note,
                  o.period_number, o.session_round
           FROM orders o WHERE o.id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await
}

pub async fn lock_order(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Order>> {
    sqlx::query_as!(
        Order,
        r#"SELECT o.id, o.organisation_id, o.kind, o.pack_id, o.plan_id, o.label, o.amount_cents AS "amount_cents: Cents",
                  o.credits, o.restricted_to, o.state AS "state: OrderState", o.failure, o.provider, o.provider_ref,
                  o.idempotency_key, o.created_at, o.expires_at, o.paid_at,
                  NULL::text AS invoice, NULL::text AS credit_note, o.period_number, o.session_round
           FROM orders o WHERE o.id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(conn)
    .await
}

pub async fn orders(
    conn: &mut PgConnection,
    organisation: Uuid,
    limit: i64,
) -> sqlx::Result<Vec<Order>> {
    sqlx::query_as!(
        Order,
        r#"SELECT o.id, o.organisation_id, o.kind, o.pack_id, o.plan_id, o.label, o.amount_cents AS "amount_cents: Cents",
                  o.credits, o.restricted_to, o.state AS "state: OrderState", o.failure, o.provider, o.provider_ref,
                  o.idempotency_key, o.created_at, o.expires_at, o.paid_at,
                  (SELECT number FROM invoices i WHERE i.order_id = o.id AND i.series = 'FA') AS invoice,
                  (SELECT number FROM invoices i WHERE i.order_id = o.id AND i.series = 'AV') AS credit_note,
                  o.period_number, o.session_round
           FROM orders o WHERE o.organisation_id = $1 ORDER BY o.created_at DESC LIMIT $2"#,
        organisation,
        limit
    )
    .fetch_all(conn)
    .await
}

/// Moves the order to `next` if its current state may move there; false otherwise.
pub async fn move_order(
    conn: &mut PgConnection,
    id: Uuid,
    next: OrderState,
    failure: Option<&str>,
    now: OffsetDateTime,
) -> sqlx::Result<bool> {
    let before: Vec<String> = OrderState::before(next)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let paid_at = matches!(next, OrderState::Paid).then_some(now);
    let done = sqlx::query!(
        "UPDATE orders SET state = $2, failure = coalesce($3, failure), updated_at = $4,
                paid_at = coalesce(paid_at, $5)
         WHERE id = $1 AND state = ANY($6)",
        id,
        next.as_str(),
        failure,
        now,
        paid_at,
        &before as &[String]
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The session the payer was last sent to (a renewal paid by hand more than a day after a first
/// session gets a new one): the webhook, the return page and the card follow that one.
pub async fn set_provider_ref(
    conn: &mut PgConnection,
    id: Uuid,
    reference: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE orders SET provider_ref = $2 WHERE id = $1 AND provider_ref IS DISTINCT FROM $2",
        id,
        reference
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn order_by_provider_ref(
    conn: &mut PgConnection,
    reference: &str,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!("SELECT id FROM orders WHERE provider_ref = $1", reference)
        .fetch_optional(conn)
        .await
}

/// Records a provider's event; false when it was recorded before (its effect is done).
pub async fn record_event(
    conn: &mut PgConnection,
    event_id: &str,
    provider: &str,
    kind: &str,
    order: Option<Uuid>,
    now: OffsetDateTime,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "INSERT INTO payment_events (event_id, provider, kind, order_id, received_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT DO NOTHING",
        event_id,
        provider,
        kind,
        order,
        now
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The next number of `series` for `year`, from its counter row locked until commit: numbers
/// are gap-free because a rolled-back transaction gives its number back.
pub async fn next_number(conn: &mut PgConnection, series: &str, year: i32) -> sqlx::Result<i32> {
    sqlx::query_scalar!(
        "INSERT INTO document_counters (series, year, last) VALUES ($1, $2, 1)
         ON CONFLICT (series, year) DO UPDATE SET last = document_counters.last + 1
         RETURNING last",
        series,
        year
    )
    .fetch_one(conn)
    .await
}

#[derive(Debug, Clone)]
pub struct Invoice {
    pub id: Uuid,
    pub number: String,
    pub series: String,
    pub order_id: Uuid,
    pub organisation_id: Uuid,
    pub buyer_name: String,
    pub buyer_email: String,
    pub label: String,
    pub ht_cents: Cents,
    pub tva_cents: Cents,
    pub ttc_cents: Cents,
    pub issued_at: OffsetDateTime,
    /// For a credit note: the invoice it cancels.
    pub corrects: Option<String>,
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_invoice(
    conn: &mut PgConnection,
    number: &str,
    series: &str,
    year: i32,
    sequence: i32,
    order: &Order,
    buyer_name: &str,
    buyer_email: &str,
    ht: Cents,
    tva: Cents,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO invoices (number, series, year, sequence, order_id, organisation_id, buyer_name, buyer_email, label,
                               ht_cents, tva_cents, ttc_cents, issued_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        number,
        series,
        year,
        sequence,
        order.id,
        order.organisation_id,
        buyer_name,
        buyer_email,
        order.label,
        ht.0,
        tva.0,
        ht.0 + tva.0,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn invoice(conn: &mut PgConnection, number: &str) -> sqlx::Result<Option<Invoice>> {
    sqlx::query_as!(
        Invoice,
        r#"SELECT id, number, series, order_id, organisation_id, buyer_name, buyer_email, label,
                  ht_cents AS "ht_cents: Cents", tva_cents AS "tva_cents: Cents", ttc_cents AS "ttc_cents: Cents", issued_at,
                  (SELECT f.number FROM invoices f WHERE f.order_id = invoices.order_id AND f.series = 'FA'
                          AND invoices.series = 'AV') AS corrects
           FROM invoices WHERE number = $1"#,
        number
    )
    .fetch_optional(conn)
    .await
}

pub async fn invoices(conn: &mut PgConnection, organisation: Uuid) -> sqlx::Result<Vec<Invoice>> {
    sqlx::query_as!(
        Invoice,
        r#"SELECT id, number, series, order_id, organisation_id, buyer_name, buyer_email, label,
                  ht_cents AS "ht_cents: Cents", tva_cents AS "tva_cents: Cents", ttc_cents AS "ttc_cents: Cents", issued_at,
                  (SELECT f.number FROM invoices f WHERE f.order_id = invoices.order_id AND f.series = 'FA'
                          AND invoices.series = 'AV') AS corrects
           FROM invoices WHERE organisation_id = $1 ORDER BY issued_at DESC, number DESC"#,
        organisation
    )
    .fetch_all(conn)
    .await
}

/// Orders still open whose time is up (a batch). A Stripe order with its Checkout Session is
/// left to the reconciliation job, which ends the session at Stripe first (the payer may have
/// paid in its last seconds).
pub async fn expired_orders(
    conn: &mut PgConnection,
    now: OffsetDateTime,
    limit: i64,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT id FROM orders WHERE state IN ('created', 'pending') AND expires_at <= $1
                AND (provider <> 'stripe' OR provider_ref IS NULL)
         ORDER BY expires_at LIMIT $2",
        now,
        limit
    )
    .fetch_all(conn)
    .await
}

/// The year `at` falls in, Europe/Paris (invoice numbers restart each year).
pub async fn paris_year(conn: &mut PgConnection, at: OffsetDateTime) -> sqlx::Result<i32> {
    sqlx::query_scalar!(
        r#"SELECT extract(year FROM $1::timestamptz AT TIME ZONE 'Europe/Paris')::int AS "y!""#,
        at
    )
    .fetch_one(conn)
    .await
}

/// The buyer as invoices name it: the organisation and its owner's address.
pub async fn buyer(conn: &mut PgConnection, organisation: Uuid) -> sqlx::Result<(String, String)> {
    let row = sqlx::query!(
        r#"SELECT o.name, coalesce((SELECT u.email FROM users u WHERE u.organisation_id = o.id AND u.role = 'owner'), '') AS "email!"
           FROM organisations o WHERE o.id = $1"#,
        organisation
    )
    .fetch_one(conn)
    .await?;
    Ok((row.name, row.email))
}

/// Payments at `provider` that may have been made without their webhook, not touched since
/// `before`: the reconciliation job asks the provider about them (a batch, oldest first). They
/// are the pending orders, and the renewals made since `renewed_since` whose off-session charge
/// failed and whose owner was sent to pay by hand (a session of the provider's, until it is paid
/// or has expired). Each half reads its own partial index.
pub async fn payments_to_reconcile(
    conn: &mut PgConnection,
    provider: &str,
    before: OffsetDateTime,
    renewed_since: OffsetDateTime,
    limit: i64,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        r#"SELECT id AS "id!" FROM (
               (SELECT id, updated_at FROM orders
                 WHERE state = 'pending' AND provider = $1 AND updated_at <= $2
                 ORDER BY updated_at LIMIT $4)
               UNION ALL
               (SELECT id, updated_at FROM orders
                 WHERE state = 'failed' AND kind = 'renewal' AND provider_ref IS NOT NULL
                   AND provider = $1 AND updated_at <= $2 AND created_at >= $3
                 ORDER BY updated_at LIMIT $4)) due
           ORDER BY updated_at LIMIT $4"#,
        provider,
        before,
        renewed_since,
        limit
    )
    .fetch_all(conn)
    .await
}

/// Marks the order as looked at now (the reconciliation job then comes back to it later).
pub async fn touch_order(
    conn: &mut PgConnection,
    id: Uuid,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE orders SET updated_at = $2
         WHERE id = $1 AND (state = 'pending' OR (state = 'failed' AND kind = 'renewal'))",
        id,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets the provider's session `reference` of a renewal (pending or failed) once it has
/// expired unpaid: the reconciliation stops asking about it; paying by hand again makes a new one.
pub async fn forget_provider_ref(
    conn: &mut PgConnection,
    id: Uuid,
    reference: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE orders SET provider_ref = NULL, session_round = session_round + 1
         WHERE id = $1 AND provider_ref = $2 AND kind = 'renewal' AND state IN ('pending', 'failed')",
        id,
        reference
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A refund of a pack, as recorded before the provider is asked.
#[derive(Debug, Clone)]
pub struct RefundRow {
    pub id: Uuid,
    pub order_id: Uuid,
    pub organisation_id: Uuid,
    pub amount_cents: Cents,
    pub credits: i64,
    pub idempotency_key: String,
    pub state: String,
    pub provider_ref: Option<String>,
    pub failure: Option<String>,
    pub requested_at: OffsetDateTime,
    pub credit_note: Option<String>,
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_refund(
    conn: &mut PgConnection,
    order: &Order,
    credits: i64,
    key: &str,
    actor: &str,
    reason: &str,
    now: OffsetDateTime,
) -> sqlx::Result<Uuid> {
    sqlx::query_scalar!(
        "INSERT INTO refunds (order_id, organisation_id, amount_cents, credits, idempotency_key, actor, reason, requested_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        order.id,
        order.organisation_id,
        order.amount_cents.0,
        credits,
        key,
        actor,
        reason,
        now
    )
    .fetch_one(conn)
    .await
}

pub async fn refund_of_order(
    conn: &mut PgConnection,
    order: Uuid,
) -> sqlx::Result<Option<RefundRow>> {
    sqlx::query_as!(
        RefundRow,
        r#"SELECT r.id, r.order_id, r.organisation_id, r.amount_cents AS "amount_cents: Cents", r.credits,
                  r.idempotency_key, r.state, r.provider_ref, r.failure, r.requested_at,
                  (SELECT number FROM invoices i WHERE i.order_id = r.order_id AND i.series = 'AV') AS credit_note
           FROM refunds r WHERE r.order_id = $1"#,
        order
    )
    .fetch_optional(conn)
    .await
}

/// Refunds the provider has not confirmed yet (a batch, oldest first).
pub async fn requested_refunds(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT order_id FROM refunds WHERE state = 'requested' ORDER BY requested_at LIMIT $1",
        limit
    )
    .fetch_all(conn)
    .await
}

/// What the provider answered to a refund (`succeeded` or `failed`); counts an attempt that
/// got no answer when `state` is `None`.
pub async fn record_refund_answer(
    conn: &mut PgConnection,
    order: Uuid,
    state: Option<&str>,
    provider_ref: Option<&str>,
    failure: Option<&str>,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE refunds SET attempts = attempts + 1,
                state = coalesce($2, state),
                provider_ref = coalesce($3, provider_ref),
                failure = coalesce($4, failure),
                completed_at = CASE WHEN $2::text IS NULL THEN completed_at ELSE $5 END
         WHERE order_id = $1 AND state = 'requested'",
        order,
        state,
        provider_ref,
        failure,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A plan's name, price and allotment (what a renewal or a sign-up charges and grants).
#[derive(Debug, Clone)]
pub struct PlanTerms {
    pub id: String,
    pub name: String,
    pub price_cents: Cents,
    pub credits_per_period: i64,
}

pub async fn plan_terms(conn: &mut PgConnection, plan: &str) -> sqlx::Result<Option<PlanTerms>> {
    sqlx::query_as!(
        PlanTerms,
        r#"SELECT id, name, price_cents AS "price_cents: Cents", credits_per_period FROM plans WHERE id = $1"#,
        plan
    )
    .fetch_optional(conn)
    .await
}

/// The organisation's order of `kind` for renewal period `period` (renewals), or its latest
/// sign-up order (`period` None).
pub async fn latest_order_of_kind(
    conn: &mut PgConnection,
    organisation: Uuid,
    kind: &str,
    period: Option<i32>,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!(
        "SELECT id FROM orders WHERE organisation_id = $1 AND kind = $2
            AND ($3::int IS NULL OR period_number = $3)
         ORDER BY created_at DESC LIMIT 1",
        organisation,
        kind,
        period
    )
    .fetch_optional(conn)
    .await
}

/// Claims charge attempt `number` of the order: false when another runner has it.
pub async fn claim_attempt(
    conn: &mut PgConnection,
    order: Uuid,
    number: i32,
    key: &str,
    now: OffsetDateTime,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "INSERT INTO charge_attempts (order_id, number, idempotency_key, started_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
        order,
        number,
        key,
        now
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records that the owner is starting to pay the order on the provider's page (before the
/// provider is asked for its session).
pub async fn mark_hand_payment(
    conn: &mut PgConnection,
    order: Uuid,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE orders SET hand_payment_at = $2 WHERE id = $1",
        order,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether a renewal of the organisation still owed, of period `period` or the one before, may
/// be being paid on the provider's page: it has a session, or a session was being made for it
/// after `since`.
pub async fn hand_session_of_organisation(
    conn: &mut PgConnection,
    organisation: Uuid,
    period: i32,
    since: OffsetDateTime,
) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM orders
                          WHERE organisation_id = $1 AND kind = 'renewal' AND state IN ('pending', 'failed')
                            AND period_number >= $2 - 1
                            AND (provider_ref IS NOT NULL OR hand_payment_at > $3)) AS "by_hand!""#,
        organisation,
        period,
        since
    )
    .fetch_one(conn)
    .await
}

/// Closes a renewal still owed (pending, or failed) as paid by the late payment of the last
/// period's: false when it is neither any more.
pub async fn close_paid_by_late_renewal(
    conn: &mut PgConnection,
    order: Uuid,
    now: OffsetDateTime,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE orders SET state = 'cancelled', failure = 'paid_by_late_renewal', updated_at = $2
         WHERE id = $1 AND kind = 'renewal' AND state IN ('pending', 'failed')",
        order,
        now
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether a charge of the period's renewal is under way (an attempt still unanswered).
pub async fn renewal_charging(
    conn: &mut PgConnection,
    organisation: Uuid,
    period: i32,
) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM charge_attempts a JOIN orders o ON o.id = a.order_id
                          WHERE o.organisation_id = $1 AND o.kind = 'renewal' AND o.period_number = $2
                            AND a.answered_at IS NULL) AS "charging!""#,
        organisation,
        period
    )
    .fetch_one(conn)
    .await
}

/// How many charges of the order were attempted, and whether one is still unanswered.
pub async fn attempts(conn: &mut PgConnection, order: Uuid) -> sqlx::Result<(i32, bool)> {
    let row = sqlx::query!(
        r#"SELECT count(*)::int AS "n!", coalesce(bool_or(answered_at IS NULL), false) AS "open!"
           FROM charge_attempts WHERE order_id = $1"#,
        order
    )
    .fetch_one(conn)
    .await?;
    Ok((row.n, row.open))
}

/// Records the provider's answer to an attempt (once: a second answer changes nothing).
pub async fn answer_attempt(
    conn: &mut PgConnection,
    order: Uuid,
    number: i32,
    outcome: &str,
    now: OffsetDateTime,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE charge_attempts SET answered_at = $3, outcome = $4
         WHERE order_id = $1 AND number = $2 AND answered_at IS NULL",
        order,
        number,
        now,
        outcome
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// An attempt still without an answer.
#[derive(Debug, Clone)]
pub struct OpenAttempt {
    pub order_id: Uuid,
    pub number: i32,
    pub idempotency_key: String,
    pub payment_intent: Option<String>,
}

/// Attempts never answered, to ask again: those started before `before` whose runner stopped,
/// and those still processing whose time to be asked again has come (`now`).
pub async fn stale_attempts(
    conn: &mut PgConnection,
    before: OffsetDateTime,
    now: OffsetDateTime,
    limit: i64,
) -> sqlx::Result<Vec<OpenAttempt>> {
    sqlx::query_as!(
        OpenAttempt,
        "SELECT order_id, number, idempotency_key, payment_intent FROM charge_attempts
         WHERE answered_at IS NULL
           AND (CASE WHEN ask_again_at IS NULL THEN started_at < $1 ELSE ask_again_at <= $2 END)
         ORDER BY started_at LIMIT $3",
        before,
        now,
        limit
    )
    .fetch_all(conn)
    .await
}

/// An attempt whose charge is still processing: its payment, and when to ask about it again.
pub async fn ask_again(
    conn: &mut PgConnection,
    order: Uuid,
    number: i32,
    payment: Option<&str>,
    at: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE charge_attempts SET ask_again_at = $4, payment_intent = coalesce($3, payment_intent)
         WHERE order_id = $1 AND number = $2 AND answered_at IS NULL",
        order,
        number,
        payment,
        at
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Answers every open attempt of the order (its payment came another way: a debit's webhook).
pub async fn answer_open_attempts(
    conn: &mut PgConnection,
    order: Uuid,
    outcome: &str,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE charge_attempts SET answered_at = $2, outcome = $3
         WHERE order_id = $1 AND answered_at IS NULL",
        order,
        now,
        outcome
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The test provider's off-session answer for the organisation (None: approve).
pub async fn test_setting(
    conn: &mut PgConnection,
    organisation: Uuid,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "SELECT off_session FROM test_provider_settings WHERE organisation_id = $1",
        organisation
    )
    .fetch_optional(conn)
    .await
}

pub async fn set_test_setting(
    conn: &mut PgConnection,
    organisation: Uuid,
    setting: &str,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO test_provider_settings (organisation_id, off_session, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (organisation_id) DO UPDATE SET off_session = $2, updated_at = $3",
        organisation,
        setting,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A failed charge: the subscription's status and retry schedule after it.
pub async fn record_failed_charge(
    conn: &mut PgConnection,
    organisation: Uuid,
    status: &str,
    past_due_since: OffsetDateTime,
    failures: i32,
    next_retry_at: Option<OffsetDateTime>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE subscriptions SET status = $2, past_due_since = $3, failed_charges = $4, next_retry_at = $5
         WHERE organisation_id = $1",
        organisation,
        status,
        past_due_since,
        failures,
        next_retry_at
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Paid up: active again, no arrears, no retry.
pub async fn record_paid_up(conn: &mut PgConnection, organisation: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE subscriptions SET status = 'active', past_due_since = NULL, failed_charges = 0, next_retry_at = NULL
         WHERE organisation_id = $1",
        organisation
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes the due retry off the schedule while it runs (its outcome sets the next one).
pub async fn clear_retry(conn: &mut PgConnection, organisation: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE subscriptions SET next_retry_at = NULL WHERE organisation_id = $1",
        organisation
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves the subscription's next retry to `at` (a retry that could not charge now).
pub async fn postpone_retry(
    conn: &mut PgConnection,
    organisation: Uuid,
    at: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE subscriptions SET next_retry_at = $2 WHERE organisation_id = $1",
        organisation,
        at
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Past-due subscriptions whose retry is due (a batch).
pub async fn retries_due(
    conn: &mut PgConnection,
    now: OffsetDateTime,
    limit: i64,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT organisation_id FROM subscriptions WHERE next_retry_at <= $1 ORDER BY next_retry_at LIMIT $2",
        now,
        limit
    )
    .fetch_all(conn)
    .await
}

/// The card the organisation's renewals are charged to, if one was kept.
pub async fn saved_card(
    conn: &mut PgConnection,
    organisation: Uuid,
) -> sqlx::Result<Option<crate::services::payments::SavedCard>> {
    let row = sqlx::query!(
        "SELECT payment_customer, payment_method FROM subscriptions WHERE organisation_id = $1",
        organisation
    )
    .fetch_optional(conn)
    .await?;
    Ok(
        row.and_then(|r| match (r.payment_customer, r.payment_method) {
            (Some(customer), Some(method)) => {
                Some(crate::services::payments::SavedCard { customer, method })
            }
            _ => None,
        }),
    )
}

pub async fn save_card(
    conn: &mut PgConnection,
    organisation: Uuid,
    card: &crate::services::payments::SavedCard,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE subscriptions SET payment_customer = $2, payment_method = $3 WHERE organisation_id = $1",
        organisation,
        card.customer,
        card.method
    )
    .execute(conn)
    .await?;
    Ok(())
}
