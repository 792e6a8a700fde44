//! The Plan Réseau JSON API (PRODUCT.md's contract): `GET /api/v1/solde`,
//! `POST /api/v1/generations` (with its Idempotency-Key), `GET /api/v1/generations[/{id}]`;
//! and the generation engine's reports, `POST /api/v1/moteur/generations/{id}`.
//!
//! A request carries `Authorization: Bearer <key>`; the key acts for its organisation, within
//! its own rate (`NANOCLIP_API_REQUESTS_PER_SECOND`, bursts of six times it).

use std::collections::BTreeMap;
use std::num::NonZeroU32;

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::api_error::{ApiError, ApiErrorCode};
use super::{AppState, messages};
use crate::db::generations::Generation;
use crate::domain::simulation::RawSimulation;
use crate::services::credits::CreditError;
use crate::services::generations::{
    self, Answer, Idempotent, LaunchOutcome, LaunchRequest, Outcome, Report, Via,
};

/// The largest body the API reads.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Each key's requests per second, with bursts of six times the rate.
pub struct ApiLimiter {
    limiter: DefaultKeyedRateLimiter<Uuid>,
}

impl ApiLimiter {
    pub fn new(per_second: f64) -> Self {
        let period = std::time::Duration::from_secs_f64(1.0 / per_second.max(0.000_001));
        let burst =
            NonZeroU32::new(((per_second * 6.0).round() as u32).max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        Self {
            limiter: RateLimiter::dashmap(quota),
        }
    }

    /// `Err(seconds)` to wait when the key is over its rate.
    fn check(&self, key: Uuid) -> Result<(), i64> {
        if self.limiter.len() > 100_000 {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            (wait.as_secs_f64().ceil() as i64).max(1)
        })
    }
}

/// The organisation a request's API key acts for.
pub struct ApiClient {
    pub key: Uuid,
    pub organisation: Uuid,
}

impl ApiClient {
    fn launched_by(&self) -> String {
        format!("api-key:{}", self.key)
    }
}

impl FromRequest for ApiClient {
    type Error = ApiError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = request.app_data::<web::Data<AppState>>().cloned();
        let secret = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|v| v.trim().to_owned());
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no state")))?;
            let Some(secret) = secret else {
                return Err(ApiError::Code(ApiErrorCode::Unauthorized));
            };
            let now = state.clock.now();
            let key = crate::services::api_keys::authenticate(&state.pool, &secret, now)
                .await
                .map_err(|e| match e {
                    crate::services::api_keys::KeyError::Credit(c) => fault(c),
                    other => ApiError::Internal(other.into()),
                })?
                .ok_or(ApiError::Code(ApiErrorCode::Unauthorized))?;
            state
                .api_limiter
                .check(key.id)
                .map_err(ApiError::RateLimited)?;
            let catalog = state.catalog.get(&state.pool).await?;
            let allows_api = catalog.plan(&key.plan_id).is_some_and(|p| p.allows_api);
            if !allows_api {
                return Err(ApiError::Code(ApiErrorCode::Forbidden));
            }
            Ok(ApiClient {
                key: key.id,
                organisation: key.organisation_id,
            })
        })
    }
}

fn fault(error: CreditError) -> ApiError {
    match error {
        CreditError::Fault(f) => f.into(),
        other => ApiError::Internal(other.into()),
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(at)
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn json(status: u16, body: &impl Serialize) -> HttpResponse {
    let status =
        actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::OK);
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

fn raw_json(status: u16, body: String) -> HttpResponse {
    let status =
        actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::OK);
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("application/json")
        .body(body)
}

#[derive(Serialize)]
struct ErrorsJson {
    errors: BTreeMap<String, String>,
}

fn invalid(field: &str, message: String) -> HttpResponse {
    json(
        400,
        &ErrorsJson {
            errors: BTreeMap::from([(field.to_owned(), message)]),
        },
    )
}

#[derive(Serialize)]
struct BucketJson {
    source: &'static str,
    remaining: i64,
    expires_at: String,
    restricted_to: Option<String>,
}

#[derive(Serialize)]
struct UseJson {
    used: i64,
    cap: i64,
}

#[derive(Serialize)]
struct LimitsJson {
    daily: UseJson,
    monthly: UseJson,
    concurrent: UseJson,
}

#[derive(Serialize)]
struct BalanceJson {
    available: i64,
    held: i64,
    buckets: Vec<BucketJson>,
    limits: LimitsJson,
    low_balance_threshold: i64,
}

/// `GET /api/v1/solde`
pub async fn solde(
    state: web::Data<AppState>,
    client: ApiClient,
) -> Result<HttpResponse, ApiError> {
    let catalog = state.catalog.get(&state.pool).await?;
    let balance = generations::balance(
        &state.pool,
        &catalog,
        client.organisation,
        state.clock.now(),
    )
    .await
    .map_err(fault)?;
    let o = &balance.overview;
    let body = BalanceJson {
        available: o.available.0,
        held: o.held.0,
        buckets: o
            .buckets
            .iter()
            .map(|b| BucketJson {
                source: b.source.as_str(),
                remaining: b.remaining.0,
                expires_at: rfc3339(b.expires_at),
                restricted_to: b.restricted_to.clone(),
            })
            .collect(),
        limits: LimitsJson {
            daily: UseJson {
                used: o.usage.generations_today,
                cap: balance.caps.daily,
            },
            monthly: UseJson {
                used: o.usage.credits_this_month,
                cap: balance.caps.monthly,
            },
            concurrent: UseJson {
                used: o.usage.renders_running,
                cap: balance.caps.concurrent,
            },
        },
        low_balance_threshold: balance.low_balance_threshold,
    };
    Ok(json(200, &body))
}

#[derive(Serialize)]
struct GenerationJson {
    id: Uuid,
    #[serde(rename = "type")]
    creation_type: String,
    status: String,
    credits_held: i64,
    credits_charged: i64,
    created_at: String,
    finished_at: Option<String>,
}

impl From<&Generation> for GenerationJson {
    fn from(g: &Generation) -> Self {
        GenerationJson {
            id: g.id,
            creation_type: g.creation_type.clone(),
            status: g.status.clone(),
            credits_held: g.credits_held,
            credits_charged: g.credits_charged,
            created_at: rfc3339(g.created_at),
            finished_at: g.finished_at.map(rfc3339),
        }
    }
}

#[derive(Serialize)]
struct LaunchedJson {
    id: Uuid,
    status: String,
    credits_held: i64,
    available: i64,
}

#[derive(Serialize)]
struct RefusalJson {
    rule: &'static str,
    message: String,
}

#[derive(Serialize)]
struct RefusedJson {
    refusal: RefusalJson,
}

/// The contract's answer to a launch.
fn launch_answer(outcome: &LaunchOutcome) -> Answer {
    let (status, body) = match outcome {
        LaunchOutcome::Invalid(errors) => (
            400,
            serde_json::to_string(&ErrorsJson {
                errors: errors
                    .iter()
                    .map(|(f, e)| ((*f).to_owned(), messages::field_error(f, e)))
                    .collect(),
            }),
        ),
        LaunchOutcome::Launched {
            generation,
            available,
        } => (
            201,
            serde_json::to_string(&LaunchedJson {
                id: generation.id,
                status: generation.status.clone(),
                credits_held: generation.credits_held,
                available: available.0,
            }),
        ),
        LaunchOutcome::Refused { refusal, .. } => {
            use crate::domain::limits::Refusal;
            let status = match refusal {
                Refusal::Concurrency { .. }
                | Refusal::DailyCap { .. }
                | Refusal::MonthlyCap { .. } => 429,
                Refusal::Balance { .. } => 402,
                _ => 403,
            };
            (
                status,
                serde_json::to_string(&RefusedJson {
                    refusal: RefusalJson {
                        rule: refusal.rule(),
                        message: messages::refusal(refusal),
                    },
                }),
            )
        }
    };
    Answer {
        status,
        body: body.unwrap_or_default(),
    }
}

/// A JSON value as the simulator's text field (numbers and strings; `null` is absent).
fn field(value: Option<&Value>) -> Result<Option<String>, ()> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(()),
    }
}

/// The printable ASCII key of 1 to 255 characters, or why not.
fn idempotency_key(request: &HttpRequest) -> Result<String, &'static str> {
    let Some(value) = request.headers().get("Idempotency-Key") else {
        return Err("missing");
    };
    let key = value.to_str().map_err(|_| "invalid")?;
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err("invalid");
    }
    Ok(key.to_owned())
}

/// `POST /api/v1/generations`
pub async fn launch(
    state: web::Data<AppState>,
    request: HttpRequest,
    client: ApiClient,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let key = match idempotency_key(&request) {
        Ok(key) => key,
        Err(problem) => return Ok(invalid("Idempotency-Key", messages::api_input(problem))),
    };
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Ok(invalid("Content-Type", messages::api_input("content_type")));
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&body) else {
        return Ok(invalid("body", messages::api_input("json")));
    };
    let mut raw = RawSimulation::default();
    let mut wrong = BTreeMap::new();
    for (name, slot) in [
        ("type", &mut raw.creation_type),
        ("duree", &mut raw.duree),
        ("format", &mut raw.format),
        ("resolution", &mut raw.resolution),
        ("pages", &mut raw.pages),
        ("illustrations", &mut raw.illustrations),
        ("quantite", &mut raw.quantite),
        ("prompt", &mut raw.prompt),
    ] {
        match field(fields.get(name)) {
            Ok(value) => *slot = value,
            Err(()) => {
                wrong.insert(name.to_owned(), messages::api_input("field_type"));
            }
        }
    }
    if !wrong.is_empty() {
        return Ok(json(400, &ErrorsJson { errors: wrong }));
    }
    let fingerprint = hex::encode(Sha256::digest(&body));
    let catalog = state.catalog.get(&state.pool).await?;
    let launched_by = client.launched_by();
    let launch = LaunchRequest {
        organisation: client.organisation,
        raw,
        via: Via::Api,
        launched_by: &launched_by,
        key: Some(&key),
    };
    let now = state.clock.now();
    match generations::launch_idempotent(
        &state.pool,
        &catalog,
        &state.prompt_rules,
        &launch,
        &fingerprint,
        launch_answer,
        now,
    )
    .await
    .map_err(fault)?
    {
        Idempotent::Answer(answer) => Ok(raw_json(answer.status, answer.body)),
        Idempotent::InProgress => Err(ApiError::Code(ApiErrorCode::IdempotencyInProgress)),
        Idempotent::Conflict => Err(ApiError::Code(ApiErrorCode::IdempotencyConflict)),
    }
}

/// `GET /api/v1/generations/{id}`
pub async fn generation(
    state: web::Data<AppState>,
    client: ApiClient,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let Ok(id) = Uuid::parse_str(&id) else {
        return Err(ApiError::Code(ApiErrorCode::NotFound));
    };
    match generations::get(&state.pool, client.organisation, id)
        .await
        .map_err(fault)?
    {
        Some(g) => Ok(json(200, &GenerationJson::from(&g))),
        None => Err(ApiError::Code(ApiErrorCode::NotFound)),
    }
}

#[derive(Serialize)]
struct ListJson {
    generations: Vec<GenerationJson>,
}

/// `GET /api/v1/generations?status=running&limit=50`
pub async fn generations_list(
    state: web::Data<AppState>,
    request: HttpRequest,
    client: ApiClient,
) -> Result<HttpResponse, ApiError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(request.query_string()).unwrap_or_default();
    let mut status = None;
    let mut limit = 50;
    let mut errors = BTreeMap::new();
    for (name, value) in pairs {
        match name.as_str() {
            "status" if value.is_empty() => {}
            "status" => match value.as_str() {
                "running" | "succeeded" | "failed" | "expired" => status = Some(value),
                _ => {
                    errors.insert("status".to_owned(), messages::api_input("status"));
                }
            },
            "limit" => match value.trim().parse::<i64>() {
                Ok(n @ 1..=200) => limit = n,
                _ => {
                    errors.insert("limit".to_owned(), messages::api_input("limit"));
                }
            },
            _ => {}
        }
    }
    if !errors.is_empty() {
        return Ok(json(400, &ErrorsJson { errors }));
    }
    let found = generations::list(
        &state.pool,
        client.organisation,
        status.as_deref(),
        false,
        limit,
    )
    .await
    .map_err(fault)?;
    Ok(json(
        200,
        &ListJson {
            generations: found.iter().map(GenerationJson::from).collect(),
        },
    ))
}

#[derive(Serialize)]
struct ReportJson {
    id: Uuid,
    status: String,
    credits_charged: i64,
}

/// `POST /api/v1/moteur/generations/{id}`: the engine's report (bearer token checked by the
/// engine scope).
pub async fn report(
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let Ok(id) = Uuid::parse_str(&id) else {
        return Err(ApiError::Code(ApiErrorCode::NotFound));
    };
    let outcome = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(fields)) => match fields.get("status").and_then(Value::as_str) {
            Some("succeeded") => Outcome::Succeeded,
            Some("failed") => Outcome::Failed,
            _ => return Ok(invalid("status", messages::api_input("report_status"))),
        },
        _ => return Ok(invalid("body", messages::api_input("json"))),
    };
    match generations::report(&state.pool, id, outcome, state.clock.now())
        .await
        .map_err(fault)?
    {
        Report::Recorded(g) => Ok(json(
            200,
            &ReportJson {
                id: g.id,
                status: g.status,
                credits_charged: g.credits_charged,
            },
        )),
        Report::NotFound => Err(ApiError::Code(ApiErrorCode::NotFound)),
        Report::Conflict(_) => Err(ApiError::Code(ApiErrorCode::Conflict)),
    }
}
