//! Billing: pack orders paid through the payment provider, settled exactly once. An order is
//! priced from the catalogue (never from the form), moves only forward, and the transaction that
//! marks it paid also grants its credits (one grant per order: the grant's key) and takes the
//! next invoice number from its locked counter (gap-free). A provider's event is recorded in
//! that same transaction, so a second delivery finds it and does nothing.

use sqlx::{PgConnection, PgPool};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::catalog::Catalog;
use super::credits::{self, Actor, CreditError};
use super::fault::Fault;
use super::mail::{self, Email};
use super::payments::{PaymentError, PaymentStatus, Payments, ReturnUrls};
use crate::db;
use crate::db::billing::{NewOrder, Order};
use crate::domain::account::SubscriptionStatus;
use crate::domain::billing::{
    AfterFailure, ChargeOutcome, OrderState, TestOutcome, after_failure, document_number, split_ttc,
};
use crate::domain::ledger::BucketSource;
use crate::domain::money::Credits;

/// Runs `$work` (an expression using `$tx`, the transaction's connection, and giving a future of
/// `Result<_, BillingError>`) in one transaction, committed when it succeeds, and again (up to
/// 10 times, with a short growing pause) while PostgreSQL reports a deadlock or a serialisation
/// failure. A macro rather than a function taking an async closure: such a closure's future is
/// not `Send` for every lifetime, which the job runner's task needs.
macro_rules! in_transaction {
    ($pool:expr, |$tx:ident| $work:expr) => {{
        let mut tries = 0u64;
        loop {
            let attempt: Result<_, BillingError> = async {
                let mut transaction = $pool.begin().await?;
                let value = {
                    let $tx: &mut PgConnection = &mut transaction;
                    $work.await?
                };
                transaction.commit().await?;
                Ok(value)
            }
            .await;
            match attempt {
                Err(BillingError::Credit(e)) if credits::is_retryable(&e) && tries < 10 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(2 * tries)).await;
                }
                outcome => break outcome,
            }
        }
    }};
}

/// An order not paid within this time expires (and can be started again).
pub const ORDER_LIFETIME: Duration = Duration::hours(1);

#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error("unknown pack")]
    UnknownPack,
    #[error("unknown order")]
    UnknownOrder,
    #[error("the order is not open for payment")]
    NotPayable,
    /// A renewal's off-session charge is under way: paying it by hand now could pay it twice.
    #[error("a charge of the order is under way")]
    ChargeInProgress,
    #[error("the order cannot be refunded: {0:?}")]
    NotRefundable(NotRefundable),
    /// Staff have suspended the organisation: no purchase, no plan change.
    #[error("the organisation is suspended")]
    Suspended,
    /// The upgrade's price or credits are no longer those the page showed (the prorata fell
    /// with the time left, or an order opened in another tab charges its own): the owner sees
    /// them again.
    #[error("the upgrade's price changed since it was shown")]
    PriceChanged,
    #[error(transparent)]
    Provider(#[from] PaymentError),
    #[error(transparent)]
    Credit(#[from] CreditError),
}

impl From<sqlx::Error> for BillingError {
    fn from(e: sqlx::Error) -> Self {
        BillingError::Credit(e.into())
    }
}

impl From<Fault> for BillingError {
    fn from(f: Fault) -> Self {
        BillingError::Credit(f.into())
    }
}

/// Why an order cannot be refunded (the back office words each one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotRefundable {
    /// Only packs are refunded (a plan is cancelled instead).
    NotAPack,
    /// Not paid (or refunded already).
    NotPaid,
    /// Paid more than 14 days ago.
    TooLate,
    /// Some of its credits were used, held or have expired.
    CreditsUsed,
}

/// A pack is refundable this long after its payment, if its credits are all unused.
pub const REFUND_WINDOW: Duration = Duration::days(14);

/// Which provider takes the payments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Provider {
    /// The built-in « Paiement de test » page (development, the default).
    #[default]
    Test,
    /// Stripe Checkout (production).
    Stripe,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Test => "test",
            Provider::Stripe => "stripe",
        }
    }

    /// The provider an order was made with (its `provider` column).
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "test" => Some(Provider::Test),
            "stripe" => Some(Provider::Stripe),
            _ => None,
        }
    }

    /// The provider that takes new payments (pages, renewals, sign-ups): the one place where
    /// it is chosen (`NANOCLIP_PAYMENTS`).
    pub fn for_config(config: &crate::config::Config) -> Self {
        match config.payments {
            crate::config::Payments::Test => Provider::Test,
            crate::config::Payments::Stripe => Provider::Stripe,
        }
    }
}

impl Payments {
    /// The provider these payments go to, as orders record it.
    pub fn provider(&self) -> Provider {
        match self {
            Payments::Test => Provider::Test,
            Payments::Stripe(_) => Provider::Stripe,
        }
    }
}

/// A pack order for the organisation, priced from the catalogue; the same form key twice gives
/// the same order.
#[allow(clippy::too_many_arguments)]
pub async fn order_pack(
    pool: &PgPool,
    catalog: &Catalog,
    organisation: Uuid,
    buyer: Uuid,
    pack_id: &str,
    form_key: &str,
    provider: Provider,
    now: OffsetDateTime,
) -> Result<Uuid, BillingError> {
    let pack = catalog
        .packs
        .iter()
        .find(|p| p.id == pack_id)
        .ok_or(BillingError::UnknownPack)?;
    let restricted = pack.restricted_to.map(|t| t.id());
    let mut conn = pool.acquire().await?;
    refuse_if_suspended(&mut conn, organisation).await?;
    // The catalog in memory may be a few seconds old: a pack retired or repriced meanwhile
    // (by staff, maybe on another instance) is not sold.
    if !db::catalog::pack_on_sale_as(&mut conn, pack).await? {
        return Err(BillingError::UnknownPack);
    }
    Ok(db::billing::create_order(
        &mut conn,
        NewOrder {
            organisation,
            kind: "pack",
            pack_id: Some(&pack.id),
            plan_id: None,
            label: &pack.name,
            amount: pack.price_cents,
            credits: pack.credits.0,
            restricted_to: restricted,
            provider: provider.as_str(),
            form_key,
            created_by: Some(buyer),
            now,
            expires_at: now + ORDER_LIFETIME,
            period: None,
        },
    )
    .await?)
}

/// Starts the payment of an open order: where to send the payer. The order is pending before the
/// provider is called (under the order's idempotency key, saved when it was created), so that a
/// crash in between leaves something the reconciliation job finds; a second call for the same
/// order (a double submit, a retry) gets the same Checkout Session.
pub async fn begin_payment(
    pool: &PgPool,
    payments: &Payments,
    public_url: &str,
    organisation: Uuid,
    order: Uuid,
    now: OffsetDateTime,
) -> Result<String, BillingError> {
    let (found, payer) =
        match in_transaction!(pool, |tx| open_payment(tx, organisation, order, now))? {
            Opening::Pay(found, payer) => (*found, payer),
            Opening::Done(page) => return Ok(page),
        };
    // No connection is held while the provider answers.
    let checkout = payments
        .checkout(&found, &payer, &return_urls(public_url, order))
        .await?;
    if let Some(reference) = &checkout.reference {
        let mut conn = pool.acquire().await?;
        db::billing::set_provider_ref(&mut conn, order, reference).await?;
    }
    Ok(checkout.url)
}

/// What `open_payment` found: the order to pay and its payer's e-mail, or the page to show.
enum Opening {
    Pay(Box<Order>, String),
    Done(String),
}

/// `begin_payment`'s checks and marks, in one transaction. A renewal is a debt the renewals
/// also charge off session: under the subscription's lock (as a charge attempt is claimed), it
/// is refused while an attempt is unanswered, and marked as paid by hand before its session is
/// made, so that no attempt is claimed while the owner may pay it on the provider's page.
async fn open_payment(
    conn: &mut PgConnection,
    organisation: Uuid,
    order: Uuid,
    now: OffsetDateTime,
) -> Result<Opening, BillingError> {
    let found = db::billing::order(conn, order)
        .await?
        .filter(|o| o.organisation_id == organisation);
    let Some(found) = found else {
        return Err(BillingError::UnknownOrder);
    };
    if found.is_renewal() {
        db::credits::lock_subscription(conn, organisation).await?;
        if db::billing::attempts(conn, order).await?.1 {
            return Err(BillingError::ChargeInProgress);
        }
    }
    let Some(found) = db::billing::lock_order(conn, order).await? else {
        return Err(BillingError::UnknownOrder);
    };
    match found.state {
        OrderState::Created => {
            db::billing::move_order(conn, order, OrderState::Pending, None, now).await?;
        }
        OrderState::Pending => {}
        // A renewal whose off-session charge failed is paid on the provider's page.
        OrderState::Failed if found.payable() => {}
        // Paid already (a double submit after the payment): the result page.
        _ => return Ok(Opening::Done(format!("/achats/retour/{order}"))),
    }
    if found.is_renewal() {
        db::billing::mark_hand_payment(conn, order, now).await?;
    }
    let (_, email) = db::billing::buyer(conn, organisation).await?;
    Ok(Opening::Pay(Box::new(found), email))
}

/// Where the provider sends the payer back: the result page, which asks the provider again.
fn return_urls(public_url: &str, order: Uuid) -> ReturnUrls {
    ReturnUrls {
        success: format!("{public_url}/achats/retour/{order}"),
        cancel: format!("{public_url}/achats/retour/{order}?abandon=1"),
    }
}

/// What the provider says about a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    Paid,
    Failed(String),
    Cancelled,
    Expired,
}

/// An event of the provider (a webhook): recorded once with its effect.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub id: &'a str,
    pub provider: &'a str,
    pub kind: &'a str,
    /// The Checkout Session the event is about (session events).
    pub session: Option<&'a str>,
}

/// What a provider's event says it paid: its Checkout Session (for session events), amount in
/// cents and currency, as far as the event carries them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Claimed<'a> {
    pub session: Option<&'a str>,
    pub amount: Option<i64>,
    pub currency: Option<&'a str>,
}

/// Whether an event may settle the order: its session is the order's (once the order's session
/// is known), and its amount and currency are the order's. Stripe signs every event of the
/// account, including sessions the portal did not make (a Payment Link takes
/// `client_reference_id` from its URL): an event naming an order proves nothing more.
pub async fn event_is_for(
    pool: &PgPool,
    order: Uuid,
    claimed: Claimed<'_>,
) -> Result<bool, BillingError> {
    let found = {
        let mut conn = pool.acquire().await?;
        db::billing::order(&mut conn, order).await?
    };
    // An unknown order: `settle` answers it without effect.
    let Some(found) = found else {
        return Ok(true);
    };
    let session_ok = match (found.provider_ref.as_deref(), claimed.session) {
        (Some(ours), Some(theirs)) => ours == theirs,
        _ => true,
    };
    let amount_ok = claimed.amount.is_none_or(|a| a == found.amount_cents.0);
    let currency_ok = claimed
        .currency
        .is_none_or(|c| c.eq_ignore_ascii_case("eur"));
    Ok(session_ok && amount_ok && currency_ok)
}

/// Applies what the provider says to an order, once: `paid` grants the credits and issues the
/// invoice in the same transaction. Returns the order's state afterwards.
pub async fn settle(
    pool: &PgPool,
    order: Uuid,
    settlement: Settlement,
    event: Option<Event<'_>>,
    now: OffsetDateTime,
) -> Result<OrderState, BillingError> {
    let settlement = &settlement;
    let state = in_transaction!(pool, |tx| settle_in(tx, order, settlement, event, now))?;
    state.ok_or(BillingError::UnknownOrder)
}

async fn settle_in(
    conn: &mut PgConnection,
    order: Uuid,
    settlement: &Settlement,
    event: Option<Event<'_>>,
    now: OffsetDateTime,
) -> Result<Option<OrderState>, BillingError> {
    // Orders that change the subscription lock it first, as the renewal does (subscription,
    // then order): no deadlock between a payment and a renewal run.
    if let Some(found) = db::billing::order(conn, order).await?
        && found.kind != "pack"
    {
        db::credits::lock_subscription(conn, found.organisation_id).await?;
    }
    let Some(current) = db::billing::lock_order(conn, order).await? else {
        if let Some(e) = event {
            db::billing::record_event(conn, e.id, e.provider, e.kind, None, now).await?;
        }
        return Ok(None);
    };
    if let Some(e) = event
        && !db::billing::record_event(conn, e.id, e.provider, e.kind, Some(order), now).await?
    {
        return Ok(Some(current.state));
    }
    // A renewal is a debt of the subscription: its session ending unpaid (expired, or its delayed
    // payment failed) does not end it. That session is forgotten (as the reconciliation does),
    // so that the retries may charge the card again.
    if let Some(e) = event
        && current.is_renewal()
        && !matches!(settlement, Settlement::Paid)
    {
        if let (Some(ended), Some(known)) = (e.session, current.provider_ref.as_deref())
            && ended == known
        {
            db::billing::forget_provider_ref(conn, order, known).await?;
        }
        return Ok(Some(current.state));
    }
    let (next, failure) = match settlement {
        Settlement::Paid => (OrderState::Paid, None),
        Settlement::Failed(reason) => (OrderState::Failed, Some(reason.as_str())),
        Settlement::Cancelled => (OrderState::Cancelled, None),
        Settlement::Expired => (OrderState::Expired, None),
    };
    if !db::billing::move_order(conn, order, next, failure, now).await? {
        return Ok(Some(current.state));
    }
    if next == OrderState::Paid {
        pay(conn, &current, now).await?;
        // A debit that cleared (its webhook): its attempt is answered.
        if current.is_renewal() {
            db::billing::answer_open_attempts(conn, order, ChargeOutcome::Paid.as_str(), now)
                .await?;
        }
    }
    Ok(Some(next))
}

/// Issues the order's invoice (`FA`) or credit note (`AV`): the next number of the year's
/// series, from its counter row locked until the end of the transaction (gap-free), with the
/// buyer as they are now. Returns the number.
async fn issue_document(
    conn: &mut PgConnection,
    series: &str,
    order: &Order,
    now: OffsetDateTime,
) -> Result<String, BillingError> {
    let year = db::billing::paris_year(conn, now).await?;
    let sequence = db::billing::next_number(conn, series, year).await?;
    let (buyer_name, buyer_email) = db::billing::buyer(conn, order.organisation_id).await?;
    let (ht, tva) = split_ttc(order.amount_cents);
    let number = document_number(series, year, sequence);
    db::billing::insert_invoice(
        conn,
        &number,
        series,
        year,
        sequence,
        order,
        &buyer_name,
        &buyer_email,
        ht,
        tva,
        now,
    )
    .await?;
    Ok(number)
}

/// The effects of « paid »: the credits (once per order) and the invoice (its number from the
/// locked counter of the year).
async fn pay(
    conn: &mut PgConnection,
    order: &Order,
    now: OffsetDateTime,
) -> Result<(), BillingError> {
    match order.kind.as_str() {
        "upgrade" => {
            // The new plan applies at once; its extra credits end with the period, like its
            // allotment.
            let Some(plan) = order.plan_id.as_deref() else {
                return Err(Fault::Internal(anyhow::anyhow!("an upgrade without its plan")).into());
            };
            // Its price and credits were quoted for the period it was ordered in: paid once a
            // renewal has started the next one (charged at the old plan's price), it changes
            // nothing (the money was taken: staff refunds it, as a late second sign-up).
            let quoted_now = db::credits::subscription(conn, order.organisation_id)
                .await?
                .is_some_and(|sub| order.created_at >= sub.period_start);
            // Paid twice (two upgrades paid at once, each from its own session): the first one
            // changed the plan; this one changes nothing.
            let held = db::accounts::organisation(conn, order.organisation_id)
                .await?
                .is_some_and(|o| o.plan_id == plan);
            let applies = quoted_now && !held;
            if !applies {
                let why = if held {
                    "plan_already_held"
                } else {
                    "period_over"
                };
                audit_to_refund(conn, order, "billing.upgrade_not_applied", why, now).await?;
            } else {
                db::credits::switch_plan(conn, order.organisation_id, plan).await?;
            }
            if applies
                && let Some(sub) = db::credits::subscription(conn, order.organisation_id).await?
                && order.credits > 0
            {
                credits::grant_in(
                    conn,
                    order.organisation_id,
                    BucketSource::Allotment,
                    None,
                    Credits(order.credits),
                    sub.period_end,
                    &format!("order:{}", order.id),
                    Actor {
                        actor: "system",
                        reason: "upgrade",
                    },
                    now,
                )
                .await?;
            }
        }
        "renewal" => {
            // The period's allotment, if the order is the current period's, and the subscription
            // is paid up.
            if let Some(sub) = db::credits::lock_subscription(conn, order.organisation_id).await? {
                if order.period_number == Some(sub.period_number) {
                    credits::grant_allotment(
                        conn,
                        order.organisation_id,
                        sub.period_number,
                        Credits(order.credits),
                        sub.period_end,
                        now,
                    )
                    .await?;
                    db::billing::record_paid_up(conn, order.organisation_id).await?;
                } else {
                    pay_current_with_late_renewal(conn, order, &sub, now).await?;
                }
            }
        }
        "signup" => {
            // The subscription starts now, with its first period and allotment (a second paid
            // sign-up order, confirmed late, finds it started: the money was taken, staff refunds).
            let Some(plan) = order.plan_id.as_deref() else {
                return Err(Fault::Internal(anyhow::anyhow!("a sign-up without its plan")).into());
            };
            if db::credits::subscription(conn, order.organisation_id)
                .await?
                .is_none()
            {
                credits::start_subscription(
                    conn,
                    order.organisation_id,
                    plan,
                    SubscriptionStatus::Active,
                    now,
                )
                .await?;
            }
        }
        _ if order.credits > 0 => {
            let expires = crate::domain::billing::purchase_expiry(now);
            credits::grant_in(
                conn,
                order.organisation_id,
                BucketSource::Purchase,
                order.restricted_to.as_deref(),
                Credits(order.credits),
                expires,
                &format!("order:{}", order.id),
                Actor {
                    actor: "system",
                    reason: "purchase",
                },
                now,
            )
            .await?;
        }
        _ => {}
    }
    issue_document(conn, "FA", order, now).await?;
    Ok(())
}

/// A payment taken that the portal could not apply (it changes nothing): recorded in the audit,
/// in the payment's transaction, for staff to refund.
async fn audit_to_refund(
    conn: &mut PgConnection,
    order: &Order,
    action: &str,
    why: &str,
    now: OffsetDateTime,
) -> Result<(), BillingError> {
    tracing::error!(order = %order.id, action, why, "a payment that changes nothing: to refund");
    db::audit::record(
        conn,
        db::audit::Entry {
            actor: "system",
            organisation: Some(order.organisation_id),
            action,
            reason: why,
            before: None,
            after: Some(serde_json::json!({
                "order": order.id,
                "amount_cents": order.amount_cents.0,
            })),
            now,
        },
    )
    .await?;
    Ok(())
}

/// A renewal paid after its period ended (a hand payment that Stripe took just after
/// midnight, while the renewals opened the next period): the church had no credits for that
/// period, so its money pays the current period's renewal instead, when that one is still owed
/// at the same price and nothing else is paying it (no charge under way, no session of its
/// own): the current renewal is cancelled as paid by this one, its allotment granted, the
/// subscription paid up. Otherwise the payment is recorded in the audit for staff to refund.
async fn pay_current_with_late_renewal(
    conn: &mut PgConnection,
    late: &Order,
    sub: &db::credits::Subscription,
    now: OffsetDateTime,
) -> Result<(), BillingError> {
    let organisation = late.organisation_id;
    let owed = match db::billing::latest_order_of_kind(
        conn,
        organisation,
        "renewal",
        Some(sub.period_number),
    )
    .await?
    {
        Some(id) => db::billing::lock_order(conn, id).await?,
        None => None,
    };
    let mut takes_over = None;
    if let Some(owed) = owed.filter(|o| o.payable() && o.amount_cents == late.amount_cents) {
        // The same guard as a charge's claim (the late order is paid by now: it is not counted).
        let since = now - SESSION_BEING_MADE;
        let busy = db::billing::attempts(conn, owed.id).await?.1
            || db::billing::hand_session_of_organisation(
                conn,
                organisation,
                sub.period_number,
                since,
            )
            .await?;
        if !busy {
            takes_over = Some(owed);
        }
    }
    let Some(owed) = takes_over else {
        return audit_to_refund(
            conn,
            late,
            "billing.renewal_not_applied",
            "period_over",
            now,
        )
        .await;
    };
    if !db::billing::close_paid_by_late_renewal(conn, owed.id, now).await? {
        return Err(Fault::Internal(anyhow::anyhow!(
            "renewal {} could not be closed as paid by {}",
            owed.id,
            late.id
        ))
        .into());
    }
    credits::grant_allotment(
        conn,
        organisation,
        sub.period_number,
        Credits(owed.credits),
        sub.period_end,
        now,
    )
    .await?;
    db::billing::record_paid_up(conn, organisation).await?;
    db::audit::record(
        conn,
        db::audit::Entry {
            actor: "system",
            organisation: Some(organisation),
            action: "billing.renewal_paid_late",
            reason: "period_over",
            before: Some(serde_json::json!({ "order": owed.id, "state": owed.state.as_str() })),
            after: Some(serde_json::json!({ "order": owed.id, "paid_by": late.id })),
            now,
        },
    )
    .await?;
    Ok(())
}

/// The test provider's page: the payer's choice.
pub async fn test_payment(
    pool: &PgPool,
    organisation: Uuid,
    order: Uuid,
    outcome: TestOutcome,
    now: OffsetDateTime,
) -> Result<OrderState, BillingError> {
    let found = {
        let mut conn = pool.acquire().await?;
        db::billing::order(&mut conn, order).await?
    };
    let Some(found) = found.filter(|o| o.organisation_id == organisation && o.provider == "test")
    else {
        return Err(BillingError::UnknownOrder);
    };
    // Only an open order (or a renewal whose charge failed) is paid on the provider's page:
    // a declined, cancelled or expired order stays as it is, as with a real provider.
    if !found.payable() {
        return Ok(found.state);
    }
    match outcome {
        TestOutcome::NoAnswer => Ok(found.state),
        TestOutcome::Approve => settle(pool, order, Settlement::Paid, None, now).await,
        other => {
            let reason = other.failure().unwrap_or("declined").to_owned();
            settle(pool, order, Settlement::Failed(reason), None, now).await
        }
    }
}

/// An order of the organisation.
pub async fn order(
    pool: &PgPool,
    organisation: Uuid,
    id: Uuid,
) -> Result<Option<Order>, BillingError> {
    let mut conn = pool.acquire().await?;
    Ok(db::billing::order(&mut conn, id)
        .await?
        .filter(|o| o.organisation_id == organisation))
}

/// The organisation an order belongs to (staff act on orders by id).
pub async fn organisation_of_order(pool: &PgPool, id: Uuid) -> Result<Option<Uuid>, BillingError> {
    let mut conn = pool.acquire().await?;
    Ok(db::billing::order(&mut conn, id)
        .await?
        .map(|o| o.organisation_id))
}

pub async fn orders(pool: &PgPool, organisation: Uuid) -> Result<Vec<Order>, BillingError> {
    let mut conn = pool.acquire().await?;
    Ok(db::billing::orders(&mut conn, organisation, 200).await?)
}

pub async fn invoice(
    pool: &PgPool,
    organisation: Uuid,
    number: &str,
) -> Result<Option<db::billing::Invoice>, BillingError> {
    let mut conn = pool.acquire().await?;
    Ok(db::billing::invoice(&mut conn, number)
        .await?
        .filter(|i| i.organisation_id == organisation))
}

/// The job: open orders past their time expire (they can be started again).
pub async fn expire_orders(pool: &PgPool, now: OffsetDateTime) -> Result<u64, BillingError> {
    let ids = {
        let mut conn = pool.acquire().await?;
        db::billing::expired_orders(&mut conn, now, 500).await?
    };
    let mut expired = 0;
    for id in ids {
        if settle(pool, id, Settlement::Expired, None, now).await? == OrderState::Expired {
            expired += 1;
        }
    }
    Ok(expired)
}

/// Asks the provider how an order's payment stands and applies the answer (the return page,
/// racing the webhook: whichever comes first settles, the other finds it done), when the payer
/// may pay it there (`Order::payable`: open, or a failed renewal paid by hand). Returns the
/// order's state afterwards; an unreachable provider leaves it as it was.
pub async fn refresh(
    pool: &PgPool,
    payments: &Payments,
    organisation: Uuid,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<Option<Order>, BillingError> {
    let Some(found) = order(pool, organisation, id).await? else {
        return Ok(None);
    };
    if !found.payable() || found.provider != payments.name() {
        return Ok(Some(found));
    }
    match payments.status(&found).await {
        Ok(Some(status)) => {
            apply_answer(pool, payments, &found, status, now).await?;
        }
        Ok(None) => {}
        Err(error) => tracing::warn!(order = %id, %error, "payment status unknown for now"),
    }
    order(pool, organisation, id).await
}

/// Applies the provider's answer about an order's payment; returns whether the order moved.
/// Paid: settled as its webhook would (credits, invoice, paid up), and the card kept. A renewal
/// is a debt of the subscription, pending or failed, never ended here: only « paid » settles it,
/// and a session of its that expired unpaid is forgotten (paying by hand again makes a new one;
/// its retries belong to the renewals). Any other order takes the answer as it is.
async fn apply_answer(
    pool: &PgPool,
    payments: &Payments,
    found: &Order,
    status: PaymentStatus,
    now: OffsetDateTime,
) -> Result<bool, BillingError> {
    if found.is_renewal() && status != PaymentStatus::Paid {
        // A session that ended unpaid (expired, or its delayed payment failed) is forgotten: the
        // retries may charge the card again, and paying by hand makes a new session.
        if let (PaymentStatus::Expired | PaymentStatus::Failed(_), Some(session)) =
            (&status, found.provider_ref.as_deref())
        {
            let mut conn = pool.acquire().await?;
            db::billing::forget_provider_ref(&mut conn, found.id, session).await?;
        }
        return Ok(false);
    }
    let settled = apply_status(pool, found.id, status, now).await?;
    if settled == Some(OrderState::Paid) {
        remember_card(pool, payments, found.id).await;
    }
    Ok(settled.is_some_and(|state| state != found.state))
}

/// What the provider said, applied to the order.
async fn apply_status(
    pool: &PgPool,
    id: Uuid,
    status: PaymentStatus,
    now: OffsetDateTime,
) -> Result<Option<OrderState>, BillingError> {
    let settlement = match status {
        PaymentStatus::Paid => Settlement::Paid,
        PaymentStatus::Failed(reason) => Settlement::Failed(reason),
        PaymentStatus::Expired => Settlement::Expired,
        PaymentStatus::Open => return Ok(None),
    };
    Ok(Some(settle(pool, id, settlement, None, now).await?))
}

/// A failed renewal paid by hand is asked about for this many days after the renewal: past its
/// period and its retries, its webhook or the return page settle it.
const HAND_PAYMENT_DAYS: i64 = 45;

/// Payments are asked about once they have waited this long for their webhook (and again each
/// time they have waited this long since).
pub const RECONCILE_AFTER: Duration = Duration::minutes(2);

/// The reconciliation job: asks the provider about the payments that may have been made
/// without their webhook (a webhook lost, or the portal stopped between the payment and its
/// confirmation): the pending orders, and the failed renewals their owners were sent to pay by
/// hand (for `HAND_PAYMENT_DAYS`). Applies the answers; ends at the provider the sessions of
/// orders whose time is up (never a renewal's); asks again for the refunds the provider has not
/// confirmed. Returns how many orders and refunds moved.
pub async fn reconcile(
    pool: &PgPool,
    payments: &Payments,
    public_url: &str,
    now: OffsetDateTime,
) -> Result<u64, BillingError> {
    let mut moved = 0;
    if matches!(payments, Payments::Stripe(_)) {
        let ids = {
            let mut conn = pool.acquire().await?;
            db::billing::payments_to_reconcile(
                &mut conn,
                payments.name(),
                now - RECONCILE_AFTER,
                now - Duration::days(HAND_PAYMENT_DAYS),
                200,
            )
            .await?
        };
        for id in ids {
            match reconcile_order(pool, payments, public_url, id, now).await {
                Ok(true) => moved += 1,
                Ok(false) => {}
                // One provider error does not stop the batch; the order is looked at next time.
                Err(BillingError::Provider(error)) => {
                    tracing::warn!(order = %id, %error, "reconciliation: no answer from the provider");
                }
                Err(other) => return Err(other),
            }
            let mut conn = pool.acquire().await?;
            db::billing::touch_order(&mut conn, id, now).await?;
        }
    }
    let refunds = {
        let mut conn = pool.acquire().await?;
        db::billing::requested_refunds(&mut conn, 100).await?
    };
    for id in refunds {
        if ask_refund(pool, payments, id, now).await? {
            moved += 1;
        }
    }
    Ok(moved)
}

async fn reconcile_order(
    pool: &PgPool,
    payments: &Payments,
    public_url: &str,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<bool, BillingError> {
    let mut found = {
        let mut conn = pool.acquire().await?;
        match db::billing::order(&mut conn, id).await? {
            // A created order has no payment at the provider yet: the query never lists one.
            Some(o) if o.payable() => o,
            _ => return Ok(false),
        }
    };
    if found.provider_ref.is_none() && found.is_renewal() {
        // A renewal is charged off session (its attempts are asked again by the renewals): it
        // has a Checkout Session only once its owner pays it by hand, and that session's
        // webhook names the order. Making one here would expire the order with it a day later.
        return Ok(false);
    }
    if found.provider_ref.is_none() {
        // Stopped between « pending » and the session's reference: the same call again, under
        // the same key, gives the session Stripe made the first time (or makes it now).
        let (_, payer) = {
            let mut conn = pool.acquire().await?;
            db::billing::buyer(&mut conn, found.organisation_id).await?
        };
        let checkout = payments
            .checkout(&found, &payer, &return_urls(public_url, id))
            .await?;
        if let Some(reference) = checkout.reference {
            let mut conn = pool.acquire().await?;
            db::billing::set_provider_ref(&mut conn, id, &reference).await?;
            found.provider_ref = Some(reference);
        }
    }
    let status = if found.expires_at <= now && !found.is_renewal() {
        // Its time is up: the session is ended at the provider first; if the payer paid
        // meanwhile, the answer says so.
        payments.expire(&found).await?
    } else {
        payments.status(&found).await?
    };
    match status {
        Some(status) => apply_answer(pool, payments, &found, status, now).await,
        None => Ok(false),
    }
}

/// What a refund request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundOutcome {
    /// The credit note's number (AV-…).
    pub credit_note: Option<String>,
    /// `requested` (the provider has not confirmed yet), `succeeded` or `failed`.
    pub state: String,
    /// Whether this call made the refund (false: it had been made before).
    pub created: bool,
}

/// Refunds a pack whose credits are all unused, within 14 days of its payment: in one
/// transaction the credits are taken back (a `refund` movement), the order marked refunded,
/// the credit note issued (its own gap-free series) and the refund recorded with the key of
/// the provider's call; then the provider is asked (and the reconciliation job asks again until
/// it answers). Asking twice for one order refunds once.
pub async fn refund_pack(
    pool: &PgPool,
    payments: &Payments,
    order_id: Uuid,
    actor: &str,
    reason: &str,
    now: OffsetDateTime,
) -> Result<RefundOutcome, BillingError> {
    let created = in_transaction!(pool, |tx| refund_in(tx, order_id, actor, reason, now))?;
    if created {
        ask_refund(pool, payments, order_id, now).await?;
    }
    let mut conn = pool.acquire().await?;
    let refund = db::billing::refund_of_order(&mut conn, order_id)
        .await?
        .ok_or(BillingError::UnknownOrder)?;
    Ok(RefundOutcome {
        credit_note: refund.credit_note,
        state: refund.state,
        created,
    })
}

/// The refund's transaction; false when the order had been refunded before.
async fn refund_in(
    conn: &mut PgConnection,
    order_id: Uuid,
    actor: &str,
    reason: &str,
    now: OffsetDateTime,
) -> Result<bool, BillingError> {
    let Some(order) = db::billing::lock_order(conn, order_id).await? else {
        return Err(BillingError::UnknownOrder);
    };
    if order.state == OrderState::Refunded {
        return Ok(false);
    }
    if order.kind != "pack" {
        return Err(BillingError::NotRefundable(NotRefundable::NotAPack));
    }
    let Some(paid_at) = order.paid_at.filter(|_| order.state == OrderState::Paid) else {
        return Err(BillingError::NotRefundable(NotRefundable::NotPaid));
    };
    if now - paid_at > REFUND_WINDOW {
        return Err(BillingError::NotRefundable(NotRefundable::TooLate));
    }
    // The account first, then the bucket (every writer of credits locks in that order).
    db::credits::lock_account(conn, order.organisation_id).await?;
    let reference = format!("order:{}", order.id);
    let bucket = db::credits::bucket_by_key(conn, order.organisation_id, &reference).await?;
    let unused = bucket
        .as_ref()
        .is_some_and(|b| b.remaining == b.amount && b.expires_at > now);
    if !unused && order.credits > 0 {
        return Err(BillingError::NotRefundable(NotRefundable::CreditsUsed));
    }
    if let Some(bucket) = bucket.filter(|b| b.remaining.0 > 0) {
        db::credits::debit_bucket(
            conn,
            order.organisation_id,
            bucket.id,
            crate::domain::ledger::EntryKind::Refund,
            bucket.remaining,
            db::credits::Movement {
                actor,
                reason: "refund",
                reference: &reference,
                now,
            },
        )
        .await?;
    }
    if !db::billing::move_order(conn, order.id, OrderState::Refunded, None, now).await? {
        return Err(BillingError::NotRefundable(NotRefundable::NotPaid));
    }
    let credit_note = issue_document(conn, "AV", &order, now).await?;
    let key = Uuid::new_v4().to_string();
    db::billing::insert_refund(conn, &order, order.credits, &key, actor, reason, now).await?;
    db::audit::record(
        conn,
        db::audit::Entry {
            actor,
            organisation: Some(order.organisation_id),
            action: "billing.refund",
            reason,
            before: Some(
                serde_json::json!({ "order": order.id, "state": "paid", "credits": order.credits }),
            ),
            after: Some(serde_json::json!({
                "order": order.id,
                "state": "refunded",
                "credit_note": credit_note,
                "amount_cents": order.amount_cents.0,
            })),
            now,
        },
    )
    .await?;
    Ok(true)
}

/// Asks the provider for a recorded refund, under its saved key; true when it answered.
async fn ask_refund(
    pool: &PgPool,
    payments: &Payments,
    order_id: Uuid,
    now: OffsetDateTime,
) -> Result<bool, BillingError> {
    let (order, refund) = {
        let mut conn = pool.acquire().await?;
        let order = db::billing::order(&mut conn, order_id).await?;
        let refund = db::billing::refund_of_order(&mut conn, order_id).await?;
        match (order, refund) {
            (Some(o), Some(r)) if r.state == "requested" => (o, r),
            _ => return Ok(false),
        }
    };
    let answer = if order.provider == payments.name() {
        payments
            .refund(&order, refund.amount_cents.0, &refund.idempotency_key)
            .await
    } else {
        Err(PaymentError::Refused(format!(
            "the order was paid through `{}`, not `{}`",
            order.provider,
            payments.name()
        )))
    };
    let mut conn = pool.acquire().await?;
    match answer {
        Ok(done) => {
            db::billing::record_refund_answer(
                &mut conn,
                order_id,
                Some("succeeded"),
                Some(&done.reference),
                None,
                now,
            )
            .await?;
            Ok(true)
        }
        Err(PaymentError::Unavailable(error)) => {
            tracing::warn!(order = %order_id, %error, "refund: no answer from the provider yet");
            db::billing::record_refund_answer(&mut conn, order_id, None, None, None, now).await?;
            Ok(false)
        }
        Err(PaymentError::Refused(error)) => {
            // The credits and the credit note stand; staff must pay this refund by other means.
            tracing::error!(order = %order_id, %error, "refund refused by the provider");
            db::billing::record_refund_answer(
                &mut conn,
                order_id,
                Some("failed"),
                None,
                Some(&error),
                now,
            )
            .await?;
            Ok(true)
        }
    }
}

/// The upgrade's price and extra credits now, prorated to the time left in the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpgradeQuote {
    pub amount: crate::domain::money::Cents,
    pub credits: i64,
}

pub fn upgrade_quote(
    from: &crate::domain::catalog::Plan,
    to: &crate::domain::catalog::Plan,
    period_start: OffsetDateTime,
    period_end: OffsetDateTime,
    now: OffsetDateTime,
) -> UpgradeQuote {
    let total = (period_end - period_start).whole_seconds();
    let left = (period_end - now).whole_seconds();
    UpgradeQuote {
        amount: crate::domain::money::Cents(crate::domain::billing::prorate(
            to.price_cents.0 - from.price_cents.0,
            left,
            total,
        )),
        credits: crate::domain::billing::prorate(
            to.credits_per_period - from.credits_per_period,
            left,
            total,
        ),
    }
}

/// What upgrading to `to` costs and grants if the owner confirms now: the order still open for
/// payment in this period (made in another tab, or left on the provider's page), which a
/// confirmation pays, or else the prorated quote (at least a cent, as the order charges it).
pub async fn upgrade_offer(
    pool: &PgPool,
    organisation: Uuid,
    from: &crate::domain::catalog::Plan,
    to: &crate::domain::catalog::Plan,
    subscription: &db::credits::Subscription,
    now: OffsetDateTime,
) -> Result<UpgradeQuote, BillingError> {
    let mut conn = pool.acquire().await?;
    let (_, offer) = offer_in(&mut conn, organisation, from, to, subscription, now).await?;
    Ok(offer)
}

/// The upgrade order still open in this period, if any, and what a confirmation now pays and
/// grants (`offer`): for the page and for the order, in the caller's connection.
async fn offer_in(
    conn: &mut PgConnection,
    organisation: Uuid,
    from: &crate::domain::catalog::Plan,
    to: &crate::domain::catalog::Plan,
    subscription: &db::credits::Subscription,
    now: OffsetDateTime,
) -> Result<(Option<db::billing::OpenUpgrade>, UpgradeQuote), BillingError> {
    let open =
        db::billing::open_upgrade(conn, organisation, &to.id, subscription.period_start, now)
            .await?;
    let quote = upgrade_quote(
        from,
        to,
        subscription.period_start,
        subscription.period_end,
        now,
    );
    Ok((open, offer(open, quote)))
}

/// What a confirmation pays and grants: the open order's, or the quote (at least a cent, as an
/// order charges it).
fn offer(open: Option<db::billing::OpenUpgrade>, quote: UpgradeQuote) -> UpgradeQuote {
    match open {
        Some(o) => UpgradeQuote {
            amount: o.amount,
            credits: o.credits,
        },
        None => UpgradeQuote {
            amount: quote.amount.max(crate::domain::money::Cents(1)),
            ..quote
        },
    }
}

/// An upgrade order to `to` (a plan costing more), prorated now; the same form key twice gives
/// the same order.
#[allow(clippy::too_many_arguments)]
pub async fn order_upgrade(
    pool: &PgPool,
    catalog: &Catalog,
    organisation: Uuid,
    buyer: Uuid,
    to: &str,
    form_key: &str,
    shown: Option<UpgradeQuote>,
    provider: Provider,
    now: OffsetDateTime,
) -> Result<Uuid, BillingError> {
    let request = UpgradeRequest {
        catalog,
        organisation,
        buyer,
        to,
        form_key,
        shown,
        provider,
    };
    in_transaction!(pool, |tx| order_upgrade_in(tx, &request, now))
}

/// What `order_upgrade` was asked.
struct UpgradeRequest<'a> {
    catalog: &'a Catalog,
    organisation: Uuid,
    buyer: Uuid,
    to: &'a str,
    form_key: &'a str,
    /// The price and credits the page showed, which the order must charge and grant (`None`:
    /// not checked).
    shown: Option<UpgradeQuote>,
    provider: Provider,
}

/// `order_upgrade`'s transaction, under the subscription's lock: one upgrade open at a time,
/// so that two tabs (or a second click after going back) pay the same order, once.
async fn order_upgrade_in(
    conn: &mut PgConnection,
    request: &UpgradeRequest<'_>,
    now: OffsetDateTime,
) -> Result<Uuid, BillingError> {
    let organisation = request.organisation;
    refuse_if_suspended(conn, organisation).await?;
    let Some(sub) = db::credits::lock_subscription(conn, organisation).await? else {
        return Err(BillingError::UnknownOrder);
    };
    let current = db::accounts::organisation(conn, organisation)
        .await?
        .ok_or(BillingError::UnknownOrder)?;
    let (Some(from), Some(target)) = (
        request.catalog.plan(&current.plan_id),
        request.catalog.plan(request.to),
    ) else {
        return Err(BillingError::UnknownPack);
    };
    if target.price_cents <= from.price_cents {
        return Err(BillingError::NotPayable);
    }
    // The period has ended and its renewal has not run yet: nothing left to prorate, and an
    // order made now would look like one of the next period.
    if sub.period_end <= now {
        return Err(BillingError::NotPayable);
    }
    let (open, offer) = offer_in(conn, organisation, from, target, &sub, now).await?;
    if request.shown.is_some_and(|shown| shown != offer) {
        return Err(BillingError::PriceChanged);
    }
    if let Some(open) = open {
        return Ok(open.id);
    }
    let label = format!("{} → {} (prorata)", from.name, target.name);
    Ok(db::billing::create_order(
        conn,
        NewOrder {
            organisation,
            kind: "upgrade",
            pack_id: None,
            plan_id: Some(&target.id),
            label: &label,
            amount: offer.amount,
            credits: offer.credits,
            restricted_to: None,
            provider: request.provider.as_str(),
            form_key: request.form_key,
            created_by: Some(request.buyer),
            now,
            expires_at: now + ORDER_LIFETIME,
            period: None,
        },
    )
    .await?)
}

/// Schedules a change to a cheaper plan at the end of the period, or cancels it (`None`).
pub async fn schedule_downgrade(
    pool: &PgPool,
    organisation: Uuid,
    to: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), BillingError> {
    let mut conn = pool.acquire().await?;
    refuse_if_suspended(&mut conn, organisation).await?;
    db::credits::schedule_plan(&mut conn, organisation, to, now).await?;
    Ok(())
}

/// `Suspended` when staff have suspended the organisation.
async fn refuse_if_suspended(
    conn: &mut PgConnection,
    organisation: Uuid,
) -> Result<(), BillingError> {
    if db::admin::suspended(conn, organisation).await? == Some(true) {
        return Err(BillingError::Suspended);
    }
    Ok(())
}

/// What a downgrade at the end of the period would do to the credits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DowngradePreview {
    /// Carried over into the next period (up to the new plan's rollover cap).
    pub carried: i64,
    /// Left in the period's allotments and rollover, lost at the change.
    pub expiring: i64,
    /// Purchases and adjustments, untouched.
    pub kept_elsewhere: i64,
    /// The allotment of the new plan's first period.
    pub next_allotment: i64,
}

pub async fn downgrade_preview(
    pool: &PgPool,
    organisation: Uuid,
    to: &crate::domain::catalog::Plan,
    now: OffsetDateTime,
) -> Result<Option<DowngradePreview>, BillingError> {
    let mut conn = pool.acquire().await?;
    let Some(sub) = db::credits::subscription(&mut conn, organisation).await? else {
        return Ok(None);
    };
    let buckets = db::credits::buckets(&mut conn, organisation).await?;
    let mut allotment = 0;
    let mut ending_other = 0;
    let mut elsewhere = 0;
    for b in buckets.iter().filter(|b| b.expires_at > now) {
        match (b.source, b.expires_at <= sub.period_end) {
            (BucketSource::Allotment, true) => allotment += b.remaining.0,
            (_, true) => ending_other += b.remaining.0,
            (_, false) => elsewhere += b.remaining.0,
        }
    }
    let (carried, lost) =
        crate::domain::ledger::carry_over(Credits(allotment), Credits(to.rollover_cap));
    Ok(Some(DowngradePreview {
        carried: carried.0,
        expiring: lost.0 + ending_other,
        kept_elsewhere: elsewhere,
        next_allotment: to.credits_per_period,
    }))
}

/// The organisation's subscription and current plan.
pub async fn subscription(
    pool: &PgPool,
    organisation: Uuid,
) -> Result<(db::credits::Subscription, String), BillingError> {
    let mut conn = pool.acquire().await?;
    let sub = db::credits::subscription(&mut conn, organisation)
        .await?
        .ok_or(BillingError::UnknownOrder)?;
    let plan = db::accounts::organisation(&mut conn, organisation)
        .await?
        .ok_or(BillingError::UnknownOrder)?
        .plan_id;
    Ok((sub, plan))
}

// ---------------------------------------------------------------- renewal charges

/// What renewals need besides the database: the provider of new charges, and the portal's
/// address for the links in e-mails.
#[derive(Debug, Clone)]
pub struct Renewals {
    pub payments: Payments,
    pub public_url: String,
}

/// An attempt to charge, claimed by this runner (its row holds the outgoing call's key).
#[derive(Debug, Clone)]
struct Claim {
    order: Uuid,
    number: i32,
    key: String,
    /// The payment an earlier call of this attempt made (still processing then).
    payment: Option<String>,
}

/// How long a session may take to be made once a hand payment is marked (the provider's call,
/// with its retries): past this, a mark without a session is one whose payer never got the page.
const SESSION_BEING_MADE: Duration = Duration::minutes(15);

/// An attempt left unanswered this long is asked again (its runner stopped).
const STALE_ATTEMPT: Duration = Duration::minutes(10);

/// What an off-session charge gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Charged {
    /// Paid, or failed for good.
    Answered(ChargeOutcome),
    /// Still clearing (a bank debit): the attempt stays open, and its payment is asked about
    /// again (`payment`) until its webhook or the provider says how it ended.
    Processing { payment: Option<String> },
}

/// How long a charge still processing waits before it is asked about again.
const PROCESSING_ASKED_EVERY: Duration = Duration::hours(1);

/// The provider-side charge of an order, off-session (the payer is not there): the one place
/// that knows each provider. `key` is the call's idempotency key, recorded before the call, so
/// that asking again gives the same answer and takes the money once. `payment`: the payment an
/// earlier call of this attempt made (still processing then), asked about instead of charging
/// (the provider forgets a call's key after a day).
pub async fn charge_off_session(
    pool: &PgPool,
    payments: &Payments,
    order: &Order,
    key: &str,
    payment: Option<&str>,
) -> Result<Charged, BillingError> {
    match Provider::parse(&order.provider) {
        Some(Provider::Test) => {
            // The test provider answers what the organisation's setting says (approve when
            // unset); it keeps no state, so the same key gives the same answer.
            let _ = key;
            let mut conn = pool.acquire().await?;
            let setting = db::billing::test_setting(&mut conn, order.organisation_id).await?;
            Ok(Charged::Answered(
                setting
                    .as_deref()
                    .and_then(ChargeOutcome::from_setting)
                    .unwrap_or(ChargeOutcome::Paid),
            ))
        }
        Some(Provider::Stripe) if payments.provider() == Provider::Stripe => {
            let answer = match payment {
                Some(payment) => payments.charge_status(payment).await.map(|status| {
                    status.map(|status| crate::services::payments::Charge {
                        status,
                        payment: Some(payment.to_owned()),
                    })
                }),
                None => {
                    let card = {
                        let mut conn = pool.acquire().await?;
                        db::billing::saved_card(&mut conn, order.organisation_id).await?
                    };
                    let Some(card) = card else {
                        // No card kept (a subscription started before Stripe, or a payment that
                        // kept none): a failure the owner settles through the e-mail's link.
                        tracing::warn!(order = %order.id, "renewal: no saved card to charge");
                        return Ok(Charged::Answered(ChargeOutcome::CardDeclined));
                    };
                    payments.charge_saved(order, &card, key).await
                }
            };
            match answer {
                Ok(Some(charge)) => Ok(match charge.status {
                    PaymentStatus::Paid => Charged::Answered(ChargeOutcome::Paid),
                    // Processing (a bank debit): not a failure; its webhook pays the order
                    // when it clears, or asking again tells how it ended.
                    PaymentStatus::Open => Charged::Processing {
                        payment: charge.payment,
                    },
                    PaymentStatus::Failed(reason) => Charged::Answered(match reason.as_str() {
                        "insufficient_funds" => ChargeOutcome::InsufficientFunds,
                        "expired_card" => ChargeOutcome::ExpiredCard,
                        _ => ChargeOutcome::CardDeclined,
                    }),
                    PaymentStatus::Expired => Charged::Answered(ChargeOutcome::CardDeclined),
                }),
                Ok(None) => Ok(Charged::Answered(ChargeOutcome::NoAnswer)),
                // No answer: the attempt stays open and is asked again, under the same key.
                Err(error @ PaymentError::Unavailable(_)) => Err(error.into()),
                Err(PaymentError::Refused(error)) => {
                    tracing::error!(order = %order.id, %error, "renewal charge refused by the provider");
                    Ok(Charged::Answered(ChargeOutcome::CardDeclined))
                }
            }
        }
        _ => Err(Fault::Internal(anyhow::anyhow!(
            "no off-session charge for provider {:?} with {:?} configured",
            order.provider,
            payments.name()
        ))
        .into()),
    }
}

/// After a subscription's payment through the provider (sign-up, upgrade, a renewal paid by
/// hand): the card it kept becomes the one renewals are charged to. Best effort: without it,
/// the next renewal fails and the owner pays through the e-mail's link.
pub async fn remember_card(pool: &PgPool, payments: &Payments, order: Uuid) {
    let found = match pool.acquire().await {
        Ok(mut conn) => db::billing::order(&mut conn, order).await.ok().flatten(),
        Err(_) => None,
    };
    let Some(found) = found.filter(|o| {
        o.kind != "pack" && o.state == OrderState::Paid && o.provider == payments.name()
    }) else {
        return;
    };
    match payments.saved_card(&found).await {
        Ok(Some(card)) => {
            let saved = match pool.acquire().await {
                Ok(mut conn) => {
                    db::billing::save_card(&mut conn, found.organisation_id, &card).await
                }
                Err(e) => Err(e),
            };
            if let Err(error) = saved {
                tracing::error!(order = %order, %error, "the card for renewals was not saved");
            }
        }
        Ok(None) => {}
        Err(error) => tracing::warn!(order = %order, %error, "the card for renewals is unknown"),
    }
}

/// Sets the test provider's answer to the organisation's off-session charges (development and
/// tests).
pub async fn set_test_outcome(
    pool: &PgPool,
    organisation: Uuid,
    outcome: ChargeOutcome,
    now: OffsetDateTime,
) -> Result<(), BillingError> {
    let mut conn = pool.acquire().await?;
    db::billing::set_test_setting(&mut conn, organisation, outcome.setting(), now).await?;
    Ok(())
}

/// Runs what the renewals owe at `now`: attempts left unanswered are asked again, every period
/// that has ended is renewed and charged (catching up missed ones), and the retries that are
/// due are charged. Safe when several runners do it at once. Returns the periods renewed.
pub async fn renew_due(
    pool: &PgPool,
    renewals: &Renewals,
    now: OffsetDateTime,
) -> Result<u64, BillingError> {
    resume_stale_attempts(pool, renewals, now).await?;
    let mut renewed = 0;
    // Each due subscription once per run, in the organisations' order: one that stays due (its
    // charge still processing) does not come back in the same run.
    let mut after = Uuid::nil();
    loop {
        let due = {
            let mut conn = pool.acquire().await?;
            db::credits::due_subscriptions(&mut conn, now, after, 100).await?
        };
        let Some(last) = due.last().copied() else {
            break;
        };
        for organisation in due {
            renewed += renew(pool, renewals, organisation, now).await?;
        }
        after = last;
    }
    retry_due(pool, renewals, now).await?;
    Ok(renewed)
}

/// What one step of a subscription's renewal did.
enum Step {
    /// Its period has not ended, or another runner is charging it.
    Done,
    /// A period renewed; the claim, when its charge is ours to make.
    Rolled(Option<Claim>),
}

/// Renews one subscription for every period that has ended by `now`, each charged before the
/// next is renewed.
pub async fn renew(
    pool: &PgPool,
    renewals: &Renewals,
    organisation: Uuid,
    now: OffsetDateTime,
) -> Result<u64, BillingError> {
    let mut renewed = 0;
    loop {
        let provider = renewals.payments.provider();
        let step = in_transaction!(pool, |tx| roll_and_claim(tx, provider, organisation, now))?;
        match step {
            Step::Done => return Ok(renewed),
            Step::Rolled(claim) => {
                renewed += 1;
                if let Some(claim) = claim {
                    charge_and_apply(pool, renewals, &claim, now).await?;
                }
            }
        }
    }
}

/// Under the subscription's lock: renews its period if it has ended, makes the new period's
/// renewal order (once per period), and claims its first charge unless the subscription is
/// past due or suspended (its retries, or its owner, pay it).
async fn roll_and_claim(
    conn: &mut PgConnection,
    provider: Provider,
    organisation: Uuid,
    now: OffsetDateTime,
) -> Result<Step, BillingError> {
    let Some(sub) = db::credits::lock_subscription(conn, organisation).await? else {
        return Ok(Step::Done);
    };
    if sub.period_end > now {
        return Ok(Step::Done);
    }
    // The current period's charge still in flight: its runner renews what follows.
    if let Some(current) =
        db::billing::latest_order_of_kind(conn, organisation, "renewal", Some(sub.period_number))
            .await?
        && db::billing::attempts(conn, current).await?.1
    {
        return Ok(Step::Done);
    }
    let Some(rolled) = credits::roll_period(conn, &sub, now).await? else {
        return Ok(Step::Done);
    };
    // Suspended by staff: the period rolls (its credits expire as usual) but is neither charged
    // nor credited; the next renewal after the reactivation is charged as usual.
    if db::admin::suspended(conn, organisation).await? == Some(true) {
        return Ok(Step::Rolled(None));
    }
    let terms = db::billing::plan_terms(conn, &rolled.plan_id)
        .await?
        .ok_or_else(|| Fault::Internal(anyhow::anyhow!("plan {} gone", rolled.plan_id)))?;
    if terms.price_cents.0 <= 0 {
        // A free plan: nothing to charge.
        credits::grant_allotment(
            conn,
            organisation,
            rolled.number,
            Credits(terms.credits_per_period),
            rolled.end,
            now,
        )
        .await?;
        return Ok(Step::Rolled(None));
    }
    let label = format!("{} (renouvellement)", terms.name);
    let order = db::billing::create_order(
        conn,
        NewOrder {
            organisation,
            kind: "renewal",
            pack_id: None,
            plan_id: Some(&terms.id),
            label: &label,
            amount: terms.price_cents,
            credits: terms.credits_per_period,
            restricted_to: None,
            provider: provider.as_str(),
            form_key: &format!("renewal:{}", rolled.number),
            created_by: None,
            now,
            // Payable until its period ends.
            expires_at: rolled.end,
            period: Some((rolled.number, rolled.start)),
        },
    )
    .await?;
    db::billing::move_order(conn, order, OrderState::Pending, None, now).await?;
    if matches!(
        sub.status,
        SubscriptionStatus::PastDue | SubscriptionStatus::Suspended
    ) {
        return Ok(Step::Rolled(None));
    }
    Ok(Step::Rolled(claim(conn, order, now).await?))
}

/// Claims the order's next charge attempt (its key saved before the call).
async fn claim(
    conn: &mut PgConnection,
    order: Uuid,
    now: OffsetDateTime,
) -> Result<Option<Claim>, BillingError> {
    let Some(found) = db::billing::order(conn, order).await? else {
        return Ok(None);
    };
    let (count, open) = db::billing::attempts(conn, order).await?;
    if open || !found.payable() {
        return Ok(None);
    }
    // The owner may be paying a renewal on the provider's page (this one, or the last period's,
    // whose late payment pays this one), or has paid there, its webhook still to come: no charge
    // until that session is settled, or forgotten once it ended unpaid (its webhook, the return
    // page or the reconciliation).
    let period = found.period_number.unwrap_or(i32::MAX);
    let since = now - SESSION_BEING_MADE;
    if db::billing::hand_session_of_organisation(conn, found.organisation_id, period, since).await?
    {
        return Ok(None);
    }
    let number = count + 1;
    let key = format!("{}:{number}", found.idempotency_key);
    if !db::billing::claim_attempt(conn, order, number, &key, now).await? {
        return Ok(None);
    }
    Ok(Some(Claim {
        order,
        number,
        key,
        payment: None,
    }))
}

async fn charge_and_apply(
    pool: &PgPool,
    renewals: &Renewals,
    claim: &Claim,
    now: OffsetDateTime,
) -> Result<(), BillingError> {
    let order = {
        let mut conn = pool.acquire().await?;
        db::billing::order(&mut conn, claim.order)
            .await?
            .ok_or(BillingError::UnknownOrder)?
    };
    let charged = charge_off_session(
        pool,
        &renewals.payments,
        &order,
        &claim.key,
        claim.payment.as_deref(),
    )
    .await?;
    match charged {
        Charged::Answered(outcome) => {
            in_transaction!(pool, |tx| apply_charge(tx, renewals, claim, outcome, now))
        }
        // Neither paid nor failed yet: the attempt stays open (no retry, no hand payment, no
        // failure e-mail), and is asked about again later.
        Charged::Processing { payment } => {
            let mut conn = pool.acquire().await?;
            db::billing::ask_again(
                &mut conn,
                claim.order,
                claim.number,
                payment.as_deref(),
                now + PROCESSING_ASKED_EVERY,
            )
            .await?;
            Ok(())
        }
    }
}

/// The provider's answer to a charge, once: paid settles the order (allotment, invoice, paid
/// up); a failure makes the subscription past due with its next retry, or suspends it after
/// the last one, and tells the owner by e-mail (the first failure, and the suspension).
async fn apply_charge(
    conn: &mut PgConnection,
    renewals: &Renewals,
    claim: &Claim,
    outcome: ChargeOutcome,
    now: OffsetDateTime,
) -> Result<(), BillingError> {
    let Some(order) = db::billing::order(conn, claim.order).await? else {
        return Err(BillingError::UnknownOrder);
    };
    let Some(sub) = db::credits::lock_subscription(conn, order.organisation_id).await? else {
        return Err(BillingError::UnknownOrder);
    };
    if !db::billing::answer_attempt(conn, claim.order, claim.number, outcome.as_str(), now).await? {
        return Ok(()); // answered already
    }
    if outcome == ChargeOutcome::Paid {
        settle_in(conn, claim.order, &Settlement::Paid, None, now).await?;
        return Ok(());
    }
    let state = settle_in(
        conn,
        claim.order,
        &Settlement::Failed(outcome.as_str().to_owned()),
        None,
        now,
    )
    .await?;
    // Paid meanwhile (the owner's link), an old period's order, or suspended already: the
    // schedule has nothing to add.
    if state == Some(OrderState::Paid)
        || order.period_number != Some(sub.period_number)
        || sub.status == SubscriptionStatus::Suspended
    {
        return Ok(());
    }
    let failures = sub.failed_charges + 1;
    let since = sub.past_due_since.unwrap_or(now);
    let (buyer_name, buyer_email) = db::billing::buyer(conn, order.organisation_id).await?;
    let pay_link = format!("{}/abonnement#reglement", renewals.public_url);
    let email = match after_failure(since, u32::try_from(failures).unwrap_or(u32::MAX)) {
        AfterFailure::RetryAt(at) => {
            db::billing::record_failed_charge(
                conn,
                order.organisation_id,
                SubscriptionStatus::PastDue.as_str(),
                since,
                failures,
                Some(at),
            )
            .await?;
            (failures == 1).then(|| Email::RenewalFailed {
                organisation: buyer_name,
                plan: order.label.clone(),
                amount: crate::domain::format::euros(order.amount_cents.0),
                reason: outcome.as_str().to_owned(),
                next_try: crate::domain::format::date_fr(crate::domain::format::paris(at).date()),
                pay_link,
            })
        }
        AfterFailure::Suspend => {
            db::billing::record_failed_charge(
                conn,
                order.organisation_id,
                SubscriptionStatus::Suspended.as_str(),
                since,
                failures,
                None,
            )
            .await?;
            Some(Email::SubscriptionSuspended {
                organisation: buyer_name,
                amount: crate::domain::format::euros(order.amount_cents.0),
                pay_link,
            })
        }
    };
    if let Some(email) = email
        && !buyer_email.is_empty()
    {
        mail::queue(conn, &buyer_email, &email)
            .await
            .map_err(Fault::from)?;
    }
    Ok(())
}

/// Charges the past-due subscriptions whose retry is due.
async fn retry_due(
    pool: &PgPool,
    renewals: &Renewals,
    now: OffsetDateTime,
) -> Result<u64, BillingError> {
    let due = {
        let mut conn = pool.acquire().await?;
        db::billing::retries_due(&mut conn, now, 500).await?
    };
    let mut charged = 0;
    for organisation in due {
        let claimed = in_transaction!(pool, |tx| claim_retry(tx, organisation, now))?;
        if let Some(claim) = claimed {
            charge_and_apply(pool, renewals, &claim, now).await?;
            charged += 1;
        }
    }
    Ok(charged)
}

async fn claim_retry(
    conn: &mut PgConnection,
    organisation: Uuid,
    now: OffsetDateTime,
) -> Result<Option<Claim>, BillingError> {
    let Some(sub) = db::credits::lock_subscription(conn, organisation).await? else {
        return Ok(None);
    };
    if sub.status != SubscriptionStatus::PastDue || sub.next_retry_at.is_none_or(|at| at > now) {
        return Ok(None);
    }
    // Suspended by staff: no charge; the retry waits for the reactivation.
    if db::admin::suspended(conn, organisation).await? == Some(true) {
        return Ok(None);
    }
    let order =
        db::billing::latest_order_of_kind(conn, organisation, "renewal", Some(sub.period_number))
            .await?;
    let payable = match order {
        Some(order) => db::billing::order(conn, order)
            .await?
            .is_some_and(|found| found.payable()),
        None => false,
    };
    let (Some(order), true) = (order, payable) else {
        // Nothing left to charge: the schedule ends.
        db::billing::clear_retry(conn, organisation).await?;
        return Ok(None);
    };
    let claimed = claim(conn, order, now).await?;
    if claimed.is_some() {
        db::billing::clear_retry(conn, organisation).await?;
    } else {
        // A charge still unanswered, or the owner paying by hand: asked again in a while (not at
        // every run, ahead of the other subscriptions' retries).
        db::billing::postpone_retry(conn, organisation, now + RETRY_BLOCKED).await?;
    }
    Ok(claimed)
}

/// How long a retry waits when it cannot charge yet (an unanswered charge, a hand payment).
const RETRY_BLOCKED: Duration = Duration::hours(1);

/// Asks the provider again about attempts whose runner stopped before the answer, and about
/// charges still processing.
async fn resume_stale_attempts(
    pool: &PgPool,
    renewals: &Renewals,
    now: OffsetDateTime,
) -> Result<(), BillingError> {
    let stale = {
        let mut conn = pool.acquire().await?;
        db::billing::stale_attempts(&mut conn, now - STALE_ATTEMPT, now, 100).await?
    };
    for attempt in stale {
        let claim = Claim {
            order: attempt.order_id,
            number: attempt.number,
            key: attempt.idempotency_key,
            payment: attempt.payment_intent,
        };
        // The provider unreachable for one attempt: that one waits for the next run; the
        // others, and the renewals after them, go on.
        match charge_and_apply(pool, renewals, &claim, now).await {
            Err(BillingError::Provider(PaymentError::Unavailable(error))) => {
                tracing::warn!(order = %claim.order, %error, "renewal charge: no answer from the provider yet");
            }
            other => other?,
        }
    }
    Ok(())
}

/// Whether the card is being charged for the subscription's current renewal (the unpaid banner
/// then says so, and offers no hand payment).
pub async fn renewal_charging(
    pool: &PgPool,
    sub: &db::credits::Subscription,
) -> Result<bool, BillingError> {
    let mut conn = pool.acquire().await?;
    Ok(db::billing::renewal_charging(&mut conn, sub.organisation_id, sub.period_number).await?)
}

/// Starts paying the current period's renewal by hand (past due or suspended): where to send
/// the payer. `NotPayable` when nothing is owed.
pub async fn pay_renewal(
    pool: &PgPool,
    payments: &Payments,
    public_url: &str,
    organisation: Uuid,
    now: OffsetDateTime,
) -> Result<String, BillingError> {
    let order = {
        let mut conn = pool.acquire().await?;
        let sub = db::credits::subscription(&mut conn, organisation)
            .await?
            .ok_or(BillingError::UnknownOrder)?;
        if !matches!(
            sub.status,
            SubscriptionStatus::PastDue | SubscriptionStatus::Suspended
        ) {
            return Err(BillingError::NotPayable);
        }
        db::billing::latest_order_of_kind(
            &mut conn,
            organisation,
            "renewal",
            Some(sub.period_number),
        )
        .await?
        .ok_or(BillingError::NotPayable)?
    };
    begin_payment(pool, payments, public_url, organisation, order, now).await
}

// ---------------------------------------------------------------- paid sign-up

/// The first period's order of a new organisation, in the sign-up's transaction.
pub async fn order_signup_in(
    conn: &mut PgConnection,
    organisation: Uuid,
    owner: Uuid,
    plan: &str,
    provider: Provider,
    now: OffsetDateTime,
) -> Result<Uuid, BillingError> {
    let terms = db::billing::plan_terms(conn, plan)
        .await?
        .ok_or(BillingError::UnknownPack)?;
    let label = format!("{} (première période)", terms.name);
    Ok(db::billing::create_order(
        conn,
        NewOrder {
            organisation,
            kind: "signup",
            pack_id: None,
            plan_id: Some(&terms.id),
            label: &label,
            amount: terms.price_cents,
            credits: terms.credits_per_period,
            restricted_to: None,
            provider: provider.as_str(),
            form_key: &format!("signup:{}", Uuid::new_v4()),
            created_by: Some(owner),
            now,
            expires_at: now + ORDER_LIFETIME,
            period: None,
        },
    )
    .await?)
}

/// Where a sign-up's payment stands.
#[derive(Debug, Clone)]
pub enum SignupPayment {
    /// Paid: the subscription runs.
    Paid,
    /// To pay: the plan's terms, and the latest order (it may have expired or failed).
    Due {
        terms: db::billing::PlanTerms,
        order: Option<Box<Order>>,
    },
}

pub async fn signup_payment(
    pool: &PgPool,
    organisation: Uuid,
) -> Result<SignupPayment, BillingError> {
    let mut conn = pool.acquire().await?;
    if db::credits::subscription(&mut conn, organisation)
        .await?
        .is_some()
    {
        return Ok(SignupPayment::Paid);
    }
    let plan = db::accounts::organisation(&mut conn, organisation)
        .await?
        .ok_or(BillingError::UnknownOrder)?
        .plan_id;
    let terms = db::billing::plan_terms(&mut conn, &plan)
        .await?
        .ok_or(BillingError::UnknownPack)?;
    let order =
        match db::billing::latest_order_of_kind(&mut conn, organisation, "signup", None).await? {
            Some(id) => db::billing::order(&mut conn, id).await?.map(Box::new),
            None => None,
        };
    Ok(SignupPayment::Due { terms, order })
}

/// Starts (or resumes) paying the sign-up: the open order, or a new one when the last expired
/// or failed. Where to send the payer (the dashboard once paid).
pub async fn pay_signup(
    pool: &PgPool,
    payments: &Payments,
    public_url: &str,
    organisation: Uuid,
    owner: Uuid,
    now: OffsetDateTime,
) -> Result<String, BillingError> {
    let provider = payments.provider();
    let order = match signup_payment(pool, organisation).await? {
        SignupPayment::Paid => return Ok("/tableau-de-bord".to_owned()),
        SignupPayment::Due {
            order: Some(order), ..
        } if order.state.is_open() && order.expires_at > now => order.id,
        SignupPayment::Due { terms, .. } => {
            let mut tx = pool.begin().await?;
            let id =
                order_signup_in(&mut tx, organisation, owner, &terms.id, provider, now).await?;
            tx.commit().await?;
            id
        }
    };
    begin_payment(pool, payments, public_url, organisation, order, now).await
}
