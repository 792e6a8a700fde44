//! The search, `/aide/recherche` (and the data of `GET /api/v1/aide/recherche`).

use super::*;

// ---------------------------------------------------------------- search

pub const QUERY_MAX_CHARS: usize = 200;

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
}

pub struct SearchResult<'a> {
    pub guide: &'a Guide,
    pub snippet: &'a [SnippetPart],
}

/// A search's answer as pages show it, borrowed from the search's `Outcome` (not copied).
pub struct Found<'a> {
    pub query: &'a str,
    pub results: Vec<SearchResult<'a>>,
    pub suggestion: Option<&'a str>,
}

impl<'a> Found<'a> {
    /// The hits of `outcome` whose guide is in `library`.
    pub fn new(library: &'a Library, query: &'a str, outcome: &'a Outcome) -> Self {
        Self {
            query,
            results: results(library, outcome).collect(),
            suggestion: outcome.suggestion.as_deref(),
        }
    }
}

fn results<'a>(
    library: &'a Library,
    outcome: &'a Outcome,
) -> impl Iterator<Item = SearchResult<'a>> {
    outcome.hits.iter().filter_map(|(slug, snippet)| {
        library
            .get(slug)
            .map(|guide| SearchResult { guide, snippet })
    })
}

pub enum QueryProblem {
    Empty,
    TooLong,
}

/// The query as searched: words separated by one space. Control characters (a NUL typed into
/// the URL) separate words like spaces do. The length is that of the query as typed (what the
/// API's OpenAPI document can say).
pub fn normalise(raw: Option<&str>) -> Result<String, QueryProblem> {
    let raw = raw.unwrap_or("");
    if raw.chars().count() > QUERY_MAX_CHARS {
        return Err(QueryProblem::TooLong);
    }
    let query = raw
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if query.is_empty() {
        return Err(QueryProblem::Empty);
    }
    Ok(query)
}

/// Runs a search (`normalise`d) unless the cache has the answer, through
/// `CpuPool::run_or_here` (a query is at most `QUERY_MAX_CHARS` long: bounded work). Records a query with no
/// result for staff (without waiting for it).
pub async fn find(
    state: &web::Data<AppState>,
    library: &Arc<Library>,
    query: &str,
) -> Result<Arc<Outcome>, PageError> {
    let outcome = match library.search.cached(query) {
        Some(outcome) => outcome,
        None => {
            let (library, query) = (library.clone(), query.to_owned());
            state
                .cpu
                .run_or_here(true, move || library.search.run(&query, 10))
                .await
                .context("search")?
        }
    };
    if results(library, &outcome).next().is_none() {
        let pool = state.pool.clone();
        let missed = crate::content::text::fold(query);
        let now = state.clock.now();
        tokio::spawn(async move {
            if let Err(error) = crate::services::help::record_miss(&pool, &missed, now).await {
                tracing::warn!("search miss not recorded: {error}");
            }
        });
    }
    Ok(outcome)
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
    let (searched, problem, status) = match normalise(Some(&raw)) {
        Ok(query) => {
            let outcome = find(&state, &library, &query).await?;
            (Some((query, outcome)), None, 200)
        }
        Err(QueryProblem::Empty) => (None, None, 200),
        Err(QueryProblem::TooLong) => (None, Some("too_long"), 400),
    };
    let page = SearchPage {
        layout,
        query: raw,
        found: searched
            .as_ref()
            .map(|(query, outcome)| Found::new(&library, query, outcome)),
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
