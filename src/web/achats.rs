//! `/achats`: the packs (catalogue, confirmation with HT, TVA and TTC), the payment (the test
//! provider's page in development), the return page with the new balance, the orders and their
//! invoices (`/achats/historique`, `/achats/factures/{number}` and its PDF,
//! `/achats/factures/{number}.pdf`). Only owners buy.

use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::Context as _;
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;

use super::error::PageError;
use super::extract::{CurrentUser, Owner};
use super::layout::Layout;
use super::{AppState, csrf, filters};
use crate::db::billing::{Invoice, Order};
use crate::domain::billing::{OrderState, TestOutcome, split_ttc};
use crate::domain::catalog::Pack;
use crate::domain::money::Cents;
use crate::services::billing::{self, BillingError, Provider};

/// A billing error as the page's status (shared with `/abonnement`).
pub(crate) fn fault(error: BillingError) -> PageError {
    match error {
        BillingError::UnknownPack | BillingError::UnknownOrder => PageError::NotFound,
        BillingError::NotPayable | BillingError::NotRefundable(_) => PageError::BadRequest,
        // Only renewals are charged off session (`/abonnement` answers it with its banner).
        BillingError::ChargeInProgress => PageError::BadRequest,
        // `/abonnement` shows the page again with the new price.
        BillingError::PriceChanged => PageError::BadRequest,
        // Handlers answer it with `suspended`'s page; a bare 403 elsewhere.
        BillingError::Suspended => PageError::Forbidden,
        // The provider could not start the payment: the order stays pending, and the same form
        // sent again resumes it (same order, same session).
        BillingError::Provider(e) => {
            tracing::error!(error = %e, "payment provider");
            PageError::Unavailable(e.into())
        }
        BillingError::Credit(crate::services::credits::CreditError::Fault(f)) => f.into(),
        BillingError::Credit(other) => PageError::Internal(other.into()),
    }
}

#[derive(Template)]
#[template(path = "achats/suspendue.html")]
struct SuspendedPage {
    layout: Layout,
}

/// The 403 page of a purchase or plan change refused because staff suspended the organisation.
pub(crate) fn suspended(layout: Layout) -> Result<HttpResponse, PageError> {
    Ok(super::html(403, SuspendedPage { layout }.render()?))
}

fn organisation_of(user: &CurrentUser) -> Result<Uuid, PageError> {
    user.organisation.ok_or(PageError::Forbidden)
}

/// A sign-up whose plan is not paid yet (no subscription): it pays its plan first, rather than
/// buy packs or make API keys it could not use (every launch is refused until then). The
/// sign-up's payment page, or `None` to go on.
pub(crate) async fn unpaid_sign_up(
    state: &AppState,
    organisation: Uuid,
) -> Result<Option<HttpResponse>, PageError> {
    match billing::subscription(&state.pool, organisation).await {
        Ok(_) => Ok(None),
        Err(BillingError::UnknownOrder) => {
            Ok(Some(super::see_other("/compte/inscription/paiement")))
        }
        Err(e) => Err(fault(e)),
    }
}

/// The provider of new payments (`NANOCLIP_PAYMENTS`).
pub(crate) fn provider(state: &AppState) -> Provider {
    state.payments.provider()
}

#[derive(Template)]
#[template(path = "achats/catalogue.html")]
struct CataloguePage {
    layout: Layout,
    packs: Vec<Pack>,
    is_owner: bool,
}

pub async fn catalogue(
    state: web::Data<AppState>,
    layout: Layout,
    user: CurrentUser,
) -> Result<HttpResponse, PageError> {
    organisation_of(&user)?;
    let catalog = state.catalog.get(&state.pool).await?;
    let page = CataloguePage {
        layout,
        packs: catalog.packs.clone(),
        is_owner: user.is_owner(),
    };
    Ok(super::html(200, page.render()?))
}

#[derive(Template)]
#[template(path = "achats/confirmation.html")]
struct ConfirmationPage {
    layout: Layout,
    csrf: String,
    pack: Pack,
    ht: Cents,
    tva: Cents,
    /// The last day the credits can be used if paid today.
    last_day: time::Date,
    form_key: String,
    problem: Option<&'static str>,
    /// The same pack bought a few minutes ago (the back button after paying): when, and its
    /// invoice, so that a second purchase is a choice, not a slip.
    just_bought: Option<(time::OffsetDateTime, Option<String>)>,
}

/// How recent a purchase of the same pack is worth a word on the confirmation page.
const JUST_BOUGHT: time::Duration = time::Duration::minutes(30);

async fn confirmation(
    state: &AppState,
    request: &HttpRequest,
    layout: Layout,
    organisation: Uuid,
    pack_id: &str,
    problem: Option<&'static str>,
) -> Result<HttpResponse, PageError> {
    let catalog = state.catalog.get(&state.pool).await?;
    let Some(pack) = catalog.packs.iter().find(|p| p.id == pack_id).cloned() else {
        return Err(PageError::NotFound);
    };
    let since = state.clock.now() - JUST_BOUGHT;
    let just_bought = billing::orders(&state.pool, organisation)
        .await
        .map_err(fault)?
        .into_iter()
        .filter(|o| o.pack_id.as_deref() == Some(pack_id) && o.state == OrderState::Paid)
        .find_map(|o| o.paid_at.filter(|at| *at > since).map(|at| (at, o.invoice)));
    let (ht, tva) = split_ttc(pack.price_cents);
    // Today in Paris (at 23:30 UTC on 31 December it is already 1 January there).
    let today = crate::domain::format::paris(state.clock.now()).date();
    let last_day = crate::domain::billing::purchase_last_day(today);
    let page = ConfirmationPage {
        layout,
        csrf: csrf::token(request)?,
        pack,
        ht,
        tva,
        last_day,
        form_key: crate::random::token(),
        problem,
        just_bought,
    };
    Ok(super::html(
        if problem.is_some() { 400 } else { 200 },
        page.render()?,
    ))
}

pub async fn confirm_page(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    owner: Owner,
    pack: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let organisation = organisation_of(&owner.0)?;
    if let Some(first) = unpaid_sign_up(&state, organisation).await? {
        return Ok(first);
    }
    confirmation(&state, &request, layout, organisation, &pack, None).await
}

#[derive(Deserialize)]
pub struct BuyForm {
    #[serde(default)]
    cle: String,
    /// The price the page showed (cents): a different one means the form was altered or the
    /// price changed meanwhile.
    #[serde(default)]
    prix: String,
    #[serde(default)]
    quantite: Option<String>,
}

pub async fn buy(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    owner: Owner,
    pack: web::Path<String>,
    form: web::Form<BuyForm>,
) -> Result<HttpResponse, PageError> {
    let organisation = organisation_of(&owner.0)?;
    if let Some(first) = unpaid_sign_up(&state, organisation).await? {
        return Ok(first);
    }
    let catalog = state.catalog.get(&state.pool).await?;
    let Some(found) = catalog.packs.iter().find(|p| p.id == *pack) else {
        tracing::warn!(pack = %pack.as_str().chars().take(60).collect::<String>(), "purchase of an unknown pack refused");
        return Err(PageError::NotFound);
    };
    let price_ok = form.prix.trim().parse::<i64>().ok() == Some(found.price_cents.0);
    let quantity_ok = form.quantite.as_deref().is_none_or(|q| q.trim() == "1");
    // A form key that is not one the page gives (64 hex digits): altered as well.
    let key_ok = form.cle.len() == 64 && form.cle.bytes().all(|b| b.is_ascii_hexdigit());
    if !price_ok || !quantity_ok || !key_ok {
        tracing::warn!(pack = %found.id, prix = %form.prix.chars().take(20).collect::<String>(), "purchase form altered: refused");
        return confirmation(
            &state,
            &request,
            layout,
            organisation,
            &pack,
            Some("altered"),
        )
        .await;
    }
    let now = state.clock.now();
    let provider = provider(&state);
    let order = billing::order_pack(
        &state.pool,
        &catalog,
        organisation,
        owner.0.id,
        &found.id,
        &form.cle,
        provider,
        now,
    )
    .await;
    let order = match order {
        Err(BillingError::Suspended) => return suspended(layout),
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
    Ok(super::see_other(&next))
}

#[derive(Template)]
#[template(path = "achats/paiement_test.html")]
struct TestPaymentPage {
    layout: Layout,
    csrf: String,
    order: Order,
}

pub async fn test_payment_page(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    owner: Owner,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, PageError> {
    let organisation = organisation_of(&owner.0)?;
    let Some(order) = billing::order(&state.pool, organisation, *id)
        .await
        .map_err(fault)?
    else {
        return Err(PageError::NotFound);
    };
    if !order.payable() {
        return Ok(super::see_other(&format!("/achats/retour/{}", order.id)));
    }
    let page = TestPaymentPage {
        layout,
        csrf: csrf::token(&request)?,
        order,
    };
    Ok(super::html(200, page.render()?))
}

#[derive(Deserialize)]
pub struct TestPaymentForm {
    #[serde(default)]
    issue: String,
}

pub async fn test_payment(
    state: web::Data<AppState>,
    owner: Owner,
    id: web::Path<Uuid>,
    form: web::Form<TestPaymentForm>,
) -> Result<HttpResponse, PageError> {
    let organisation = organisation_of(&owner.0)?;
    let Some(outcome) = TestOutcome::parse(&form.issue) else {
        return Err(PageError::BadRequest);
    };
    billing::test_payment(&state.pool, organisation, *id, outcome, state.clock.now())
        .await
        .map_err(fault)?;
    Ok(super::see_other(&format!("/achats/retour/{}", *id)))
}

#[derive(Template)]
#[template(path = "achats/retour.html")]
struct ReturnPage {
    layout: Layout,
    order: Order,
    available: i64,
}

pub async fn return_page(
    state: web::Data<AppState>,
    layout: Layout,
    owner: Owner,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, PageError> {
    let organisation = organisation_of(&owner.0)?;
    // Back from the provider, perhaps before its webhook: ask it (the first to settle wins).
    let Some(order) = billing::refresh(
        &state.pool,
        &state.payments,
        organisation,
        *id,
        state.clock.now(),
    )
    .await
    .map_err(fault)?
    else {
        return Err(PageError::NotFound);
    };
    // A GET that may have settled the order (granted its credits, or changed the plan: who
    // may use the API).
    state.caches.touch(&[
        crate::cache::Key::Organisation(organisation),
        crate::cache::Key::Access(organisation),
    ]);
    let available =
        crate::services::credits::available(&state.pool, organisation, state.clock.now())
            .await
            .map_err(|e| fault(e.into()))?;
    let page = ReturnPage {
        layout,
        order,
        available: available.0,
    };
    Ok(super::html(200, page.render()?))
}

#[derive(Template)]
#[template(path = "achats/historique.html")]
struct HistoryPage {
    layout: Layout,
    orders: Vec<Order>,
}

pub async fn history(
    state: web::Data<AppState>,
    layout: Layout,
    owner: Owner,
) -> Result<HttpResponse, PageError> {
    let organisation = organisation_of(&owner.0)?;
    let orders = billing::orders(&state.pool, organisation)
        .await
        .map_err(fault)?;
    Ok(super::html(200, HistoryPage { layout, orders }.render()?))
}

#[derive(Template)]
#[template(path = "achats/facture.html")]
struct InvoicePage {
    layout: Layout,
    invoice: Invoice,
    seller: crate::config::Seller,
}

/// The invoice numbered `number` if it is the owner's organisation's; another organisation's is
/// not found, like a number that does not exist.
async fn owned_invoice(
    state: &AppState,
    owner: &Owner,
    number: &str,
) -> Result<Invoice, PageError> {
    let organisation = organisation_of(&owner.0)?;
    billing::invoice(&state.pool, organisation, number)
        .await
        .map_err(fault)?
        .ok_or(PageError::NotFound)
}

pub async fn invoice(
    state: web::Data<AppState>,
    layout: Layout,
    owner: Owner,
    number: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let invoice = owned_invoice(&state, &owner, &number).await?;
    Ok(super::html(
        200,
        InvoicePage {
            layout,
            invoice,
            seller: state.config.seller.clone(),
        }
        .render()?,
    ))
}

/// The invoice as a PDF download, made afresh from its row (the same facts as the page), on the
/// CPU threads: drawing and subsetting the font is the costly part.
pub async fn invoice_pdf(
    state: web::Data<AppState>,
    owner: Owner,
    number: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let invoice = owned_invoice(&state, &owner, &number).await?;
    let document = crate::pdf::Document::of_invoice(&invoice, &state.config.seller);
    let file_name = document.file_name();
    let bytes = state
        .cpu
        .run(move || crate::pdf::render(&document))
        .await
        .context("invoice PDF")?
        .context("invoice PDF")?;
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{file_name}\""),
        ))
        .body(bytes))
}

impl ReturnPage {
    fn paid(&self) -> bool {
        matches!(self.order.state, OrderState::Paid)
    }
}
