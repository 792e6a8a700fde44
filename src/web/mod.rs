//! HTTP: one module per URL area, the error pages, the page frame.

pub mod abonnement;
pub mod achats;
pub mod admin;
pub mod admin_aide;
pub mod admin_operations;
pub mod admin_organisations;
pub mod admin_tarifs;
pub mod aide;
pub mod api;
pub mod api_error;
pub mod api_reseau;
pub mod assets;
pub mod changes;
pub mod compte;
pub mod contact;
pub mod credits;
pub mod csrf;
pub mod error;
pub mod extract;
pub mod filters;
pub mod generations;
pub mod guards;
pub mod layout;
pub mod messages;
pub mod meta;
pub mod openapi;
pub mod prompt_checks;
pub mod routes;
pub mod simulateur;
pub mod tableau_de_bord;
pub mod webhooks;

use std::sync::Arc;

use sqlx::PgPool;

use crate::config::Config;
use crate::services::catalog::CatalogCache;

/// Shared by every request: read-only after start-up (the prompt checks arrive once read).
pub struct AppState {
    pub config: Arc<Config>,
    /// The current time (tests move it).
    pub clock: crate::clock::Clock,
    pub pool: PgPool,
    pub assets: assets::Assets,
    pub catalog: CatalogCache,
    /// The prompt checks, rules and statistical model, once read (after the portal starts
    /// listening: see `prompt_checks`).
    pub prompt_checks: prompt_checks::PromptChecks,
    pub help: aide::HelpCentre,
    pub hasher: crate::services::passwords::Hasher,
    pub simulator_pages: simulateur::PageCache,
    /// Threads for CPU-heavy answers (searches, simulator pages), off the async workers.
    pub cpu: crate::services::cpu::CpuPool,
    /// When `/healthz` last reached the database.
    pub last_healthy: std::sync::RwLock<Option<std::time::Instant>>,
    pub health_check_running: std::sync::atomic::AtomicBool,
    /// Each API key's rate.
    pub api_limiter: api_reseau::ApiLimiter,
    /// Who takes the payments (the test provider, or Stripe Checkout).
    pub payments: crate::services::payments::Payments,
    /// Sessions, users and dashboards kept in memory, exact across instances (`src/cache.rs`).
    pub caches: Arc<crate::cache::Caches>,
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

/// The client's address. When the connection comes from one of `NANOCLIP_TRUSTED_PROXIES` (the
/// load balancer in front of several instances), the client is the right-most `X-Forwarded-For`
/// entry that is not itself a trusted proxy: entries further left were written by the client and
/// prove nothing. IPv4-mapped IPv6 addresses come out as IPv4.
pub fn client_ip(request: &actix_web::HttpRequest) -> Option<std::net::IpAddr> {
    let peer = request.peer_addr().map(|a| a.ip());
    let trusted = request
        .app_data::<actix_web::web::Data<AppState>>()
        .map(|state| state.config.trusted_proxies.as_slice())
        .unwrap_or_default();
    forwarded_client(peer, request.headers(), trusted)
}

/// The key every limit on a client is counted under (login throttling, contact messages, guide
/// votes): see `rate_limit_key`.
pub fn client_key(request: &actix_web::HttpRequest) -> String {
    client_ip(request).map(rate_limit_key).unwrap_or_default()
}

/// An IPv4 client is its address; an IPv6 client is its /64, the smallest network a subscriber
/// gets (one machine can take any of its 2^64 addresses, so a limit per address would be none).
/// An IPv4-mapped IPv6 address is the IPv4 client.
pub fn rate_limit_key(ip: std::net::IpAddr) -> String {
    match ip.to_canonical() {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => {
            let network = u128::from(v6) & !(u128::from(u64::MAX));
            format!("{}/64", std::net::Ipv6Addr::from(network))
        }
    }
}

fn forwarded_client(
    peer: Option<std::net::IpAddr>,
    headers: &actix_web::http::header::HeaderMap,
    trusted: &[std::net::IpAddr],
) -> Option<std::net::IpAddr> {
    // A dual-stack socket shows IPv4 peers as `::ffff:a.b.c.d`: compare and answer in IPv4.
    let peer = peer?.to_canonical();
    let trusted = |ip: &std::net::IpAddr| trusted.iter().any(|t| t.to_canonical() == *ip);
    if !trusted(&peer) {
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
        match hop.parse::<std::net::IpAddr>().map(|ip| ip.to_canonical()) {
            Ok(ip) if trusted(&ip) => continue,
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
    use super::{forwarded_client, rate_limit_key};
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

    #[test]
    fn ipv6_clients_are_keyed_on_their_64_and_ipv4_on_the_full_address() {
        let key = |s: &str| rate_limit_key(s.parse().unwrap());
        // One IPv6 subscriber gets a /64: every address in it is the same client.
        assert_eq!(
            key("2001:db8:1:2::1"),
            key("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_eq!(key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        // IPv4: the full address; IPv4-mapped IPv6 is the same IPv4 client.
        assert_eq!(key("198.51.100.7"), "198.51.100.7");
        assert_ne!(key("198.51.100.7"), key("198.51.100.8"));
        assert_eq!(key("::ffff:198.51.100.7"), "198.51.100.7");
    }
}
