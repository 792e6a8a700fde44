//! Structured logs: `RUST_LOG` filters (default `info`), `NANOCLIP_LOG_FORMAT=json` for JSON lines.

use actix_web::Error;
use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder};
use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    // Colours only on a terminal: a log file or journal gets plain text, and each request's span
    // fields (formatted when the span opens, logged or not) cost no escape sequences.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // `try_init`: tests build many applications in one process; only the first installs it.
    let _ = if std::env::var("NANOCLIP_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// The span of each request (tracing-actix-web's `RootSpanBuilder`): every line logged while
/// serving it carries these fields. The path without its query string, which may hold a secret
/// (`/compte/reinitialisation?jeton=…`), and the client's address as the rate limits see it
/// (`X-Forwarded-For` only from `NANOCLIP_TRUSTED_PROXIES`), not one any client can write.
/// No route pattern (finding it walks the router a second time for each request: the path says
/// it) and no OpenTelemetry fields (`otel.*`, `exception.*`: nothing here exports spans): the
/// fmt layer formats every field of the span when it opens, for every request, logged or not. A
/// server error's chain is logged with its request id and path by `web::error`.
///
/// The pages anyone asks often and that log nothing of their own, the simulator and the search
/// (the `quiet` routes of `web::routes`), get their span at debug level: at the default level they pay no span
/// (opening one, its fields formatted, is about a tenth of a simulator page's CPU), and an
/// error there is still logged with its request id and path.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let quiet = request.method() == actix_web::http::Method::GET
            && crate::web::routes::quiet_paths().contains(&request.path());
        if quiet && !tracing::enabled!(tracing::Level::DEBUG) {
            return Span::none();
        }
        // Displayed where the span is formatted, not copied into strings first.
        let client = crate::web::client_ip(request.request());
        let request_id = request.extensions().get::<RequestId>().copied();
        let client = tracing::field::display(match &client {
            Some(ip) => ip as &dyn std::fmt::Display,
            None => &"",
        });
        let request_id = tracing::field::display(match &request_id {
            Some(id) => id as &dyn std::fmt::Display,
            None => &"",
        });
        // One list of fields for both levels (a span's level is part of its static callsite).
        macro_rules! request_span {
            ($span:ident) => {
                tracing::$span!(
                    "HTTP request",
                    http.method = %request.method(),
                    http.target = %request.path(),
                    http.client_ip = client,
                    http.status_code = tracing::field::Empty,
                    request_id = request_id,
                )
            };
        }
        if quiet {
            request_span!(debug_span)
        } else {
            request_span!(info_span)
        }
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}
