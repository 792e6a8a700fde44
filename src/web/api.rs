//! `/api/v1/…`: the public JSON endpoints of PRODUCT.md's contract.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::api_error::ApiError;
use super::simulateur::raw_simulation;
use super::{AppState, messages};
use crate::services::simulator::{self, Account, SimulationError};

/// Why the plan (or, for a launch, a rule of « Fair-use limits and generations ») refuses.
#[derive(Serialize, ToSchema)]
#[schema(as = Refusal)]
pub struct RefusalJson {
    /// The rule: `suspended`, `plan_feature`, `not_priced`, `prompt`, `concurrency`,
    /// `daily_cap`, `monthly_cap` or `balance`.
    #[schema(value_type = String, example = "plan_feature")]
    pub rule: &'static str,
    /// A French sentence with the way out.
    pub message: String,
}

#[derive(Serialize, ToSchema)]
#[schema(as = PromptCheck)]
struct PromptCheckJson {
    allowed: bool,
    /// A forbidden category: `sexual`, `hate_violence` or `drugs_danger`.
    #[schema(value_type = Option<String>, required = true)]
    category: Option<&'static str>,
    /// Advice (French sentences), not blocks.
    advice: Vec<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Verdict)]
struct VerdictJson {
    /// The plan priced: `eglise` or `reseau`.
    plan: String,
    /// Credits per render; null when the plan refuses the request.
    #[schema(required = true)]
    unit_cost: Option<i64>,
    #[schema(required = true)]
    total_cost: Option<i64>,
    #[schema(required = true)]
    refusal: Option<RefusalJson>,
    prompt_check: PromptCheckJson,
}

/// Invalid input: a French message per wrong field (or header).
#[derive(Serialize, ToSchema)]
#[schema(as = FieldErrors)]
pub struct ErrorsJson {
    pub errors: BTreeMap<String, String>,
}

impl ErrorsJson {
    pub fn one(field: &str, message: String) -> Self {
        Self {
            errors: BTreeMap::from([(field.to_owned(), message)]),
        }
    }
}

/// `GET /api/v1/simulateur`: the simulator's verdict.
#[utoipa::path(
    get,
    path = "/api/v1/simulateur",
    operation_id = "simulate",
    tag = "public",
    summary = "The simulator's verdict",
    description = "The same parameters as the /simulateur page: one variant per creation type \
        (`type`); an empty value counts as absent, values match in any case, a parameter that \
        does not apply to the type is ignored.",
    params((
        "simulation" = inline(super::openapi::SimulationQuery),
        Query,
        style = Form,
        explode,
        description = "The query parameters (`type`, `duree`, `format`, `resolution`, `pages`, \
            `illustrations`, `quantite`, `plan`, `prompt`)."
    )),
    responses(
        (status = 200, description = "The verdict; where the plan refuses the request, the costs are null and `refusal` says why.", body = VerdictJson),
        (status = 400, description = "Invalid input.", body = ErrorsJson),
        (status = 503, description = "The database is unreachable, or the prompt checks could not be read.", body = super::api_error::ErrorJson,
            headers(("Retry-After" = i64, description = "Seconds to wait."))),
    ),
)]
pub async fn simulateur(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let catalog = state.catalog.get(&state.pool).await?;
    let raw = raw_simulation(request.query_string());
    let rules = state.prompt_checks.get().await?;
    match simulator::simulate(
        &catalog,
        &rules,
        &raw,
        state.clock.now(),
        Account::default(),
    ) {
        Err(SimulationError::Unavailable) => Err(ApiError::Unavailable(anyhow::anyhow!(
            "no price schedule in force"
        ))),
        Err(SimulationError::Invalid(errors)) => Ok(json(
            HttpResponse::BadRequest(),
            &ErrorsJson {
                errors: errors
                    .iter()
                    .map(|(f, e)| ((*f).to_owned(), messages::field_error(f, e)))
                    .collect(),
            },
        )),
        Ok(verdict) => {
            let quote = verdict.outcome.as_ref().ok();
            let body = VerdictJson {
                plan: verdict.plan.id.clone(),
                unit_cost: quote.map(|q| q.unit),
                total_cost: quote.map(|q| q.total),
                refusal: verdict.outcome.as_ref().err().map(|r| RefusalJson {
                    rule: r.rule(),
                    message: messages::refusal(r),
                }),
                prompt_check: PromptCheckJson {
                    allowed: verdict.prompt.allowed(),
                    category: verdict.prompt.category.map(|c| c.id()),
                    advice: verdict.prompt.advice.iter().map(messages::advice).collect(),
                },
            };
            Ok(json(HttpResponse::Ok(), &body))
        }
    }
}

/// Public, read-only answers: any site may read them (the NanoClip app's widget does).
fn json(mut builder: actix_web::HttpResponseBuilder, body: &impl Serialize) -> HttpResponse {
    builder
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .insert_header(("Cache-Control", "no-store"))
        .json(body)
}

#[derive(Serialize, ToSchema)]
#[schema(as = SearchResult)]
struct SearchResultJson<'a> {
    slug: &'a str,
    title: &'a str,
    /// `/aide/{slug}`
    url: String,
    snippet: String,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Search)]
struct SearchJson<'a> {
    /// The query searched (spaces collapsed).
    query: String,
    /// Best first.
    results: Vec<SearchResultJson<'a>>,
    /// A corrected query (« Vouliez-vous dire … ? »), or null.
    #[schema(required = true)]
    suggestion: Option<String>,
}

#[derive(serde::Deserialize)]
pub struct SearchParams {
    q: Option<String>,
}

/// `GET /api/v1/aide/recherche?q=`: the help-centre search.
#[utoipa::path(
    get,
    path = "/api/v1/aide/recherche",
    operation_id = "search_help",
    tag = "public",
    summary = "The help-centre search",
    params((
        "q" = String,
        Query,
        description = "The search, in French (accents optional): at most 200 characters, not \
            all spaces.",
        pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000-\u001f\u007f-\u009f]",
        max_length = 200,
    )),
    responses(
        (status = 200, description = "The guides found, best first.", body = SearchJson),
        (status = 400, description = "An empty or too long search.", body = ErrorsJson),
        (status = 503, description = "The database is unreachable.", body = super::api_error::ErrorJson,
            headers(("Retry-After" = i64, description = "Seconds to wait."))),
    ),
)]
pub async fn recherche(
    state: web::Data<AppState>,
    params: web::Query<SearchParams>,
) -> Result<HttpResponse, ApiError> {
    let library = state.help.library();
    match super::aide::normalise(params.q.as_deref()) {
        Ok(query) => {
            let outcome = super::aide::find(&state, &library, &query).await?;
            let found = super::aide::Found::new(&library, &query, &outcome);
            let results = found
                .results
                .iter()
                .map(|r| SearchResultJson {
                    slug: &r.guide.slug,
                    title: &r.guide.title,
                    url: r.guide.url(),
                    snippet: r.snippet.iter().map(|(text, _)| text.as_str()).collect(),
                })
                .collect();
            Ok(json(
                HttpResponse::Ok(),
                &SearchJson {
                    query: found.query.to_owned(),
                    results,
                    suggestion: found.suggestion.map(str::to_owned),
                },
            ))
        }
        Err(problem) => {
            let message = messages::query_problem(&problem);
            Ok(json(
                HttpResponse::BadRequest(),
                &ErrorsJson::one("q", message),
            ))
        }
    }
}
