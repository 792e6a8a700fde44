//! `/compte/api`: the Plan Réseau API keys of the organisation (owners): create one (shown
//! once), see when each was last used, revoke.

use super::*;
use crate::db::generations::ApiKey;
use crate::services::api_keys::{self, KeyError};

#[derive(Template)]
#[template(path = "compte/api.html")]
struct ApiKeysPage {
    layout: Layout,
    csrf: String,
    allows_api: bool,
    keys: Vec<ApiKey>,
    /// The key just created: its name and secret, shown this once.
    created: Option<(String, String)>,
    name: String,
    error: Option<&'static str>,
    /// The name of the key just revoked (after the redirect).
    revoked: Option<String>,
    /// The key the form sent again had made (a reload after its secret was shown).
    already: Option<String>,
    /// This form's own key: the same form sent twice makes one key.
    form_key: String,
}

#[derive(Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    nom: String,
    #[serde(default)]
    cle: String,
}

/// What the page says besides its list.
#[derive(Default)]
struct Shown {
    created: Option<(String, String)>,
    name: String,
    error: Option<&'static str>,
    revoked: Option<Uuid>,
    already: Option<String>,
}

#[derive(Deserialize)]
pub struct Notice {
    /// The id of the key just revoked.
    revoquee: Option<String>,
}

fn key_error(error: KeyError) -> PageError {
    match error {
        KeyError::Credit(crate::services::credits::CreditError::Fault(f)) => f.into(),
        other => PageError::Internal(other.into()),
    }
}

async fn allows_api(state: &AppState, organisation: Uuid) -> Result<bool, PageError> {
    let org = service::organisation(&state.pool, organisation).await?;
    let catalog = state.catalog.get(&state.pool).await?;
    Ok(org
        .and_then(|o| catalog.plan(&o.plan_id).map(|p| p.allows_api))
        .unwrap_or(false))
}

async fn render_page(
    state: &AppState,
    request: &HttpRequest,
    layout: Layout,
    organisation: Uuid,
    shown: Shown,
) -> Result<HttpResponse, PageError> {
    let allows = allows_api(state, organisation).await?;
    let keys = api_keys::list(&state.pool, organisation)
        .await
        .map_err(key_error)?;
    let status = if shown.error.is_some() { 400 } else { 200 };
    let revoked = shown.revoked.and_then(|id| {
        keys.iter()
            .find(|k| k.id == id && k.revoked_at.is_some())
            .map(|k| k.name.clone())
    });
    let page = ApiKeysPage {
        layout,
        csrf: csrf::token(request)?,
        allows_api: allows,
        keys,
        created: shown.created,
        name: shown.name,
        error: shown.error,
        revoked,
        already: shown.already,
        form_key: crate::random::token(),
    };
    Ok(super::super::html(status, page.render()?))
}

pub async fn api_keys_page(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    owner: Owner,
    notice: web::Query<Notice>,
) -> Result<HttpResponse, PageError> {
    let organisation = owner.0.organisation.ok_or(PageError::Forbidden)?;
    let revoked = notice
        .revoquee
        .as_deref()
        .and_then(|id| Uuid::parse_str(id).ok());
    render_page(
        &state,
        &request,
        layout,
        organisation,
        Shown {
            revoked,
            ..Shown::default()
        },
    )
    .await
}

pub async fn create_api_key(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    owner: Owner,
    form: web::Form<KeyForm>,
) -> Result<HttpResponse, PageError> {
    let organisation = owner.0.organisation.ok_or(PageError::Forbidden)?;
    if let Some(first) = super::super::achats::unpaid_sign_up(&state, organisation).await? {
        return Ok(first);
    }
    let allows = allows_api(&state, organisation).await?;
    let by = format!("user:{}", owner.0.id);
    let shown = match api_keys::create(
        &state.pool,
        organisation,
        allows,
        &form.nom,
        &by,
        Some(&form.cle),
        state.clock.now(),
    )
    .await
    {
        Ok((_, secret)) => Shown {
            created: Some((form.nom.trim().to_owned(), secret)),
            ..Shown::default()
        },
        Err(KeyError::AlreadyCreated(name)) => Shown {
            already: Some(name),
            ..Shown::default()
        },
        Err(KeyError::BadName) => Shown {
            name: form.nom.clone(),
            error: Some("nom"),
            ..Shown::default()
        },
        Err(KeyError::PlanWithoutApi) => return Err(PageError::Forbidden),
        Err(other) => return Err(key_error(other)),
    };
    render_page(&state, &request, layout, organisation, shown).await
}

pub async fn revoke_api_key(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    owner: Owner,
    id: web::Path<Uuid>,
    form: web::Form<Confirmation>,
) -> Result<HttpResponse, PageError> {
    let organisation = owner.0.organisation.ok_or(PageError::Forbidden)?;
    let id = id.into_inner();
    if !form.given() {
        let keys = api_keys::list(&state.pool, organisation)
            .await
            .map_err(key_error)?;
        let key = keys
            .iter()
            .find(|k| k.id == id && k.revoked_at.is_none())
            .ok_or(PageError::NotFound)?;
        return confirm_action(
            &request,
            layout,
            Confirm::Revocation,
            &key.name,
            "/compte/api",
        );
    }
    let done = api_keys::revoke(&state.pool, organisation, id, state.clock.now())
        .await
        .map_err(key_error)?;
    if !done {
        return Err(PageError::NotFound);
    }
    Ok(super::super::see_other(&format!(
        "/compte/api?revoquee={id}#cle-revoquee"
    )))
}
