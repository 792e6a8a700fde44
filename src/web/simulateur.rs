//! `/simulateur`: the credit simulator, a plain GET form whose answer is a shareable URL.

use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::Context;
use askama::Template;
use time::OffsetDateTime;

use super::error::PageError;
use super::extract::MaybeUser;
use super::filters;
use super::layout::Layout;
use super::{AppState, messages};
use crate::domain::catalog::Plan;
use crate::domain::ledger::BucketSource;
use crate::domain::limits::{LimitRule, Stop};
use crate::domain::pricing::{Illustrations, QuoteLine};
use crate::domain::simulation::RawSimulation;
use crate::services::simulator::{self, Account, SimulationError, Verdict};

/// The parameters of a query string, the last occurrence of each winning; never fails (a
/// malformed query string simply yields fewer parameters).
pub fn raw_simulation(query: &str) -> RawSimulation {
    let mut raw = RawSimulation::default();
    // Decoded in place (invalid UTF-8 replaced, as serde_urlencoded does): only the values of
    // known parameters are copied.
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match key.as_ref() {
            "type" => &mut raw.creation_type,
            "duree" => &mut raw.duree,
            "format" => &mut raw.format,
            "resolution" => &mut raw.resolution,
            "pages" => &mut raw.pages,
            "illustrations" => &mut raw.illustrations,
            "quantite" => &mut raw.quantite,
            "plan" => &mut raw.plan,
            "prompt" => &mut raw.prompt,
            _ => continue,
        };
        *slot = Some(value.into_owned());
    }
    raw
}

/// The form's values, as typed, for re-display.
#[derive(Debug, Default)]
pub struct FormValues {
    pub creation_type: String,
    pub duree: String,
    pub format: String,
    pub resolution: String,
    pub pages: String,
    pub illustrations: String,
    pub quantite: String,
    pub plan: String,
    pub prompt: String,
}

impl FormValues {
    pub(crate) fn from_raw(raw: &RawSimulation, default_plan: &str) -> Self {
        let v = |o: &Option<String>| o.clone().unwrap_or_default();
        let lower = |o: &Option<String>| o.as_deref().unwrap_or("").trim().to_lowercase();
        let plan = lower(&raw.plan);
        Self {
            creation_type: lower(&raw.creation_type),
            duree: v(&raw.duree),
            format: lower(&raw.format),
            resolution: if lower(&raw.resolution) == "4k" {
                "4k".into()
            } else {
                "hd".into()
            },
            pages: v(&raw.pages),
            illustrations: if lower(&raw.illustrations) == "riches" {
                "riches".into()
            } else {
                "simples".into()
            },
            quantite: raw.quantite.clone().unwrap_or_else(|| "1".into()),
            plan: if plan.is_empty() {
                default_plan.to_owned()
            } else {
                plan
            },
            prompt: v(&raw.prompt),
        }
    }
}

pub struct FieldMessage {
    pub field: &'static str,
    pub message: String,
}

/// A priced plan, for the comparison table.
pub struct PlanRow<'c> {
    pub name: &'c str,
    pub current: bool,
    pub unit: Option<i64>,
    pub total: Option<i64>,
    pub refusal: Option<String>,
}

/// Borrows the catalog it is composed from: no plan is copied per request.
#[derive(Template)]
#[template(path = "simulateur/page.html")]
pub struct SimulateurPage<'c> {
    pub layout: Layout,
    pub form: FormValues,
    pub errors: Vec<FieldMessage>,
    pub plans: &'c [Plan],
    pub verdict: Option<Verdict<'c>>,
    pub refusal: Option<String>,
    pub rows: Vec<PlanRow<'c>>,
    pub category: Option<String>,
    pub advice: Vec<String>,
    pub share_url: String,
    /// The signed-in organisation's plan name: the form does not offer a choice then.
    pub account_plan: Option<String>,
    /// Signed in: the credits the batch would use, bucket by bucket.
    pub drawn: Vec<Drawn>,
}

/// Credits a batch would take from one bucket.
pub struct Drawn {
    pub credits: i64,
    pub source: crate::domain::ledger::BucketSource,
    pub restricted_to: Option<String>,
    pub last_day: time::Date,
}

impl SimulateurPage<'_> {
    pub fn error_for(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }

    pub fn invalid(&self, field: &str) -> &'static str {
        if self.error_for(field).is_some() {
            "true"
        } else {
            "false"
        }
    }

    pub fn checked(&self, field: &str, value: &str) -> bool {
        let current = match field {
            "resolution" => &self.form.resolution,
            "illustrations" => &self.form.illustrations,
            "plan" => &self.form.plan,
            "type" => &self.form.creation_type,
            "format" => &self.form.format,
            _ => return false,
        };
        current == value
    }
}

/// Pages already composed for visitors who are not signed in, by query string: the simulator
/// is a GET form whose answer depends only on the URL, the catalog and the date, so a shared
/// link or the same question asked again is served from memory.
pub struct PageCache {
    /// Bounded; when full, the pages asked once make way for new ones and the frequent ones
    /// stay (quick_cache's S3-FIFO).
    pages: quick_cache::sync::Cache<String, CachedPage>,
    /// A page is kept from the second time its query is asked: most questions are asked once.
    asked: crate::admission::SecondAsk,
}

impl Default for PageCache {
    fn default() -> Self {
        Self {
            pages: quick_cache::sync::Cache::new(CACHED_PAGES),
            asked: crate::admission::SecondAsk::new(CACHED_PAGES),
        }
    }
}

#[derive(Clone)]
struct CachedPage {
    fingerprint: u64,
    date: time::Date,
    status: actix_web::http::StatusCode,
    body: web::Bytes,
}

/// Distinct answers kept (about 10 kB each).
const CACHED_PAGES: usize = 1024;
/// Longer query strings (a long prompt) are composed each time.
const CACHED_QUERY_MAX: usize = 1024;

impl PageCache {
    fn get(&self, query: &str, fingerprint: u64, date: time::Date) -> Option<HttpResponse> {
        let page = self.pages.get(query)?;
        (page.fingerprint == fingerprint && page.date == date)
            .then(|| respond(page.status, page.body.clone()))
    }

    /// Keeps `page` if its query was asked before (and is not too long).
    fn put(&self, query: &str, page: impl FnOnce() -> CachedPage) {
        if query.len() > CACHED_QUERY_MAX || !self.asked.asked_before(query) {
            return;
        }
        self.pages.insert(query.to_owned(), page());
    }
}

pub async fn page(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    user: MaybeUser,
) -> Result<HttpResponse, PageError> {
    let catalog = state.catalog.get(&state.pool).await?;
    let now = state.clock.now();
    let query = request.query_string();
    // Signed in: the organisation's own plan, whatever the URL says, and its real balance,
    // buckets and use of the fair-use limits.
    let (account_plan, credits) = match user.0.as_ref().and_then(|u| u.organisation) {
        Some(organisation) => {
            let plan = crate::services::accounts::organisation(&state.pool, organisation)
                .await?
                .map(|o| o.plan_id);
            let credits = crate::services::credits::for_simulator(&state.pool, organisation, now)
                .await
                .map_err(PageError::from)?;
            (plan, Some(credits))
        }
        None => (None, None),
    };
    let anonymous = user.0.is_none();
    if anonymous
        && let Some(cached) = state
            .simulator_pages
            .get(query, cache_key(&catalog, now), now.date())
    {
        return Ok(cached);
    }
    let raw = raw_simulation(query);
    // The blank form checks no prompt: it does not wait for the prompt checks.
    let rules = if raw.is_blank() {
        None
    } else {
        Some(state.prompt_checks.get().await?)
    };
    // Without a prompt, the page costs a few tens of microseconds whatever the parameters (the
    // catalog's few plans and rules): bounded work, composed on this worker when nothing
    // competes with it (`CpuPool::run_or_here`). The prompt check's cost grows with the
    // prompt's length: with one, the page is always composed on the pool.
    let bounded = raw.prompt.as_deref().is_none_or(|p| p.trim().is_empty());
    let (shared, composed_from) = (state.clone(), catalog.clone());
    let (status, body) = state
        .cpu
        .run_or_here(bounded, move || {
            compose(
                &shared.config.public_url,
                &composed_from,
                rules.as_deref(),
                raw,
                layout,
                account_plan,
                credits,
                now,
            )
        })
        .await
        .context("simulator page")??;
    if anonymous {
        state.simulator_pages.put(query, || CachedPage {
            fingerprint: cache_key(&catalog, now),
            date: now.date(),
            status,
            body: body.clone(),
        });
    }
    Ok(respond(status, body))
}

/// The catalog and the schedule version in force: a version whose date comes (at midnight in
/// Paris, not in UTC) changes the answers without changing the catalog.
fn cache_key(catalog: &crate::services::catalog::Catalog, now: OffsetDateTime) -> u64 {
    let schedule = catalog.schedule_at(now).map_or(0, |s| s.id);
    catalog.fingerprint ^ (schedule as u64).rotate_left(32)
}

fn respond(status: actix_web::http::StatusCode, body: web::Bytes) -> HttpResponse {
    use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
    // A static value: not parsed nor copied per response.
    HttpResponse::build(status)
        .insert_header((
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ))
        .body(body)
}

/// The page for the parameters `raw`: the blank form, the form with its errors (400), or the
/// verdict.
#[allow(clippy::too_many_arguments)]
fn compose(
    public_url: &str,
    catalog: &crate::services::catalog::Catalog,
    rules: Option<&crate::domain::prompt::PromptRules>,
    mut raw: RawSimulation,
    layout: Layout,
    account_plan: Option<String>,
    credits: Option<crate::services::credits::SimulatorCredits>,
    now: OffsetDateTime,
) -> Result<(actix_web::http::StatusCode, web::Bytes), PageError> {
    // The balance a batch of this type can use: general buckets and those kept for the type.
    let buckets: Vec<crate::domain::ledger::Bucket> = credits
        .as_ref()
        .map(|c| c.buckets.iter().map(|b| b.as_domain()).collect())
        .unwrap_or_default();
    let creation_type = raw
        .creation_type
        .as_deref()
        .map(|t| t.trim().to_lowercase())
        .unwrap_or_default();
    let account = match &credits {
        Some(c) => Account {
            balance: Some(
                crate::domain::ledger::available_for(&buckets, Some(&creation_type), now).0,
            ),
            usage: c.usage,
        },
        None => Account::default(),
    };
    if let Some(plan) = &account_plan {
        raw.plan = Some(plan.clone());
    }
    let form = FormValues::from_raw(&raw, catalog.default_plan());
    let mut page = SimulateurPage {
        layout,
        form,
        errors: Vec::new(),
        plans: &catalog.plans,
        verdict: None,
        refusal: None,
        rows: Vec::new(),
        category: None,
        advice: Vec::new(),
        share_url: String::new(),
        account_plan: account_plan
            .as_deref()
            .and_then(|id| catalog.plan(id))
            .map(|p| p.name.clone()),
        drawn: Vec::new(),
    };
    // No type chosen at all: the blank form (possibly with a plan pre-selected).
    let Some(rules) = rules.filter(|_| !raw.is_blank()) else {
        return render(&page, actix_web::http::StatusCode::OK);
    };
    match simulator::simulate(catalog, rules, &raw, now, account) {
        Err(SimulationError::Unavailable) => Err(PageError::Unavailable(anyhow::anyhow!(
            "no price schedule in force"
        ))),
        Err(SimulationError::Invalid(errors)) => {
            page.errors = errors
                .iter()
                .map(|(field, error)| FieldMessage {
                    field,
                    message: messages::field_error(field, error),
                })
                .collect();
            render(&page, actix_web::http::StatusCode::BAD_REQUEST)
        }
        Ok(verdict) => {
            page.refusal = verdict.outcome.as_ref().err().map(messages::refusal);
            page.rows = verdict
                .per_plan
                .iter()
                .map(|pq| PlanRow {
                    name: &pq.plan.name,
                    current: pq.plan.id == verdict.plan.id,
                    unit: pq.outcome.as_ref().ok().map(|q| q.unit),
                    total: pq.outcome.as_ref().ok().map(|q| q.total),
                    refusal: pq.outcome.as_ref().err().map(messages::refusal),
                })
                .collect();
            page.category = verdict.prompt.category.map(messages::category);
            page.advice = verdict.prompt.advice.iter().map(messages::advice).collect();
            page.share_url = format!("{}/simulateur?{}", public_url, share_query(&verdict));
            // The buckets the batch would draw from, in the consumption order.
            if let (Some(c), Ok(quote)) = (&credits, verdict.outcome.as_ref()) {
                let cost =
                    crate::domain::money::Credits(quote.total.min(account.balance.unwrap_or(0)));
                let id = verdict.simulation.request.creation.creation_type().id();
                page.drawn = crate::domain::ledger::draw(&buckets, id, cost, now)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|(bucket, n)| {
                        c.buckets.iter().find(|b| b.id == bucket).map(|b| Drawn {
                            credits: n.0,
                            source: b.source,
                            restricted_to: b.restricted_to.clone(),
                            last_day: b.last_day,
                        })
                    })
                    .collect();
            }
            page.verdict = Some(verdict);
            render(&page, actix_web::http::StatusCode::OK)
        }
    }
}

/// The largest page rendered so far: the next one is rendered into a buffer of that size, which
/// then grows (and copies what it holds) at most once, rarely, instead of several times a page.
static RENDERED_MAX: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn render(
    page: &SimulateurPage,
    status: actix_web::http::StatusCode,
) -> Result<(actix_web::http::StatusCode, web::Bytes), PageError> {
    use std::sync::atomic::Ordering;
    let mut body = String::with_capacity(
        RENDERED_MAX
            .load(Ordering::Relaxed)
            .max(SimulateurPage::SIZE_HINT),
    );
    page.render_into(&mut body)?;
    RENDERED_MAX.fetch_max(body.len(), Ordering::Relaxed);
    // The String's buffer becomes the body as it is: not copied.
    Ok((status, web::Bytes::from(body)))
}

/// The canonical query string of a verdict: only the parameters that apply, normalised.
/// Written with `form_urlencoded` itself (what `serde_urlencoded` writes with, without its serde
/// machinery: the same bytes, a few hundred nanoseconds less per simulator page).
pub fn share_query(verdict: &Verdict) -> String {
    let mut query = form_urlencoded::Serializer::new(String::with_capacity(96));
    query
        .extend_pairs(crate::domain::pricing::request_pairs(
            &verdict.simulation.request,
        ))
        .append_pair("plan", &verdict.plan.id);
    if !verdict.simulation.prompt.is_empty() {
        query.append_pair("prompt", &verdict.simulation.prompt);
    }
    query.finish()
}

// Helpers the template calls.
impl SimulateurPage<'_> {
    pub fn is_rich(i: &Illustrations) -> bool {
        *i == Illustrations::Rich
    }

    pub fn stop_is(stop: &Stop, rule: &str) -> bool {
        matches!(
            (stop.rule, rule),
            (LimitRule::Daily, "daily")
                | (LimitRule::Monthly, "monthly")
                | (LimitRule::Balance, "balance")
        )
    }

    pub fn line_credits(line: &QuoteLine) -> i64 {
        match *line {
            QuoteLine::Tier { credits, .. }
            | QuoteLine::Surcharge4k { credits }
            | QuoteLine::Pages { credits, .. } => credits,
        }
    }
}

#[cfg(test)]
mod page_cache_tests {
    use super::{CACHED_PAGES, CACHED_QUERY_MAX, CachedPage, PageCache};
    use actix_web::http::StatusCode;
    use actix_web::web::Bytes;

    fn page(fingerprint: u64, date: time::Date, body: &'static str) -> CachedPage {
        CachedPage {
            fingerprint,
            date,
            status: StatusCode::OK,
            body: Bytes::from_static(body.as_bytes()),
        }
    }

    #[test]
    fn a_kept_page_serves_only_the_same_catalog_on_the_same_day() {
        let cache = PageCache::default();
        let today = time::macros::date!(2026 - 11 - 24);
        let tomorrow = time::macros::date!(2026 - 11 - 25);
        cache.put("type=image", || page(7, today, "prix de mardi"));
        assert!(
            cache.get("type=image", 7, today).is_none(),
            "asked once: not kept"
        );
        cache.put("type=image", || page(7, today, "prix de mardi"));
        assert!(cache.get("type=image", 7, today).is_some(), "asked twice");
        assert!(
            cache.get("type=image", 8, today).is_none(),
            "prices changed"
        );
        assert!(
            cache.get("type=image", 7, tomorrow).is_none(),
            "another schedule may apply"
        );
        assert!(cache.get("type=video", 7, today).is_none());
        let long = "prompt=".to_owned() + &"a".repeat(CACHED_QUERY_MAX);
        cache.put(&long, || page(7, today, "long"));
        cache.put(&long, || page(7, today, "long"));
        assert!(
            cache.get(&long, 7, today).is_none(),
            "long queries are not kept"
        );
        for n in 0..CACHED_PAGES {
            for _ in 0..2 {
                cache.put(&format!("quantite={n}"), || page(7, today, "x"));
            }
        }
        let kept = cache.pages.len();
        assert!(kept <= CACHED_PAGES, "bounded: {kept}");
    }

    #[test]
    fn a_full_cache_keeps_the_pages_asked_often() {
        let cache = PageCache::default();
        let today = time::macros::date!(2026 - 11 - 24);
        for _ in 0..2 {
            cache.put("type=image", || page(7, today, "souvent"));
        }
        for _ in 0..3 {
            assert!(cache.get("type=image", 7, today).is_some());
        }
        for n in 0..3 * CACHED_PAGES {
            for _ in 0..2 {
                cache.put(&format!("quantite={n}"), || page(7, today, "une fois"));
            }
        }
        assert!(
            cache.get("type=image", 7, today).is_some(),
            "a frequent page survives a wave of one-off pages"
        );
    }
}
