//! What every page's frame needs: asset URLs, the canonical URL, the current section.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

use super::AppState;

#[derive(Debug, Clone)]
pub struct Layout {
    pub css: String,
    pub js: String,
    pub icon: String,
    /// Absolute URL of this page without its query string (canonical link, Open Graph).
    pub canonical: String,
    pub public_url: String,
    pub path: String,
}

impl Layout {
    pub fn new(state: &AppState, path: &str) -> Self {
        Self {
            css: state.assets.url("app.css").to_owned(),
            js: state.assets.url("app.js").to_owned(),
            icon: state.assets.url("favicon.svg").to_owned(),
            canonical: format!("{}{}", state.config.public_url, path),
            public_url: state.config.public_url.clone(),
            path: path.to_owned(),
        }
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
            Some(state) => Ok(Layout::new(state, req.path())),
            None => Err(actix_web::error::ErrorInternalServerError(
                "application state missing",
            )),
        })
    }
}
