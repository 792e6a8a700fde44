//! Passwords: forgotten (`/compte/mot-de-passe-oublie`, `/compte/reinitialisation`) and changed (`/compte/mot-de-passe`).

use super::*;

// ---------------------------------------------------------------- forgotten password

#[derive(Template)]
#[template(path = "compte/oubli.html")]
struct ForgotPage {
    layout: Layout,
    csrf: String,
    email: String,
    error: Option<String>,
}

pub async fn forgot_form(request: HttpRequest, layout: Layout) -> Result<HttpResponse, PageError> {
    Ok(super::super::html(
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
        return Ok(super::super::html(400, body));
    }
    service::request_reset(
        &state.pool,
        &state.config.public_url,
        form.email.trim(),
        &super::super::client_key(&request),
        state.clock.now(),
    )
    .await
    .map_err(PageError::from)?;
    Ok(info_redirect(Notice::ResetSent))
}

#[derive(Template)]
#[template(path = "compte/nouveau_mot_de_passe.html")]
pub(super) struct NewPasswordPage {
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
    pub(super) fn respond(
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
        Ok(super::super::html(status, page.render()?))
    }
}

pub(super) fn link_invalid() -> HttpResponse {
    info_redirect(Notice::LinkInvalid)
}

pub async fn reset_form(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, PageError> {
    if !service::link_is_valid(
        &state.pool,
        &query.jeton,
        TokenPurpose::Reset,
        state.clock.now(),
    )
    .await
    .map_err(PageError::from)?
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
    let personal =
        match service::reset_personal_words(&state.pool, &form.jeton, state.clock.now()).await {
            Ok(words) => words,
            Err(AccountError::InvalidLink) => return Ok(link_invalid()),
            Err(e) => return Err(e.into()),
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
    let client = super::super::client_key(&request);
    let outcome = service::reset_password(
        &state.pool,
        &state.hasher,
        &state.config.public_url,
        &form.jeton,
        &form.mot_de_passe,
        asker(&state, &client),
        state.clock.now(),
    )
    .await;
    match outcome {
        Ok(_) => {
            extract::sign_out(&session);
            Ok(info_redirect(Notice::PasswordReset))
        }
        Err(AccountError::InvalidLink) => Ok(link_invalid()),
        Err(e) => Err(e.into()),
    }
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
    let client = super::super::client_key(&request);
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
            Err(AccountError::InvalidCredentials) => {
                errors.insert("actuel", FormError::WrongPassword);
            }
            Err(e) => return Err(e.into()),
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
    Ok(super::super::html(400, body))
}
