//! `/tableau-de-bord`: the organisation at a glance for its members.

use actix_web::{HttpResponse, web};
use askama::Template;

use super::error::PageError;
use super::extract::CurrentUser;
use super::layout::Layout;
use super::{AppState, filters};
use crate::db;
use crate::domain::catalog::Plan;
use crate::services::accounts;

#[derive(Template)]
#[template(path = "tableau_de_bord.html")]
struct DashboardPage {
    layout: Layout,
    user: CurrentUser,
    organisation: Option<db::accounts::Organisation>,
    plan: Option<Plan>,
}

pub async fn page(
    state: web::Data<AppState>,
    layout: Layout,
    user: CurrentUser,
) -> Result<HttpResponse, PageError> {
    let Some(organisation_id) = user.organisation else {
        return Ok(HttpResponse::SeeOther()
            .insert_header(("Location", "/admin"))
            .finish());
    };
    let organisation = accounts::organisation(&state.pool, organisation_id).await?;
    let catalog = state.catalog.get(&state.pool).await?;
    let plan = organisation
        .as_ref()
        .and_then(|o| catalog.plan(&o.plan_id))
        .cloned();
    let body = DashboardPage {
        layout,
        user,
        organisation,
        plan,
    }
    .render()?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(body))
}
