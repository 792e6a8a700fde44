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
        let now = state.clock.now();
        tokio::spawn(async move {
            if let Err(error) = crate::services::help::record_miss(&pool, &missed, now).await {
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
