//! What every page's frame needs: asset URLs, the canonical URL, the current section.

use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};

use super::AppState;

#[derive(Debug, Clone)]
pub struct Layout {
    /// The frame's stylesheet, script and icon URLs (`Assets::frame`).
    pub css: Arc<str>,
    pub js: Arc<str>,
    pub icon: Arc<str>,
    /// Absolute URL of this page without its query string (canonical link, Open Graph).
    pub canonical: String,
    pub public_url: String,
    pub path: String,
    /// Someone is signed in: the header offers the dashboard, the account and signing out.
    pub signed_in: bool,
    /// The CSRF token of the header's « Se déconnecter » button; on pages shared by everyone
    /// (guides) there is none, and the header links to the sign-out page instead.
    pub csrf: Option<String>,
}

impl Layout {
    pub fn new(state: &AppState, path: &str) -> Self {
        let frame = &state.assets.frame;
        Self {
            css: frame.css.clone(),
            js: frame.js.clone(),
            icon: frame.icon.clone(),
            canonical: [state.config.public_url.as_str(), path].concat(),
            public_url: state.config.public_url.clone(),
            path: path.to_owned(),
            signed_in: false,
            csrf: None,
        }
    }

    /// The frame of a page shared by everyone: the visitor's or the signed-in variant.
    pub fn shared(state: &AppState, path: &str, signed_in: bool) -> Self {
        Self {
            signed_in,
            ..Self::new(state, path)
        }
    }

    /// The frame of an error page, rendered once the session middleware is done with the
    /// request: the session cookie's presence says who is there.
    pub fn for_error(state: &AppState, request: &HttpRequest) -> Self {
        Self::shared(state, request.path(), has_session_cookie(state, request))
    }

    /// The frame of the page `request` asks for. Behind the session middleware, the session says
    /// who is there (no database read); elsewhere, the session cookie's presence.
    pub fn for_request(state: &AppState, request: &HttpRequest) -> Self {
        use actix_session::SessionExt;
        let mut layout = Self::new(state, request.path());
        let has_guard = request.extensions().contains::<super::csrf::Guarded>();
        layout.signed_in = if has_guard {
            super::extract::session_user(&request.get_session()).is_some()
        } else {
            has_session_cookie(state, request)
        };
        if layout.signed_in && has_guard {
            layout.csrf = super::csrf::token(request).ok();
        }
        layout
    }

    /// `aria-current="page"` for the navigation link of the current section.
    pub fn current(&self, prefix: &str) -> &'static str {
        let here = if prefix == "/" {
            self.path == "/"
        } else {
            self.path.starts_with(prefix)
        };
        if here { "page" } else { "false" }
    }
}

impl FromRequest for Layout {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match req.app_data::<web::Data<AppState>>() {
            Some(state) => Ok(Layout::for_request(state, req)),
            None => Err(actix_web::error::ErrorInternalServerError(
                "application state missing",
            )),
        })
    }
}

/// Whether the request carries a session cookie (guides choose their header by it).
pub fn has_session_cookie(state: &AppState, request: &HttpRequest) -> bool {
    request
        .cookie(super::extract::session_cookie_name(
            state.config.is_production(),
        ))
        .is_some()
}
