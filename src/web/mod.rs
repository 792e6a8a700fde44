//! HTTP: one module per URL area, the error pages, the page frame.

pub mod admin;
pub mod aide;
pub mod api;
pub mod assets;
pub mod compte;
pub mod contact;
pub mod csrf;
pub mod error;
pub mod extract;
pub mod filters;
pub mod layout;
pub mod messages;
pub mod meta;
pub mod simulateur;
pub mod tableau_de_bord;

use std::sync::Arc;

use sqlx::PgPool;

use crate::config::Config;
use crate::domain::prompt::PromptRules;
use crate::services::catalog::CatalogCache;

/// Shared by every request: read-only after start-up.
pub struct AppState {
    pub config: Arc<Config>,
    pub pool: PgPool,
    pub assets: assets::Assets,
    pub catalog: CatalogCache,
    pub prompt_rules: PromptRules,
    pub help: aide::HelpCentre,
    pub hasher: crate::services::passwords::Hasher,
}
