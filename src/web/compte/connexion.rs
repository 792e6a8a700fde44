//! Logging in and out (`/compte/connexion`, `/compte/deconnexion`, « se déconnecter partout »).

use super::*;

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
    Ok(super::super::html(200, body))
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
            &super::super::client_key(&request),
            state.config.login_throttle,
        )
        .await
        {
            Ok(user) => {
                extract::sign_in(&session, &user, state.clock.now())?;
                return Ok(super::super::see_other(safe_next(&form.suite)));
            }
            Err(AccountError::InvalidCredentials) => Some("identifiants"),
            Err(AccountError::NotActivated) => Some("activation"),
            Err(e) => return Err(e.into()),
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
    Ok(super::super::html(
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
        return Ok(super::super::see_other("/"));
    }
    let page = LogoutPage {
        layout,
        csrf: csrf::token(&request)?,
    };
    Ok(super::super::html(200, page.render()?))
}

pub async fn logout(session: Session) -> HttpResponse {
    extract::sign_out(&session);
    super::super::see_other("/")
}

pub async fn sign_out_everywhere(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
) -> Result<HttpResponse, PageError> {
    service::sign_out_everywhere(&state.pool, user.id)
        .await
        .map_err(PageError::from)?;
    extract::sign_out(&session);
    Ok(info_redirect(Notice::SignedOutEverywhere))
}
