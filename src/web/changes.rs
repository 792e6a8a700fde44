//! Announcing writes to the read cache (`crate::cache`): after any request that may have written
//! (every method but GET, HEAD and OPTIONS), once its handler has committed and before its
//! answer leaves.
//!
//! - A signed-in member or an API key, or the engine reporting a generation, noted what they
//!   act on (`Acting`): their organisation, and the user's row. Whatever the status: a refused
//!   launch is recorded too.
//! - Otherwise (a visitor signing in or resetting a password, staff acting on any
//!   organisation, a payment webhook), any answer but a 4xx forgets everything on every
//!   instance: a 4xx refused the request before it wrote, while a 5xx may come after a commit
//!   (a handler that commits twice).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, web};

use super::AppState;
use crate::cache::Key;

/// What the request's writes may change, noted by whoever learnt it (the user's extractor, the
/// API's key check, the engine's report).
#[derive(Debug, Clone)]
pub struct Acting(pub Vec<Key>);

impl Acting {
    /// Notes on `request` that its writes change `keys` (the last note stands).
    pub fn note(request: &HttpRequest, keys: Vec<Key>) {
        request.extensions_mut().insert(Acting(keys));
    }
}

pub async fn announce(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let writes = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let response = next.call(request).await;
    if let (true, Some(state)) = (writes, state) {
        match &response {
            Ok(response) => {
                let acting = response.request().extensions().get::<Acting>().cloned();
                match acting {
                    Some(Acting(keys)) => state.caches.touch(&keys),
                    None if response.status().is_client_error() => {}
                    None => state.caches.reset(),
                }
            }
            // Not turned into a page or a JSON error on the way (rare): what it wrote is unknown.
            Err(_) => state.caches.reset(),
        }
    }
    response
}
