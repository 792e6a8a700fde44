//! `/contact`: the contact form. Before a message goes, it shows up to three guides that match
//! it (most questions have an answer already); messages are stored for staff, CSRF-protected and
//! rate-limited per client.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::error::PageError;
use super::layout::Layout;
use super::{AppState, csrf, filters};
use crate::content::Guide;
use crate::db;
use crate::services::help;

/// Subjects, in the order of the form (the template words them).
pub const SUBJECTS: [&str; 5] = [
    "question",
    "facturation",
    "technique",
    "evenement",
    "erreur",
];

#[derive(Debug, Default, Clone, Deserialize)]
pub struct ContactForm {
    #[serde(default)]
    pub nom: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub organisation: String,
    #[serde(default)]
    pub sujet: String,
    #[serde(default)]
    pub date_debut: String,
    #[serde(default)]
    pub date_fin: String,
    #[serde(default)]
    pub volume: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub page: String,
    #[serde(default)]
    pub confirmer: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactError {
    Required,
    TooLong(usize),
    Email,
    Subject,
    Date,
    EndBeforeStart,
    InThePast,
}

impl ContactForm {
    fn validate(&self, today: time::Date) -> BTreeMap<&'static str, ContactError> {
        let mut errors = BTreeMap::new();
        let mut text = |field: &'static str, value: &str, max: usize, required: bool| {
            let value = value.trim();
            if required && value.is_empty() {
                errors.insert(field, ContactError::Required);
            } else if value.chars().count() > max {
                errors.insert(field, ContactError::TooLong(max));
            }
        };
        text("nom", &self.nom, 120, true);
        text("organisation", &self.organisation, 160, false);
        text("message", &self.message, 5000, true);
        if !valid_email(self.email.trim()) {
            errors.insert("email", ContactError::Email);
        }
        if !SUBJECTS.contains(&self.sujet.as_str()) {
            errors.insert("sujet", ContactError::Subject);
        }
        if self.sujet == "evenement" {
            let start = parse_date(&self.date_debut);
            let end = parse_date(&self.date_fin);
            match start {
                None => {
                    errors.insert(
                        "date_debut",
                        if self.date_debut.trim().is_empty() {
                            ContactError::Required
                        } else {
                            ContactError::Date
                        },
                    );
                }
                Some(s) if s < today => {
                    errors.insert("date_debut", ContactError::InThePast);
                }
                _ => {}
            }
            match (start, end) {
                (_, None) => {
                    errors.insert(
                        "date_fin",
                        if self.date_fin.trim().is_empty() {
                            ContactError::Required
                        } else {
                            ContactError::Date
                        },
                    );
                }
                (Some(s), Some(e)) if e < s => {
                    errors.insert("date_fin", ContactError::EndBeforeStart);
                }
                _ => {}
            }
            if self.volume.trim().is_empty() {
                errors.insert("volume", ContactError::Required);
            } else if self.volume.chars().count() > 200 {
                errors.insert("volume", ContactError::TooLong(200));
            }
        }
        errors
    }

    fn page(&self) -> Option<&str> {
        let page = self.page.trim();
        (page.starts_with("/aide/")
            && page.len() <= 200
            && page
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/-#".contains(c)))
        .then_some(page)
    }
}

fn parse_date(raw: &str) -> Option<time::Date> {
    time::Date::parse(
        raw.trim(),
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
}

/// A pragmatic check: one @, something before, a dotted domain after, no spaces.
pub fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && email.len() <= 254
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\"".contains(c))
}

#[derive(Template)]
#[template(path = "contact/page.html")]
struct ContactPage<'a> {
    layout: Layout,
    form: ContactForm,
    errors: BTreeMap<&'static str, ContactError>,
    csrf: String,
    suggestions: Vec<&'a Guide>,
    subjects: &'static [&'static str],
}

impl ContactPage<'_> {
    fn error(&self, field: &str) -> Option<String> {
        self.errors
            .get(field)
            .map(|e| super::messages::contact_error(field, *e))
    }

    fn invalid(&self, field: &str) -> &'static str {
        if self.errors.contains_key(field) {
            "true"
        } else {
            "false"
        }
    }
}

#[derive(Template)]
#[template(path = "contact/merci.html")]
struct ThanksPage {
    layout: Layout,
    /// The message's subject, for what happens next (one of `SUBJECTS`, or none).
    sujet: &'static str,
    /// The account's pages are linked for a signed-in sender only.
    signed_in: bool,
}

#[derive(Deserialize)]
pub struct Sent {
    sujet: Option<String>,
}

#[derive(Deserialize)]
pub struct Prefill {
    sujet: Option<String>,
    page: Option<String>,
    /// « Je pense que c'est une erreur » on a refused generation: its id and rule.
    generation: Option<String>,
    regle: Option<String>,
}

/// The message a refused generation's « Je pense que c'est une erreur » starts with.
#[derive(Template)]
#[template(path = "contact/erreur.txt")]
struct RefusedGeneration<'a> {
    generation: &'a str,
    rule: &'a str,
    /// When and what, for a generation of the sender's organisation: « du 7 décembre 2026 à
    /// 18 h 03 (Vidéo, 10 s, HD) » instead of its id, for the sender and for staff, who find it
    /// in the organisation's file.
    described: Option<(time::OffsetDateTime, String)>,
}

pub async fn form(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    user: super::extract::MaybeUser,
    prefill: web::Query<Prefill>,
) -> Result<HttpResponse, PageError> {
    // Signed in: the address and the organisation are known; the name is the person's to give.
    let (email, organisation) = match &user.0 {
        Some(user) => {
            let organisation = match user.organisation {
                Some(id) => crate::services::accounts::organisation(&state.pool, id)
                    .await?
                    .map(|o| o.name)
                    .unwrap_or_default(),
                None => String::new(),
            };
            (user.email.clone(), organisation)
        }
        None => (String::new(), String::new()),
    };
    let form = ContactForm {
        sujet: prefill
            .sujet
            .clone()
            .filter(|s| SUBJECTS.contains(&s.as_str()))
            .unwrap_or_else(|| "question".into()),
        page: prefill.page.clone().unwrap_or_default(),
        email,
        organisation,
        ..ContactForm::default()
    };
    let mut form = form;
    let rules = [
        "suspended",
        "plan_feature",
        "not_priced",
        "prompt",
        "concurrency",
        "daily_cap",
        "monthly_cap",
        "balance",
        // Not a rule: a render that failed (« Signaler le problème »).
        "echec",
    ];
    if let (Some(id), Some(rule)) = (prefill.generation.as_deref(), prefill.regle.as_deref())
        && let Ok(uuid) = uuid::Uuid::parse_str(id)
        && rules.contains(&rule)
    {
        let organisation = user.0.as_ref().and_then(|u| u.organisation);
        let described = match organisation {
            Some(organisation) => {
                crate::services::generations::of_organisation(&state.pool, organisation, uuid)
                    .await
                    .map_err(PageError::from)?
                    .map(|g| (g.created_at, super::generations::describe(g)))
            }
            None => None,
        };
        form.sujet = if rule == "echec" {
            "technique"
        } else {
            "erreur"
        }
        .into();
        form.message = RefusedGeneration {
            generation: id,
            rule,
            described,
        }
        .render()?;
    }
    let page = ContactPage {
        layout,
        form,
        errors: BTreeMap::new(),
        csrf: csrf::token(&request)?,
        suggestions: Vec::new(),
        subjects: &SUBJECTS,
    };
    Ok(super::html(200, page.render()?))
}

pub async fn send(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    form: web::Form<ContactForm>,
) -> Result<HttpResponse, PageError> {
    let mut form = form.into_inner();
    for field in [
        &mut form.nom,
        &mut form.organisation,
        &mut form.volume,
        &mut form.message,
    ] {
        *field = crate::content::text::pasted(field);
    }
    let errors = form.validate(state.clock.now().date());
    let csrf = csrf::token(&request)?;
    if !errors.is_empty() {
        let page = ContactPage {
            layout,
            form,
            errors,
            csrf,
            suggestions: Vec::new(),
            subjects: &SUBJECTS,
        };
        return Ok(super::html(400, page.render()?));
    }
    // First submission: offer the guides that may answer the message (contact deflection),
    // except for what only staff can do: an event's raise, a refusal thought wrong.
    if form.confirmer.is_empty() && !matches!(form.sujet.as_str(), "evenement" | "erreur") {
        let library = state.help.library();
        let suggestions: Vec<&Guide> = library
            .search
            .search(&form.message, 3)
            .into_iter()
            .filter_map(|hit| library.get(&hit.slug))
            .collect();
        if !suggestions.is_empty() {
            let page = ContactPage {
                layout,
                form,
                errors,
                csrf,
                suggestions,
                subjects: &SUBJECTS,
            };
            return Ok(super::html(200, page.render()?));
        }
    }
    let client = super::client_key(&request);
    let message = db::help::NewContact {
        name: form.nom.trim(),
        email: form.email.trim(),
        organisation: form.organisation.trim(),
        subject: &form.sujet,
        event_start: (form.sujet == "evenement")
            .then(|| parse_date(&form.date_debut))
            .flatten(),
        event_end: (form.sujet == "evenement")
            .then(|| parse_date(&form.date_fin))
            .flatten(),
        event_volume: (form.sujet == "evenement").then(|| form.volume.trim()),
        page: form.page(),
        message: form.message.trim(),
    };
    let id = help::send_contact(&state.pool, &client, &message).await?;
    tracing::info!(contact_message = id, subject = %form.sujet, "contact message stored");
    // Post/Redirect/Get: a reload does not send the message twice. The subject (no personal
    // data) says what happens next.
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", format!("/contact/merci?sujet={}", form.sujet)))
        .finish())
}

pub async fn thanks(
    request: HttpRequest,
    layout: Layout,
    user: super::extract::MaybeUser,
) -> Result<HttpResponse, PageError> {
    // Read leniently: a query that does not parse only loses the next steps, never the thanks.
    let sent = web::Query::<Sent>::from_query(request.query_string()).ok();
    let sujet = SUBJECTS
        .into_iter()
        .find(|s| sent.as_ref().and_then(|q| q.sujet.as_deref()) == Some(*s))
        .unwrap_or("");
    let page = ThanksPage {
        layout,
        sujet,
        signed_in: user.0.is_some(),
    };
    Ok(super::html(200, page.render()?))
}
