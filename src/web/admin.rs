//! `/admin`: the staff back office (staff only): organisations, messages, help-centre feedback.

use actix_web::{HttpResponse, web};
use askama::Template;

use super::error::PageError;
use super::extract::Staff;
use super::layout::Layout;
use super::{AppState, filters};
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
