//! The team (owners): invitations, their acceptance, revocation, removal, hand-over, and the
//! low-balance threshold.

use super::*;

// ---------------------------------------------------------------- invitations

/// The organisation and the address an invitation's token names, or the page that says why it
/// cannot be used (an invalid link, an address that already has an account).
async fn invitation(
    state: &AppState,
    token: &str,
) -> Result<Result<(String, String), HttpResponse>, PageError> {
    match service::invitation(&state.pool, token, state.clock.now()).await {
        Ok(found) => Ok(Ok(found)),
        Err(AccountError::InvalidLink) => Ok(Err(link_invalid())),
        Err(AccountError::InvitedAddressHasAccount) => {
            Ok(Err(info_redirect(Notice::InvitedAddressHasAccount)))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn invitation_form(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, PageError> {
    let (organisation, email) = match invitation(&state, &query.jeton).await? {
        Ok(found) => found,
        Err(refused) => return Ok(refused),
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
    let (organisation, email) = match invitation(&state, &form.jeton).await? {
        Ok(found) => found,
        Err(refused) => return Ok(refused),
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
    let client = super::super::client_key(&request);
    let outcome = service::accept_invitation(
        &state.pool,
        &state.hasher,
        &form.jeton,
        &form.mot_de_passe,
        asker(&state, &client),
        state.clock.now(),
    )
    .await;
    match outcome {
        Ok(user) => {
            extract::sign_in(&session, &user, state.clock.now())?;
            Ok(super::super::see_other("/compte"))
        }
        Err(AccountError::InvalidLink | AccountError::EmailTaken) => Ok(link_invalid()),
        Err(e) => Err(e.into()),
    }
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
        return Ok(super::super::html(400, body));
    }
    service::invite(
        &state.pool,
        &state.config.public_url,
        &owner.row,
        form.email.trim(),
        state.clock.now(),
    )
    .await
    .map_err(PageError::from)?;
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
        Err(AccountError::NotAllowed) => Err(PageError::NotFound),
        Err(e) => Err(e.into()),
    }
}

/// The organisation's member `path` names (not its owner), or 404: an id from the URL that is
/// not a member of the owner's organisation is simply not found, so nobody learns anything
/// about another organisation by changing it.
async fn member_of(
    state: &AppState,
    owner: &CurrentUser,
    path: &str,
) -> Result<db::accounts::Member, PageError> {
    let member = Uuid::parse_str(path).map_err(|_| PageError::NotFound)?;
    match service::member(&state.pool, &owner.row, member).await {
        Err(AccountError::NotAllowed) => Err(PageError::NotFound),
        other => Ok(other?),
    }
}

pub async fn remove_member(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    Owner(owner): Owner,
    path: web::Path<String>,
    form: web::Form<Confirmation>,
) -> Result<HttpResponse, PageError> {
    let member = member_of(&state, &owner, &path).await?;
    if !form.given() {
        return confirm_action(
            &request,
            layout,
            Confirm::Removal,
            &member.email,
            "/compte#membres",
        );
    }
    match service::remove_member(&state.pool, &owner.row, member.id).await {
        Ok(()) => Ok(notice_redirect(Notice::MemberRemoved)),
        Err(AccountError::NotAllowed) => Err(PageError::NotFound),
        Err(e) => Err(e.into()),
    }
}

pub async fn transfer_ownership(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    Owner(owner): Owner,
    path: web::Path<String>,
    form: web::Form<Confirmation>,
) -> Result<HttpResponse, PageError> {
    let member = member_of(&state, &owner, &path).await?;
    if !form.given() {
        return confirm_action(
            &request,
            layout,
            Confirm::Handover,
            &member.email,
            "/compte#membres",
        );
    }
    match service::transfer_ownership(&state.pool, &owner.row, member.id).await {
        Ok(()) => Ok(notice_redirect(Notice::OwnershipTransferred)),
        Err(AccountError::NotAllowed) => Err(PageError::NotFound),
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
    match crate::domain::money::parse_credits(&form.seuil) {
        Some(value @ 0..=100_000) => {
            service::set_threshold(&state.pool, &owner.row, value).await?;
            Ok(notice_redirect(Notice::ThresholdSaved))
        }
        _ => {
            let errors = BTreeMap::from([("seuil", message("seuil", FormError::OutOfRange))]);
            let values = BTreeMap::from([("seuil", form.seuil.clone())]);
            let body = account_page(&state, &request, layout, owner, None, errors, values).await?;
            Ok(super::super::html(400, body))
        }
    }
}
