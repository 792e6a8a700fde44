//! `/api/v1/…`: the public JSON endpoints of PRODUCT.md's contract.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::api_error::ApiError;
use super::simulateur::raw_simulation;
use super::{AppState, messages};
use crate::services::simulator::{self, Account, SimulationError};

#[derive(Serialize)]
struct RefusalJson {
    rule: &'static str,
    message: String,
}

#[derive(Serialize)]
struct PromptCheckJson {
    allowed: bool,
    category: Option<&'static str>,
    advice: Vec<String>,
}

#[derive(Serialize)]
struct VerdictJson {
    plan: String,
    unit_cost: Option<i64>,
    total_cost: Option<i64>,
    refusal: Option<RefusalJson>,
    prompt_check: PromptCheckJson,
}

#[derive(Serialize)]
struct ErrorsJson {
    errors: BTreeMap<&'static str, String>,
}

/// `GET /api/v1/simulateur`: the simulator's verdict.
pub async fn simulateur(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let catalog = state.catalog.get(&state.pool).await?;
    let raw = raw_simulation(request.query_string());
    match simulator::simulate(
        &catalog,
        &state.prompt_rules,
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
                    .map(|(f, e)| (*f, messages::field_error(f, e)))
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

#[derive(Serialize)]
struct SearchResultJson<'a> {
    slug: &'a str,
    title: &'a str,
    url: String,
    snippet: String,
}

#[derive(Serialize)]
struct SearchJson<'a> {
    query: String,
    results: Vec<SearchResultJson<'a>>,
    suggestion: Option<String>,
}

#[derive(serde::Deserialize)]
pub struct SearchParams {
    q: Option<String>,
}

/// `GET /api/v1/aide/recherche?q=`: the help-centre search.
pub async fn recherche(
    state: web::Data<AppState>,
    params: web::Query<SearchParams>,
) -> Result<HttpResponse, ApiError> {
    let library = state.help.library();
    match super::aide::normalise(params.q.as_deref()) {
        Ok(query) => {
            let found = super::aide::find(&state, &library, query).await?;
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
                    query: found.query,
                    results,
                    suggestion: found.suggestion,
                },
            ))
        }
        Err(problem) => {
            let message = messages::query_problem(&problem);
            Ok(json(
                HttpResponse::BadRequest(),
                &ErrorsJson {
                    errors: BTreeMap::from([("q", message)]),
                },
            ))
        }
    }
}
