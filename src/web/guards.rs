//! The guards of the scopes that machines call: the generation engine's reports carry its token
//! as `Authorization: Bearer`; the payment provider's webhooks are signed (Stripe's scheme:
//! `Stripe-Signature: t=…,v1=…`, HMAC-SHA256 of `"{t}.{raw body}"`, 300 seconds of tolerance).
//! Both scopes have no session and no CSRF, and answer JSON errors (`api_error`).

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use super::AppState;
use super::api_error::{ApiError, ApiErrorCode};
use super::csrf::{equal, sign_bytes};

/// Webhook bodies are small; a larger one is refused before it is read whole.
const MAX_WEBHOOK_BYTES: usize = 64 * 1024;
/// How old (or how far in the future) a signed timestamp may be.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

fn refuse<B>(request: ServiceRequest, code: ApiErrorCode) -> ServiceResponse<EitherBody<B>> {
    request
        .error_response(ApiError::Code(code))
        .map_into_right_body()
}

/// The credentials of an `Authorization: Bearer <credentials>` header. The scheme's name is
/// case-insensitive (RFC 9110, 11.1); spaces around the credentials are not part of them.
pub fn bearer(request: &actix_web::HttpRequest) -> Option<&str> {
    let value = request
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, credentials) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("Bearer")
        .then_some(credentials.trim())
}

/// `Authorization: Bearer <NANOCLIP_ENGINE_TOKEN>` on every request of the engine's scope.
pub async fn engine_bearer(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let expected = request
        .app_data::<web::Data<AppState>>()
        .and_then(|state| state.config.engine_token.clone());
    let sent = bearer(request.request());
    match (expected, sent) {
        (Some(expected), Some(sent)) if equal(expected.as_bytes(), sent.as_bytes()) => {
            Ok(next.call(request).await?.map_into_left_body())
        }
        _ => Ok(refuse(request, ApiErrorCode::Unauthorized)),
    }
}

/// Why a webhook signature is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    Missing,
    Malformed,
    OutOfTolerance,
    Mismatch,
}

/// Checks a `Stripe-Signature` header: some `v1` is the HMAC-SHA256 (hex) of
/// `"{t}.{body}"` under `secret`, and `t` is within the tolerance of `now` (Unix seconds).
pub fn verify_signature(
    secret: &str,
    header: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.push(v),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - timestamp).abs() > SIGNATURE_TOLERANCE_SECS {
        return Err(SignatureError::OutOfTolerance);
    }
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    let expected = sign_bytes(secret.as_bytes(), &signed);
    if signatures
        .iter()
        .any(|s| equal(expected.as_bytes(), s.as_bytes()))
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The signature check of the webhook scope, on the raw body (given back to the handler).
pub async fn webhook_signature(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(state) = request.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(refuse(request, ApiErrorCode::Internal));
    };
    let Some(secret) = state.config.webhook_secret.clone() else {
        tracing::warn!("webhook refused: NANOCLIP_WEBHOOK_SECRET is not set");
        return Ok(refuse(request, ApiErrorCode::InvalidSignature));
    };
    let body = match request.extract::<web::Bytes>().await {
        Ok(body) if body.len() <= MAX_WEBHOOK_BYTES => body,
        Ok(_) => return Ok(refuse(request, ApiErrorCode::PayloadTooLarge)),
        Err(_) => return Ok(refuse(request, ApiErrorCode::BadRequest)),
    };
    let header = request
        .headers()
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let now = state.clock.now().unix_timestamp();
    if let Err(error) = verify_signature(&secret, header.as_deref(), &body, now) {
        tracing::warn!(
            ?error,
            path = request.path(),
            "webhook with a bad signature refused"
        );
        return Ok(refuse(request, ApiErrorCode::InvalidSignature));
    }
    request.set_payload(Payload::from(body));
    Ok(next.call(request).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_0123456789abcdef0123456789abcdef";

    fn header(t: i64, body: &[u8], secret: &str) -> String {
        let mut signed = format!("{t}.").into_bytes();
        signed.extend_from_slice(body);
        format!("t={t},v1={}", sign_bytes(secret.as_bytes(), &signed))
    }

    #[test]
    fn a_webhook_signed_with_the_secret_within_tolerance_passes() {
        let body = br#"{"id":"evt_1"}"#;
        let now = 1_800_000_000;
        assert_eq!(
            verify_signature(SECRET, Some(&header(now - 299, body, SECRET)), body, now),
            Ok(())
        );
        // Any of several v1 signatures (Stripe sends one per active secret during a rotation).
        let two = format!(
            "t={now},v1=00ff,{}",
            &header(now, body, SECRET)[format!("t={now},").len()..]
        );
        assert_eq!(verify_signature(SECRET, Some(&two), body, now), Ok(()));
    }

    #[test]
    fn forged_tampered_replayed_or_missing_signatures_are_refused() {
        let body = br#"{"id":"evt_1"}"#;
        let now = 1_800_000_000;
        let good = header(now, body, SECRET);
        assert_eq!(
            verify_signature(SECRET, None, body, now),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(SECRET, Some("v1=abc"), body, now),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(
                SECRET,
                Some(&header(now, body, "another secret, same length, really")),
                body,
                now
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(SECRET, Some(&good), br#"{"id":"evt_2"}"#, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(SECRET, Some(&good), body, now + 301),
            Err(SignatureError::OutOfTolerance),
            "a replay after 5 minutes"
        );
    }
}
