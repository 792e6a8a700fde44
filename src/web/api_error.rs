//! The JSON API's errors (PRODUCT.md: `{"error": {"code": "…", "message": "French sentence"}}`).
//!
//! The API scope has its own error type and its own middleware, `json_errors`: every error it
//! answers is JSON, including those that come from actix itself (an unknown path, a wrong
//! method, a body too large), never an HTML page. Internal errors are logged with their chain
//! and the request id; the answer carries the id and nothing else.

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};

use super::messages;

/// The error codes.
// Serialized as `code()` says (a test keeps them together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApiErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    InvalidSignature,
    RateLimited,
    ServiceUnavailable,
    #[serde(rename = "internal_error")]
    Internal,
    /// The same Idempotency-Key is still being answered.
    IdempotencyInProgress,
    /// The same Idempotency-Key with another body.
    IdempotencyConflict,
    /// The engine reports another outcome than the one recorded, or after the expiry.
    Conflict,
}

impl ApiErrorCode {
    pub fn code(self) -> &'static str {
        match self {
            ApiErrorCode::BadRequest => "bad_request",
            ApiErrorCode::Unauthorized => "unauthorized",
            ApiErrorCode::Forbidden => "forbidden",
            ApiErrorCode::NotFound => "not_found",
            ApiErrorCode::MethodNotAllowed => "method_not_allowed",
            ApiErrorCode::PayloadTooLarge => "payload_too_large",
            ApiErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ApiErrorCode::InvalidSignature => "invalid_signature",
            ApiErrorCode::RateLimited => "rate_limited",
            ApiErrorCode::ServiceUnavailable => "service_unavailable",
            ApiErrorCode::Internal => "internal_error",
            ApiErrorCode::IdempotencyInProgress => "idempotency_in_progress",
            ApiErrorCode::IdempotencyConflict => "idempotency_conflict",
            ApiErrorCode::Conflict => "conflict",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ApiErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ApiErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ApiErrorCode::NotFound => StatusCode::NOT_FOUND,
            ApiErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiErrorCode::InvalidSignature => StatusCode::BAD_REQUEST,
            ApiErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ApiErrorCode::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ApiErrorCode::IdempotencyInProgress | ApiErrorCode::Conflict => StatusCode::CONFLICT,
            ApiErrorCode::IdempotencyConflict => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    /// The code for an error status that has no body of its own.
    fn of_status(status: StatusCode) -> Self {
        match status {
            StatusCode::UNAUTHORIZED => ApiErrorCode::Unauthorized,
            StatusCode::FORBIDDEN => ApiErrorCode::Forbidden,
            StatusCode::NOT_FOUND => ApiErrorCode::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => ApiErrorCode::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => ApiErrorCode::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiErrorCode::UnsupportedMediaType,
            StatusCode::TOO_MANY_REQUESTS => ApiErrorCode::RateLimited,
            StatusCode::SERVICE_UNAVAILABLE => ApiErrorCode::ServiceUnavailable,
            StatusCode::CONFLICT => ApiErrorCode::Conflict,
            s if s.is_server_error() => ApiErrorCode::Internal,
            _ => ApiErrorCode::BadRequest,
        }
    }
}

/// What an API handler returns when it fails.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{}", .0.code())]
    Code(ApiErrorCode),
    /// Retry after this many seconds.
    #[error("rate limited")]
    RateLimited(i64),
    #[error("service unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl From<crate::services::fault::Fault> for ApiError {
    fn from(fault: crate::services::fault::Fault) -> Self {
        use crate::services::fault::Fault;
        match fault {
            Fault::Unavailable(e) => ApiError::Unavailable(e),
            Fault::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<super::error::PageError> for ApiError {
    fn from(error: super::error::PageError) -> Self {
        use super::error::PageError;
        match error {
            PageError::NotFound => ApiError::Code(ApiErrorCode::NotFound),
            PageError::BadRequest => ApiError::Code(ApiErrorCode::BadRequest),
            PageError::Forbidden | PageError::FormExpired | PageError::LoginRequired(_) => {
                ApiError::Code(ApiErrorCode::Forbidden)
            }
            PageError::TooManyRequests(seconds) => ApiError::RateLimited(seconds),
            PageError::Unavailable(e) => ApiError::Unavailable(e),
            PageError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl ApiError {
    fn code(&self) -> ApiErrorCode {
        match self {
            ApiError::Code(code) => *code,
            ApiError::RateLimited(_) => ApiErrorCode::RateLimited,
            ApiError::Unavailable(_) => ApiErrorCode::ServiceUnavailable,
            ApiError::Internal(_) => ApiErrorCode::Internal,
        }
    }
}

/// Seconds a client waits when the database is unreachable.
const UNAVAILABLE_RETRY_SECS: i64 = 5;

/// The body of every error of the API but invalid input and refusals.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorJson {
    pub error: ErrorDetailJson,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = ErrorDetail)]
pub struct ErrorDetailJson {
    pub code: ApiErrorCode,
    /// A French sentence for the user.
    pub message: String,
    /// On a 5xx: the request's id in the portal's logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

pub fn body(code: ApiErrorCode, request_id: Option<&str>) -> String {
    let body = ErrorJson {
        error: ErrorDetailJson {
            code,
            message: messages::api_error(code),
            request_id: request_id.filter(|id| !id.is_empty()).map(str::to_owned),
        },
    };
    serde_json::to_string(&body).unwrap_or_default()
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code().status()
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        match self {
            ApiError::RateLimited(seconds) => {
                response.insert_header((header::RETRY_AFTER, seconds.max(&1).to_string()));
            }
            ApiError::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, UNAVAILABLE_RETRY_SECS.to_string()));
            }
            _ => {}
        }
        // Internal errors get their body (with the request id) from `json_errors`.
        if matches!(self, ApiError::Internal(_)) {
            return response.finish();
        }
        response
            .content_type("application/json")
            .body(body(self.code(), None))
    }
}

/// Every error of the API scope as the contract's JSON, whatever produced it; internal errors
/// logged with their chain.
pub async fn json_errors(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let response = next.call(request).await?;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return Ok(response.map_into_left_body());
    }
    let request_id =
        super::error::log_server_error(&response, |error| match error.as_error::<ApiError>() {
            Some(ApiError::Internal(inner) | ApiError::Unavailable(inner)) => {
                Some(format!("{inner:?}"))
            }
            _ => None,
        });
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return Ok(response.map_into_left_body());
    }
    let (request, mut response) = response.into_parts();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response.headers_mut().remove(header::CONTENT_LENGTH);
    if status == StatusCode::SERVICE_UNAVAILABLE
        && !response.headers().contains_key(header::RETRY_AFTER)
    {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from(UNAVAILABLE_RETRY_SECS),
        );
    }
    let id = status.is_server_error().then_some(request_id.as_str());
    let response = response.set_body(BoxBody::new(body(ApiErrorCode::of_status(status), id)));
    Ok(ServiceResponse::new(request, response).map_into_right_body())
}

/// The API's answer to a method its path does not take, with the ones it takes.
pub fn method_not_allowed(allow: &str) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, allow))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("application/json")
        .body(body(ApiErrorCode::MethodNotAllowed, None))
}

/// The API's answer to an unknown path.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::Code(ApiErrorCode::NotFound))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_the_contract_writes_them() {
        use ApiErrorCode::*;
        for code in [
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            MethodNotAllowed,
            PayloadTooLarge,
            UnsupportedMediaType,
            InvalidSignature,
            RateLimited,
            ServiceUnavailable,
            Internal,
            IdempotencyInProgress,
            IdempotencyConflict,
            Conflict,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.code());
        }
    }
}
