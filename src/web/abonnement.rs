//! `/abonnement`: the plan and its period, the next renewal, what each plan includes; an
//! upgrade paid now (prorated); a downgrade previewed (which credits stay, which expire, which
//! features and limits go), scheduled for the end of the period and cancellable until then.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::achats::fault;
use super::error::PageError;
use super::extract::{CurrentUser, Owner};
use super::layout::Layout;
use super::{AppState, csrf, filters};
use crate::domain::account::SubscriptionStatus;
use crate::domain::catalog::Plan;
use crate::domain::money::Cents;
use crate::services::billing::{self, DowngradePreview, UpgradeQuote};

#[derive(Template)]
#[template(path = "abonnement/page.html")]
struct SubscriptionPage {
    layout: Layout,
    csrf: String,
    is_owner: bool,
    plans: Vec<Plan>,
    current: Plan,
    /// The first and last days of the period (Europe/Paris).
    period: (time::Date, time::Date),
    /// The plan the subscription moves to at the end of the period.
    scheduled: Option<Plan>,
    /// A more expensive plan, and what moving to it now costs and gives.
    /// The plan above, what upgrading costs and grants now, and the VAT in its price.
    upgrade: Option<(Plan, UpgradeQuote, Cents)>,
    /// A cheaper plan asked for preview, and what it would do.
    preview: Option<(Plan, DowngradePreview)>,
    form_key: String,
    notice: Option<&'static str>,
    status: SubscriptionStatus,
    /// The price of the next renewal (the scheduled plan's, if any).
    next_price: crate::domain::money::Cents,
    arrears: Option<Arrears>,
}

/// An unpaid renewal, as the banner words it.
#[derive(Debug, Clone)]
pub(crate) struct Arrears {
    pub suspended: bool,
    pub amount: crate::domain::money::Cents,
    /// The day of the first failed charge (Europe/Paris).
    pub since: Option<time::Date>,
    /// The day of the next try (past due).
    pub next_try: Option<time::Date>,
    /// A charge of the card is under way: nothing to pay by hand meanwhile.
    pub charging: bool,
}

impl Arrears {
    /// The unpaid renewal of the subscription, if any (one query more only then).
    pub(crate) async fn of(
        pool: &sqlx::PgPool,
        sub: &crate::db::credits::Subscription,
    ) -> Result<Option<Self>, PageError> {
        let suspended = match sub.status {
            SubscriptionStatus::PastDue | SubscriptionStatus::Unpaid => false,
            SubscriptionStatus::Suspended => true,
            SubscriptionStatus::Active => return Ok(None),
        };
        let charging = billing::renewal_charging(pool, sub).await.map_err(fault)?;
        // Awaiting its renewal's payment (or opened by staff, with nothing to pay): a banner
        // only while a payment is under way, so that the church knows why its credits wait.
        if sub.status == SubscriptionStatus::Unpaid && !charging {
            return Ok(None);
        }
        let day = |at: time::OffsetDateTime| crate::domain::format::paris(at).date();
        Ok(Some(Self {
            suspended,
            amount: sub.next_price,
            since: sub.past_due_since.map(day),
            next_try: sub.next_retry_at.map(day),
            charging,
        }))
    }
}

impl SubscriptionPage {
    fn can_pay(&self) -> bool {
        self.is_owner
    }

    fn lost_features(&self, to: &Plan) -> Vec<String> {
        self.current
            .features
            .iter()
            .filter(|f| !to.features.contains(f) && *f != "Tout le Plan Église")
            .cloned()
            .collect()
    }
}

#[derive(Deserialize)]
pub struct Query {
    apercu: Option<String>,
    info: Option<String>,
}

fn paris_day(at: time::OffsetDateTime) -> time::Date {
    (at + time::Duration::hours(2)).date()
}

pub async fn page(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    user: CurrentUser,
    query: web::Query<Query>,
) -> Result<HttpResponse, PageError> {
    let organisation = user.organisation.ok_or(PageError::Forbidden)?;
    let catalog = state.catalog.get(&state.pool).await?;
    let now = state.clock.now();
    let (subscription, plan_id) = match billing::subscription(&state.pool, organisation).await {
        Ok(found) => found,
        // A sign-up not paid yet: its payment first.
        Err(billing::BillingError::UnknownOrder) => {
            return Ok(super::see_other("/compte/inscription/paiement"));
        }
        Err(e) => return Err(fault(e)),
    };
    let current = catalog.plan(&plan_id).cloned().ok_or(PageError::NotFound)?;
    let scheduled = subscription
        .scheduled_plan_id
        .as_deref()
        .and_then(|id| catalog.plan(id))
        .cloned();
    let upgrade = match catalog
        .plans
        .iter()
        .find(|p| p.price_cents > current.price_cents)
    {
        Some(to) => {
            let offer =
                billing::upgrade_offer(&state.pool, organisation, &current, to, &subscription, now)
                    .await
                    .map_err(fault)?;
            let (_, vat) = crate::domain::billing::split_ttc(offer.amount);
            Some((to.clone(), offer, vat))
        }
        None => None,
    };
    let preview = match query.apercu.as_deref().and_then(|id| catalog.plan(id)) {
        Some(to) if to.price_cents < current.price_cents => {
            billing::downgrade_preview(&state.pool, organisation, to, now)
                .await
                .map_err(fault)?
                .map(|p| (to.clone(), p))
        }
        _ => None,
    };
    let last = subscription.period_end - time::Duration::DAY;
    let page = SubscriptionPage {
        layout,
        csrf: csrf::token(&request)?,
        is_owner: user.is_owner(),
        plans: catalog.plans.clone(),
        period: (paris_day(subscription.period_start), paris_day(last)),
        current,
        scheduled,
        upgrade,
        preview,
        form_key: crate::random::token(),
        notice: match query.info.as_deref() {
            Some("programme") => Some("scheduled"),
            Some("annule") => Some("cancelled"),
            Some("prix") => Some("price_changed"),
            _ => None,
        },
        status: subscription.status,
        next_price: subscription.next_price,
        arrears: Arrears::of(&state.pool, &subscription).await?,
    };
    Ok(super::html(200, page.render()?))
}

#[derive(Deserialize)]
pub struct ChangeForm {
    #[serde(default)]
    plan: String,
    #[serde(default)]
    cle: String,
    /// The upgrade's price the page showed, in cents, and its extra credits: the order must
    /// charge and grant them.
    #[serde(default)]
    prix: String,
    #[serde(default)]
    credits: String,
}

pub async fn change(
    state: web::Data<AppState>,
    layout: Layout,
    owner: Owner,
    form: web::Form<ChangeForm>,
) -> Result<HttpResponse, PageError> {
    let organisation = owner.0.organisation.ok_or(PageError::Forbidden)?;
    let catalog = state.catalog.get(&state.pool).await?;
    let now = state.clock.now();
    let (_, plan_id) = billing::subscription(&state.pool, organisation)
        .await
        .map_err(fault)?;
    let current = catalog.plan(&plan_id).ok_or(PageError::NotFound)?;
    let Some(target) = catalog.plan(&form.plan) else {
        tracing::warn!(plan = %form.plan.chars().take(40).collect::<String>(), "change to an unknown plan refused");
        return Err(PageError::BadRequest);
    };
    if target.id == current.id {
        return Ok(super::see_other("/abonnement"));
    }
    if target.price_cents > current.price_cents {
        if form.cle.len() != 64 || !form.cle.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(PageError::BadRequest);
        }
        let order = billing::order_upgrade(
            &state.pool,
            &catalog,
            organisation,
            owner.0.id,
            &target.id,
            &form.cle,
            // Missing or altered: not the offer of any page, so the page is shown again.
            Some(UpgradeQuote {
                amount: Cents(form.prix.trim().parse().unwrap_or(-1)),
                credits: form.credits.trim().parse().unwrap_or(-1),
            }),
            state.payments.provider(),
            now,
        )
        .await;
        let order = match order {
            Err(billing::BillingError::Suspended) => return super::achats::suspended(layout),
            Err(billing::BillingError::PriceChanged) => {
                return Ok(super::see_other("/abonnement?info=prix#monter"));
            }
            other => other.map_err(fault)?,
        };
        let next = billing::begin_payment(
            &state.pool,
            &state.payments,
            &state.config.public_url,
            organisation,
            order,
            now,
        )
        .await
        .map_err(fault)?;
        return Ok(super::see_other(&next));
    }
    match billing::schedule_downgrade(&state.pool, organisation, Some(&target.id), now).await {
        Err(billing::BillingError::Suspended) => super::achats::suspended(layout),
        other => {
            other.map_err(fault)?;
            Ok(super::see_other("/abonnement?info=programme"))
        }
    }
}

pub async fn cancel(
    state: web::Data<AppState>,
    layout: Layout,
    owner: Owner,
) -> Result<HttpResponse, PageError> {
    let organisation = owner.0.organisation.ok_or(PageError::Forbidden)?;
    match billing::schedule_downgrade(&state.pool, organisation, None, state.clock.now()).await {
        Err(billing::BillingError::Suspended) => super::achats::suspended(layout),
        other => {
            other.map_err(fault)?;
            Ok(super::see_other("/abonnement?info=annule"))
        }
    }
}

/// `POST /abonnement/reglement`: pays the unpaid renewal on the provider's page (the owner, from
/// the banner or the e-mail's link). Nothing owed: back to the page.
pub async fn pay(state: web::Data<AppState>, owner: Owner) -> Result<HttpResponse, PageError> {
    let organisation = owner.0.organisation.ok_or(PageError::Forbidden)?;
    match billing::pay_renewal(
        &state.pool,
        &state.payments,
        &state.config.public_url,
        organisation,
        state.clock.now(),
    )
    .await
    {
        Ok(next) => Ok(super::see_other(&next)),
        Err(billing::BillingError::NotPayable) => Ok(super::see_other("/abonnement")),
        // The card is being charged off session: paying by hand now could pay the renewal twice
        // (the page's banner says so).
        Err(billing::BillingError::ChargeInProgress) => Ok(super::see_other("/abonnement")),
        Err(e) => Err(fault(e)),
    }
}
