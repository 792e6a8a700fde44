//! `/`, `/aide/{slug}`, `/aide/recherche`, `/sitemap.xml`: the help centre, a module per job:
//! centre (guides in memory, rendered pages, views), tables (live price tables), guide, home
//! (and the sitemap), recherche, avis (votes and comments), reload (development).
//!
//! Guide pages do not change per visitor, so each is rendered once into bytes and served from
//! memory with an ETag; the set is rebuilt when the catalog behind its live tables changes.
//! Views are counted in memory and written in batches, so reading never waits on the database.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::Context;
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::error::PageError;
use super::layout::Layout;
use super::{AppState, filters, messages};
use crate::content::search::{Outcome, SnippetPart};
use crate::content::{Category, Figure, FigureField, Guide, Library, LiveTable, Segment};
use crate::domain::catalog::{Pack, Plan, vat_included};
use crate::domain::money::Cents;
use crate::domain::pricing::{
    Creation, CreationType, Illustrations, ImageFormat, Quantity, Request, Resolution, RuleKind,
    Schedule, VideoFormat, quote,
};
use crate::domain::simulation::RawSimulation;
use crate::services::catalog::Catalog;

mod avis;
mod centre;
mod guide;
mod home;
mod lexique;
mod recherche;
mod reload;
mod tables;

pub use avis::*;
pub use centre::*;
pub use guide::*;
pub use home::*;
pub use lexique::*;
pub use recherche::*;
pub use reload::*;
pub use tables::*;

use guide::render_guide;
use tables::live_table;
