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
    pub simulator_pages: simulateur::PageCache,
    /// Threads for CPU-heavy answers (searches, simulator pages), off the async workers.
    pub cpu: crate::services::cpu::CpuPool,
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

/// The client's address, for rate limits. When the connection comes from one of
/// `NANOCLIP_TRUSTED_PROXIES` (the load balancer in front of several instances), the client is
/// the right-most `X-Forwarded-For` entry that is not itself a trusted proxy: entries further
/// left were written by the client and prove nothing.
pub fn client_address(request: &actix_web::HttpRequest) -> String {
    let peer = request.peer_addr().map(|a| a.ip());
    let trusted = request
        .app_data::<actix_web::web::Data<AppState>>()
        .map(|state| state.config.trusted_proxies.as_slice())
        .unwrap_or_default();
    forwarded_client(peer, request.headers(), trusted)
        .map(|ip| ip.to_string())
        .unwrap_or_default()
}

fn forwarded_client(
    peer: Option<std::net::IpAddr>,
    headers: &actix_web::http::header::HeaderMap,
    trusted: &[std::net::IpAddr],
) -> Option<std::net::IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    // Every X-Forwarded-For header, in order, as one list.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        match hop.parse::<std::net::IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => continue,
            Ok(ip) => return Some(ip),
            // Garbage where a proxy should have written an address: stop at the last proxy.
            Err(_) => break,
        }
    }
    Some(peer)
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

#[cfg(test)]
mod tests {
    use super::forwarded_client;
    use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(
                HeaderName::from_static("x-forwarded-for"),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    #[test]
    fn the_client_behind_trusted_proxies_is_the_last_untrusted_hop() {
        let proxy = "10.0.0.5".parse().unwrap();
        let trusted = [proxy, "10.0.0.6".parse().unwrap()];
        let ip = |s: &str| Some(s.parse().unwrap());
        // No proxy configured: the peer, whatever the header says.
        assert_eq!(
            forwarded_client(ip("203.0.113.9"), &headers(&["198.51.100.1"]), &[]),
            ip("203.0.113.9")
        );
        // A peer that is not a trusted proxy cannot choose its address.
        assert_eq!(
            forwarded_client(ip("203.0.113.9"), &headers(&["198.51.100.1"]), &trusted),
            ip("203.0.113.9")
        );
        // Through the proxy: the address it saw.
        assert_eq!(
            forwarded_client(Some(proxy), &headers(&["198.51.100.1"]), &trusted),
            ip("198.51.100.1")
        );
        // A forged entry on the left is ignored; two proxies are skipped.
        assert_eq!(
            forwarded_client(
                Some(proxy),
                &headers(&["1.2.3.4, 198.51.100.1", "10.0.0.6"]),
                &trusted
            ),
            ip("198.51.100.1")
        );
        // No header, or garbage: the proxy itself (limits then apply to it as a whole).
        assert_eq!(
            forwarded_client(Some(proxy), &headers(&[]), &trusted),
            Some(proxy)
        );
        assert_eq!(
            forwarded_client(Some(proxy), &headers(&["pas une adresse"]), &trusted),
            Some(proxy)
        );
    }
}
