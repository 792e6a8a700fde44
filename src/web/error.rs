//! The web layer's error type and the error pages.
//!
//! Handlers return `PageError`; its status is mapped here. The `error_pages` middleware turns an
//! error response into a French HTML page (the API scope has its own, `api_error`), and logs internal errors
//! with their whole chain and the request id; the page shows the id and nothing else.

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, ResponseError};
use askama::Template;
use tracing_actix_web::RequestId;

use super::AppState;
use super::layout::Layout;
use crate::services::accounts::AccountError;
use crate::services::fault::Fault;
use crate::services::help::HelpError;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("not found")]
    NotFound,
    #[error("bad request")]
    BadRequest,
    #[error("forbidden")]
    Forbidden,
    /// A form without a valid CSRF token (an old page, or another site): 403, but the page
    /// says to reload, not that the user lacks the right.
    #[error("form expired")]
    FormExpired,
    /// Not signed in: go to the login page, then back to this path.
    #[error("login required")]
    LoginRequired(String),
    /// Too many attempts; retry after this many seconds.
    #[error("too many requests")]
    TooManyRequests(i64),
    #[error("service unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

// Service errors become HTTP statuses here, and only here.

impl From<Fault> for PageError {
    fn from(fault: Fault) -> Self {
        match fault {
            // The database is down or saturated: a 503 page, and the pool recovers by itself.
            Fault::Unavailable(e) => PageError::Unavailable(e),
            Fault::Internal(e) => PageError::Internal(e),
        }
    }
}

impl From<AccountError> for PageError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::Busy => PageError::TooManyRequests(BUSY_RETRY_SECS),
            AccountError::Throttled { retry_after } => PageError::TooManyRequests(retry_after),
            AccountError::TooManyInvitations => PageError::TooManyRequests(INVITATION_RETRY_SECS),
            AccountError::NotAllowed => PageError::Forbidden,
            AccountError::InvalidLink => PageError::NotFound,
            AccountError::Fault(fault) => fault.into(),
            other => PageError::Internal(anyhow::anyhow!("unexpected: {other}")),
        }
    }
}

/// A credit operation's failure on a page: the database's fault as such; any other (a refusal
/// the page should have answered itself) is a bug, a 500.
impl From<crate::services::credits::CreditError> for PageError {
    fn from(error: crate::services::credits::CreditError) -> Self {
        match error {
            crate::services::credits::CreditError::Fault(fault) => fault.into(),
            other => PageError::Internal(other.into()),
        }
    }
}

impl From<HelpError> for PageError {
    fn from(error: HelpError) -> Self {
        match error {
            HelpError::TooMany(retry_after) => PageError::TooManyRequests(retry_after),
            HelpError::Fault(fault) => fault.into(),
        }
    }
}

/// Seconds to wait when password checks are saturated (`Retry-After`).
pub const BUSY_RETRY_SECS: i64 = 5;
/// Seconds to wait when an organisation sent too many invitations in the hour.
const INVITATION_RETRY_SECS: i64 = 600;

impl From<askama::Error> for PageError {
    fn from(error: askama::Error) -> Self {
        PageError::Internal(error.into())
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::NotFound => StatusCode::NOT_FOUND,
            PageError::BadRequest => StatusCode::BAD_REQUEST,
            PageError::Forbidden | PageError::FormExpired => StatusCode::FORBIDDEN,
            PageError::LoginRequired(_) => StatusCode::SEE_OTHER,
            PageError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            PageError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            PageError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    // The body is written by `error_pages`, which knows the request.
    fn error_response(&self) -> HttpResponse<BoxBody> {
        let mut response = HttpResponse::build(self.status_code());
        if let PageError::TooManyRequests(seconds) = self {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if let PageError::Unavailable(_) = self {
            response.insert_header((header::RETRY_AFTER, "5"));
        }
        if let PageError::LoginRequired(next) = self {
            let query = serde_urlencoded::to_string([("suite", next)]).unwrap_or_default();
            response.insert_header((header::LOCATION, format!("/compte/connexion?{query}")));
        }
        response.finish()
    }
}

#[derive(Template)]
#[template(path = "errors/error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    status: u16,
    request_id: &'a str,
    /// Seconds to wait, when long enough to be worth saying (10 s or more).
    retry_after: Option<i64>,
    /// A 403 for a form that expired, rather than for a page the user may not open.
    form_expired: bool,
}

/// Renders error responses that have no body of their own, and logs internal errors.
pub async fn error_pages(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let response = next.call(request).await?;
    let status = response.status();
    // A redirection carried by an error (`PageError::LoginRequired`: a page asked without a
    // session goes to the login form) is the normal way there: the same answer without the
    // error, which the request's log would report as one (an ERROR line per stale cookie).
    if status.is_redirection() && response.response().error().is_some() {
        let (request, answer) = response.into_parts();
        let mut clean = HttpResponse::new(status);
        for (name, value) in answer.headers() {
            clean.headers_mut().append(name.clone(), value.clone());
        }
        return Ok(ServiceResponse::new(
            request,
            clean.map_body(|_, body| EitherBody::right(body)),
        ));
    }
    if !(status.is_client_error() || status.is_server_error()) {
        return Ok(response.map_into_left_body());
    }
    let request_id = log_server_error(&response, |error| {
        error.as_error::<PageError>().map(|e| match e {
            PageError::Internal(inner) | PageError::Unavailable(inner) => format!("{inner:?}"),
            other => other.to_string(),
        })
    });
    // A handler that wrote its own error body (a form with its messages, JSON errors) keeps it.
    let has_body = !matches!(
        response.response().body().size(),
        actix_web::body::BodySize::None | actix_web::body::BodySize::Sized(0)
    );
    if has_body && response.response().error().is_none() {
        return Ok(response.map_into_left_body());
    }
    let (request, mut response) = response.into_parts();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    let layout = match request.app_data::<actix_web::web::Data<AppState>>() {
        Some(state) => Layout::for_error(state, &request),
        None => {
            return Ok(ServiceResponse::new(
                request,
                response.set_body(EitherBody::right(BoxBody::new(String::new()))),
            ));
        }
    };
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|seconds| *seconds >= 10);
    let form_expired = response
        .error()
        .and_then(|e| e.as_error::<PageError>())
        .is_some_and(|e| matches!(e, PageError::FormExpired));
    let body = render_page(
        layout,
        status.as_u16(),
        &request_id,
        retry_after,
        form_expired,
    );
    response.headers_mut().remove(header::CONTENT_LENGTH);
    let response = response.set_body(BoxBody::new(body));
    Ok(ServiceResponse::new(request, response).map_into_right_body())
}

/// Just inside the session middleware: a session the store could not load because the database
/// is unreachable is a 503 page with `Retry-After`, like every other page that needs the
/// database (actix-session would answer a store error with a bare 500, outside the error pages).
pub async fn session_store_down(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    use actix_session::SessionExt;
    let down = request
        .get_session()
        .get::<bool>(crate::db::sessions::UNAVAILABLE_KEY)
        .ok()
        .flatten()
        .unwrap_or(false);
    if down {
        let error = PageError::Unavailable(anyhow::anyhow!("session store: database unavailable"));
        return Ok(request.error_response(error).map_into_right_body());
    }
    Ok(next.call(request).await?.map_into_left_body())
}

/// The request id of `response`, after logging it if it is a server error: with the whole chain
/// of the error (`{:?}` of an anyhow chain prints every cause; it never reaches the visitor).
/// `chain` gives it for the scope's own error type.
pub fn log_server_error<B>(
    response: &ServiceResponse<B>,
    chain: impl Fn(&actix_web::Error) -> Option<String>,
) -> String {
    let request_id = response
        .request()
        .extensions()
        .get::<RequestId>()
        .map(ToString::to_string)
        .unwrap_or_default();
    let status = response.status();
    if let Some(error) = response.response().error()
        && status.is_server_error()
    {
        let chain = chain(error).unwrap_or_else(|| error.to_string());
        // The path too: the request's span may not be there (`telemetry::RequestSpan`).
        let path = response.request().path();
        tracing::error!(request_id = %request_id, path, status = status.as_u16(), error = %chain, "request failed");
    }
    request_id
}

/// The default service: every unknown URL is a 404 page.
pub async fn not_found() -> Result<HttpResponse, PageError> {
    Err(PageError::NotFound)
}

/// The French error page for `status`.
pub fn render_page(
    layout: Layout,
    status: u16,
    request_id: &str,
    retry_after: Option<i64>,
    form_expired: bool,
) -> String {
    let page = ErrorPage {
        layout,
        status,
        request_id,
        retry_after,
        form_expired,
    };
    page.render().unwrap_or_else(|_| format!("Erreur {status}"))
}

/// The default service of the shared scope (outside the error-page middleware).
pub async fn shared_not_found(
    state: actix_web::web::Data<AppState>,
    request: actix_web::HttpRequest,
) -> HttpResponse {
    not_found_page(&state, &request)
}

/// The 404 page as a response, for handlers outside the error-page middleware.
pub fn not_found_page(state: &AppState, request: &actix_web::HttpRequest) -> HttpResponse {
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(ToString::to_string)
        .unwrap_or_default();
    page_response(state, request.path(), &request_id, &PageError::NotFound)
}

/// `error` as its French page, for code outside the error-page middleware: its status and
/// headers (`Retry-After`…) from `error_response`, the page for `path`.
pub fn page_response(
    state: &AppState,
    path: &str,
    request_id: &str,
    error: &PageError,
) -> HttpResponse {
    let mut response = error.error_response();
    let status = response.status().as_u16();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    let body = render_page(Layout::new(state, path), status, request_id, None, false);
    response.set_body(BoxBody::new(body))
}
