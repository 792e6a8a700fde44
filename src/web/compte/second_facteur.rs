//! Staff's second factor: the enrolment page opened from the link `nanoclip create-staff`
//! prints (`/compte/second-facteur/inscription`), and the code asked at each sign-in before
//! the back office opens (`/compte/second-facteur`).

use super::*;
use crate::services::second_factor::{self, SecondFactorError};

#[derive(Deserialize)]
pub struct CodeQuery {
    #[serde(default)]
    suite: String,
}

#[derive(Template)]
#[template(path = "compte/second_facteur.html")]
struct CodePage {
    layout: Layout,
    csrf: String,
    suite: String,
    /// `code`, `essais`, `absent`
    problem: Option<&'static str>,
    wait_minutes: i64,
}

/// Where the staff member goes once the second factor is given: a back-office path only.
fn admin_next(suite: &str) -> &str {
    let next = safe_next(suite);
    if next == "/admin" || next.starts_with("/admin/") || next.starts_with("/admin?") {
        next
    } else {
        "/admin"
    }
}

fn code_page(
    layout: Layout,
    request: &HttpRequest,
    suite: String,
    problem: Option<&'static str>,
    wait_minutes: i64,
) -> Result<String, PageError> {
    Ok(CodePage {
        layout,
        csrf: csrf::token(request)?,
        suite,
        problem,
        wait_minutes,
    }
    .render()?)
}

pub async fn second_factor_form(
    state: web::Data<AppState>,
    session: Session,
    request: HttpRequest,
    layout: Layout,
    user: CurrentUser,
    query: web::Query<CodeQuery>,
) -> Result<HttpResponse, PageError> {
    if user.role != Role::Staff {
        return Err(PageError::Forbidden);
    }
    if extract::has_second_factor(&session, user.id) {
        return Ok(super::super::see_other(admin_next(&query.suite)));
    }
    let enrolled = second_factor::is_enrolled(&state.pool, user.id)
        .await
        .map_err(refusal)?;
    let problem = (!enrolled).then_some("absent");
    let body = code_page(layout, &request, query.suite.clone(), problem, 0)?;
    Ok(super::super::html(200, body))
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    suite: String,
}

pub async fn second_factor(
    state: web::Data<AppState>,
    session: Session,
    request: HttpRequest,
    layout: Layout,
    user: CurrentUser,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, PageError> {
    if user.role != Role::Staff {
        return Err(PageError::Forbidden);
    }
    let form = form.into_inner();
    let code: String = form.code.chars().take(64).collect();
    let (status, problem, wait) =
        match second_factor::verify(&state.pool, user.id, &code, state.clock.now()).await {
            Ok(()) => {
                extract::second_factor_done(&session, user.id)?;
                return Ok(super::super::see_other(admin_next(&form.suite)));
            }
            Err(SecondFactorError::WrongCode) => (400, "code", 0),
            Err(SecondFactorError::TooManyAttempts(seconds)) => (429, "essais", seconds),
            Err(SecondFactorError::NotEnrolled) => (403, "absent", 0),
            Err(other) => return Err(refusal(other)),
        };
    tracing::warn!(user = %user.id, problem, "staff second factor refused");
    let body = code_page(
        layout,
        &request,
        form.suite,
        Some(problem),
        (wait + 59) / 60,
    )?;
    let mut response = super::super::html(status, body);
    if status == 429 {
        response.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from(wait.max(1)),
        );
    }
    Ok(response)
}

fn refusal(error: SecondFactorError) -> PageError {
    match error {
        SecondFactorError::Account(e) => e.into(),
        SecondFactorError::InvalidLink => PageError::NotFound,
        other => PageError::Internal(other.into()),
    }
}

#[derive(Deserialize)]
pub struct EnrolmentQuery {
    #[serde(default)]
    jeton: String,
}

#[derive(Template)]
#[template(path = "compte/second_facteur_inscription.html")]
struct EnrolmentPage {
    layout: Layout,
    csrf: String,
    jeton: String,
    email: String,
    secret_groups: String,
    qr_svg: String,
    /// `code`, `mot_de_passe`
    problem: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "compte/second_facteur_codes.html")]
struct RecoveryCodesPage {
    layout: Layout,
    codes: Vec<String>,
}

fn link_gone() -> HttpResponse {
    info_redirect(Notice::LinkInvalid)
}

pub async fn enrolment_page(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    query: web::Query<EnrolmentQuery>,
) -> Result<HttpResponse, PageError> {
    let token: String = query.jeton.chars().take(128).collect();
    let enrolment = match second_factor::enrolment(&state.pool, &token, state.clock.now()).await {
        Ok(e) => e,
        Err(SecondFactorError::InvalidLink) => return Ok(link_gone()),
        Err(other) => return Err(refusal(other)),
    };
    let page = EnrolmentPage {
        layout,
        csrf: csrf::token(&request)?,
        jeton: token,
        email: enrolment.email,
        secret_groups: enrolment.secret_groups,
        qr_svg: enrolment.qr_svg,
        problem: None,
    };
    Ok(super::super::html(200, page.render()?))
}

#[derive(Deserialize)]
pub struct EnrolmentForm {
    #[serde(default)]
    jeton: String,
    #[serde(default)]
    mot_de_passe: String,
    #[serde(default)]
    code: String,
}

pub async fn enrol(
    state: web::Data<AppState>,
    session: Session,
    request: HttpRequest,
    layout: Layout,
    form: web::Form<EnrolmentForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    let now = state.clock.now();
    let enrolment = match second_factor::enrolment(&state.pool, &form.jeton, now).await {
        Ok(e) => e,
        Err(SecondFactorError::InvalidLink) => return Ok(link_gone()),
        Err(other) => return Err(refusal(other)),
    };
    // The password proves the link reached its staff member (throttled like a login).
    let problem = match service::log_in(
        &state.pool,
        &state.hasher,
        &enrolment.email,
        &form.mot_de_passe.chars().take(1024).collect::<String>(),
        &super::super::client_key(&request),
        state.config.login_throttle,
    )
    .await
    {
        Ok(user) if user.id == enrolment.user => {
            match second_factor::confirm_enrolment(
                &state.pool,
                &form.jeton,
                user.id,
                &form.code,
                now,
            )
            .await
            {
                Ok(codes) => {
                    extract::sign_in(&session, &user, now)?;
                    extract::second_factor_done(&session, user.id)?;
                    let page = RecoveryCodesPage { layout, codes };
                    return Ok(super::super::html(200, page.render()?));
                }
                Err(SecondFactorError::WrongCode) => "code",
                Err(SecondFactorError::InvalidLink) => return Ok(link_gone()),
                Err(other) => return Err(refusal(other)),
            }
        }
        Ok(_) | Err(AccountError::InvalidCredentials) | Err(AccountError::NotActivated) => {
            "mot_de_passe"
        }
        Err(other) => return Err(other.into()),
    };
    let page = EnrolmentPage {
        layout,
        csrf: csrf::token(&request)?,
        jeton: form.jeton,
        email: enrolment.email,
        secret_groups: enrolment.secret_groups,
        qr_svg: enrolment.qr_svg,
        problem: Some(problem),
    };
    Ok(super::super::html(400, page.render()?))
}
