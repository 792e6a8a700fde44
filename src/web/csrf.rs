//! Cross-site request forgery protection for every state-changing request.
//!
//! Two independent checks, both required: the browser's own `Sec-Fetch-Site` / `Origin` headers
//! must say the request comes from this site, and the form must carry the token stored in the
//! visitor's server-side session. The middleware wraps the whole application, so a POST route
//! added later is protected without anyone remembering to.

use actix_session::{Session, SessionExt};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};

use super::AppState;
use super::error::PageError;

const SESSION_KEY: &str = "csrf";
pub const FIELD: &str = "csrf";
/// Forms are small; anything larger is refused before it is read.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// The visitor's token, created on first use.
pub fn token(session: &Session) -> Result<String, PageError> {
    if let Ok(Some(token)) = session.get::<String>(SESSION_KEY) {
        return Ok(token);
    }
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    session
        .insert(SESSION_KEY, &token)
        .map_err(|e| PageError::Internal(anyhow::anyhow!("storing the CSRF token: {e}")))?;
    Ok(token)
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

/// Constant-time comparison, so the token cannot be guessed byte by byte.
fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Refusals are responses (not errors) so that the error-page middleware renders them.
pub async fn guard(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let unsafe_method = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !unsafe_method {
        return Ok(next.call(request).await?.map_into_left_body());
    }
    let public_url = request
        .app_data::<web::Data<AppState>>()
        .map(|s| s.config.public_url.clone())
        .unwrap_or_default();
    if !same_site(&request, &public_url) {
        tracing::warn!(path = request.path(), "cross-site request refused");
        return Ok(request
            .error_response(PageError::Forbidden)
            .map_into_right_body());
    }
    let expected = request
        .get_session()
        .get::<String>(SESSION_KEY)
        .ok()
        .flatten();
    let body = match request.extract::<web::Bytes>().await {
        Ok(body) if body.len() <= MAX_FORM_BYTES => body,
        _ => {
            return Ok(request
                .error_response(PageError::BadRequest)
                .map_into_right_body());
        }
    };
    let pairs = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body).unwrap_or_default();
    let sent = pairs.iter().find(|(k, _)| k == FIELD).map(|(_, v)| v);
    match (expected, sent) {
        (Some(expected), Some(sent)) if equal(expected.as_bytes(), sent.as_bytes()) => {}
        _ => {
            tracing::warn!(
                path = request.path(),
                "request without a valid CSRF token refused"
            );
            return Ok(request
                .error_response(PageError::Forbidden)
                .map_into_right_body());
        }
    }
    // PostgreSQL refuses a NUL in text, and no typed or pasted text holds one: such a request is
    // a 400 here, not an error deep in a handler. Other control characters (a vertical tab from
    // a slide, a form feed from a PDF) are kept: refusing them would lose a real message.
    if pairs
        .iter()
        .any(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        tracing::warn!(path = request.path(), "form with a NUL character refused");
        return Ok(request
            .error_response(PageError::BadRequest)
            .map_into_right_body());
    }
    // Give the handler its body back.
    request.set_payload(Payload::from(body));
    request.extensions_mut().insert(CsrfChecked);
    Ok(next.call(request).await?.map_into_left_body())
}

/// Marks a request whose token was verified.
#[derive(Clone, Copy)]
pub struct CsrfChecked;
