//! Static files, fingerprinted and served from memory.
//!
//! Files under `static/` are read once at start-up; each is served at `/static/<stem>.<hash>.<ext>`
//! with a one-year immutable cache, so a new deploy changes the URL rather than waiting for caches.

use std::collections::HashMap;
use std::path::Path;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::Context;
use sha2::{Digest, Sha256};

use super::AppState;

pub struct Asset {
    pub bytes: web::Bytes,
    /// Empty when compressing would not pay (images).
    pub gzipped: web::Bytes,
    pub content_type: HeaderValue,
    pub etag: HeaderValue,
}

#[derive(Default)]
pub struct Assets {
    /// `app.css` → `/static/app.1a2b3c4d.css`
    urls: HashMap<String, String>,
    /// `app.1a2b3c4d.css` → the file
    files: HashMap<String, Asset>,
    /// The URLs every page links to (`app.css`, `app.js`, `favicon.svg`), shared by every
    /// page's `Layout` rather than looked up and copied for each.
    pub frame: Frame,
}

/// The fingerprinted URLs of the page frame's stylesheet, script and icon.
#[derive(Debug, Clone, Default)]
pub struct Frame {
    pub css: std::sync::Arc<str>,
    pub js: std::sync::Arc<str>,
    pub icon: std::sync::Arc<str>,
}

impl Assets {
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let mut assets = Self::default();
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("reading static files in {}", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            if !path.is_file() {
                continue;
            }
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .context("static file name is not UTF-8")?
                .to_owned();
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let hash = hex::encode(&Sha256::digest(&bytes)[..4]);
            let (stem, ext) = name.rsplit_once('.').unwrap_or((name.as_str(), ""));
            let fingerprinted = format!("{stem}.{hash}.{ext}");
            let content_type = match ext {
                "css" => "text/css; charset=utf-8",
                "js" => "text/javascript; charset=utf-8",
                "svg" => "image/svg+xml",
                "png" => "image/png",
                "ico" => "image/x-icon",
                "woff2" => "font/woff2",
                "txt" => "text/plain; charset=utf-8",
                _ => "application/octet-stream",
            };
            assets
                .urls
                .insert(name.clone(), format!("/static/{fingerprinted}"));
            assets.files.insert(
                fingerprinted,
                Asset {
                    gzipped: if matches!(ext, "css" | "js" | "svg" | "txt") {
                        web::Bytes::from(super::gzip(&bytes))
                    } else {
                        web::Bytes::new()
                    },
                    bytes: web::Bytes::from(bytes),
                    content_type: HeaderValue::from_static(content_type),
                    etag: HeaderValue::from_str(&format!("\"{hash}\""))?,
                },
            );
        }
        assets.frame = Frame {
            css: assets.url("app.css").into(),
            js: assets.url("app.js").into(),
            icon: assets.url("favicon.svg").into(),
        };
        Ok(assets)
    }

    /// The fingerprinted URL of `name`; a missing file is a bug caught by the tests (empty URL).
    pub fn url(&self, name: &str) -> &str {
        self.urls.get(name).map(String::as_str).unwrap_or("")
    }
}

pub async fn serve(
    state: web::Data<AppState>,
    request: HttpRequest,
    name: web::Path<String>,
) -> HttpResponse {
    let Some(asset) = state.assets.files.get(name.as_str()) else {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("Fichier introuvable");
    };
    let cache = HeaderValue::from_static("public, max-age=31536000, immutable");
    let not_modified = request.headers().get(header::IF_NONE_MATCH) == Some(&asset.etag);
    let mut response = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, asset.etag.clone()))
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::VARY, HeaderValue::from_static("Accept-Encoding")));
    if not_modified {
        return response.finish();
    }
    response.insert_header((header::CONTENT_TYPE, asset.content_type.clone()));
    if !asset.gzipped.is_empty() && super::accepts_gzip(&request) {
        response.insert_header((header::CONTENT_ENCODING, HeaderValue::from_static("gzip")));
        return response.body(asset.gzipped.clone());
    }
    response.body(asset.bytes.clone())
}
