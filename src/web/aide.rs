//! `/`, `/aide/{slug}`, `/aide/recherche`, `/sitemap.xml`: the help centre.
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
use crate::content::search::SnippetPart;
use crate::content::{Category, Guide, Library, LiveTable, Segment};
use crate::domain::catalog::{Pack, Plan};
use crate::domain::pricing::{
    Creation, CreationType, Illustrations, ImageFormat, Quantity, Request, Resolution, RuleKind,
    VideoFormat, quote,
};
use crate::services::catalog::Catalog;

pub struct StaticPage {
    body: web::Bytes,
    gzipped: web::Bytes,
    etag: HeaderValue,
}

struct RenderedGuides {
    fingerprint: u64,
    /// By slug: the visitors' page, then the signed-in one.
    pages: HashMap<String, Vec<StaticPage>>,
}

pub struct HelpCentre {
    /// Swapped as a whole when the guides are reloaded (development).
    library: RwLock<Arc<Library>>,
    rendered: RwLock<Option<Arc<RenderedGuides>>>,
    /// One counter per guide: reading a guide adds one without a lock held across workers.
    views: RwLock<HashMap<String, std::sync::atomic::AtomicI64>>,
    most_read: RwLock<Option<(Instant, Vec<String>)>>,
}

impl HelpCentre {
    pub fn new(library: Library) -> Self {
        Self {
            library: RwLock::new(Arc::new(library)),
            rendered: RwLock::new(None),
            views: RwLock::new(HashMap::new()),
            most_read: RwLock::new(None),
        }
    }

    pub fn library(&self) -> Arc<Library> {
        match self.library.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the guides (development: after an edit) and drops the pages rendered from them.
    pub fn replace_library(&self, library: Library) {
        if let Ok(mut guard) = self.library.write() {
            *guard = Arc::new(library);
        }
        if let Ok(mut rendered) = self.rendered.write() {
            *rendered = None;
        }
    }

    fn count_view(&self, slug: &str) {
        use std::sync::atomic::{AtomicI64, Ordering};
        if let Ok(views) = self.views.read()
            && let Some(counter) = views.get(slug)
        {
            counter.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Ok(mut views) = self.views.write() {
            views
                .entry(slug.to_owned())
                .or_insert_with(|| AtomicI64::new(0))
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Writes the views counted since the last call; on failure they are kept for the next one.
    pub async fn flush_views(&self, pool: &sqlx::PgPool) {
        use std::sync::atomic::Ordering;
        let batch: Vec<(String, i64)> = match self.views.read() {
            Ok(views) => views
                .iter()
                .map(|(slug, n)| (slug.clone(), n.swap(0, Ordering::Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            Err(_) => return,
        };
        if batch.is_empty() {
            return;
        }
        let (slugs, counts): (Vec<String>, Vec<i64>) = batch.iter().cloned().unzip();
        if let Err(error) = crate::services::help::add_views(pool, &slugs, &counts).await {
            tracing::warn!("guide views not written yet: {error}");
            if let Ok(views) = self.views.read() {
                for (slug, n) in batch {
                    if let Some(counter) = views.get(&slug) {
                        counter.fetch_add(n, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    async fn most_read(&self, pool: &sqlx::PgPool) -> Vec<String> {
        if let Ok(guard) = self.most_read.read()
            && let Some((at, slugs)) = guard.as_ref()
            && at.elapsed() < Duration::from_secs(60)
        {
            return slugs.clone();
        }
        let slugs = crate::services::help::most_read(pool, 5)
            .await
            .unwrap_or_default();
        if let Ok(mut guard) = self.most_read.write() {
            *guard = Some((Instant::now(), slugs.clone()));
        }
        slugs
    }

    fn rendered(
        &self,
        state: &AppState,
        catalog: &Catalog,
    ) -> Result<Arc<RenderedGuides>, PageError> {
        if let Ok(guard) = self.rendered.read()
            && let Some(r) = guard
                .as_ref()
                .filter(|r| r.fingerprint == catalog.fingerprint)
        {
            return Ok(r.clone());
        }
        let mut pages = HashMap::new();
        let library = self.library();
        for guide in &library.guides {
            // Two variants of each page: for visitors, and with the header of someone signed in.
            let mut variants = Vec::with_capacity(2);
            for signed_in in [false, true] {
                let html = render_guide(state, &library, guide, catalog, signed_in)?;
                let etag = HeaderValue::from_str(&format!(
                    "\"{}\"",
                    hex::encode(&Sha256::digest(html.as_bytes())[..8])
                ))
                .map_err(|e| PageError::Internal(e.into()))?;
                let gzipped = web::Bytes::from(super::gzip(html.as_bytes()));
                variants.push(StaticPage {
                    body: web::Bytes::from(html),
                    gzipped,
                    etag,
                });
            }
            pages.insert(guide.slug.clone(), variants);
        }
        let rendered = Arc::new(RenderedGuides {
            fingerprint: catalog.fingerprint,
            pages,
        });
        if let Ok(mut guard) = self.rendered.write() {
            *guard = Some(rendered.clone());
        }
        Ok(rendered)
    }
}

/// Writes counted views every ten seconds until the process ends.
pub async fn flush_views_forever(state: web::Data<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tick.tick().await;
        state.help.flush_views(&state.pool).await;
    }
}

// ---------------------------------------------------------------- live tables

/// A row of the live price schedule: a setting, and its cost on each plan.
pub struct BaremeRow {
    pub creation: CreationType,
    pub setting: Setting,
    pub costs: Vec<Result<i64, String>>,
}

pub enum Setting {
    UpTo {
        seconds: u16,
        four_k: bool,
    },
    Image {
        four_k: bool,
    },
    Pages {
        pages: u16,
        illustrations: Illustrations,
        percents: Vec<i64>,
    },
}

#[derive(Template)]
#[template(path = "aide/live_bareme.html")]
struct BaremeTable<'a> {
    plans: &'a [Plan],
    rows: Vec<BaremeRow>,
    since: time::Date,
}

#[derive(Template)]
#[template(path = "aide/live_plans.html")]
struct PlansTable<'a> {
    plans: &'a [Plan],
}

#[derive(Template)]
#[template(path = "aide/live_packs.html")]
struct PacksTable<'a> {
    packs: &'a [Pack],
}

impl BaremeRow {
    pub fn is_rich(&self) -> bool {
        matches!(
            self.setting,
            Setting::Pages {
                illustrations: Illustrations::Rich,
                ..
            }
        )
    }
}

fn bareme_rows(catalog: &Catalog) -> Option<(Vec<BaremeRow>, time::Date)> {
    let schedule = catalog.schedule_at(OffsetDateTime::now_utc())?;
    let one = Quantity::new(1)?;
    let cost = |plan: &Plan, creation: Creation| -> Result<i64, String> {
        quote(
            schedule,
            plan,
            &catalog.plans,
            &Request {
                creation,
                quantity: one,
            },
        )
        .map(|q| q.unit)
        .map_err(|r| messages::refusal(&r))
    };
    // Tier bounds of a type, across every plan's rules.
    let bounds = |t: CreationType| -> Vec<u16> {
        let mut bounds: Vec<u16> = catalog
            .plans
            .iter()
            .flat_map(|p| schedule.rules_for(&p.id, t))
            .filter_map(|r| match r {
                RuleKind::Tier { up_to: Some(s), .. } => Some(s),
                _ => None,
            })
            .collect();
        bounds.sort_unstable();
        bounds.dedup();
        bounds
    };
    let mut rows = Vec::new();
    for four_k in [false, true] {
        for seconds in bounds(CreationType::Video) {
            let resolution = if four_k {
                Resolution::FourK
            } else {
                Resolution::Hd
            };
            let creation = Creation::Video {
                seconds,
                format: VideoFormat::Landscape,
                resolution,
            };
            rows.push(BaremeRow {
                creation: CreationType::Video,
                setting: Setting::UpTo { seconds, four_k },
                costs: catalog.plans.iter().map(|p| cost(p, creation)).collect(),
            });
        }
    }
    for four_k in [false, true] {
        let resolution = if four_k {
            Resolution::FourK
        } else {
            Resolution::Hd
        };
        let creation = Creation::Image {
            format: ImageFormat::Landscape,
            resolution,
        };
        rows.push(BaremeRow {
            creation: CreationType::Image,
            setting: Setting::Image { four_k },
            costs: catalog.plans.iter().map(|p| cost(p, creation)).collect(),
        });
    }
    for seconds in bounds(CreationType::Music) {
        rows.push(BaremeRow {
            creation: CreationType::Music,
            setting: Setting::UpTo {
                seconds,
                four_k: false,
            },
            costs: catalog
                .plans
                .iter()
                .map(|p| cost(p, Creation::Music { seconds }))
                .collect(),
        });
    }
    for illustrations in [Illustrations::Simple, Illustrations::Rich] {
        let pages = 10;
        let percents = catalog
            .plans
            .iter()
            .map(|p| {
                schedule
                    .rules_for(&p.id, CreationType::MiniBook)
                    .into_iter()
                    .find_map(|r| match r {
                        RuleKind::PerPage {
                            illustrations: i,
                            percent,
                        } if i == illustrations => Some(percent),
                        _ => None,
                    })
                    .unwrap_or(0)
            })
            .collect();
        rows.push(BaremeRow {
            creation: CreationType::MiniBook,
            setting: Setting::Pages {
                pages,
                illustrations,
                percents,
            },
            costs: catalog
                .plans
                .iter()
                .map(|p| {
                    cost(
                        p,
                        Creation::MiniBook {
                            pages,
                            illustrations,
                        },
                    )
                })
                .collect(),
        });
    }
    Some((rows, schedule.effective_from.date()))
}

fn live_table(table: LiveTable, catalog: &Catalog) -> Result<String, PageError> {
    Ok(match table {
        LiveTable::Bareme => match bareme_rows(catalog) {
            Some((rows, since)) => BaremeTable {
                plans: &catalog.plans,
                rows,
                since,
            }
            .render()?,
            None => String::new(),
        },
        LiveTable::Plans => PlansTable {
            plans: &catalog.plans,
        }
        .render()?,
        LiveTable::Packs => PacksTable {
            packs: &catalog.packs,
        }
        .render()?,
    })
}

// ---------------------------------------------------------------- guide page

#[derive(Template)]
#[template(path = "aide/guide.html")]
struct GuidePage<'a> {
    layout: Layout,
    guide: &'a Guide,
    body: String,
    category: Option<&'a Category>,
    related: Vec<&'a Guide>,
    previous: Option<&'a Guide>,
    next: Option<&'a Guide>,
}

fn render_guide(
    state: &AppState,
    library: &Library,
    guide: &Guide,
    catalog: &Catalog,
    signed_in: bool,
) -> Result<String, PageError> {
    let mut body = String::new();
    for segment in &guide.segments {
        match segment {
            Segment::Html(html) => body.push_str(html),
            Segment::Live(table) => body.push_str(&live_table(*table, catalog)?),
        }
    }
    let position = library.position(&guide.slug).unwrap_or(0);
    // Related: the guides this one links to first, then the rest of its category.
    let mut related: Vec<&Guide> = Vec::new();
    for link in &guide.links {
        let slug = link
            .url
            .strip_prefix("/aide/")
            .map(|s| s.split(['#', '?']).next().unwrap_or(s));
        if let Some(other) = slug.and_then(|s| library.get(s))
            && other.slug != guide.slug
            && !related.iter().any(|g| g.slug == other.slug)
        {
            related.push(other);
        }
    }
    for other in library.in_category(&guide.category) {
        if other.slug != guide.slug && !related.iter().any(|g| g.slug == other.slug) {
            related.push(other);
        }
    }
    related.truncate(4);
    let page = GuidePage {
        layout: Layout::shared(state, &guide.url(), signed_in),
        guide,
        body,
        category: library.categories.iter().find(|c| c.name == guide.category),
        related,
        previous: position.checked_sub(1).and_then(|p| library.guides.get(p)),
        next: library.guides.get(position + 1),
    };
    Ok(page.render()?)
}

pub async fn guide(
    state: web::Data<AppState>,
    request: HttpRequest,
    slug: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let catalog = state.catalog.get(&state.pool).await?;
    let rendered = state.help.rendered(&state, &catalog)?;
    let signed_in = super::layout::has_session_cookie(&state, &request);
    let Some(page) = rendered
        .pages
        .get(slug.as_str())
        .and_then(|variants| variants.get(usize::from(signed_in)))
    else {
        return Ok(super::error::not_found_page(&state, &request));
    };
    state.help.count_view(&slug);
    let cache = HeaderValue::from_static("public, max-age=0, must-revalidate");
    let not_modified = request.headers().get(header::IF_NONE_MATCH) == Some(&page.etag);
    let mut response = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, page.etag.clone()))
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((
            header::VARY,
            HeaderValue::from_static("Accept-Encoding, Cookie"),
        ));
    if not_modified {
        return Ok(response.finish());
    }
    response.content_type("text/html; charset=utf-8");
    if !page.gzipped.is_empty() && super::accepts_gzip(&request) {
        response.insert_header((header::CONTENT_ENCODING, HeaderValue::from_static("gzip")));
        return Ok(response.body(page.gzipped.clone()));
    }
    Ok(response.body(page.body.clone()))
}

// ---------------------------------------------------------------- home

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
pub struct HomePage<'a> {
    layout: Layout,
    library: &'a Library,
    most_read: Vec<&'a Guide>,
}

pub async fn home(state: web::Data<AppState>, layout: Layout) -> Result<HttpResponse, PageError> {
    let library = state.help.library();
    let library = library.as_ref();
    let mut most_read: Vec<&Guide> = state
        .help
        .most_read(&state.pool)
        .await
        .iter()
        .filter_map(|s| library.get(s))
        .collect();
    // Before anyone has read anything, the first guides of the help centre.
    for guide in [
        "credits-et-limites",
        "tarifs",
        "prompts-ia",
        "faq",
        "guide-d-achat",
    ]
    .iter()
    .filter_map(|s| library.get(s))
    {
        if most_read.len() < 5 && !most_read.iter().any(|g| g.slug == guide.slug) {
            most_read.push(guide);
        }
    }
    let body = HomePage {
        layout,
        library,
        most_read,
    }
    .render()?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body))
}

// ---------------------------------------------------------------- search

pub const QUERY_MAX_CHARS: usize = 200;

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
}

pub struct SearchResult<'a> {
    pub guide: &'a Guide,
    pub snippet: Vec<SnippetPart>,
}

pub struct Found<'a> {
    pub query: String,
    pub results: Vec<SearchResult<'a>>,
    pub suggestion: Option<String>,
}

pub enum QueryProblem {
    Empty,
    TooLong,
}

/// The query as searched: words separated by one space. Control characters (a NUL typed into
/// the URL) separate words like spaces do.
pub fn normalise(raw: Option<&str>) -> Result<String, QueryProblem> {
    let query = raw
        .unwrap_or("")
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if query.is_empty() {
        return Err(QueryProblem::Empty);
    }
    if query.chars().count() > QUERY_MAX_CHARS {
        return Err(QueryProblem::TooLong);
    }
    Ok(query)
}

/// Runs a search (`normalise`d), on the CPU pool unless the cache has the answer; records a
/// query with no result for staff (without waiting for it).
pub async fn find<'a>(
    state: &web::Data<AppState>,
    library: &'a Arc<Library>,
    query: String,
) -> Result<Found<'a>, PageError> {
    let outcome = match library.search.cached(&query) {
        Some(outcome) => outcome,
        None => {
            let (library, query) = (library.clone(), query.clone());
            state
                .cpu
                .run(move || library.search.run(&query, 10))
                .await
                .context("search")?
        }
    };
    let results: Vec<SearchResult> = outcome
        .hits
        .iter()
        .filter_map(|(slug, snippet)| {
            library.get(slug).map(|guide| SearchResult {
                guide,
                snippet: snippet.clone(),
            })
        })
        .collect();
    let suggestion = outcome.suggestion.clone();
    if results.is_empty() {
        let pool = state.pool.clone();
        let missed = crate::content::text::fold(&query);
        tokio::spawn(async move {
            if let Err(error) = crate::services::help::record_miss(&pool, &missed).await {
                tracing::warn!("search miss not recorded: {error}");
            }
        });
    }
    Ok(Found {
        query,
        results,
        suggestion,
    })
}

#[derive(Template)]
#[template(path = "aide/recherche.html")]
struct SearchPage<'a> {
    layout: Layout,
    query: String,
    found: Option<Found<'a>>,
    problem: Option<&'static str>,
    top: Vec<&'a Guide>,
}

pub async fn search(
    state: web::Data<AppState>,
    layout: Layout,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, PageError> {
    let raw = query.q.clone().unwrap_or_default();
    let library = state.help.library();
    let top = ["credits-et-limites", "tarifs", "depannage", "faq"]
        .iter()
        .filter_map(|s| library.get(s))
        .collect();
    let (found, problem, status) = match normalise(Some(&raw)) {
        Ok(query) => (Some(find(&state, &library, query).await?), None, 200),
        Err(QueryProblem::Empty) => (None, None, 200),
        Err(QueryProblem::TooLong) => (None, Some("too_long"), 400),
    };
    let page = SearchPage {
        layout,
        query: raw,
        found,
        problem,
        top,
    };
    let body = page.render()?;
    let status =
        actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::OK);
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body))
}

// ---------------------------------------------------------------- sitemap

pub async fn sitemap(state: web::Data<AppState>) -> HttpResponse {
    let base = &state.config.public_url;
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
    );
    let library = state.help.library();
    let newest = library.guides.iter().map(|g| g.updated).max();
    let mut url = |path: &str, lastmod: Option<time::Date>| {
        xml.push_str(&format!("  <url><loc>{base}{path}</loc>"));
        if let Some(date) = lastmod {
            xml.push_str(&format!("<lastmod>{date}</lastmod>"));
        }
        xml.push_str("</url>\n");
    };
    url("/", newest);
    for guide in &library.guides {
        url(&guide.url(), Some(guide.updated));
    }
    for path in super::routes::sitemap_paths() {
        if path != "/" {
            url(path, None);
        }
    }
    xml.push_str("</urlset>\n");
    HttpResponse::Ok()
        .content_type("application/xml; charset=utf-8")
        .body(xml)
}

// ---------------------------------------------------------------- feedback

const COMMENT_MAX_CHARS: usize = 2000;

#[derive(Deserialize)]
pub struct Vote {
    utile: Option<String>,
}

#[derive(Deserialize)]
pub struct Comment {
    #[serde(default)]
    commentaire: String,
    #[serde(default)]
    avis: String,
}

#[derive(Template)]
#[template(path = "aide/avis.html")]
struct FeedbackPage<'a> {
    layout: Layout,
    guide: &'a Guide,
    helpful: bool,
    commented: bool,
    csrf: String,
    /// The vote this comment completes, signed (`id.signature`): no session row for a vote.
    vote: String,
    comment: String,
    error: Option<&'static str>,
}

/// The reference of a vote given to the comment form, signed with the portal's key.
fn vote_reference(key: &[u8], slug: &str, id: i64) -> String {
    let id = id.to_string();
    format!("{id}.{}", super::csrf::sign(key, &["avis", slug, &id]))
}

/// The vote id of a signed reference, if the signature holds.
fn vote_id(key: &[u8], slug: &str, reference: &str) -> Option<i64> {
    let (id, signature) = reference.split_once('.')?;
    let expected = super::csrf::sign(key, &["avis", slug, id]);
    super::csrf::equal(expected.as_bytes(), signature.as_bytes())
        .then(|| id.parse().ok())
        .flatten()
}

/// `GET /aide/{slug}/avis?utile=oui|non`: « Cet article vous a-t-il aidé ? » works with plain
/// links and no JavaScript; a vote is a counter, like a view. The comment that may follow a
/// « non » is a POST with a CSRF token.
pub async fn vote(
    state: web::Data<AppState>,
    request: HttpRequest,
    slug: web::Path<String>,
    query: web::Query<Vote>,
) -> Result<HttpResponse, PageError> {
    let library = state.help.library();
    let guide = library.get(&slug).ok_or(PageError::NotFound)?;
    let helpful = match query.utile.as_deref() {
        Some("oui") => true,
        Some("non") => false,
        _ => return Err(PageError::BadRequest),
    };
    let client = super::client_key(&request);
    let id = crate::services::help::vote(&state.pool, &guide.slug, helpful, &client).await?;
    let (csrf, vote) = if helpful {
        (String::new(), String::new())
    } else {
        (
            super::csrf::token(&request)?,
            vote_reference(&state.config.session_key, &guide.slug, id),
        )
    };
    let layout = Layout::new(&state, &format!("{}/avis", guide.url()));
    let page = FeedbackPage {
        layout,
        guide,
        helpful,
        commented: false,
        csrf,
        vote,
        comment: String::new(),
        error: None,
    };
    Ok(super::html(200, page.render()?))
}

pub async fn comment(
    state: web::Data<AppState>,
    request: HttpRequest,
    slug: web::Path<String>,
    form: web::Form<Comment>,
) -> Result<HttpResponse, PageError> {
    let library = state.help.library();
    let guide = library.get(&slug).ok_or(PageError::NotFound)?;
    let layout = Layout::new(&state, &format!("{}/avis", guide.url()));
    let comment = crate::content::text::pasted(form.commentaire.trim());
    let error = if comment.is_empty() {
        Some("empty")
    } else if comment.chars().count() > COMMENT_MAX_CHARS {
        Some("too_long")
    } else {
        None
    };
    if error.is_some() {
        let csrf = super::csrf::token(&request)?;
        let page = FeedbackPage {
            layout,
            guide,
            helpful: false,
            commented: false,
            csrf,
            vote: form.avis.clone(),
            comment,
            error,
        };
        return Ok(super::html(400, page.render()?));
    }
    // The vote this comment completes is the one this visitor just cast (signed in the form).
    let Some(id) = vote_id(&state.config.session_key, &guide.slug, &form.avis) else {
        return Err(PageError::BadRequest);
    };
    crate::services::help::comment(&state.pool, id, &guide.slug, &comment).await?;
    let page = FeedbackPage {
        layout,
        guide,
        helpful: false,
        commented: true,
        csrf: String::new(),
        vote: String::new(),
        comment: String::new(),
        error: None,
    };
    Ok(super::html(200, page.render()?))
}

/// Development: reloads the guides when a file under `content/` changes (polled every second,
/// no extra dependency). A broken edit is logged with its file and line, and the last good
/// version stays online.
pub async fn reload_on_change(state: web::Data<AppState>) {
    let dir = state.config.content_dir.clone();
    let stamp = |dir: &std::path::Path| -> Option<(usize, std::time::SystemTime)> {
        let entries: Vec<_> = std::fs::read_dir(dir)
            .ok()?
            .filter_map(Result::ok)
            .collect();
        let newest = entries
            .iter()
            .filter_map(|e| e.metadata().ok()?.modified().ok())
            .max()?;
        Some((entries.len(), newest))
    };
    let mut last = stamp(&dir);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let now = stamp(&dir);
        if now == last {
            continue;
        }
        last = now;
        match Library::load(&dir) {
            Ok(library) => {
                state.help.replace_library(library);
                tracing::info!("guides reloaded from {}", dir.display());
            }
            Err(errors) => tracing::error!("guides not reloaded:\n{errors}"),
        }
    }
}
