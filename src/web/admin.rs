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

pub async fn page(
    state: web::Data<AppState>,
    layout: Layout,
    _staff: Staff,
) -> Result<HttpResponse, PageError> {
    let overview = accounts::staff_overview(&state.pool).await?;
    let page = AdminPage { layout, overview };
    Ok(super::html(200, page.render()?))
}
