//! HTTP: one module per URL area, the error pages, the page frame.

pub mod admin;
pub mod aide;
pub mod api;
pub mod assets;
pub mod compte;
pub mod contact;
pub mod csrf;
pub mod error;
pub mod extract;
pub mod filters;
pub mod layout;
pub mod messages;
pub mod meta;
pub mod simulateur;
pub mod tableau_de_bord;

use std::sync::Arc;

use sqlx::PgPool;

use crate::config::Config;
use crate::domain::prompt::PromptRules;
use crate::services::catalog::CatalogCache;

/// Shared by every request: read-only after start-up.
pub struct AppState {
    pub config: Arc<Config>,
    pub pool: PgPool,
    pub assets: assets::Assets,
    pub catalog: CatalogCache,
    pub prompt_rules: PromptRules,
    pub help: aide::HelpCentre,
    pub hasher: crate::services::passwords::Hasher,
}

/// An HTML page that must not be cached (forms with a CSRF token, personal pages).
pub fn html(status: u16, body: String) -> actix_web::HttpResponse {
    let status =
        actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::OK);
    actix_web::HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(body)
}

/// Post/Redirect/Get.
pub fn see_other(location: &str) -> actix_web::HttpResponse {
    actix_web::HttpResponse::SeeOther()
        .insert_header(("Location", location.to_owned()))
        .finish()
}

/// The client's address, for rate limits. Behind a reverse proxy this is the proxy's: put the
/// limits on the proxy too, or extend this with a trusted `X-Forwarded-For`.
pub fn client_address(request: &actix_web::HttpRequest) -> String {
    request
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default()
}
