//! `/compte/…`: sign up, log in and out, forgotten password, account settings and members.

use std::collections::BTreeMap;

use actix_session::Session;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;

use super::contact::valid_email;
use super::error::PageError;
use super::extract::{self, CurrentUser, Owner};
use super::layout::Layout;
use super::{AppState, csrf, filters};
use crate::db;
use crate::domain::account::{Role, TokenPurpose};
use crate::domain::catalog::Plan;
use crate::services::accounts::{self as service, AccountError, SignUp};
use crate::services::passwords::{Weakness, check_strength};

mod api;
mod connexion;
mod email;
mod inscription;
mod membres;
mod mot_de_passe;
mod page;
mod second_facteur;

pub use api::*;
pub use connexion::*;
pub use email::*;
pub use inscription::*;
pub use membres::*;
pub use mot_de_passe::*;
pub use page::*;
pub use second_facteur::*;

use inscription::confirm_page;
use mot_de_passe::{NewPasswordPage, link_invalid};
use page::account_page;

/// What is wrong with a field of an account form; `messages/account_error.txt` words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormError {
    Required,
    Email,
    TooLong(usize),
    Mismatch,
    Weak(Weakness),
    WrongPassword,
    UnknownPlan,
    OutOfRange,
}

/// One-off notices shown after a redirect (`templates/compte/notice.html`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    CheckYourEmail,
    ResetSent,
    LinkInvalid,
    PasswordReset,
    PasswordChanged,
    EmailChangeSent,
    EmailChanged,
    EmailTaken,
    InvitationSent,
    MemberRemoved,
    OwnershipTransferred,
    ThresholdSaved,
    SignedOutEverywhere,
    InvitationRevoked,
    InvitedAddressHasAccount,
}

impl Notice {
    fn code(self) -> &'static str {
        match self {
            Notice::CheckYourEmail => "verifiez",
            Notice::ResetSent => "lien-envoye",
            Notice::LinkInvalid => "lien-invalide",
            Notice::PasswordReset => "mot-de-passe-reinitialise",
            Notice::PasswordChanged => "mot-de-passe-change",
            Notice::EmailChangeSent => "email-a-confirmer",
            Notice::EmailChanged => "email-change",
            Notice::EmailTaken => "email-pris",
            Notice::InvitationSent => "invitation-envoyee",
            Notice::MemberRemoved => "membre-retire",
            Notice::OwnershipTransferred => "propriete-transferee",
            Notice::ThresholdSaved => "seuil-enregistre",
            Notice::SignedOutEverywhere => "deconnecte-partout",
            Notice::InvitationRevoked => "invitation-revoquee",
            Notice::InvitedAddressHasAccount => "invitation-compte-existant",
        }
    }

    const ALL: [Notice; 15] = [
        Notice::CheckYourEmail,
        Notice::ResetSent,
        Notice::LinkInvalid,
        Notice::PasswordReset,
        Notice::PasswordChanged,
        Notice::EmailChangeSent,
        Notice::EmailChanged,
        Notice::EmailTaken,
        Notice::InvitationSent,
        Notice::MemberRemoved,
        Notice::OwnershipTransferred,
        Notice::ThresholdSaved,
        Notice::SignedOutEverywhere,
        Notice::InvitationRevoked,
        Notice::InvitedAddressHasAccount,
    ];

    fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.code() == code)
    }
}

/// An action that cannot be undone, asked again before it is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirm {
    Removal,
    Handover,
    Revocation,
}

/// The form of an irreversible action, sent without `confirmer=oui` (its button on `/compte`
/// or `/compte/api`): what it will do, then the same action to confirm, or back.
#[derive(Template)]
#[template(path = "compte/confirmer_action.html")]
struct ConfirmPage<'a> {
    layout: Layout,
    csrf: String,
    what: Confirm,
    /// The member's address, or the key's name.
    subject: &'a str,
    action: &'a str,
    back: &'a str,
}

/// A form field that confirms an irreversible action.
#[derive(Debug, Default, Deserialize)]
pub struct Confirmation {
    #[serde(default)]
    confirmer: String,
}

impl Confirmation {
    fn given(&self) -> bool {
        self.confirmer == "oui"
    }
}

fn confirm_action(
    request: &HttpRequest,
    layout: Layout,
    what: Confirm,
    subject: &str,
    back: &str,
) -> Result<HttpResponse, PageError> {
    let page = ConfirmPage {
        layout,
        csrf: csrf::token(request)?,
        what,
        subject,
        action: request.path(),
        back,
    };
    Ok(super::html(200, page.render()?))
}

type Errors = BTreeMap<&'static str, FormError>;

fn message(field: &str, error: FormError) -> String {
    super::messages::account_error(field, error)
}

/// Error messages keyed by field, for the templates.
fn messages(errors: &Errors) -> BTreeMap<&'static str, String> {
    errors.iter().map(|(f, e)| (*f, message(f, *e))).collect()
}

fn check_new_password(errors: &mut Errors, password: &str, confirmation: &str, personal: &[&str]) {
    if password.is_empty() {
        errors.insert("mot_de_passe", FormError::Required);
    } else if let Err(weakness) = check_strength(password, personal) {
        errors.insert("mot_de_passe", FormError::Weak(weakness));
    } else if password != confirmation {
        errors.insert("confirmation", FormError::Mismatch);
    }
}

fn check_email(errors: &mut Errors, field: &'static str, email: &str) {
    if email.trim().is_empty() {
        errors.insert(field, FormError::Required);
    } else if !valid_email(email.trim()) {
        errors.insert(field, FormError::Email);
    }
}

/// Where to go after signing in: only a path that this portal serves (its route table
/// decides), written plainly. Anything else, whatever a browser would make of it (`//host`,
/// `/\\host`, a tab or line break that browsers drop, a scheme, an encoded slash), goes to
/// `/compte`.
fn safe_next(next: &str) -> &str {
    const FALLBACK: &str = "/compte";
    const MAX_LEN: usize = 512;
    if next.len() > MAX_LEN
        || !next.starts_with('/')
        || next.starts_with("//")
        || next
            .bytes()
            .any(|b| b.is_ascii_control() || b == b'\\' || b == b' ' || b >= 0x80)
    {
        return FALLBACK;
    }
    let path = next.split(['?', '#']).next().unwrap_or_default();
    // An encoded slash or backslash in the path is never ours, and some servers or browsers
    // decode it.
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") || lower.contains("/.") {
        return FALLBACK;
    }
    if super::routes::is_browser_page(path) {
        next
    } else {
        FALLBACK
    }
}

// ---------------------------------------------------------------- information page

#[derive(Deserialize)]
pub struct NoticeQuery {
    #[serde(default)]
    avis: String,
}

#[derive(Template)]
#[template(path = "compte/info.html")]
struct InfoPage {
    layout: Layout,
    notice: Notice,
}

pub async fn info(
    layout: Layout,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, PageError> {
    let notice = Notice::parse(&query.avis).ok_or(PageError::NotFound)?;
    let status = if notice == Notice::LinkInvalid {
        410
    } else {
        200
    };
    Ok(super::html(status, InfoPage { layout, notice }.render()?))
}

/// The throttling of a password check asked by `client`.
fn asker<'a>(state: &AppState, client: &'a str) -> service::Asker<'a> {
    service::Asker {
        client,
        throttle: state.config.login_throttle,
    }
}

fn notice_redirect(notice: Notice) -> HttpResponse {
    super::see_other(&format!("/compte?avis={}", notice.code()))
}

/// The same for a page signed out (a link's outcome, a sign-up, a sign-out): `/compte/info`.
fn info_redirect(notice: Notice) -> HttpResponse {
    super::see_other(&format!("/compte/info?avis={}", notice.code()))
}

use super::error::BUSY_RETRY_SECS;

/// The forms whose handling checks or hashes a password (from the route table).
fn password_forms() -> &'static [&'static str] {
    static FORMS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    FORMS.get_or_init(super::routes::password_forms)
}

/// How long a refused password form waits for its 429, like a login failure delay: a client
/// that waits for each answer gets one a second per connection, and waiting costs nothing. At
/// most `MAX_HELD_REFUSALS` (256) wait at once; past that, the 429 comes at once, closing the
/// connection, so that a flood cannot pile up open connections.
const SATURATED_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// While password checks are saturated (a login storm), a password form is answered 429 before
/// anything else: no request log line, no session, no database, no body read. The storm then
/// costs the server almost nothing, and pages keep their speed. Other requests pass through.
pub async fn password_gate(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    // The decoded path, as the router sees it: `/compte/connexi%6Fn` is the login form too.
    if request.method() == actix_web::http::Method::POST
        && password_forms().contains(&request.match_info().as_str())
        && let Some(state) = request.app_data::<web::Data<AppState>>()
        && (state.hasher.saturated()
            || (state.config.login_throttle
                && !state
                    .hasher
                    .client_share_left(&super::client_key(request.request()))))
    {
        let held = state.hasher.hold_refusal();
        if held.is_some() {
            actix_web::rt::time::sleep(SATURATED_DELAY).await;
        }
        let mut response = super::error::page_response(
            state,
            request.match_info().as_str(),
            "",
            &PageError::TooManyRequests(BUSY_RETRY_SECS),
        );
        response.headers_mut().insert(
            actix_web::http::header::CACHE_CONTROL,
            actix_web::http::header::HeaderValue::from_static("no-store"),
        );
        if held.is_none() {
            response
                .head_mut()
                .set_connection_type(actix_web::http::ConnectionType::Close);
        }
        return Ok(request.into_response(response).map_into_right_body());
    }
    Ok(next.call(request).await?.map_into_left_body())
}

// ---------------------------------------------------------------- forms shared by the pages

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    jeton: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct NewPasswordForm {
    #[serde(default)]
    jeton: String,
    #[serde(default)]
    mot_de_passe: String,
    #[serde(default)]
    confirmation: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct EmailForm {
    #[serde(default)]
    email: String,
}
