//! `/admin/operations`: the outbox (backlog, failures with their last error, a resend), the
//! job runner (each job's last run and last error), and `check-ledger` run on demand with its
//! result. Every action is audited with its reason.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::admin::{NoticeQuery, ReasonForm, audit_reason};
use super::error::PageError;
use super::extract::Staff;
use super::layout::Layout;
use super::{AppState, filters};
use crate::services::operations::{self, Overview, ResendError};

/// One difference of the last check, as read back from the audit log.
struct Difference {
    organisation: String,
    what: String,
    expected: i64,
    found: i64,
}

/// The last `check-ledger` run from the back office.
struct LastCheck {
    at: time::OffsetDateTime,
    actor: String,
    reason: String,
    differences: Vec<Difference>,
}

#[derive(Template)]
#[template(path = "admin/operations.html")]
struct OperationsPage {
    layout: Layout,
    csrf: String,
    overview: Overview,
    last_check: Option<LastCheck>,
    /// A refused resend: the message and the reason as typed (the reason was empty).
    resend_refused: Option<(i64, String)>,
    /// A refused check: the reason as typed.
    check_refused: Option<String>,
    /// After a success: `renvoye`, `verifie`.
    notice: Option<&'static str>,
}

fn last_check(line: &crate::db::audit::Line) -> LastCheck {
    let differences = line
        .after
        .as_ref()
        .and_then(|after| after.get("differences"))
        .and_then(|d| d.as_array())
        .map(|found| {
            found
                .iter()
                .map(|d| Difference {
                    organisation: d["organisation"].as_str().unwrap_or_default().to_owned(),
                    what: d["what"].as_str().unwrap_or_default().to_owned(),
                    expected: d["expected"].as_i64().unwrap_or_default(),
                    found: d["found"].as_i64().unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    LastCheck {
        at: line.created_at,
        actor: line.actor.clone(),
        reason: line.reason.clone(),
        differences,
    }
}

async fn render(
    state: &AppState,
    request: &HttpRequest,
    layout: Layout,
    resend_refused: Option<(i64, String)>,
    check_refused: Option<String>,
    notice: Option<&'static str>,
) -> Result<String, PageError> {
    let overview = operations::overview(&state.pool).await?;
    let last_check = overview.last_check.as_ref().map(last_check);
    Ok(OperationsPage {
        layout,
        csrf: super::csrf::token(request)?,
        overview,
        last_check,
        resend_refused,
        check_refused,
        notice,
    }
    .render()?)
}

/// `GET /admin/operations`
pub async fn page(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    _staff: Staff,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, PageError> {
    let notice = query.notice(&["renvoye", "verifie"]);
    let body = render(&state, &request, layout, None, None, notice).await?;
    Ok(super::html(200, body))
}

/// `POST /admin/operations/courriels/{id}/renvoi`: a failed e-mail is due again now, its
/// attempts counted afresh; the delivery job sends it at its next run (every 2 seconds).
pub async fn resend(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    staff: Staff,
    id: web::Path<i64>,
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, PageError> {
    let Some(reason) = audit_reason(&form.motif) else {
        let body = render(
            &state,
            &request,
            layout,
            Some((*id, form.into_inner().motif)),
            None,
            None,
        )
        .await?;
        return Ok(super::html(400, body));
    };
    let actor = staff.actor();
    match operations::resend(&state.pool, *id, &actor, &reason, state.clock.now()).await {
        Ok(()) => Ok(super::see_other("/admin/operations?avis=renvoye#courriels")),
        Err(ResendError::NotFailed) => Err(PageError::NotFound),
        Err(ResendError::Fault(fault)) => Err(fault.into()),
    }
}

/// `POST /admin/operations/grand-livre`: `check-ledger` now (the command's check), its result
/// recorded in the audit log and shown on the page.
pub async fn check_ledger(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    staff: Staff,
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, PageError> {
    let Some(reason) = audit_reason(&form.motif) else {
        let body = render(
            &state,
            &request,
            layout,
            None,
            Some(form.into_inner().motif),
            None,
        )
        .await?;
        return Ok(super::html(400, body));
    };
    let actor = staff.actor();
    operations::check_ledger(&state.pool, &actor, &reason, state.clock.now()).await?;
    Ok(super::see_other(
        "/admin/operations?avis=verifie#grand-livre",
    ))
}
