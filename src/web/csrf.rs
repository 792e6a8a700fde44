//! Cross-site request forgery protection for every state-changing request.
//!
//! Two independent checks, both required: the browser's own `Sec-Fetch-Site` / `Origin` headers
//! must say the request comes from this site, and the form must carry a token that matches the
//! browser's CSRF cookie. The token is a signed double submit: the cookie holds a random nonce,
//! the form holds HMAC(session key, nonce, signed-in user), so that
//! - a visitor who has not signed in costs no database row (nothing is stored server-side);
//! - a cookie planted by someone else is useless without the server's key;
//! - a token from before signing in (or of another user) is refused once signed in.
//!
//! The middleware wraps every browser page, so a POST route added later is protected without
//! anyone remembering to.

use std::cell::Cell;
use std::rc::Rc;

use actix_session::SessionExt;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, web};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::AppState;
use super::error::PageError;

pub const FIELD: &str = "csrf";
/// Forms are small; anything larger is refused before it is read.
pub const MAX_FORM_BYTES: usize = 64 * 1024;
const NONCE_HEX_LEN: usize = 64;
/// The nonce cookie outlives a browser session: a form left open on a phone still submits.
const COOKIE_DAYS: i64 = 30;

fn cookie_name(production: bool) -> &'static str {
    if production {
        "__Host-csrf"
    } else {
        "nanoclip_csrf"
    }
}

/// This browser's nonce, put in the request by the guard; `fresh` when it has no cookie yet
/// (the guard then sets one if a page used it). A fresh nonce is drawn only when a page uses
/// it: most pages a visitor reads have no form, and cost no random draw.
#[derive(Clone)]
struct Nonce {
    value: Rc<std::cell::OnceCell<String>>,
    fresh: bool,
    used: Rc<Cell<bool>>,
}

impl Nonce {
    fn value(&self) -> &str {
        self.value.get_or_init(crate::random::token)
    }
}

/// HMAC-SHA256 of `parts` (separated by NUL) under the portal's session key, in hex: tokens in
/// forms and hidden fields that the server can check without storing anything.
pub fn sign(key: &[u8], parts: &[&str]) -> String {
    sign_bytes(key, parts.join("\0").as_bytes())
}

/// HMAC-SHA256 of `message` under `key`, in hex.
pub fn sign_bytes(key: &[u8], message: &[u8]) -> String {
    match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            hex::encode(mac.finalize().into_bytes())
        }
        // HMAC takes keys of any length; this branch cannot be taken.
        Err(_) => String::new(),
    }
}

/// Constant-time comparison, so a token cannot be guessed byte by byte.
pub fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn expected(key: &[u8], nonce: &str, user: Option<uuid::Uuid>) -> String {
    let user = user.map(|u| u.to_string()).unwrap_or_default();
    sign(key, &["csrf", nonce, &user])
}

/// The token for forms on this page (bound to this browser and to the signed-in user, if any).
pub fn token(request: &HttpRequest) -> Result<String, PageError> {
    let nonce = request
        .extensions()
        .get::<Nonce>()
        .cloned()
        .ok_or_else(|| PageError::Internal(anyhow::anyhow!("CSRF guard missing on this route")))?;
    let state = request
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| PageError::Internal(anyhow::anyhow!("application state missing")))?;
    nonce.used.set(true);
    let user = super::extract::session_user(&request.get_session());
    Ok(expected(&state.config.session_key, nonce.value(), user))
}

fn same_site(request: &ServiceRequest, public_url: &str) -> bool {
    let headers = request.headers();
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site == "same-origin";
    }
    match headers.get("origin").and_then(|v| v.to_str().ok()) {
        Some(origin) => {
            let own = request.connection_info();
            origin == public_url || origin == format!("{}://{}", own.scheme(), own.host())
        }
        // Neither header (old browsers, scripts): the token alone decides.
        None => true,
    }
}

/// Refusals are responses (not errors) so that the error-page middleware renders them.
pub async fn guard(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(state) = request.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(request
            .error_response(PageError::Internal(anyhow::anyhow!(
                "application state missing"
            )))
            .map_into_right_body());
    };
    let production = state.config.is_production();
    let name = cookie_name(production);
    let from_cookie = request
        .cookie(name)
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == NONCE_HEX_LEN && v.bytes().all(|b| b.is_ascii_hexdigit()));
    let nonce = Nonce {
        fresh: from_cookie.is_none(),
        value: Rc::new(
            from_cookie
                .map(std::cell::OnceCell::from)
                .unwrap_or_default(),
        ),
        used: Rc::new(Cell::new(false)),
    };
    request.extensions_mut().insert(nonce.clone());
    request.extensions_mut().insert(Guarded);
    let unsafe_method = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if unsafe_method {
        if let Some(refusal) = check(&mut request, &state, &nonce).await {
            return Ok(request.error_response(refusal).map_into_right_body());
        }
        request.extensions_mut().insert(CsrfChecked);
    }
    let mut response = next.call(request).await?;
    if nonce.fresh && nonce.used.get() {
        let cookie = Cookie::build(name, nonce.value().to_owned())
            .path("/")
            .http_only(true)
            .secure(production)
            .same_site(SameSite::Lax)
            .max_age(actix_web::cookie::time::Duration::days(COOKIE_DAYS))
            .finish();
        let _ = response.response_mut().add_cookie(&cookie);
    }
    Ok(response.map_into_left_body())
}

/// The checks of a state-changing request; `None` when it may go on (its body is given back).
async fn check(request: &mut ServiceRequest, state: &AppState, nonce: &Nonce) -> Option<PageError> {
    if !same_site(request, &state.config.public_url) {
        tracing::warn!(path = request.path(), "cross-site request refused");
        return Some(PageError::FormExpired);
    }
    let body = match request.extract::<web::Bytes>().await {
        Ok(body) if body.len() <= MAX_FORM_BYTES => body,
        _ => return Some(PageError::BadRequest),
    };
    let pairs = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body).unwrap_or_default();
    let sent = pairs.iter().find(|(k, _)| k == FIELD).map(|(_, v)| v);
    let user = super::extract::session_user(&request.get_session());
    let valid = !nonce.fresh
        && sent.is_some_and(|sent| {
            equal(
                expected(&state.config.session_key, nonce.value(), user).as_bytes(),
                sent.as_bytes(),
            )
        });
    if !valid {
        tracing::warn!(
            path = request.path(),
            "request without a valid CSRF token refused"
        );
        return Some(PageError::FormExpired);
    }
    // PostgreSQL refuses a NUL in text, and no typed or pasted text holds one: such a request is
    // a 400 here, not an error deep in a handler. Other control characters (a vertical tab from
    // a slide, a form feed from a PDF) are kept: refusing them would lose a real message.
    if pairs
        .iter()
        .any(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        tracing::warn!(path = request.path(), "form with a NUL character refused");
        return Some(PageError::BadRequest);
    }
    // Give the handler its body back.
    request.set_payload(Payload::from(body));
    None
}

/// Marks a request behind the guard (so behind the session middleware too).
#[derive(Clone, Copy)]
pub struct Guarded;

/// Marks a request whose token was verified.
#[derive(Clone, Copy)]
pub struct CsrfChecked;
