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
use crate::db;
use crate::db::billing::{NewOrder, Order};
use crate::domain::billing::{OrderState, TestOutcome, document_number, split_ttc};
use crate::domain::ledger::BucketSource;
use crate::domain::money::Credits;

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

/// Which provider takes the payments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// The built-in « Paiement de test » page (development).
    Test,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Test => "test",
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
        },
    )
    .await?)
}

/// Starts the payment of an open order: where to send the payer.
pub async fn begin_payment(
    pool: &PgPool,
    organisation: Uuid,
    order: Uuid,
    provider: Provider,
    now: OffsetDateTime,
) -> Result<String, BillingError> {
    let mut conn = pool.acquire().await?;
    let found = db::billing::order(&mut conn, order)
        .await?
        .filter(|o| o.organisation_id == organisation);
    let Some(found) = found else {
        return Err(BillingError::UnknownOrder);
    };
    match found.state {
        OrderState::Created => {
            db::billing::move_order(&mut conn, order, OrderState::Pending, None, now).await?;
        }
        OrderState::Pending => {}
        // Paid already (a double submit after the payment): the result page.
        _ => return Ok(format!("/achats/retour/{order}")),
    }
    match provider {
        Provider::Test => Ok(format!("/paiement-test/{order}")),
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
    let state = credits::retrying(|| async move {
        let mut tx = pool.begin().await?;
        let state = settle_in(&mut tx, order, settlement, event, now)
            .await
            .map_err(|e| match e {
                BillingError::Credit(c) => c,
                other => CreditError::Fault(Fault::Internal(other.into())),
            })?;
        tx.commit().await?;
        Ok(state)
    })
    .await?;
    state.ok_or(BillingError::UnknownOrder)
}

async fn settle_in(
    conn: &mut PgConnection,
    order: Uuid,
    settlement: &Settlement,
    event: Option<Event<'_>>,
    now: OffsetDateTime,
) -> Result<Option<OrderState>, BillingError> {
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
    }
    Ok(Some(next))
}

/// The effects of « paid »: the credits (once per order) and the invoice (its number from the
/// locked counter of the year).
async fn pay(
    conn: &mut PgConnection,
    order: &Order,
    now: OffsetDateTime,
) -> Result<(), BillingError> {
    if order.kind == "upgrade" {
        // The new plan applies at once; its extra credits end with the period, like its allotment.
        let Some(plan) = order.plan_id.as_deref() else {
            return Err(Fault::Internal(anyhow::anyhow!("an upgrade without its plan")).into());
        };
        db::credits::switch_plan(conn, order.organisation_id, plan).await?;
        if let Some(sub) = db::credits::subscription(conn, order.organisation_id).await?
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
    } else if order.credits > 0 {
        let expires = db::billing::twelve_months_after(conn, now).await?;
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
    let year = db::billing::paris_year(conn, now).await?;
    let sequence = db::billing::next_number(conn, "FA", year).await?;
    let (buyer_name, buyer_email) = db::billing::buyer(conn, order.organisation_id).await?;
    let (ht, tva) = split_ttc(order.amount_cents);
    db::billing::insert_invoice(
        conn,
        &document_number("FA", year, sequence),
        "FA",
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
    provider: Provider,
    now: OffsetDateTime,
) -> Result<Uuid, BillingError> {
    let mut conn = pool.acquire().await?;
    let Some(sub) = db::credits::subscription(&mut conn, organisation).await? else {
        return Err(BillingError::UnknownOrder);
    };
    let current = db::accounts::organisation(&mut conn, organisation)
        .await?
        .ok_or(BillingError::UnknownOrder)?;
    let (Some(from), Some(target)) = (catalog.plan(&current.plan_id), catalog.plan(to)) else {
        return Err(BillingError::UnknownPack);
    };
    if target.price_cents <= from.price_cents {
        return Err(BillingError::NotPayable);
    }
    let quote = upgrade_quote(from, target, sub.period_start, sub.period_end, now);
    let amount = quote.amount.max(crate::domain::money::Cents(1));
    let label = format!("{} → {} (prorata)", from.name, target.name);
    Ok(db::billing::create_order(
        &mut conn,
        NewOrder {
            organisation,
            kind: "upgrade",
            pack_id: None,
            plan_id: Some(&target.id),
            label: &label,
            amount,
            credits: quote.credits,
            restricted_to: None,
            provider: provider.as_str(),
            form_key,
            created_by: Some(buyer),
            now,
            expires_at: now + ORDER_LIFETIME,
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
    db::credits::schedule_plan(&mut conn, organisation, to, now).await?;
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
