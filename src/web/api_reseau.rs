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
use utoipa::ToSchema;
use uuid::Uuid;

use super::api::{ErrorsJson, RefusalJson};
use super::api_error::{ApiError, ApiErrorCode, ErrorJson};
use super::openapi::{LaunchBody, RefusalOrError};
use super::{AppState, messages};
use crate::cache::Key;
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
        let acting = request.clone();
        let secret = super::guards::bearer(request).map(str::to_owned);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no state")))?;
            let Some(secret) = secret else {
                return Err(ApiError::Code(ApiErrorCode::Unauthorized));
            };
            let now = state.clock.now();
            let key =
                crate::services::api_keys::authenticate(&state.pool, &state.caches, &secret, now)
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
            // What its launches change (`web::changes`).
            super::changes::Acting::note(&acting, vec![Key::Organisation(key.organisation_id)]);
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

fn invalid(field: &str, message: String) -> HttpResponse {
    json(400, &ErrorsJson::one(field, message))
}

#[derive(Serialize, ToSchema)]
#[schema(as = Bucket)]
struct BucketJson {
    /// `allotment`, `rollover`, `purchase` or `adjustment`.
    #[schema(value_type = String)]
    source: &'static str,
    remaining: i64,
    /// RFC 3339, UTC.
    expires_at: String,
    /// null, or the only creation type it pays for (`video`, `image`, `musique`, `mini-livre`).
    #[schema(required = true)]
    restricted_to: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Use)]
struct UseJson {
    used: i64,
    /// The cap in force: the plan's, or a temporary raise's.
    cap: i64,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Limits)]
struct LimitsJson {
    /// Generations launched today (Europe/Paris) that are running or succeeded.
    daily: UseJson,
    /// Credits held by running generations plus those captured this calendar month.
    monthly: UseJson,
    /// Running generations.
    concurrent: UseJson,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Balance)]
struct BalanceJson {
    available: i64,
    held: i64,
    buckets: Vec<BucketJson>,
    limits: LimitsJson,
    low_balance_threshold: i64,
}

/// `GET /api/v1/solde`
#[utoipa::path(
    get,
    path = "/api/v1/solde",
    operation_id = "get_balance",
    tag = "reseau",
    summary = "The organisation's balance and limits",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The balance, its buckets and the limits in force.", body = BalanceJson),
        (status = 401, description = "No, unknown or revoked key (`unauthorized`).", body = ErrorJson),
        (status = 403, description = "The plan has no API (`forbidden`).", body = ErrorJson),
        (status = 429, description = "Over the key's rate (`rate_limited`).", body = ErrorJson,
            headers(("Retry-After" = i64, description = "Seconds to wait."))),
        (status = 503, description = "The database is unreachable.", body = ErrorJson,
            headers(("Retry-After" = i64, description = "Seconds to wait."))),
    ),
)]
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

#[derive(Serialize, ToSchema)]
#[schema(as = Generation)]
struct GenerationJson {
    id: Uuid,
    /// `video`, `image`, `musique` or `mini-livre`.
    #[serde(rename = "type")]
    creation_type: String,
    /// `running`, `succeeded`, `failed` or `expired`.
    status: String,
    credits_held: i64,
    credits_charged: i64,
    /// RFC 3339, UTC.
    created_at: String,
    /// RFC 3339, UTC; null while running.
    #[schema(required = true)]
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

#[derive(Serialize, ToSchema)]
#[schema(as = Launched)]
struct LaunchedJson {
    id: Uuid,
    /// `running`.
    status: String,
    credits_held: i64,
    /// The balance available after the hold.
    available: i64,
}

/// A launch refused: nothing is held.
#[derive(Serialize, ToSchema)]
#[schema(as = Refused)]
pub struct RefusedJson {
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

/// A JSON value as the simulator's text field (numbers and strings; `null` is absent). A
/// number with no fractional part is that whole number (`10.0` is `10`, as JSON Schema's
/// `integer` has it).
fn field(value: Option<&Value>) -> Result<Option<String>, ()> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
            _ => n.to_string(),
        })),
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
#[utoipa::path(
    post,
    path = "/api/v1/generations",
    operation_id = "launch_generation",
    tag = "reseau",
    summary = "Launch a generation",
    description = "One render per request, with the simulator's fields; checked in the order of \
        the contract (subscription, plan feature, prompt, concurrency, daily cap, monthly cap, \
        balance). The same Idempotency-Key with the same body gets the first answer again.",
    security(("api_key" = [])),
    params((
        "Idempotency-Key" = String,
        Header,
        description = "1 to 255 printable ASCII characters (spaces around are not part of it).",
        pattern = r"^[!-~]([ -~]{0,253}[!-~])?$",
    )),
    request_body(content = inline(LaunchBody), content_type = "application/json"),
    responses(
        (status = 201, description = "Launched: the hold is taken.", body = LaunchedJson),
        (status = 400, description = "Invalid input, Idempotency-Key or body.", body = ErrorsJson),
        (status = 401, description = "No, unknown or revoked key (`unauthorized`).", body = ErrorJson),
        (status = 402, description = "Refused: the balance (`balance`).", body = RefusedJson),
        (status = 403, description = "Refused: `suspended`, `plan_feature`, `not_priced` or `prompt`; or the plan has no API (`forbidden`).", body = RefusalOrError),
        (status = 409, description = "The same Idempotency-Key is still being answered (`idempotency_in_progress`).", body = ErrorJson),
        (status = 413, description = "A body over 64 KB (`payload_too_large`).", body = ErrorJson),
        (status = 422, description = "The same Idempotency-Key with another body (`idempotency_conflict`).", body = ErrorJson),
        (status = 429, description = "Refused: `concurrency`, `daily_cap` or `monthly_cap`; or over the key's rate (`rate_limited`, with Retry-After).", body = RefusalOrError,
            headers(("Retry-After" = i64, description = "Seconds to wait."))),
        (status = 503, description = "The database is unreachable, or the prompt checks could not be read.", body = ErrorJson,
            headers(("Retry-After" = i64, description = "Seconds to wait."))),
    ),
)]
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
    // The body's fingerprint, whatever it holds: an answer given before the launch (a wrong
    // content type, a body that is not a JSON object, a field of the wrong type) is kept with
    // the key as a launch's answer is (`answer_idempotent`).
    let fingerprint = hex::encode(Sha256::digest(&body));
    let raw = match launch_fields(&request, &body) {
        Ok(raw) => raw,
        Err(errors) => {
            let answer = Answer {
                status: 400,
                body: serde_json::to_string(&errors).unwrap_or_default(),
            };
            let now = state.clock.now();
            let given = generations::answer_idempotent(
                &state.pool,
                client.organisation,
                &key,
                &fingerprint,
                answer,
                now,
            )
            .await
            .map_err(fault)?;
            return idempotent_answer(given, now);
        }
    };
    let catalog = state.catalog.get(&state.pool).await?;
    let launched_by = client.launched_by();
    let launch = LaunchRequest {
        organisation: client.organisation,
        raw,
        via: Via::Api,
        launched_by: &launched_by,
        key: Some(&key),
    };
    let rules = state.prompt_checks.get().await?;
    let now = state.clock.now();
    let given = generations::launch_idempotent(
        &state.pool,
        &catalog,
        &rules,
        &launch,
        &fingerprint,
        launch_answer,
        now,
    )
    .await
    .map_err(fault)?;
    idempotent_answer(given, now)
}

/// `Retry-After` for a cap's refusal (429), from the rule its body names
/// (`domain::limits::wait_after_refusal`): read from the body, so that a stored answer replayed
/// later gets the time left then.
fn cap_retry_after(body: &str, now: time::OffsetDateTime) -> Option<i64> {
    let answer: Value = serde_json::from_str(body).ok()?;
    crate::domain::limits::wait_after_refusal(answer["refusal"]["rule"].as_str()?, now)
}

/// What an Idempotency-Key gave, as the API answers it; a cap's refusal with `Retry-After`.
fn idempotent_answer(
    given: Idempotent,
    now: time::OffsetDateTime,
) -> Result<HttpResponse, ApiError> {
    match given {
        Idempotent::Answer(answer) => {
            let retry = (answer.status == 429)
                .then(|| cap_retry_after(&answer.body, now))
                .flatten();
            let mut response = raw_json(answer.status, answer.body);
            if let Some(seconds) = retry {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    header::HeaderValue::from(seconds.max(1)),
                );
            }
            Ok(response)
        }
        Idempotent::InProgress => Err(ApiError::Code(ApiErrorCode::IdempotencyInProgress)),
        Idempotent::Conflict => Err(ApiError::Code(ApiErrorCode::IdempotencyConflict)),
    }
}

/// The launch's fields from a JSON object sent as `application/json`, as the simulator's text
/// fields; or the 400 answer's errors.
fn launch_fields(request: &HttpRequest, body: &[u8]) -> Result<RawSimulation, ErrorsJson> {
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ErrorsJson::one(
            "Content-Type",
            messages::api_input("content_type"),
        ));
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(ErrorsJson::one("body", messages::api_input("json")));
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
        // The prompt is text (the document says so): a number is not taken for its digits.
        let value = fields.get(name);
        let value = match (name, value) {
            ("prompt", Some(Value::Number(_))) => Err(()),
            _ => field(value),
        };
        match value {
            Ok(value) => *slot = value,
            Err(()) => {
                wrong.insert(name.to_owned(), messages::api_input("field_type"));
            }
        }
    }
    if !wrong.is_empty() {
        return Err(ErrorsJson { errors: wrong });
    }
    Ok(raw)
}

/// `GET /api/v1/generations/{id}`
#[utoipa::path(
    get,
    path = "/api/v1/generations/{id}",
    operation_id = "get_generation",
    tag = "reseau",
    summary = "A generation of the organisation",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The generation's id (a UUID).")),
    responses(
        (status = 200, description = "The generation.", body = GenerationJson),
        (status = 401, description = "No, unknown or revoked key (`unauthorized`).", body = ErrorJson),
        (status = 403, description = "The plan has no API (`forbidden`).", body = ErrorJson),
        (status = 404, description = "No such generation in the organisation (`not_found`).", body = ErrorJson),
        (status = 429, description = "Over the key's rate (`rate_limited`).", body = ErrorJson,
            headers(("Retry-After" = i64, description = "Seconds to wait."))),
        (status = 503, description = "The database is unreachable.", body = ErrorJson,
            headers(("Retry-After" = i64, description = "Seconds to wait."))),
    ),
)]
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

#[derive(Serialize, ToSchema)]
#[schema(as = GenerationList)]
struct ListJson {
    /// Newest first.
    generations: Vec<GenerationJson>,
}

/// `GET /api/v1/generations?status=running&limit=50`
#[utoipa::path(
    get,
    path = "/api/v1/generations",
    operation_id = "list_generations",
    tag = "reseau",
    summary = "The organisation's generations, newest first",
    security(("api_key" = [])),
    params(
        ("status" = Option<String>, Query, description = "Only those with this status (empty: all).",
            pattern = r"^(running|succeeded|failed|expired)?$"),
        ("limit" = Option<String>, Query, description = "How many (1–200, default 50).",
            pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*\+?0*([1-9]|[1-9][0-9]|1([0-9][0-9])|200)[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"),
    ),
    responses(
        (status = 200, description = "The generations.", body = ListJson),
        (status = 400, description = "A wrong `status` or `limit`.", body = ErrorsJson),
        (status = 401, description = "No, unknown or revoked key (`unauthorized`).", body = ErrorJson),
        (status = 403, description = "The plan has no API (`forbidden`).", body = ErrorJson),
        (status = 429, description = "Over the key's rate (`rate_limited`).", body = ErrorJson,
            headers(("Retry-After" = i64, description = "Seconds to wait."))),
        (status = 503, description = "The database is unreachable.", body = ErrorJson,
            headers(("Retry-After" = i64, description = "Seconds to wait."))),
    ),
)]
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

/// The engine's report.
#[allow(dead_code)]
#[derive(ToSchema)]
#[schema(as = ReportBody)]
struct ReportBodyJson {
    /// The outcome.
    #[schema(pattern = r"^(succeeded|failed)$")]
    status: String,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Report)]
struct ReportJson {
    id: Uuid,
    status: String,
    credits_charged: i64,
}

/// `POST /api/v1/moteur/generations/{id}`: the engine's report (bearer token checked by the
/// engine scope).
#[utoipa::path(
    post,
    path = "/api/v1/moteur/generations/{id}",
    operation_id = "report_generation",
    tag = "moteur",
    summary = "The engine reports a generation's outcome",
    description = "`succeeded` captures the hold, `failed` releases it. The same report again: \
        the same 200; the other outcome after one is recorded, or any after the expiry: 409.",
    security(("engine_token" = [])),
    params(("id" = String, Path, description = "The generation's id (a UUID).")),
    request_body(content = ReportBodyJson, content_type = "application/json"),
    responses(
        (status = 200, description = "Recorded.", body = ReportJson),
        (status = 400, description = "Not a JSON object with `status` `succeeded` or `failed`.", body = ErrorsJson),
        (status = 401, description = "No or wrong token (`unauthorized`).", body = ErrorJson),
        (status = 404, description = "No such generation (`not_found`).", body = ErrorJson),
        (status = 409, description = "Another outcome is recorded, or the generation expired (`conflict`).", body = ErrorJson),
        (status = 413, description = "A body over 64 KB (`payload_too_large`).", body = ErrorJson),
        (status = 503, description = "The database is unreachable.", body = ErrorJson,
            headers(("Retry-After" = i64, description = "Seconds to wait."))),
    ),
)]
pub async fn report(
    state: web::Data<AppState>,
    request: HttpRequest,
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
        Report::Recorded(g) => {
            super::changes::Acting::note(&request, vec![Key::Organisation(g.organisation_id)]);
            Ok(json(
                200,
                &ReportJson {
                    id: g.id,
                    status: g.status,
                    credits_charged: g.credits_charged,
                },
            ))
        }
        Report::NotFound => Err(ApiError::Code(ApiErrorCode::NotFound)),
        Report::Conflict(g) => {
            // Refused, but a late report may have expired the generation (its hold released).
            super::changes::Acting::note(&request, vec![Key::Organisation(g.organisation_id)]);
            Err(ApiError::Code(ApiErrorCode::Conflict))
        }
    }
}

#[cfg(test)]
mod retry_tests {
    use super::cap_retry_after;
    use time::macros::datetime;

    fn refused(rule: &str) -> String {
        format!(r#"{{"refusal":{{"rule":"{rule}","message":"…"}}}}"#)
    }

    #[test]
    fn a_cap_s_wait_ends_at_paris_s_midnight_summer_time_or_not() {
        // 23:00 in Paris on 27 March 2027; summer time starts that night at 02:00.
        let now = datetime!(2027-03-27 22:00 UTC);
        assert_eq!(cap_retry_after(&refused("daily_cap"), now), Some(3600));
        // 1 April, 00:00 in Paris, is 31 March 22:00 UTC: four days exactly, not 4 days + 1 h.
        assert_eq!(
            cap_retry_after(&refused("monthly_cap"), now),
            Some(4 * 86_400)
        );
        // 31 December: the next month is January of the next year.
        let now = datetime!(2026-12-31 12:00 UTC);
        assert_eq!(
            cap_retry_after(&refused("monthly_cap"), now),
            Some(11 * 3600)
        );
        assert_eq!(cap_retry_after(&refused("concurrency"), now), Some(15));
        assert_eq!(cap_retry_after(&refused("balance"), now), None);
        assert_eq!(cap_retry_after("not json", now), None);
    }
}
