//! `/admin`, organisations part: opening an organisation for a church and inviting its owner,
//! suspending and reactivating one, temporary limit raises (the same service as
//! `nanoclip limits raise`), and the contact messages with their status.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use time::Date;
use uuid::Uuid;

use super::admin::{Forms, ReasonForm, audit_reason, organisation_page};
use super::error::PageError;
use super::extract::Staff;
use super::layout::Layout;
use super::{AppState, csrf, filters};
use crate::domain::catalog::Plan;
use crate::services::admin::{self as service, AdminError};
use crate::services::limits::{self, LimitError};

fn fault(error: AdminError) -> PageError {
    match error {
        AdminError::UnknownOrganisation => PageError::NotFound,
        AdminError::Fault(f) => f.into(),
        other => PageError::Internal(other.into()),
    }
}

/// A page number from the query (`?page=N`, from 1); the first for anything else.
pub(crate) fn page_number(raw: Option<&str>) -> i64 {
    raw.and_then(|p| p.trim().parse::<i64>().ok())
        .filter(|p| (1..=100_000).contains(p))
        .unwrap_or(1)
}

fn parse_day(raw: &str) -> Option<Date> {
    Date::parse(
        raw.trim(),
        &time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
}

// ---------------------------------------------------------------- opening an organisation

/// The opening form as typed (kept when refused).
#[derive(Default, serde::Deserialize)]
pub struct OpeningForm {
    #[serde(default)]
    nom: String,
    #[serde(default)]
    plan: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    motif: String,
}

#[derive(Template)]
#[template(path = "admin/nouvelle.html")]
struct OpeningPage {
    layout: Layout,
    csrf: String,
    plans: Vec<Plan>,
    form: OpeningForm,
    /// The fields refused: `nom`, `plan`, `email`, `pris` (an account uses it), `motif`.
    problems: Vec<&'static str>,
}

impl OpeningPage {
    fn has(&self, field: &str) -> bool {
        self.problems.contains(&field)
    }
}

async fn opening_page(
    state: &AppState,
    request: &HttpRequest,
    layout: Layout,
    form: OpeningForm,
    problems: Vec<&'static str>,
) -> Result<HttpResponse, PageError> {
    let catalog = state.catalog.get(&state.pool).await?;
    let status = if problems.is_empty() { 200 } else { 400 };
    let page = OpeningPage {
        layout,
        csrf: csrf::token(request)?,
        plans: catalog.plans.clone(),
        form,
        problems,
    };
    Ok(super::html(status, page.render()?))
}

/// `GET /admin/organisations/nouvelle`
pub async fn opening_form(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    _staff: Staff,
) -> Result<HttpResponse, PageError> {
    let form = OpeningForm {
        plan: "eglise".to_owned(),
        ..OpeningForm::default()
    };
    opening_page(&state, &request, layout, form, Vec::new()).await
}

/// `POST /admin/organisations/nouvelle`: the organisation, its subscription, and the owner's
/// invitation through the outbox, audited.
pub async fn open(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    staff: Staff,
    form: web::Form<OpeningForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    let catalog = state.catalog.get(&state.pool).await?;
    let name = form.nom.trim().to_owned();
    let email = form.email.trim().to_owned();
    let mut problems = Vec::new();
    if !(2..=160).contains(&name.chars().count()) {
        problems.push("nom");
    }
    if catalog.plan(form.plan.trim()).is_none() {
        problems.push("plan");
    }
    if email.chars().count() > 254 || !super::contact::valid_email(&email) {
        problems.push("email");
    }
    let motif = audit_reason(&form.motif);
    if motif.is_none() {
        problems.push("motif");
    }
    if let (true, Some(motif)) = (problems.is_empty(), motif) {
        let actor = staff.actor();
        let opening = service::Opening {
            name: &name,
            plan: form.plan.trim(),
            owner_email: &email,
            reason: &motif,
            staff: staff.0.id,
            actor: &actor,
        };
        match service::open_church(
            &state.pool,
            &state.config.public_url,
            opening,
            state.clock.now(),
        )
        .await
        {
            Ok(id) => {
                return Ok(super::see_other(&format!(
                    "/admin/organisations/{id}?avis=ouverte"
                )));
            }
            Err(AdminError::EmailTaken) => problems.push("pris"),
            Err(other) => return Err(fault(other)),
        }
    }
    opening_page(&state, &request, layout, form, problems).await
}

// ---------------------------------------------------------------- suspension

async fn set_suspended(
    state: &AppState,
    request: &HttpRequest,
    layout: Layout,
    staff: &Staff,
    id: Uuid,
    suspend: bool,
    form: ReasonForm,
) -> Result<HttpResponse, PageError> {
    let Some(motif) = audit_reason(&form.motif) else {
        let forms = Forms {
            suspension_problem: Some(form.motif),
            ..Forms::default()
        };
        let body = organisation_page(state, request, layout, id, 1, forms).await?;
        return Ok(super::html(400, body));
    };
    service::set_suspended(
        &state.pool,
        id,
        suspend,
        &staff.actor(),
        &motif,
        state.clock.now(),
    )
    .await
    .map_err(fault)?;
    let notice = if suspend { "suspendue" } else { "reactivee" };
    Ok(super::see_other(&format!(
        "/admin/organisations/{id}?avis={notice}"
    )))
}

/// `POST /admin/organisations/{id}/suspension`
pub async fn suspend(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    staff: Staff,
    id: web::Path<Uuid>,
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, PageError> {
    set_suspended(
        &state,
        &request,
        layout,
        &staff,
        *id,
        true,
        form.into_inner(),
    )
    .await
}

/// `POST /admin/organisations/{id}/reactivation`
pub async fn reactivate(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    staff: Staff,
    id: web::Path<Uuid>,
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, PageError> {
    set_suspended(
        &state,
        &request,
        layout,
        &staff,
        *id,
        false,
        form.into_inner(),
    )
    .await
}

// ---------------------------------------------------------------- limit raises

/// The raise form as typed (kept when refused).
#[derive(Default, serde::Deserialize)]
pub struct RaiseForm {
    #[serde(default)]
    quotidien: String,
    #[serde(default)]
    mensuel: String,
    #[serde(default)]
    simultane: String,
    #[serde(default)]
    debut: String,
    #[serde(default)]
    fin: String,
    #[serde(default)]
    motif: String,
}

#[derive(serde::Deserialize)]
pub struct RaiseQuery {
    /// The contact message asking for it: its event fills the form.
    #[serde(default)]
    message: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/limites.html")]
struct RaisePage {
    layout: Layout,
    csrf: String,
    organisation: crate::db::admin::OrganisationRow,
    plan: Option<Plan>,
    current: Option<crate::db::generations::Raise>,
    /// The contact message the form was filled from.
    message: Option<crate::db::admin::ContactMessage>,
    form: RaiseForm,
    /// `quotidien`, `mensuel`, `simultane`, `debut`, `fin`, `motif`, `inverse` (ends before it
    /// starts), `passee` (ends before today).
    problems: Vec<&'static str>,
}

impl RaisePage {
    fn has(&self, field: &str) -> bool {
        self.problems.contains(&field)
    }
}

/// The raise form: as typed (`form`), or, the first time, filled from the contact message's
/// event when there is one (its dates), with twice the plan's caps to start from.
async fn raise_page(
    state: &AppState,
    request: &HttpRequest,
    layout: Layout,
    id: Uuid,
    message: Option<crate::db::admin::ContactMessage>,
    form: Option<RaiseForm>,
    problems: Vec<&'static str>,
) -> Result<HttpResponse, PageError> {
    let file = service::organisation(&state.pool, id, 1, state.clock.now())
        .await?
        .ok_or(PageError::NotFound)?;
    let catalog = state.catalog.get(&state.pool).await?;
    let plan = catalog.plan(&file.organisation.plan_id).cloned();
    let form = form.unwrap_or_else(|| {
        let twice = |cap: fn(&Plan) -> i64| {
            plan.as_ref()
                .map(|p| (cap(p) * 2).to_string())
                .unwrap_or_default()
        };
        let day = |d: Option<Date>| d.map(|d| d.to_string()).unwrap_or_default();
        RaiseForm {
            quotidien: twice(|p| p.daily_generations),
            mensuel: twice(|p| p.monthly_credits),
            simultane: twice(|p| p.concurrent_renders),
            debut: day(message.as_ref().and_then(|m| m.event_start)),
            fin: day(message.as_ref().and_then(|m| m.event_end)),
            motif: String::new(),
        }
    });
    let status = if problems.is_empty() { 200 } else { 400 };
    let page = RaisePage {
        layout,
        csrf: csrf::token(request)?,
        plan,
        organisation: file.organisation,
        current: file.raise,
        message,
        form,
        problems,
    };
    Ok(super::html(status, page.render()?))
}

/// `GET /admin/organisations/{id}/limites[?message=N]`: the raise form, filled from the contact
/// message's event when there is one.
pub async fn raise_form(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    _staff: Staff,
    id: web::Path<Uuid>,
    query: web::Query<RaiseQuery>,
) -> Result<HttpResponse, PageError> {
    let message = match query.message.as_deref().map(str::parse::<i64>) {
        Some(Ok(n)) => service::contact_message(&state.pool, n)
            .await
            .map_err(fault)?
            .filter(|m| m.subject == "evenement"),
        _ => None,
    };
    raise_page(&state, &request, layout, *id, message, None, Vec::new()).await
}

/// `POST /admin/organisations/{id}/limites`: the same service as `nanoclip limits raise`.
pub async fn raise(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    staff: Staff,
    id: web::Path<Uuid>,
    form: web::Form<RaiseForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    let mut problems = Vec::new();
    let mut cap = |raw: &str, field: &'static str, max: i64| {
        let digits = raw.trim().replace([' ', '\u{a0}', '\u{202f}'], "");
        match digits.parse::<i64>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                problems.push(field);
                0
            }
        }
    };
    let daily = cap(&form.quotidien, "quotidien", limits::MAX_DAILY);
    let monthly = cap(&form.mensuel, "mensuel", limits::MAX_MONTHLY);
    let concurrent = cap(&form.simultane, "simultane", limits::MAX_CONCURRENT);
    let first_day = match form.debut.trim() {
        "" => None,
        raw => {
            let day = parse_day(raw);
            if day.is_none() {
                problems.push("debut");
            }
            day
        }
    };
    let last_day = parse_day(&form.fin);
    if last_day.is_none() {
        problems.push("fin");
    }
    let motif = audit_reason(&form.motif);
    if motif.is_none() {
        problems.push("motif");
    }
    if let (true, Some(last_day), Some(motif)) = (problems.is_empty(), last_day, motif) {
        let actor = staff.actor();
        let raise = limits::Raise {
            organisation: *id,
            daily,
            monthly,
            concurrent,
            first_day,
            last_day,
            reason: &motif,
            actor: &actor,
        };
        match limits::raise(&state.pool, raise, state.clock.now()).await {
            Ok(_) => {
                return Ok(super::see_other(&format!(
                    "/admin/organisations/{}?avis=hausse",
                    *id
                )));
            }
            Err(LimitError::DatesReversed) => problems.push("inverse"),
            Err(LimitError::Over) => problems.push("passee"),
            Err(LimitError::CapOutOfBounds) => problems.push("quotidien"),
            Err(LimitError::UnknownOrganisation) => return Err(PageError::NotFound),
            Err(LimitError::Fault(f)) => return Err(f.into()),
        }
    }
    raise_page(&state, &request, layout, *id, None, Some(form), problems).await
}

// ---------------------------------------------------------------- contact messages

#[derive(serde::Deserialize)]
pub struct MessagesQuery {
    /// `tous` for every message; the new ones otherwise.
    #[serde(default)]
    statut: Option<String>,
    #[serde(default)]
    page: Option<String>,
    /// After marking one answered.
    #[serde(default)]
    avis: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/messages.html")]
struct MessagesPage {
    layout: Layout,
    csrf: String,
    all: bool,
    page: i64,
    more: bool,
    new_count: i64,
    messages: Vec<crate::db::admin::ContactMessage>,
    answered: bool,
    /// A message whose « answered » was refused for want of a reason (its id, the reason typed).
    problem: Option<(i64, String)>,
}

async fn messages_page(
    state: &AppState,
    request: &HttpRequest,
    layout: Layout,
    all: bool,
    page: i64,
    answered: bool,
    problem: Option<(i64, String)>,
) -> Result<HttpResponse, PageError> {
    let (mut messages, new_count) = service::contact_messages(&state.pool, !all, page)
        .await
        .map_err(fault)?;
    let more = messages.len() as i64 > service::MESSAGES_PAGE;
    messages.truncate(service::MESSAGES_PAGE as usize);
    let status = if problem.is_some() { 400 } else { 200 };
    let body = MessagesPage {
        layout,
        csrf: csrf::token(request)?,
        all,
        page,
        more,
        new_count,
        messages,
        answered,
        problem,
    }
    .render()?;
    Ok(super::html(status, body))
}

/// `GET /admin/messages[?statut=tous][&page=N]`: the new messages (or all), newest first.
pub async fn messages(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    _staff: Staff,
    query: web::Query<MessagesQuery>,
) -> Result<HttpResponse, PageError> {
    let all = query.statut.as_deref() == Some("tous");
    let page = page_number(query.page.as_deref());
    let answered = query.avis.as_deref() == Some("repondu");
    messages_page(&state, &request, layout, all, page, answered, None).await
}

/// `POST /admin/messages/{id}/reponse`: marks the message answered, audited (how it was
/// answered is the reason).
pub async fn mark_answered(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    staff: Staff,
    id: web::Path<i64>,
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    let Some(motif) = audit_reason(&form.motif) else {
        return messages_page(
            &state,
            &request,
            layout,
            false,
            1,
            false,
            Some((*id, form.motif)),
        )
        .await;
    };
    match service::mark_answered(&state.pool, *id, &staff.actor(), &motif, state.clock.now())
        .await
        .map_err(fault)?
    {
        None => Err(PageError::NotFound),
        Some(_) => Ok(super::see_other("/admin/messages?avis=repondu")),
    }
}
