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
    /// When `/healthz` last reached the database.
    pub last_healthy: std::sync::RwLock<Option<std::time::Instant>>,
    pub health_check_running: std::sync::atomic::AtomicBool,
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

/// Gzip at the best level, for bodies compressed once and served many times.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail; an empty result only means the plain body is served.
    if encoder.write_all(bytes).is_err() {
        return Vec::new();
    }
    encoder.finish().unwrap_or_default()
}

/// Whether the client takes gzip (`Accept-Encoding: gzip`, not refused with q=0).
pub fn accepts_gzip(request: &actix_web::HttpRequest) -> bool {
    request
        .headers()
        .get(actix_web::http::header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|part| {
                let mut it = part.trim().split(';');
                it.next().is_some_and(|e| e.trim() == "gzip")
                    && !it.any(|p| p.trim().replace(' ', "") == "q=0")
            })
        })
}
