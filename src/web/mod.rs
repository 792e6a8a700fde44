//! HTTP: one module per URL area, the error pages, the page frame.

pub mod assets;
pub mod error;
pub mod filters;
pub mod layout;
pub mod meta;
pub mod home;

use std::sync::Arc;

use sqlx::PgPool;

use crate::config::Config;

/// Shared by every request: read-only after start-up.
pub struct AppState {
    pub config: Arc<Config>,
    pub pool: PgPool,
    pub assets: assets::Assets,
}
