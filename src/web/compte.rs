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
use crate::services::accounts::{self as service, ServiceError, SignUp};
use crate::services::passwords::{Weakness, check_strength};

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
    SignUpClosed,
    InvitationRevoked,
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
            Notice::SignUpClosed => "inscriptions-fermees",
            Notice::InvitationRevoked => "invitation-revoquee",
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
        Notice::SignUpClosed,
        Notice::InvitationRevoked,
    ];

    fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.code() == code)
    }
}

type Errors = BTreeMap<&'static str, FormError>;

fn internal(e: ServiceError) -> PageError {
    e.into()
}

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

// ---------------------------------------------------------------- sign up

#[derive(Debug, Default, Deserialize)]
pub struct SignUpForm {
    #[serde(default)]
    organisation: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    mot_de_passe: String,
    #[serde(default)]
    confirmation: String,
    #[serde(default)]
    plan: String,
}

#[derive(Template)]
#[template(path = "compte/inscription.html")]
struct SignUpPage {
    layout: Layout,
    csrf: String,
    form: SignUpForm,
    errors: BTreeMap<&'static str, String>,
    plans: Vec<Plan>,
}

impl SignUpPage {
    fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field).map(String::as_str)
    }

    fn invalid(&self, field: &str) -> &'static str {
        if self.errors.contains_key(field) {
            "true"
        } else {
            "false"
        }
    }
}

pub async fn sign_up_form(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
) -> Result<HttpResponse, PageError> {
    let catalog = state.catalog.get(&state.pool).await?;
    let form = SignUpForm {
        plan: catalog.default_plan().to_owned(),
        ..SignUpForm::default()
    };
    let body = SignUpPage {
        layout,
        csrf: csrf::token(&request)?,
        form,
        errors: BTreeMap::new(),
        plans: catalog.plans.clone(),
    }
    .render()?;
    Ok(super::html(200, body))
}

pub async fn sign_up(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    form: web::Form<SignUpForm>,
) -> Result<HttpResponse, PageError> {
    if state.config.is_production() {
        // Paid plans start with online payment, which is not built yet.
        return Ok(super::see_other(&format!(
            "/compte/info?avis={}",
            Notice::SignUpClosed.code()
        )));
    }
    let mut form = form.into_inner();
    let catalog = state.catalog.get(&state.pool).await?;
    let mut errors = Errors::new();
    let organisation = form.organisation.trim().to_owned();
    if organisation.chars().count() < 2 {
        errors.insert("organisation", FormError::Required);
    } else if organisation.chars().count() > 160 {
        errors.insert("organisation", FormError::TooLong(160));
    }
    check_email(&mut errors, "email", &form.email);
    let personal = [organisation.as_str(), form.email.as_str()];
    check_new_password(
        &mut errors,
        &form.mot_de_passe,
        &form.confirmation,
        &personal,
    );
    if catalog.plan(&form.plan).is_none() {
        errors.insert("plan", FormError::UnknownPlan);
    }
    if !errors.is_empty() {
        // Never send a password back to the browser.
        form.mot_de_passe.clear();
        form.confirmation.clear();
        let body = SignUpPage {
            layout,
            csrf: csrf::token(&request)?,
            form,
            errors: messages(&errors),
            plans: catalog.plans.clone(),
        }
        .render()?;
        return Ok(super::html(400, body));
    }
    let input = SignUp {
        organisation: &organisation,
        email: form.email.trim(),
        password: &form.mot_de_passe,
        plan: &form.plan,
    };
    let client = super::client_key(&request);
    service::sign_up(
        &state.pool,
        &state.hasher,
        &state.config.public_url,
        input,
        asker(&state, &client),
        state.clock.now(),
    )
    .await
    .map_err(internal)?;
    Ok(super::see_other(&format!(
        "/compte/info?avis={}",
        Notice::CheckYourEmail.code()
    )))
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    jeton: String,
}

/// The page a link opens: what it will do, and a button that does it. Mail scanners follow
/// links; only a person presses the button (a POST).
#[derive(Template)]
#[template(path = "compte/confirmer.html")]
struct ConfirmPage {
    layout: Layout,
    csrf: String,
    action: &'static str,
    jeton: String,
}

async fn confirm_page(
    state: &AppState,
    request: &HttpRequest,
    layout: Layout,
    action: &'static str,
    purpose: TokenPurpose,
    token: &str,
) -> Result<HttpResponse, PageError> {
    if !service::link_is_valid(&state.pool, token, purpose)
        .await
        .map_err(internal)?
    {
        return Ok(link_invalid());
    }
    let page = ConfirmPage {
        layout,
        csrf: csrf::token(request)?,
        action,
        jeton: token.to_owned(),
    };
    Ok(super::html(200, page.render()?))
}

/// `GET /compte/activation?jeton=…`: a page with the button that activates.
pub async fn activation_page(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, PageError> {
    confirm_page(
        &state,
        &request,
        layout,
        "/compte/activation",
        TokenPurpose::Activation,
        &query.jeton,
    )
    .await
}

/// `POST /compte/activation`: activates the account and signs its owner in.
pub async fn activate(
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<TokenQuery>,
) -> Result<HttpResponse, PageError> {
    match service::activate(&state.pool, &form.jeton).await {
        Ok(user) => {
            extract::sign_in(&session, &user)?;
            Ok(super::see_other("/compte"))
        }
        Err(ServiceError::InvalidLink) => Ok(super::see_other(&format!(
            "/compte/info?avis={}",
            Notice::LinkInvalid.code()
        ))),
        Err(e) => Err(internal(e)),
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

// ---------------------------------------------------------------- log in, log out

#[derive(Debug, Default, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    mot_de_passe: String,
    #[serde(default)]
    suite: String,
}

#[derive(Template)]
#[template(path = "compte/connexion.html")]
struct LoginPage {
    layout: Layout,
    csrf: String,
    email: String,
    suite: String,
    /// `identifiants`, `activation`, `champs`
    problem: Option<&'static str>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    suite: String,
}

pub async fn login_form(
    request: HttpRequest,
    layout: Layout,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, PageError> {
    let body = LoginPage {
        layout,
        csrf: csrf::token(&request)?,
        email: String::new(),
        suite: query.suite.clone(),
        problem: None,
    }
    .render()?;
    Ok(super::html(200, body))
}

pub async fn login(
    state: web::Data<AppState>,
    session: Session,
    request: HttpRequest,
    layout: Layout,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    let email = form.email.trim().to_owned();
    let problem = if email.is_empty()
        || form.mot_de_passe.is_empty()
        || email.len() > 254
        || form.mot_de_passe.len() > 1024
    {
        Some("champs")
    } else {
        match service::log_in(
            &state.pool,
            &state.hasher,
            &email,
            &form.mot_de_passe,
            &super::client_key(&request),
            state.config.login_throttle,
        )
        .await
        {
            Ok(user) => {
                extract::sign_in(&session, &user)?;
                return Ok(super::see_other(safe_next(&form.suite)));
            }
            Err(ServiceError::InvalidCredentials) => Some("identifiants"),
            Err(ServiceError::NotActivated) => Some("activation"),
            Err(e) => return Err(internal(e)),
        }
    };
    let body = LoginPage {
        layout,
        csrf: csrf::token(&request)?,
        email,
        suite: form.suite,
        problem,
    }
    .render()?;
    Ok(super::html(
        if problem == Some("champs") { 400 } else { 401 },
        body,
    ))
}

#[derive(Template)]
#[template(path = "compte/deconnexion.html")]
struct LogoutPage {
    layout: Layout,
    csrf: String,
}

/// `GET /compte/deconnexion`: the button that signs out (pages shared by everyone, such as the
/// guides, link here: they cannot hold a CSRF token).
pub async fn logout_page(
    request: HttpRequest,
    session: Session,
    layout: Layout,
) -> Result<HttpResponse, PageError> {
    if extract::session_user(&session).is_none() {
        return Ok(super::see_other("/"));
    }
    let page = LogoutPage {
        layout,
        csrf: csrf::token(&request)?,
    };
    Ok(super::html(200, page.render()?))
}

pub async fn logout(session: Session) -> HttpResponse {
    extract::sign_out(&session);
    super::see_other("/")
}

// ---------------------------------------------------------------- forgotten password

#[derive(Debug, Default, Deserialize)]
pub struct EmailForm {
    #[serde(default)]
    email: String,
}

#[derive(Template)]
#[template(path = "compte/oubli.html")]
struct ForgotPage {
    layout: Layout,
    csrf: String,
    email: String,
    error: Option<String>,
}

pub async fn forgot_form(request: HttpRequest, layout: Layout) -> Result<HttpResponse, PageError> {
    Ok(super::html(
        200,
        ForgotPage {
            layout,
            csrf: csrf::token(&request)?,
            email: String::new(),
            error: None,
        }
        .render()?,
    ))
}

pub async fn forgot(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    form: web::Form<EmailForm>,
) -> Result<HttpResponse, PageError> {
    let mut errors = Errors::new();
    check_email(&mut errors, "email", &form.email);
    if let Some(error) = errors.get("email") {
        let body = ForgotPage {
            layout,
            csrf: csrf::token(&request)?,
            email: form.email.clone(),
            error: Some(message("email", *error)),
        }
        .render()?;
        return Ok(super::html(400, body));
    }
    service::request_reset(
        &state.pool,
        &state.config.public_url,
        form.email.trim(),
        &super::client_key(&request),
    )
    .await
    .map_err(internal)?;
    Ok(super::see_other(&format!(
        "/compte/info?avis={}",
        Notice::ResetSent.code()
    )))
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

#[derive(Template)]
#[template(path = "compte/nouveau_mot_de_passe.html")]
struct NewPasswordPage {
    layout: Layout,
    csrf: String,
    action: &'static str,
    jeton: String,
    heading: Option<(String, String)>,
    errors: BTreeMap<&'static str, String>,
}

impl NewPasswordPage {
    fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field).map(String::as_str)
    }

    /// The form that chooses a password from a link (reset or invitation), 400 with `errors`.
    fn respond(
        layout: Layout,
        request: &HttpRequest,
        action: &'static str,
        jeton: &str,
        heading: Option<(String, String)>,
        errors: &Errors,
    ) -> Result<HttpResponse, PageError> {
        let status = if errors.is_empty() { 200 } else { 400 };
        let page = NewPasswordPage {
            layout,
            csrf: csrf::token(request)?,
            action,
            jeton: jeton.to_owned(),
            heading,
            errors: messages(errors),
        };
        Ok(super::html(status, page.render()?))
    }
}

fn link_invalid() -> HttpResponse {
    super::see_other(&format!("/compte/info?avis={}", Notice::LinkInvalid.code()))
}

pub async fn reset_form(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, PageError> {
    if !service::link_is_valid(&state.pool, &query.jeton, TokenPurpose::Reset)
        .await
        .map_err(internal)?
    {
        return Ok(link_invalid());
    }
    NewPasswordPage::respond(
        layout,
        &request,
        "/compte/reinitialisation",
        &query.jeton,
        None,
        &Errors::new(),
    )
}

pub async fn reset(
    state: web::Data<AppState>,
    session: Session,
    request: HttpRequest,
    layout: Layout,
    form: web::Form<NewPasswordForm>,
) -> Result<HttpResponse, PageError> {
    let personal = match service::reset_personal_words(&state.pool, &form.jeton).await {
        Ok(words) => words,
        Err(ServiceError::InvalidLink) => return Ok(link_invalid()),
        Err(e) => return Err(internal(e)),
    };
    let personal: Vec<&str> = personal.iter().map(String::as_str).collect();
    let mut errors = Errors::new();
    check_new_password(
        &mut errors,
        &form.mot_de_passe,
        &form.confirmation,
        &personal,
    );
    if !errors.is_empty() {
        return NewPasswordPage::respond(
            layout,
            &request,
            "/compte/reinitialisation",
            &form.jeton,
            None,
            &errors,
        );
    }
    let client = super::client_key(&request);
    let outcome = service::reset_password(
        &state.pool,
        &state.hasher,
        &state.config.public_url,
        &form.jeton,
        &form.mot_de_passe,
        asker(&state, &client),
    )
    .await;
    match outcome {
        Ok(_) => {
            extract::sign_out(&session);
            Ok(super::see_other(&format!(
                "/compte/info?avis={}",
                Notice::PasswordReset.code()
            )))
        }
        Err(ServiceError::InvalidLink) => Ok(link_invalid()),
        Err(e) => Err(internal(e)),
    }
}

// ---------------------------------------------------------------- invitations

pub async fn invitation_form(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, PageError> {
    let (organisation, email) = match service::invitation(&state.pool, &query.jeton).await {
        Ok(found) => found,
        Err(ServiceError::InvalidLink) => return Ok(link_invalid()),
        Err(e) => return Err(internal(e)),
    };
    NewPasswordPage::respond(
        layout,
        &request,
        "/compte/invitation",
        &query.jeton,
        Some((organisation, email)),
        &Errors::new(),
    )
}

pub async fn accept_invitation(
    state: web::Data<AppState>,
    session: Session,
    request: HttpRequest,
    layout: Layout,
    form: web::Form<NewPasswordForm>,
) -> Result<HttpResponse, PageError> {
    let (organisation, email) = match service::invitation(&state.pool, &form.jeton).await {
        Ok(found) => found,
        Err(ServiceError::InvalidLink) => return Ok(link_invalid()),
        Err(e) => return Err(internal(e)),
    };
    let mut errors = Errors::new();
    check_new_password(
        &mut errors,
        &form.mot_de_passe,
        &form.confirmation,
        &[&organisation, &email],
    );
    if !errors.is_empty() {
        return NewPasswordPage::respond(
            layout,
            &request,
            "/compte/invitation",
            &form.jeton,
            Some((organisation, email)),
            &errors,
        );
    }
    let client = super::client_key(&request);
    let outcome = service::accept_invitation(
        &state.pool,
        &state.hasher,
        &form.jeton,
        &form.mot_de_passe,
        asker(&state, &client),
    )
    .await;
    match outcome {
        Ok(user) => {
            extract::sign_in(&session, &user)?;
            Ok(super::see_other("/compte"))
        }
        Err(ServiceError::InvalidLink | ServiceError::EmailTaken) => Ok(link_invalid()),
        Err(e) => Err(internal(e)),
    }
}

// ---------------------------------------------------------------- the account page

#[derive(Template)]
#[template(path = "compte/compte.html")]
struct AccountPage {
    layout: Layout,
    csrf: String,
    user: CurrentUser,
    organisation: Option<db::accounts::Organisation>,
    plan: Option<Plan>,
    members: Vec<db::accounts::Member>,
    invitations: Vec<db::accounts::PendingInvitation>,
    notice: Option<Notice>,
    errors: BTreeMap<&'static str, String>,
    values: BTreeMap<&'static str, String>,
}

impl AccountPage {
    fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field).map(String::as_str)
    }

    fn value(&self, field: &str) -> &str {
        self.values.get(field).map(String::as_str).unwrap_or("")
    }
}

async fn account_page(
    state: &AppState,
    request: &HttpRequest,
    layout: Layout,
    user: CurrentUser,
    notice: Option<Notice>,
    errors: BTreeMap<&'static str, String>,
    values: BTreeMap<&'static str, String>,
) -> Result<String, PageError> {
    let service::AccountOverview {
        organisation,
        members,
        invitations,
    } = service::account_overview(&state.pool, &user.row).await?;
    let catalog = state.catalog.get(&state.pool).await?;
    let plan = organisation
        .as_ref()
        .and_then(|o| catalog.plan(&o.plan_id))
        .cloned();
    Ok(AccountPage {
        layout,
        csrf: csrf::token(request)?,
        user,
        organisation,
        plan,
        members,
        invitations,
        notice,
        errors,
        values,
    }
    .render()?)
}

pub async fn account(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    user: CurrentUser,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, PageError> {
    let notice = Notice::parse(&query.avis);
    let body = account_page(
        &state,
        &request,
        layout,
        user,
        notice,
        BTreeMap::new(),
        BTreeMap::new(),
    )
    .await?;
    Ok(super::html(200, body))
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

#[derive(Debug, Default, Deserialize)]
pub struct ChangePasswordForm {
    #[serde(default)]
    actuel: String,
    #[serde(default)]
    mot_de_passe: String,
    #[serde(default)]
    confirmation: String,
}

pub async fn change_password(
    state: web::Data<AppState>,
    session: Session,
    request: HttpRequest,
    layout: Layout,
    user: CurrentUser,
    form: web::Form<ChangePasswordForm>,
) -> Result<HttpResponse, PageError> {
    let client = super::client_key(&request);
    let mut errors = Errors::new();
    if form.actuel.is_empty() {
        errors.insert("actuel", FormError::Required);
    }
    let organisation = match user.organisation {
        Some(id) => service::organisation(&state.pool, id)
            .await?
            .map(|o| o.name),
        None => None,
    };
    let mut personal = vec![user.email.as_str()];
    personal.extend(organisation.as_deref());
    check_new_password(
        &mut errors,
        &form.mot_de_passe,
        &form.confirmation,
        &personal,
    );
    if errors.is_empty() {
        match service::change_password(
            &state.pool,
            &state.hasher,
            &state.config.public_url,
            user.id,
            &form.actuel,
            &form.mot_de_passe,
            asker(&state, &client),
        )
        .await
        {
            Ok(epoch) => {
                // Every other session ends; this one stays.
                extract::keep_session(&session, epoch)?;
                return Ok(notice_redirect(Notice::PasswordChanged));
            }
            Err(ServiceError::InvalidCredentials) => {
                errors.insert("actuel", FormError::WrongPassword);
            }
            Err(e) => return Err(internal(e)),
        }
    }
    let body = account_page(
        &state,
        &request,
        layout,
        user,
        None,
        messages(&errors),
        BTreeMap::new(),
    )
    .await?;
    Ok(super::html(400, body))
}

#[derive(Debug, Default, Deserialize)]
pub struct ChangeEmailForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    actuel: String,
}

pub async fn change_email(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    user: CurrentUser,
    form: web::Form<ChangeEmailForm>,
) -> Result<HttpResponse, PageError> {
    let mut errors = Errors::new();
    check_email(&mut errors, "nouvel_email", &form.email);
    if form.actuel.is_empty() {
        errors.insert("actuel_email", FormError::Required);
    }
    if errors.is_empty() {
        let client = super::client_key(&request);
        let outcome = service::request_email_change(
            &state.pool,
            &state.hasher,
            &state.config.public_url,
            user.id,
            &form.actuel,
            form.email.trim(),
            asker(&state, &client),
        )
        .await;
        match outcome {
            Ok(()) => return Ok(notice_redirect(Notice::EmailChangeSent)),
            Err(ServiceError::InvalidCredentials) => {
                errors.insert("actuel_email", FormError::WrongPassword);
            }
            Err(e) => return Err(internal(e)),
        }
    }
    let values = BTreeMap::from([("nouvel_email", form.email.clone())]);
    let body = account_page(
        &state,
        &request,
        layout,
        user,
        None,
        messages(&errors),
        values,
    )
    .await?;
    Ok(super::html(400, body))
}

/// `GET /compte/email/confirmation?jeton=…`: a page with the button that confirms.
pub async fn email_confirmation_page(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, PageError> {
    confirm_page(
        &state,
        &request,
        layout,
        "/compte/email/confirmation",
        TokenPurpose::EmailChange,
        &query.jeton,
    )
    .await
}

/// `POST /compte/email/confirmation`: the new address replaces the old one.
pub async fn confirm_email(
    state: web::Data<AppState>,
    form: web::Form<TokenQuery>,
) -> Result<HttpResponse, PageError> {
    match service::confirm_email_change(&state.pool, &state.config.public_url, &form.jeton).await {
        Ok(()) => Ok(super::see_other(&format!(
            "/compte/info?avis={}",
            Notice::EmailChanged.code()
        ))),
        Err(ServiceError::InvalidLink) => Ok(link_invalid()),
        Err(ServiceError::EmailTaken) => Ok(super::see_other(&format!(
            "/compte/info?avis={}",
            Notice::EmailTaken.code()
        ))),
        Err(e) => Err(internal(e)),
    }
}

pub async fn sign_out_everywhere(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
) -> Result<HttpResponse, PageError> {
    service::sign_out_everywhere(&state.pool, user.id)
        .await
        .map_err(internal)?;
    extract::sign_out(&session);
    Ok(super::see_other(&format!(
        "/compte/info?avis={}",
        Notice::SignedOutEverywhere.code()
    )))
}

// ---------------------------------------------------------------- members (owners only)

pub async fn invite(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    Owner(owner): Owner,
    form: web::Form<EmailForm>,
) -> Result<HttpResponse, PageError> {
    let mut errors = Errors::new();
    check_email(&mut errors, "invitation", &form.email);
    if !errors.is_empty() {
        let values = BTreeMap::from([("invitation", form.email.clone())]);
        let body = account_page(
            &state,
            &request,
            layout,
            owner,
            None,
            messages(&errors),
            values,
        )
        .await?;
        return Ok(super::html(400, body));
    }
    service::invite(
        &state.pool,
        &state.config.public_url,
        &owner.row,
        form.email.trim(),
    )
    .await
    .map_err(internal)?;
    Ok(notice_redirect(Notice::InvitationSent))
}

/// `POST /compte/invitations/{id}/revocation`: the link stops working at once.
pub async fn revoke_invitation(
    state: web::Data<AppState>,
    Owner(owner): Owner,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id = Uuid::parse_str(&path).map_err(|_| PageError::NotFound)?;
    match service::revoke_invitation(&state.pool, &owner.row, id).await {
        Ok(()) => Ok(notice_redirect(Notice::InvitationRevoked)),
        Err(ServiceError::NotAllowed) => Err(PageError::NotFound),
        Err(e) => Err(internal(e)),
    }
}

/// An id from the URL that is not a member of the owner's organisation is simply not found:
/// nobody learns anything about another organisation by changing it.
pub async fn remove_member(
    state: web::Data<AppState>,
    Owner(owner): Owner,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let member = Uuid::parse_str(&path).map_err(|_| PageError::NotFound)?;
    match service::remove_member(&state.pool, &owner.row, member).await {
        Ok(()) => Ok(notice_redirect(Notice::MemberRemoved)),
        Err(ServiceError::NotAllowed) => Err(PageError::NotFound),
        Err(e) => Err(e.into()),
    }
}

pub async fn transfer_ownership(
    state: web::Data<AppState>,
    Owner(owner): Owner,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let member = Uuid::parse_str(&path).map_err(|_| PageError::NotFound)?;
    match service::transfer_ownership(&state.pool, &owner.row, member).await {
        Ok(()) => Ok(notice_redirect(Notice::OwnershipTransferred)),
        Err(ServiceError::NotAllowed) => Err(PageError::NotFound),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ThresholdForm {
    #[serde(default)]
    seuil: String,
}

pub async fn set_threshold(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    Owner(owner): Owner,
    form: web::Form<ThresholdForm>,
) -> Result<HttpResponse, PageError> {
    match form.seuil.trim().parse::<i64>() {
        Ok(value @ 0..=100_000) => {
            service::set_threshold(&state.pool, &owner.row, value).await?;
            Ok(notice_redirect(Notice::ThresholdSaved))
        }
        _ => {
            let errors = BTreeMap::from([("seuil", message("seuil", FormError::OutOfRange))]);
            let values = BTreeMap::from([("seuil", form.seuil.clone())]);
            let body = account_page(&state, &request, layout, owner, None, errors, values).await?;
            Ok(super::html(400, body))
        }
    }
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
