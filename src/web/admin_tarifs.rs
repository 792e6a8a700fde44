//! `/admin/tarifs` and `/admin/packs`: staff publish versions of the price schedule (dated today
//! or later), preview the Tarifs guide and the simulator on a date to come, and add, change or
//! retire packs. Every change goes through `services::prices` (a new row, audited).

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use time::{Date, OffsetDateTime};

use super::admin::NoticeQuery;
use super::error::PageError;
use super::extract::Staff;
use super::layout::Layout;
use super::{AppState, csrf, filters, messages};
use crate::db::catalog::PackVersion;
use crate::domain::price_edit::{self, PackForm, Problem, Problems, paris_midnight};
use crate::domain::pricing::{CreationType, Illustrations, RuleKind};
use crate::services::prices::{self, PriceError};

/// Today in Paris.
fn today(now: OffsetDateTime) -> Date {
    crate::domain::format::paris(now).date()
}

fn fault(error: PriceError) -> PageError {
    match error {
        PriceError::UnknownPack => PageError::NotFound,
        PriceError::Fault(f) => f.into(),
        PriceError::Refused(_) => PageError::BadRequest,
    }
}

/// A line of the list of versions.
pub struct VersionLine {
    pub id: i64,
    pub day: Date,
    pub published: OffsetDateTime,
    pub note: String,
    /// `vigueur` (in force now), `avenir` (to come) or `passee` (replaced).
    pub state: &'static str,
}

/// A rule of the new version's form: what it prices, and the value typed.
pub struct RuleLine {
    pub index: usize,
    pub creation: CreationType,
    pub kind: RuleKind,
    pub plan: Option<String>,
    pub value: String,
}

impl RuleLine {
    pub fn is_rich(&self) -> bool {
        matches!(
            self.kind,
            RuleKind::PerPage {
                illustrations: Illustrations::Rich,
                ..
            }
        )
    }
}

/// The new version's form as typed.
#[derive(Default)]
pub struct VersionForm {
    pub date: String,
    pub motif: String,
}

pub struct PackField {
    pub name: &'static str,
    pub value: String,
    pub size: usize,
}

/// A pack's line: its latest version and its change form (as typed when refused).
pub struct PackLine {
    pub current: PackVersion,
    pub form: PackForm,
}

#[derive(Template)]
#[template(path = "admin/tarifs.html")]
struct TarifsPage {
    layout: Layout,
    csrf: String,
    today: Date,
    versions: Vec<VersionLine>,
    base: i64,
    rules: Vec<RuleLine>,
    version: VersionForm,
    /// The form refused (`version`, `nouveau`, `pack-<id>`, `retrait-<id>`) and its problems.
    refused: Option<(String, Problems)>,
    packs: Vec<PackLine>,
    new_pack: PackForm,
    types: [CreationType; 4],
    notice: Option<String>,
}

impl TarifsPage {
    /// The problem of `field` in the form `form`, when that form was refused.
    fn problem(&self, form: &str, field: &str) -> Option<Problem> {
        self.refused
            .as_ref()
            .filter(|(f, _)| f == form)
            .and_then(|(_, problems)| problems.iter().find(|(k, _)| k == field))
            .map(|(_, p)| *p)
    }

    fn invalid(&self, form: &str, field: &str) -> &'static str {
        if self.problem(form, field).is_some() {
            "true"
        } else {
            "false"
        }
    }

    /// The text fields of a pack's form (their labels are the template's).
    fn pack_fields(form: &PackForm, new: bool) -> Vec<PackField> {
        let mut fields = Vec::with_capacity(5);
        if new {
            fields.push(PackField {
                name: "id",
                value: form.id.clone(),
                size: 40,
            });
        }
        for (name, value, size) in [
            ("nom", &form.nom, 100),
            ("credits", &form.credits, 7),
            ("prix", &form.prix, 12),
            ("motif", &form.motif, 500),
        ] {
            fields.push(PackField {
                name,
                value: value.clone(),
                size,
            });
        }
        fields
    }

    fn refused_form(&self, form: &str) -> bool {
        self.refused.as_ref().is_some_and(|(f, _)| f == form)
    }
}

/// What a refused form brings back to the page.
#[derive(Default)]
struct Kept {
    version: Option<(VersionForm, Vec<String>)>,
    new_pack: Option<PackForm>,
    pack: Option<(String, PackForm)>,
    refused: Option<(String, Problems)>,
}

async fn tarifs_page(
    state: &AppState,
    request: &HttpRequest,
    layout: Layout,
    kept: Kept,
    notice: Option<String>,
) -> Result<String, PageError> {
    let now = state.clock.now();
    let file = prices::file(&state.pool).await?;
    let catalog = state.catalog.get(&state.pool).await?;
    let in_force = catalog.schedule_at(now).map(|s| s.id);
    let versions = file
        .versions
        .into_iter()
        .map(|v| VersionLine {
            id: v.id,
            day: crate::domain::format::paris(v.effective_from).date(),
            published: v.created_at,
            state: if Some(v.id) == in_force {
                "vigueur"
            } else if v.effective_from > now {
                "avenir"
            } else {
                "passee"
            },
            note: v.note,
        })
        .collect();
    let plan_name = |id: &str| {
        catalog
            .plan(id)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| id.to_owned())
    };
    let (version, typed) = match kept.version {
        Some((form, values)) => (form, Some(values)),
        None => (VersionForm::default(), None),
    };
    let (base, rules) = match &file.latest {
        Some(latest) => (
            latest.id,
            latest
                .rules
                .iter()
                .enumerate()
                .map(|(index, rule)| RuleLine {
                    index,
                    creation: rule.creation_type,
                    kind: rule.kind,
                    plan: rule.plan.as_deref().map(plan_name),
                    value: typed
                        .as_ref()
                        .and_then(|t| t.get(index).cloned())
                        .unwrap_or_else(|| price_edit::rule_value(rule).to_string()),
                })
                .collect(),
        ),
        None => (0, Vec::new()),
    };
    let packs = file
        .packs
        .into_iter()
        .map(|current| {
            let form = match &kept.pack {
                Some((id, form)) if *id == current.pack.id => form.clone(),
                _ => PackForm {
                    id: current.pack.id.clone(),
                    nom: current.pack.name.clone(),
                    credits: current.pack.credits.0.to_string(),
                    prix: crate::domain::format::euros(current.pack.price_cents.0)
                        .trim_end_matches(['€', '\u{a0}'])
                        .to_owned(),
                    restricted_to: current
                        .pack
                        .restricted_to
                        .map(|t| t.id().to_owned())
                        .unwrap_or_default(),
                    motif: String::new(),
                },
            };
            PackLine { current, form }
        })
        .collect();
    Ok(TarifsPage {
        layout,
        csrf: csrf::token(request)?,
        today: today(now),
        versions,
        base,
        rules,
        version,
        refused: kept.refused,
        packs,
        new_pack: kept.new_pack.unwrap_or_default(),
        types: CreationType::ALL,
        notice,
    }
    .render()?)
}

/// `GET /admin/tarifs`.
pub async fn page(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    _staff: Staff,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, PageError> {
    let notice = query
        .notice(&["publiee", "ajoute", "modifie", "retire"])
        .map(str::to_owned);
    let body = tarifs_page(&state, &request, layout, Kept::default(), notice).await?;
    Ok(super::html(200, body))
}

/// The answer to a price form: back to the page with `done`'s notice, or the page again with
/// the form refused (400; 409 when another version was published since it was shown).
async fn answer(
    state: &AppState,
    request: &HttpRequest,
    layout: Layout,
    outcome: Result<(), PriceError>,
    done: &str,
    refused: impl FnOnce(Problems) -> Kept,
) -> Result<HttpResponse, PageError> {
    match outcome {
        Ok(()) => {
            state.catalog.invalidate();
            Ok(super::see_other(done))
        }
        Err(PriceError::Refused(problems)) => {
            let stale = problems.iter().any(|(_, p)| *p == Problem::Stale);
            let body = tarifs_page(state, request, layout, refused(problems), None).await?;
            Ok(super::html(if stale { 409 } else { 400 }, body))
        }
        Err(other) => Err(fault(other)),
    }
}

/// `POST /admin/tarifs`: a new version of the schedule, from the latest one's rules.
pub async fn publish(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    staff: Staff,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let fields = form.into_inner();
    let get = |name: &str| {
        fields
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.chars().take(600).collect::<String>())
            .unwrap_or_default()
    };
    let typed = VersionForm {
        date: get("date"),
        motif: get("motif"),
    };
    let base: i64 = get("base").trim().parse().unwrap_or(-1);
    let now = state.clock.now();
    let file = prices::file(&state.pool).await?;
    let Some(latest) = file.latest else {
        return Err(PageError::Unavailable(anyhow::anyhow!(
            "no price schedule to start from"
        )));
    };
    let values: Vec<String> = (0..latest.rules.len())
        .map(|i| get(&format!("regle-{i}")))
        .collect();
    let mut problems = Problems::new();
    let date = price_edit::parse_effective_date(&typed.date, today(now))
        .map_err(|p| problems.push(("date".into(), p)))
        .ok();
    let reason = price_edit::parse_reason(&typed.motif)
        .map_err(|p| problems.push(("motif".into(), p)))
        .ok();
    let rules = price_edit::new_rules(&latest, &values)
        .map_err(|p| problems.extend(p))
        .ok();
    let outcome = match (date, reason, rules) {
        (Some(date), Some(reason), Some(rules)) if problems.is_empty() => {
            prices::publish_schedule(
                &state.pool,
                &staff.actor(),
                &reason,
                base,
                date,
                &rules,
                today(now),
                now,
            )
            .await
        }
        _ => Err(PriceError::Refused(problems)),
    };
    // A stale form shows the latest values again (its typed values would hide them).
    answer(
        &state,
        &request,
        layout,
        outcome.map(|_| ()),
        "/admin/tarifs?avis=publiee",
        |problems| {
            let stale = problems.iter().any(|(_, p)| *p == Problem::Stale);
            Kept {
                version: Some((typed, if stale { Vec::new() } else { values })),
                refused: Some(("version".into(), problems)),
                ..Kept::default()
            }
        },
    )
    .await
}

/// `POST /admin/packs`: a new pack, on sale at once.
pub async fn add_pack(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    staff: Staff,
    form: web::Form<PackForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    let id = form.id.trim().to_owned();
    let outcome = match price_edit::parse_pack(&form, &id) {
        Ok((pack, reason)) => {
            prices::add_pack(
                &state.pool,
                &staff.actor(),
                &reason,
                &pack,
                state.clock.now(),
            )
            .await
        }
        Err(problems) => Err(PriceError::Refused(problems)),
    };
    answer(
        &state,
        &request,
        layout,
        outcome,
        "/admin/tarifs?avis=ajoute#packs",
        |problems| Kept {
            new_pack: Some(form),
            refused: Some(("nouveau".into(), problems)),
            ..Kept::default()
        },
    )
    .await
}

/// `POST /admin/packs/{id}`: the pack's next version.
pub async fn change_pack(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    staff: Staff,
    id: web::Path<String>,
    form: web::Form<PackForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    let outcome = match price_edit::parse_pack(&form, &id) {
        Ok((pack, reason)) => {
            prices::change_pack(
                &state.pool,
                &staff.actor(),
                &reason,
                &pack,
                state.clock.now(),
            )
            .await
        }
        Err(problems) => Err(PriceError::Refused(problems)),
    };
    answer(
        &state,
        &request,
        layout,
        outcome,
        "/admin/tarifs?avis=modifie#packs",
        |problems| Kept {
            pack: Some((id.to_string(), form)),
            refused: Some((format!("pack-{id}"), problems)),
            ..Kept::default()
        },
    )
    .await
}

#[derive(Default, serde::Deserialize)]
pub struct RetireForm {
    #[serde(default)]
    motif: String,
}

/// `POST /admin/packs/{id}/retrait`: no longer sold.
pub async fn retire_pack(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    staff: Staff,
    id: web::Path<String>,
    form: web::Form<RetireForm>,
) -> Result<HttpResponse, PageError> {
    let outcome = match price_edit::parse_reason(&form.motif) {
        Ok(reason) => {
            prices::retire_pack(&state.pool, &staff.actor(), &reason, &id, state.clock.now()).await
        }
        Err(problem) => Err(PriceError::Refused(vec![("motif".into(), problem)])),
    };
    answer(
        &state,
        &request,
        layout,
        outcome,
        "/admin/tarifs?avis=retire#packs",
        |problems| Kept {
            refused: Some((format!("retrait-{id}"), problems)),
            ..Kept::default()
        },
    )
    .await
}

// ---------------------------------------------------------------- preview

/// A plan's answer in the preview's simulator.
pub struct PreviewRow {
    pub plan: String,
    pub unit: Option<i64>,
    pub total: Option<i64>,
    pub refusal: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/apercu.html")]
struct PreviewPage {
    layout: Layout,
    /// The date as typed, and the date previewed.
    typed: String,
    date: Date,
    date_problem: Option<Problem>,
    /// The version that applies on that date.
    version: Option<(i64, Date)>,
    guide: String,
    form: super::simulateur::FormValues,
    types: [CreationType; 4],
    rows: Vec<PreviewRow>,
    errors: Vec<String>,
}

/// `GET /admin/tarifs/apercu?date=…&type=…`: the Tarifs guide and the simulator as they will
/// read on that date (Europe/Paris, from midnight; today: now).
pub async fn preview(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    _staff: Staff,
) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let today = today(now);
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(request.query_string()).unwrap_or_default();
    let typed = pairs
        .iter()
        .rev()
        .find(|(k, _)| k == "date")
        .map(|(_, v)| v.chars().take(20).collect::<String>())
        .unwrap_or_default();
    let (date, date_problem) = if typed.trim().is_empty() {
        (today, None)
    } else {
        // Any date may be previewed, past ones included (what the guide said then).
        match price_edit::parse_effective_date(&typed, Date::MIN) {
            Ok(date) => (date, None),
            Err(problem) => (today, Some(problem)),
        }
    };
    let at = if date == today {
        now
    } else {
        paris_midnight(date)
    };
    let catalog = state.catalog.get(&state.pool).await?;
    let version = catalog
        .schedule_at(at)
        .map(|s| (s.id, crate::domain::format::paris(s.effective_from).date()));
    let library = state.help.library();
    let guide = match library.get("tarifs") {
        Some(guide) => super::aide::guide_body(guide, &catalog, at)?,
        None => String::new(),
    };
    let raw = super::simulateur::raw_simulation(request.query_string());
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    if raw.creation_type.is_some() {
        use crate::services::simulator::{Account, SimulationError, simulate};
        let rules = state.prompt_checks.get().await?;
        match simulate(&catalog, &rules, &raw, at, Account::default()) {
            Ok(verdict) => {
                rows = verdict
                    .per_plan
                    .iter()
                    .map(|pq| PreviewRow {
                        plan: pq.plan.name.clone(),
                        unit: pq.outcome.as_ref().ok().map(|q| q.unit),
                        total: pq.outcome.as_ref().ok().map(|q| q.total),
                        refusal: pq.outcome.as_ref().err().map(messages::refusal),
                    })
                    .collect();
            }
            Err(SimulationError::Invalid(found)) => {
                errors = found
                    .iter()
                    .map(|(field, error)| messages::field_error(field, error))
                    .collect();
            }
            Err(SimulationError::Unavailable) => {}
        }
    }
    let form = super::simulateur::FormValues::from_raw(&raw, catalog.default_plan());
    let status = if date_problem.is_some() || !errors.is_empty() {
        400
    } else {
        200
    };
    let page = PreviewPage {
        layout,
        typed,
        date,
        date_problem,
        version,
        guide,
        form,
        types: CreationType::ALL,
        rows,
        errors,
    };
    Ok(super::html(status, page.render()?))
}
