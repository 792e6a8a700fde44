//! `/generations`: the organisation's generations, from the hold to the capture or release,
//! refusals kept and explained (« 0 crédit débité », and « Je pense que c'est une erreur »), and
//! a launch form with the simulator's fields, for members and owners. The same launch service as
//! the API.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;

use super::error::PageError;
use super::extract::CurrentUser;
use super::layout::Layout;
use super::{AppState, csrf, filters, messages};
use crate::db::generations::Generation;
use crate::domain::simulation::RawSimulation;
use crate::services::generations::{self, LaunchOutcome, LaunchRequest, Via};

/// Generations listed on the page (the newest).
const LISTED: i64 = 100;

/// The launch form, as typed (kept when something is wrong).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LaunchForm {
    #[serde(default, rename = "type")]
    pub creation_type: String,
    #[serde(default)]
    pub duree: String,
    #[serde(default)]
    pub format: String,
    #[serde(default)]
    pub resolution: String,
    #[serde(default)]
    pub pages: String,
    #[serde(default)]
    pub illustrations: String,
    #[serde(default)]
    pub prompt: String,
    /// A random key given with the form: sending the same form twice launches once.
    #[serde(default)]
    pub cle: String,
}

impl LaunchForm {
    fn raw(&self) -> RawSimulation {
        let some = |v: &str| Some(v.to_owned()).filter(|v| !v.trim().is_empty());
        RawSimulation {
            creation_type: some(&self.creation_type),
            duree: some(&self.duree),
            format: some(&self.format),
            resolution: some(&self.resolution),
            pages: some(&self.pages),
            illustrations: some(&self.illustrations),
            quantite: None,
            plan: None,
            prompt: some(&self.prompt),
        }
    }
}

/// A line of the list.
struct Line {
    generation: Generation,
    /// The refusal's sentence, for a refused launch.
    refusal: Option<String>,
}

/// « Vidéo, 10 s, 16:9, HD », as the list says it (the contact form's prefilled report).
pub(crate) fn describe(generation: Generation) -> String {
    Line {
        generation,
        refusal: None,
    }
    .what()
}

impl Line {
    /// « Vidéo, 10 s, 16:9, HD »: the type, then the settings of the stored request.
    fn what(&self) -> String {
        let kind = match self.generation.creation_type.as_str() {
            "video" => "Vidéo",
            "image" => "Image",
            "musique" => "Musique",
            "mini-livre" => "Mini-livre",
            other => other,
        };
        let settings = self.described();
        if settings.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}, {settings}")
        }
    }

    /// « 1 crédit », « 12 crédits ».
    fn credits(&self, count: &i64) -> String {
        credits(*count)
    }

    /// « 10 s, 16:9, HD » from the stored request.
    fn described(&self) -> String {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(&self.generation.request).unwrap_or_default();
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let mut parts = Vec::new();
        if let Some(d) = get("duree") {
            parts.push(format!("{d}\u{a0}s"));
        }
        if let Some(p) = get("pages") {
            parts.push(format!("{p}\u{a0}pages"));
        }
        if let Some(i) = get("illustrations") {
            parts.push(format!("illustrations {i}"));
        }
        if let Some(f) = get("format") {
            parts.push(f.replace('x', "\u{d7}"));
        }
        if let Some(r) = get("resolution") {
            parts.push(r.to_uppercase());
        }
        parts.join(", ")
    }

    fn contact_link(&self) -> String {
        let rule = self.generation.refusal_rule.as_deref().unwrap_or("");
        format!(
            "/contact?sujet=erreur&generation={}&regle={}",
            self.generation.id,
            serde_urlencoded::to_string([("", rule)])
                .unwrap_or_default()
                .trim_start_matches('=')
        )
    }
}

#[derive(Template)]
#[template(path = "generations/page.html")]
struct GenerationsPage {
    layout: Layout,
    csrf: String,
    form: LaunchForm,
    errors: Vec<(&'static str, String)>,
    /// The launch just made (after the redirect), to say how it went.
    just: Option<Line>,
    lines: Vec<Line>,
    test_engine: bool,
    /// Only the owner buys and changes the plan: a member is told to ask them.
    is_owner: bool,
    /// The credits the organisation can use now, shown next to the launch button.
    available: i64,
    /// The organisation's plan, for the cost estimated as the form is filled in.
    plan: String,
}

impl GenerationsPage {
    fn credits(&self, count: &i64) -> String {
        credits(*count)
    }

    fn error_for(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }

    fn invalid(&self, field: &str) -> &'static str {
        if self.error_for(field).is_some() {
            "true"
        } else {
            "false"
        }
    }

    fn selected(&self, field: &str, value: &str) -> bool {
        let typed = match field {
            "type" => &self.form.creation_type,
            "format" => &self.form.format,
            "resolution" => &self.form.resolution,
            "illustrations" => &self.form.illustrations,
            _ => return false,
        };
        typed.eq_ignore_ascii_case(value)
    }
}

/// « 1 crédit », « 1 200 crédits ».
fn credits(count: i64) -> String {
    let s = if count > 1 { "s" } else { "" };
    format!("{}\u{a0}crédit{s}", crate::domain::format::thousands(count))
}

/// What the page shows of the organisation beside its generations: the credits it can use now
/// and its plan.
struct Standing {
    available: i64,
    plan: String,
}

async fn standing(state: &AppState, organisation: Uuid) -> Result<Standing, PageError> {
    let available =
        crate::services::credits::available(&state.pool, organisation, state.clock.now())
            .await
            .map_err(PageError::from)?
            .0;
    let plan = crate::services::accounts::organisation(&state.pool, organisation)
        .await?
        .map(|o| o.plan_id)
        .unwrap_or_default();
    Ok(Standing { available, plan })
}

#[derive(Deserialize)]
pub struct Shown {
    lancee: Option<String>,
}

async fn lines(state: &AppState, organisation: Uuid) -> Result<Vec<Line>, PageError> {
    let found = generations::list(&state.pool, organisation, None, true, LISTED)
        .await
        .map_err(PageError::from)?;
    Ok(found.into_iter().map(line).collect())
}

fn line(generation: Generation) -> Line {
    let refusal = generation
        .refusal
        .clone()
        .and_then(|v| serde_json::from_value::<crate::domain::limits::Refusal>(v).ok())
        .map(|r| messages::refusal(&r));
    Line {
        generation,
        refusal,
    }
}

fn organisation_of(user: &CurrentUser) -> Result<Uuid, PageError> {
    user.organisation.ok_or(PageError::Forbidden)
}

pub async fn page(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    user: CurrentUser,
    shown: web::Query<Shown>,
) -> Result<HttpResponse, PageError> {
    let organisation = organisation_of(&user)?;
    let lines = lines(&state, organisation).await?;
    let just = shown
        .lancee
        .as_deref()
        .and_then(|id| Uuid::parse_str(id).ok())
        .and_then(|id| lines.iter().find(|l| l.generation.id == id))
        .map(|l| line(l.generation.clone()));
    // A launch that did not run (refused, failed, no answer): the form is filled again with
    // its request, to change what was refused and launch again without typing it all.
    let again = just
        .as_ref()
        .filter(|l| {
            matches!(
                l.generation.status.as_str(),
                "refused" | "failed" | "expired"
            )
        })
        .map(|l| LaunchForm {
            prompt: l.generation.prompt.clone(),
            ..serde_urlencoded::from_str::<LaunchForm>(&l.generation.request).unwrap_or_default()
        })
        .unwrap_or_default();
    let standing = standing(&state, organisation).await?;
    let page = GenerationsPage {
        layout,
        csrf: csrf::token(&request)?,
        form: LaunchForm {
            cle: crate::random::token(),
            ..again
        },
        errors: Vec::new(),
        just,
        lines,
        test_engine: state.config.engine == crate::config::Engine::Test,
        is_owner: user.is_owner(),
        available: standing.available,
        plan: standing.plan,
    };
    Ok(super::html(200, page.render()?))
}

pub async fn launch(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    user: CurrentUser,
    form: web::Form<LaunchForm>,
) -> Result<HttpResponse, PageError> {
    let organisation = organisation_of(&user)?;
    let mut form = form.into_inner();
    if form.cle.len() != 64 || !form.cle.bytes().all(|b| b.is_ascii_hexdigit()) {
        form.cle = crate::random::token();
    }
    let catalog = state.catalog.get(&state.pool).await?;
    let launched_by = format!("user:{}", user.id);
    let key = format!("portal:{}", form.cle);
    let launch = LaunchRequest {
        organisation,
        raw: form.raw(),
        via: Via::Portal,
        launched_by: &launched_by,
        key: Some(&key),
    };
    let rules = state.prompt_checks.get().await?;
    let outcome = generations::launch(&state.pool, &catalog, &rules, &launch, state.clock.now())
        .await
        .map_err(PageError::from)?;
    match outcome {
        LaunchOutcome::Launched { generation, .. } | LaunchOutcome::Refused { generation, .. } => {
            Ok(super::see_other(&format!(
                "/generations?lancee={}#lancement",
                generation.id
            )))
        }
        LaunchOutcome::Invalid(errors) => {
            let standing = standing(&state, organisation).await?;
            let errors = errors
                .iter()
                .map(|(f, e)| (*f, messages::field_error(f, e)))
                .collect();
            let page = GenerationsPage {
                layout,
                csrf: csrf::token(&request)?,
                form,
                errors,
                just: None,
                lines: lines(&state, organisation).await?,
                test_engine: state.config.engine == crate::config::Engine::Test,
                is_owner: user.is_owner(),
                available: standing.available,
                plan: standing.plan,
            };
            Ok(super::html(400, page.render()?))
        }
    }
}
