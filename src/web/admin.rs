//! `/admin`: the staff back office (staff only): organisations, messages, help-centre feedback.

use actix_web::{HttpResponse, web};
use askama::Template;

use super::error::PageError;
use super::extract::Staff;
use super::layout::Layout;
use super::{AppState, filters};
use crate::db;

#[derive(Template)]
#[template(path = "admin/page.html")]
struct AdminPage {
    layout: Layout,
    organisations: Vec<db::accounts::OrganisationSummary>,
    contacts: Vec<db::help::ContactSummary>,
    feedback: Vec<db::help::FeedbackSummary>,
    misses: Vec<(String, i64)>,
    outbox_pending: i64,
}

pub async fn page(
    state: web::Data<AppState>,
    layout: Layout,
    _staff: Staff,
) -> Result<HttpResponse, PageError> {
    let mut conn = state.pool.acquire().await?;
    let page = AdminPage {
        layout,
        organisations: db::accounts::organisations(&mut conn, 50).await?,
        contacts: db::help::recent_contacts(&mut conn, 30).await?,
        feedback: db::help::feedback_summary(&mut conn).await?,
        misses: db::help::top_misses(&mut conn, 30).await?,
        outbox_pending: db::outbox::pending_count(&state.pool).await?,
    };
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(page.render()?))
}
