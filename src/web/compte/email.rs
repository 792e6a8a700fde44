//! Changing the e-mail address (`/compte/email`, `/compte/email/confirmation`).

use super::*;

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
        let client = super::super::client_key(&request);
        let outcome = service::request_email_change(
            &state.pool,
            &state.hasher,
            &state.config.public_url,
            user.id,
            &form.actuel,
            form.email.trim(),
            asker(&state, &client),
            state.clock.now(),
        )
        .await;
        match outcome {
            Ok(()) => return Ok(notice_redirect(Notice::EmailChangeSent)),
            Err(AccountError::InvalidCredentials) => {
                errors.insert("actuel_email", FormError::WrongPassword);
            }
            Err(e) => return Err(e.into()),
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
    Ok(super::super::html(400, body))
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
    match service::confirm_email_change(
        &state.pool,
        &state.config.public_url,
        &form.jeton,
        state.clock.now(),
    )
    .await
    {
        Ok(()) => Ok(info_redirect(Notice::EmailChanged)),
        Err(AccountError::InvalidLink) => Ok(link_invalid()),
        Err(AccountError::EmailTaken) => Ok(info_redirect(Notice::EmailTaken)),
        Err(e) => Err(e.into()),
    }
}
