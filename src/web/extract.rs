//! Who is asking: the signed-in user from the server-side session, checked on every request
//! against the user's row (a removed member or a password change ends their sessions). The row
//! comes from the read cache (`crate::cache`) until the user or their organisation is touched.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_session::{Session, SessionExt};
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use time::OffsetDateTime;
use uuid::Uuid;

use super::AppState;
use super::error::PageError;
use crate::cache::{Key, Slot};
use crate::db;
use crate::db::accounts::UserRow;

const USER: &str = "uid";
const EPOCH: &str = "epoch";
const SIGNED_IN_AT: &str = "auth_at";
const SEEN_AT: &str = "seen_at";
/// The staff member whose second factor this session checked.
const SECOND_FACTOR: &str = "second_factor";
/// Signed out after 8 hours without a request, and 7 days after signing in whatever happens.
pub const IDLE_SECS: i64 = 8 * 3600;
pub const ABSOLUTE_SECS: i64 = 7 * 24 * 3600;
/// How often the idle clock is written to the session.
const SEEN_RESOLUTION_SECS: i64 = 300;

pub use crate::domain::account::Role;

#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub organisation: Option<Uuid>,
    pub row: db::accounts::UserRow,
}

impl CurrentUser {
    pub fn is_owner(&self) -> bool {
        self.role == Role::Owner
    }
}

/// The session cookie's name: `__Host-` prefixed (Secure, no Domain) outside development.
pub fn session_cookie_name(production: bool) -> &'static str {
    if production {
        "__Host-session"
    } else {
        "nanoclip_session"
    }
}

/// The user id stored in the session, without checking it (the CSRF token is bound to it).
pub fn session_user(session: &Session) -> Option<Uuid> {
    session.get::<Uuid>(USER).ok().flatten()
}

/// Opens a fresh session for `user` (a new key: no fixation).
pub fn sign_in(
    session: &Session,
    user: &db::accounts::UserRow,
    now: OffsetDateTime,
) -> Result<(), PageError> {
    session.renew();
    let now = now.unix_timestamp();
    let store = |key: &str, value: &dyn erased::Value| value.insert(session, key);
    store(USER, &user.id)?;
    store(EPOCH, &user.session_epoch)?;
    store(SIGNED_IN_AT, &now)?;
    store(SEEN_AT, &now)?;
    Ok(())
}

/// Keeps this session valid after the user's epoch changed (their own password change).
pub fn keep_session(session: &Session, epoch: i32) -> Result<(), PageError> {
    session
        .insert(EPOCH, epoch)
        .map_err(|e| PageError::Internal(anyhow::anyhow!("session: {e}")))
}

/// Notes that `user` gave their second factor in this session.
pub fn second_factor_done(session: &Session, user: Uuid) -> Result<(), PageError> {
    session
        .insert(SECOND_FACTOR, user)
        .map_err(|e| PageError::Internal(anyhow::anyhow!("session: {e}")))
}

/// Whether this session checked `user`'s second factor.
pub fn has_second_factor(session: &Session, user: Uuid) -> bool {
    session.get::<Uuid>(SECOND_FACTOR).ok().flatten() == Some(user)
}

pub fn sign_out(session: &Session) {
    session.purge();
}

mod erased {
    use actix_session::Session;

    use super::PageError;

    /// Lets `sign_in` store values of different types through one closure.
    pub trait Value {
        fn insert(&self, session: &Session, key: &str) -> Result<(), PageError>;
    }

    impl<T: serde::Serialize> Value for T {
        fn insert(&self, session: &Session, key: &str) -> Result<(), PageError> {
            session
                .insert(key, self)
                .map_err(|e| PageError::Internal(anyhow::anyhow!("session: {e}")))
        }
    }
}

async fn current_user(
    state: web::Data<AppState>,
    session: Session,
) -> Result<Option<CurrentUser>, PageError> {
    let Ok(Some(id)) = session.get::<Uuid>(USER) else {
        return Ok(None);
    };
    let now = state.clock.now().unix_timestamp();
    let signed_in_at = session.get::<i64>(SIGNED_IN_AT).ok().flatten().unwrap_or(0);
    let seen_at = session.get::<i64>(SEEN_AT).ok().flatten().unwrap_or(0);
    if now - seen_at > IDLE_SECS || now - signed_in_at > ABSOLUTE_SECS {
        session.purge();
        return Ok(None);
    }
    let Some(row) = user_row(&state, id).await? else {
        session.purge();
        return Ok(None);
    };
    if session.get::<i32>(EPOCH).ok().flatten() != Some(row.session_epoch) {
        session.purge();
        return Ok(None);
    }
    if now - seen_at > SEEN_RESOLUTION_SECS {
        let _ = session.insert(SEEN_AT, now);
    }
    Ok(Some(CurrentUser {
        id: row.id,
        email: row.email.clone(),
        role: row.role,
        organisation: row.organisation_id,
        row: UserRow::clone(&row),
    }))
}

/// The user's row: kept by the read cache until the user or their organisation is touched.
async fn user_row(state: &AppState, id: Uuid) -> Result<Option<Arc<UserRow>>, PageError> {
    let now = state.clock.now();
    let slot = Slot::User(id);
    if let Some(row) = state.caches.get::<UserRow>(&slot, now) {
        return Ok(Some(row));
    }
    let ticket = state.caches.ticket();
    let Some(row) = crate::services::accounts::user(&state.pool, id).await? else {
        return Ok(None);
    };
    let row = Arc::new(row);
    if let Some(ticket) = ticket {
        let mut keys = vec![Key::User(id)];
        keys.extend(row.organisation_id.map(Key::Organisation));
        state.caches.put(slot, ticket, keys, row.clone(), now, None);
    }
    Ok(Some(row))
}

/// What a write by this user may change, for `web::changes::announce`: their organisation,
/// who may act for it (API keys, plan) and their row. Staff act on any organisation: nothing
/// is noted, and their writes reset all.
fn note_acting(request: &HttpRequest, user: &CurrentUser) {
    if let Some(organisation) = user.organisation
        && user.role != Role::Staff
    {
        super::changes::Acting::note(
            request,
            vec![
                Key::Organisation(organisation),
                Key::Access(organisation),
                Key::User(user.id),
            ],
        );
    }
}

type Boxed<T> = Pin<Box<dyn Future<Output = Result<T, actix_web::Error>>>>;

fn state_and_session(
    req: &HttpRequest,
) -> Result<(web::Data<AppState>, Session), actix_web::Error> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| actix_web::error::ErrorInternalServerError("application state missing"))?;
    Ok((state, req.get_session()))
}

/// The path to come back to after signing in.
fn next_path(req: &HttpRequest) -> String {
    req.uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned())
}

impl FromRequest for CurrentUser {
    type Error = actix_web::Error;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parts = state_and_session(req);
        let next = next_path(req);
        let request = req.clone();
        Box::pin(async move {
            let (state, session) = parts?;
            let user = current_user(state, session)
                .await?
                .ok_or_else(|| PageError::LoginRequired(next))?;
            note_acting(&request, &user);
            Ok(user)
        })
    }
}

/// The signed-in user, if any (pages open to visitors that adapt to members).
pub struct MaybeUser(pub Option<CurrentUser>);

impl FromRequest for MaybeUser {
    type Error = actix_web::Error;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Without a session cookie there is no session to read (the session middleware loads one
        // only from its cookie): a visitor, found without touching the session.
        if let Some(state) = req.app_data::<web::Data<AppState>>()
            && !super::layout::has_session_cookie(state, req)
        {
            return Box::pin(std::future::ready(Ok(MaybeUser(None))));
        }
        let parts = state_and_session(req);
        let request = req.clone();
        Box::pin(async move {
            let (state, session) = parts?;
            let user = current_user(state, session).await?;
            if let Some(user) = &user {
                note_acting(&request, user);
            }
            Ok(MaybeUser(user))
        })
    }
}

/// An owner of an organisation: buys, invites, hands over, sets the alert threshold.
pub struct Owner(pub CurrentUser);

impl FromRequest for Owner {
    type Error = actix_web::Error;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = CurrentUser::from_request(req, payload);
        Box::pin(async move {
            let user = user.await?;
            if user.role == Role::Owner && user.organisation.is_some() {
                Ok(Owner(user))
            } else {
                Err(PageError::Forbidden.into())
            }
        })
    }
}

/// NanoClip staff: the back office.
pub struct Staff(pub CurrentUser);

impl Staff {
    /// Who did it, as the audit log and the ledger name a staff member: `staff:{e-mail}`.
    pub fn actor(&self) -> String {
        format!("staff:{}", self.0.email)
    }
}

impl FromRequest for Staff {
    type Error = actix_web::Error;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = CurrentUser::from_request(req, payload);
        Box::pin(async move {
            let user = user.await?;
            if user.role == Role::Staff {
                Ok(Staff(user))
            } else {
                Err(PageError::Forbidden.into())
            }
        })
    }
}

/// The staff guard, on the whole `/admin` scope: a visitor is sent to the login page, anyone
/// else but staff gets a 403, before any handler runs.
pub async fn staff_only(
    request: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<
    actix_web::dev::ServiceResponse<actix_web::body::EitherBody<impl actix_web::body::MessageBody>>,
    actix_web::Error,
> {
    let parts = state_and_session(request.request());
    let refusal = match parts {
        Err(error) => Some(PageError::Internal(anyhow::anyhow!("{error}"))),
        Ok((state, session)) => match current_user(state, session.clone()).await {
            // Staff without the second factor in this session: give it first.
            Ok(Some(user)) if user.role == Role::Staff && !has_second_factor(&session, user.id) => {
                let query = serde_urlencoded::to_string([("suite", next_path(request.request()))])
                    .unwrap_or_default();
                let to = format!("/compte/second-facteur?{query}");
                return Ok(request
                    .into_response(super::see_other(&to))
                    .map_into_right_body());
            }
            Ok(Some(user)) if user.role == Role::Staff => None,
            Ok(Some(_)) => Some(PageError::Forbidden),
            Ok(None) => Some(PageError::LoginRequired(next_path(request.request()))),
            Err(error) => Some(error),
        },
    };
    match refusal {
        Some(error) => Ok(request.error_response(error).map_into_right_body()),
        None => Ok(next.call(request).await?.map_into_left_body()),
    }
}
