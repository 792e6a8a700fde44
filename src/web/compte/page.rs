//! The account page, `/compte`.

use super::*;

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

pub(super) async fn account_page(
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
    } = service::account_overview(&state.pool, &user.row, state.clock.now()).await?;
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
    Ok(super::super::html(200, body))
}
