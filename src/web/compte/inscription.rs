//! Sign-up and activation (`/compte/inscription`, `/compte/activation`).

use super::*;
use crate::domain::billing::OrderState;
use crate::services::billing::SignupPayment;

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
    Ok(super::super::html(200, body))
}

pub async fn sign_up(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    form: web::Form<SignUpForm>,
) -> Result<HttpResponse, PageError> {
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
        return Ok(super::super::html(400, body));
    }
    let input = SignUp {
        organisation: &organisation,
        email: form.email.trim(),
        password: &form.mot_de_passe,
        plan: &form.plan,
    };
    let client = super::super::client_key(&request);
    service::sign_up(
        &state.pool,
        &state.hasher,
        &state.config.public_url,
        input,
        asker(&state, &client),
        super::super::achats::provider(&state),
        state.clock.now(),
    )
    .await
    .map_err(PageError::from)?;
    Ok(info_redirect(Notice::CheckYourEmail))
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

pub(super) async fn confirm_page(
    state: &AppState,
    request: &HttpRequest,
    layout: Layout,
    action: &'static str,
    purpose: TokenPurpose,
    token: &str,
) -> Result<HttpResponse, PageError> {
    if !service::link_is_valid(&state.pool, token, purpose, state.clock.now())
        .await
        .map_err(PageError::from)?
    {
        return Ok(link_invalid());
    }
    let page = ConfirmPage {
        layout,
        csrf: csrf::token(request)?,
        action,
        jeton: token.to_owned(),
    };
    Ok(super::super::html(200, page.render()?))
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

/// `POST /compte/activation`: activates the account and signs its owner in, who then pays the
/// first period (the payment page sends on to the dashboard when it is paid already).
pub async fn activate(
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<TokenQuery>,
) -> Result<HttpResponse, PageError> {
    match service::activate(&state.pool, &form.jeton, state.clock.now()).await {
        Ok(user) => {
            extract::sign_in(&session, &user, state.clock.now())?;
            Ok(super::super::see_other(if user.role == Role::Owner {
                "/compte/inscription/paiement"
            } else {
                "/compte"
            }))
        }
        Err(AccountError::InvalidLink) => Ok(info_redirect(Notice::LinkInvalid)),
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------- pay the first period

#[derive(Template)]
#[template(path = "compte/inscription_paiement.html")]
struct SignUpPaymentPage {
    layout: Layout,
    csrf: String,
    terms: crate::db::billing::PlanTerms,
    ht: crate::domain::money::Cents,
    tva: crate::domain::money::Cents,
    /// The last attempt, when it did not go through (failed or expired).
    last: Option<crate::db::billing::Order>,
}

/// `GET /compte/inscription/paiement`: the plan chosen at sign-up and its first period's
/// price; the button goes to the payment provider. Once paid: the dashboard.
pub async fn sign_up_payment_page(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    owner: Owner,
) -> Result<HttpResponse, PageError> {
    let organisation = owner.0.organisation.ok_or(PageError::Forbidden)?;
    match crate::services::billing::signup_payment(&state.pool, organisation)
        .await
        .map_err(super::super::achats::fault)?
    {
        SignupPayment::Paid => Ok(super::super::see_other("/tableau-de-bord")),
        SignupPayment::Due { terms, order } => {
            let (ht, tva) = crate::domain::billing::split_ttc(terms.price_cents);
            let page = SignUpPaymentPage {
                layout,
                csrf: csrf::token(&request)?,
                terms,
                ht,
                tva,
                last: order
                    .filter(|o| !o.state.is_open() || o.expires_at <= state.clock.now())
                    .map(|o| *o),
            };
            Ok(super::super::html(200, page.render()?))
        }
    }
}

/// `POST /compte/inscription/paiement`: to the provider's page (the open order, or a new one
/// when the last expired or failed).
pub async fn sign_up_pay(
    state: web::Data<AppState>,
    owner: Owner,
) -> Result<HttpResponse, PageError> {
    let organisation = owner.0.organisation.ok_or(PageError::Forbidden)?;
    let next = crate::services::billing::pay_signup(
        &state.pool,
        &state.payments,
        &state.config.public_url,
        organisation,
        owner.0.id,
        state.clock.now(),
    )
    .await
    .map_err(super::super::achats::fault)?;
    Ok(super::super::see_other(&next))
}
