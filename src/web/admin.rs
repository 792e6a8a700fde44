//! `/admin`: the staff back office (staff only): organisations, messages, help-centre feedback.

use actix_web::{HttpResponse, web};
use askama::Template;

use super::error::PageError;
use super::extract::Staff;
use super::layout::Layout;
use super::{AppState, filters};
use crate::domain::account::SubscriptionStatus;
use crate::services::accounts::{self, StaffOverview};

#[derive(Template)]
#[template(path = "admin/page.html")]
struct AdminPage {
    layout: Layout,
    overview: StaffOverview,
}

#[derive(Template)]
#[template(path = "admin/journal.html")]
struct JournalPage {
    layout: Layout,
    lines: Vec<crate::db::audit::Line>,
    /// The organisation's name when the log is one organisation's.
    organisation: Option<String>,
}

/// `/admin/journal` (every organisation) and `/admin/journal/{organisation}`.
pub async fn journal(
    state: web::Data<AppState>,
    layout: Layout,
    _staff: Staff,
    organisation: Option<web::Path<uuid::Uuid>>,
) -> Result<HttpResponse, PageError> {
    let organisation = organisation.map(|p| p.into_inner());
    let lines = accounts::audit_log(&state.pool, organisation).await?;
    let name = organisation.map(|id| {
        lines
            .iter()
            .find_map(|l| l.organisation.clone())
            .unwrap_or_else(|| id.to_string())
    });
    let page = JournalPage {
        layout,
        lines,
        organisation: name,
    };
    Ok(super::html(200, page.render()?))
}

pub async fn page(
    state: web::Data<AppState>,
    layout: Layout,
    _staff: Staff,
) -> Result<HttpResponse, PageError> {
    let overview = accounts::staff_overview(&state.pool).await?;
    let page = AdminPage { layout, overview };
    Ok(super::html(200, page.render()?))
}

// ---------------------------------------------------------------- organisations

#[derive(serde::Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

#[derive(Template)]
#[template(path = "admin/organisations.html")]
struct OrganisationsPage {
    layout: Layout,
    query: String,
    found: Vec<crate::db::admin::OrganisationRow>,
}

/// `/admin/organisations?q=…`: by name or by an account's address.
pub async fn organisations(
    state: web::Data<AppState>,
    layout: Layout,
    _staff: Staff,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, PageError> {
    // As typed or pasted: a control character (a NUL, which PostgreSQL refuses) is dropped.
    let q: String = crate::content::text::pasted(&query.q)
        .chars()
        .take(200)
        .collect();
    let found = crate::services::admin::search(&state.pool, &q).await?;
    let page = OrganisationsPage {
        layout,
        query: q,
        found,
    };
    Ok(super::html(200, page.render()?))
}

/// The adjustment form as typed (kept when refused).
#[derive(Default, serde::Deserialize)]
pub struct AdjustForm {
    #[serde(default)]
    credits: String,
    #[serde(default)]
    motif: String,
    #[serde(default)]
    expiration: String,
    #[serde(default)]
    cle: String,
}

#[derive(Default, serde::Deserialize)]
pub struct RefundForm {
    #[serde(default)]
    motif: String,
}

#[derive(Template)]
#[template(path = "admin/organisation.html")]
struct OrganisationPage {
    layout: Layout,
    csrf: String,
    file: crate::services::admin::OrganisationFile,
    forms: Forms,
    /// The ledger's page (from 1) and the number of pages.
    ledger_page: i64,
    ledger_pages: i64,
    key: String,
}

/// The forms of the organisation's page as typed, and what went wrong or right.
#[derive(Default)]
pub(crate) struct Forms {
    pub adjust: AdjustForm,
    /// Why the adjustment was refused: `credits`, `motif`, `expiration`, `solde`, `passee`.
    pub adjust_problem: Option<&'static str>,
    /// The refused refund: its order, why (`pack`, `paye`, `delai`, `utilises`, `motif`) and
    /// the reason typed.
    pub refund_problem: Option<(uuid::Uuid, &'static str, String)>,
    /// A suspension or reactivation refused for want of a reason (the reason typed).
    pub suspension_problem: Option<String>,
    /// After a success: `ajuste`, `rembourse`, `suspendue`, `reactivee`, `hausse`, `ouverte`.
    pub notice: Option<String>,
}

/// The query of a back-office page: the notice after an action, and a page number where the
/// page has several.
#[derive(serde::Deserialize)]
pub struct NoticeQuery {
    #[serde(default)]
    pub(crate) avis: Option<String>,
    /// The page, from 1.
    #[serde(default)]
    pub(crate) page: Option<String>,
}

impl NoticeQuery {
    /// The notice `avis` names when it is one of the page's `known` ones; anything else shows none.
    pub(crate) fn notice(&self, known: &[&'static str]) -> Option<&'static str> {
        let avis = self.avis.as_deref()?;
        known.iter().copied().find(|k| *k == avis)
    }
}

/// A form whose only field is the reason the audit log keeps.
#[derive(Default, serde::Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    pub(crate) motif: String,
}

/// A required reason for the audit log: trimmed, 1 to 500 characters (the rule of
/// `domain::price_edit::parse_reason`, which names the problem).
pub(crate) fn audit_reason(raw: &str) -> Option<String> {
    crate::domain::price_edit::parse_reason(raw).ok()
}

impl OrganisationPage {
    fn refundable(&self, order: &crate::db::billing::Order) -> bool {
        order.kind == "pack" && order.state == crate::domain::billing::OrderState::Paid
    }
}

pub(crate) async fn organisation_page(
    state: &AppState,
    request: &actix_web::HttpRequest,
    layout: Layout,
    id: uuid::Uuid,
    ledger_page: i64,
    forms: Forms,
) -> Result<String, PageError> {
    let Some(file) =
        crate::services::admin::organisation(&state.pool, id, ledger_page, state.clock.now())
            .await?
    else {
        return Err(PageError::NotFound);
    };
    let per_page = crate::services::admin::LEDGER_PAGE;
    let ledger_pages = ((file.ledger_total + per_page - 1) / per_page).max(1);
    Ok(OrganisationPage {
        layout,
        csrf: super::csrf::token(request)?,
        file,
        forms,
        ledger_page,
        ledger_pages,
        key: crate::random::token(),
    }
    .render()?)
}

pub async fn organisation(
    state: web::Data<AppState>,
    request: actix_web::HttpRequest,
    layout: Layout,
    _staff: Staff,
    id: web::Path<uuid::Uuid>,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, PageError> {
    let notice = query
        .notice(&[
            "ajuste",
            "rembourse",
            "suspendue",
            "reactivee",
            "hausse",
            "ouverte",
        ])
        .map(str::to_owned);
    let ledger_page = super::admin_organisations::page_number(query.page.as_deref());
    let forms = Forms {
        notice,
        ..Forms::default()
    };
    let body = organisation_page(&state, &request, layout, *id, ledger_page, forms).await?;
    Ok(super::html(200, body))
}

/// `POST /admin/organisations/{id}/credits`: the same service as `nanoclip credits adjust`.
pub async fn adjust(
    state: web::Data<AppState>,
    request: actix_web::HttpRequest,
    layout: Layout,
    staff: Staff,
    id: web::Path<uuid::Uuid>,
    form: web::Form<AdjustForm>,
) -> Result<HttpResponse, PageError> {
    use crate::services::credits::{self, Adjustment, CreditError};
    let form = form.into_inner();
    let credits = form.credits.trim().replace([' ', '\u{a0}', '\u{202f}'], "");
    let reason = form.motif.trim().to_owned();
    let problem = match credits.parse::<i64>() {
        Ok(n) if n != 0 && n.abs() <= 1_000_000 => None,
        _ => Some("credits"),
    }
    .or_else(|| audit_reason(&reason).is_none().then_some("motif"));
    let last_day = match form.expiration.trim() {
        "" => Ok(None),
        raw => time::Date::parse(
            raw,
            &time::macros::format_description!("[year]-[month]-[day]"),
        )
        .map(Some),
    };
    let problem = problem.or(last_day.is_err().then_some("expiration"));
    let key_ok = form.cle.len() == 64 && form.cle.bytes().all(|b| b.is_ascii_hexdigit());
    if problem.is_none() && key_ok {
        let actor = staff.actor();
        let adjustment = Adjustment {
            organisation: *id,
            credits: crate::domain::money::Credits(credits.parse().unwrap_or_default()),
            reason: &reason,
            last_day: last_day.unwrap_or_default(),
            key: &form.cle,
            actor: &actor,
        };
        let refused = match credits::adjust(&state.pool, adjustment, state.clock.now()).await {
            Ok(_) => {
                return Ok(super::see_other(&format!(
                    "/admin/organisations/{}?avis=ajuste",
                    *id
                )));
            }
            Err(CreditError::NotEnough { .. }) => "solde",
            Err(CreditError::ExpiryPassed) => "passee",
            Err(CreditError::UnknownOrganisation) => return Err(PageError::NotFound),
            Err(CreditError::Fault(f)) => return Err(f.into()),
            Err(other) => return Err(PageError::Internal(other.into())),
        };
        let forms = Forms {
            adjust: form,
            adjust_problem: Some(refused),
            ..Forms::default()
        };
        let body = organisation_page(&state, &request, layout, *id, 1, forms).await?;
        return Ok(super::html(400, body));
    }
    let forms = Forms {
        adjust: form,
        adjust_problem: Some(problem.unwrap_or("credits")),
        ..Forms::default()
    };
    let body = organisation_page(&state, &request, layout, *id, 1, forms).await?;
    Ok(super::html(400, body))
}

/// `POST /admin/commandes/{id}/remboursement`: an unused pack within 14 days, with its credit
/// note and the provider's refund.
pub async fn refund(
    state: web::Data<AppState>,
    request: actix_web::HttpRequest,
    layout: Layout,
    staff: Staff,
    order: web::Path<uuid::Uuid>,
    form: web::Form<RefundForm>,
) -> Result<HttpResponse, PageError> {
    use crate::services::billing::{self, BillingError, NotRefundable};
    let reason = form.motif.trim().to_owned();
    let organisation = crate::services::billing::organisation_of_order(&state.pool, *order)
        .await
        .map_err(super::achats::fault)?
        .ok_or(PageError::NotFound)?;
    let problem = if audit_reason(&reason).is_none() {
        "motif"
    } else {
        let actor = staff.actor();
        match billing::refund_pack(
            &state.pool,
            &state.payments,
            *order,
            &actor,
            &reason,
            state.clock.now(),
        )
        .await
        {
            Ok(_) => {
                return Ok(super::see_other(&format!(
                    "/admin/organisations/{organisation}?avis=rembourse"
                )));
            }
            Err(BillingError::NotRefundable(why)) => match why {
                NotRefundable::NotAPack => "pack",
                NotRefundable::NotPaid => "paye",
                NotRefundable::TooLate => "delai",
                NotRefundable::CreditsUsed => "utilises",
            },
            Err(other) => return Err(super::achats::fault(other)),
        }
    };
    let forms = Forms {
        refund_problem: Some((*order, problem, reason)),
        ..Forms::default()
    };
    let body = organisation_page(&state, &request, layout, organisation, 1, forms).await?;
    Ok(super::html(400, body))
}
