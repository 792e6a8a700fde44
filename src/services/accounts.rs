//! Account use cases: each owns its transaction; e-mails are queued inside it and leave after.

use sha2::{Digest, Sha256};
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::mail::{self, Email};
use super::passwords::{HashError, Hasher};
use crate::db::{self, accounts::AccountError, accounts::UserRow};

const ACTIVATION_SECS: f64 = 24.0 * 3600.0;
const RESET_SECS: f64 = 3600.0;
const EMAIL_CHANGE_SECS: f64 = 24.0 * 3600.0;
const INVITATION_SECS: f64 = 7.0 * 24.0 * 3600.0;

/// Failed logins allowed per account and per client address in a window of 15 minutes.
pub const LOGIN_WINDOW_SECS: i32 = 15 * 60;
pub const LOGIN_FAILURES_PER_ACCOUNT: i64 = 5;
pub const LOGIN_FAILURES_PER_CLIENT: i64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("too many password checks in flight")]
    Busy,
    #[error("too many failed attempts")]
    Throttled { retry_after: i64 },
    #[error("wrong e-mail or password")]
    InvalidCredentials,
    #[error("account not activated")]
    NotActivated,
    #[error("link expired or already used")]
    InvalidLink,
    #[error("e-mail address already used")]
    EmailTaken,
    #[error("not allowed")]
    NotAllowed,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ServiceError {
    fn from(e: sqlx::Error) -> Self {
        ServiceError::Internal(e.into())
    }
}

impl From<HashError> for ServiceError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => ServiceError::Busy,
            HashError::Internal(m) => ServiceError::Internal(anyhow::anyhow!(m)),
        }
    }
}

impl From<AccountError> for ServiceError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::EmailTaken => ServiceError::EmailTaken,
            AccountError::Db(e) => e.into(),
        }
    }
}

/// A random single-use token for a link, and the hash that is stored.
pub fn new_token() -> (String, String) {
    let token = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub struct SignUp<'a> {
    pub organisation: &'a str,
    pub email: &'a str,
    pub password: &'a str,
    pub plan: &'a str,
}

/// Creates the organisation, its owner (to activate by e-mail) and its subscription. An address
/// that has an account already gets an e-mail saying so, and the page says the same thing in
/// both cases: sign-up never reveals who has an account.
pub async fn sign_up(
    pool: &PgPool,
    hasher: &Hasher,
    public_url: &str,
    input: SignUp<'_>,
) -> Result<(), ServiceError> {
    let hash = hasher.hash(input.password).await?;
    let mut tx = pool.begin().await?;
    if db::accounts::user_by_email(&mut tx, input.email)
        .await?
        .is_some()
    {
        let email = Email::AlreadyRegistered {
            login_link: format!("{public_url}/compte/connexion"),
            reset_link: format!("{public_url}/compte/mot-de-passe-oublie"),
        };
        mail::queue(&mut tx, input.email, &email).await?;
        tx.commit().await?;
        return Ok(());
    }
    let organisation =
        db::accounts::create_organisation(&mut tx, input.organisation, input.plan).await?;
    let user = db::accounts::create_user(
        &mut tx,
        Some(organisation),
        input.email,
        &hash,
        "owner",
        false,
    )
    .await?;
    let now = OffsetDateTime::now_utc();
    // Billing comes later: until then a subscription starts unpaid (development only).
    db::accounts::create_subscription(
        &mut tx,
        organisation,
        input.plan,
        "unpaid",
        now,
        now + Duration::days(30),
    )
    .await?;
    let (token, token_hash) = new_token();
    db::accounts::insert_token(
        &mut tx,
        &token_hash,
        "activation",
        Some(user),
        Some(organisation),
        input.email,
        None,
        ACTIVATION_SECS,
    )
    .await?;
    mail::queue(
        &mut tx,
        input.email,
        &Email::Activation {
            link: format!("{public_url}/compte/activation?jeton={token}"),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn activate(pool: &PgPool, token: &str) -> Result<UserRow, ServiceError> {
    let mut tx = pool.begin().await?;
    let row = db::accounts::take_token(&mut tx, &token_hash(token), "activation")
        .await?
        .ok_or(ServiceError::InvalidLink)?;
    let user_id = row.user_id.ok_or(ServiceError::InvalidLink)?;
    db::accounts::mark_verified(&mut tx, user_id).await?;
    let user = db::accounts::user_by_id(&mut tx, user_id)
        .await?
        .ok_or(ServiceError::InvalidLink)?;
    tx.commit().await?;
    Ok(user)
}

/// Checks the password, with failures throttled per account and per client address in the
/// database (so the limits hold across instances). An unknown address costs the same time.
pub async fn log_in(
    pool: &PgPool,
    hasher: &Hasher,
    email: &str,
    password: &str,
    client: &str,
    throttle: bool,
) -> Result<UserRow, ServiceError> {
    let account_key = format!("login:email:{}", email.to_lowercase());
    let client_key = format!("login:ip:{client}");
    let mut conn = pool.acquire().await?;
    // Without throttling (benchmarks only), failures are neither checked nor counted: a login
    // storm on a development portal leaves no lock-out behind it.
    if throttle {
        let account_failures =
            db::rate_limit::current(&mut conn, &account_key, LOGIN_WINDOW_SECS).await?;
        let client_failures =
            db::rate_limit::current(&mut conn, &client_key, LOGIN_WINDOW_SECS).await?;
        if account_failures >= LOGIN_FAILURES_PER_ACCOUNT
            || client_failures >= LOGIN_FAILURES_PER_CLIENT
        {
            return Err(ServiceError::Throttled {
                retry_after: db::rate_limit::window_left(LOGIN_WINDOW_SECS),
            });
        }
    }
    let user = db::accounts::user_by_email(&mut conn, email).await?;
    drop(conn);
    let verified = hasher
        .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
        .await?;
    let mut conn = pool.acquire().await?;
    let Some(user) = user.filter(|_| verified.ok) else {
        if throttle {
            db::rate_limit::hit(&mut conn, &account_key, LOGIN_WINDOW_SECS, i32::MAX).await?;
            db::rate_limit::hit(&mut conn, &client_key, LOGIN_WINDOW_SECS, i32::MAX).await?;
        }
        return Err(ServiceError::InvalidCredentials);
    };
    if !user.verified {
        return Err(ServiceError::NotActivated);
    }
    db::rate_limit::clear(&mut conn, &account_key).await?;
    if verified.needs_rehash {
        let hash = hasher.hash(password).await?;
        db::accounts::set_password(&mut conn, user.id, &hash, false).await?;
    }
    Ok(user)
}

/// Sends a reset link if the address has an active account; says nothing either way.
pub async fn request_reset(
    pool: &PgPool,
    public_url: &str,
    email: &str,
) -> Result<(), ServiceError> {
    let mut tx = pool.begin().await?;
    if let Some(user) = db::accounts::user_by_email(&mut tx, email)
        .await?
        .filter(|u| u.verified)
    {
        let (token, hash) = new_token();
        db::accounts::insert_token(
            &mut tx,
            &hash,
            "reset",
            Some(user.id),
            user.organisation_id,
            &user.email,
            None,
            RESET_SECS,
        )
        .await?;
        mail::queue(
            &mut tx,
            &user.email,
            &Email::Reset {
                link: format!("{public_url}/compte/reinitialisation?jeton={token}"),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn link_is_valid(
    pool: &PgPool,
    token: &str,
    purpose: &str,
) -> Result<bool, ServiceError> {
    let mut conn = pool.acquire().await?;
    Ok(
        db::accounts::peek_token(&mut conn, &token_hash(token), purpose)
            .await?
            .is_some(),
    )
}

/// Sets the new password and signs the user out of every session.
pub async fn reset_password(
    pool: &PgPool,
    hasher: &Hasher,
    token: &str,
    password: &str,
) -> Result<UserRow, ServiceError> {
    // A made-up link costs no hash: it cannot drain the budget that logins share.
    if !link_is_valid(pool, token, "reset").await? {
        return Err(ServiceError::InvalidLink);
    }
    let hash = hasher.hash(password).await?;
    let mut tx = pool.begin().await?;
    // Taken in the transaction: two uses of one link at once, only one succeeds.
    let row = db::accounts::take_token(&mut tx, &token_hash(token), "reset")
        .await?
        .ok_or(ServiceError::InvalidLink)?;
    let user_id = row.user_id.ok_or(ServiceError::InvalidLink)?;
    db::accounts::set_password(&mut tx, user_id, &hash, true).await?;
    let user = db::accounts::user_by_id(&mut tx, user_id)
        .await?
        .ok_or(ServiceError::InvalidLink)?;
    tx.commit().await?;
    Ok(user)
}

/// Returns the new session epoch: the caller keeps its own session, every other one ends.
pub async fn change_password(
    pool: &PgPool,
    hasher: &Hasher,
    user: Uuid,
    current: &str,
    new: &str,
) -> Result<i32, ServiceError> {
    let mut conn = pool.acquire().await?;
    let row = db::accounts::user_by_id(&mut conn, user)
        .await?
        .ok_or(ServiceError::NotAllowed)?;
    drop(conn);
    if !hasher.verify(current, Some(&row.password_hash)).await?.ok {
        return Err(ServiceError::InvalidCredentials);
    }
    let hash = hasher.hash(new).await?;
    let mut conn = pool.acquire().await?;
    Ok(db::accounts::set_password(&mut conn, user, &hash, true).await?)
}

/// Sends a confirmation link to the new address; the change happens when it is opened.
pub async fn request_email_change(
    pool: &PgPool,
    hasher: &Hasher,
    public_url: &str,
    user: Uuid,
    password: &str,
    new_email: &str,
) -> Result<(), ServiceError> {
    let mut conn = pool.acquire().await?;
    let row = db::accounts::user_by_id(&mut conn, user)
        .await?
        .ok_or(ServiceError::NotAllowed)?;
    drop(conn);
    if !hasher.verify(password, Some(&row.password_hash)).await?.ok {
        return Err(ServiceError::InvalidCredentials);
    }
    let mut tx = pool.begin().await?;
    let (token, hash) = new_token();
    db::accounts::insert_token(
        &mut tx,
        &hash,
        "email_change",
        Some(user),
        row.organisation_id,
        new_email,
        None,
        EMAIL_CHANGE_SECS,
    )
    .await?;
    mail::queue(
        &mut tx,
        new_email,
        &Email::EmailChange {
            link: format!("{public_url}/compte/email/confirmation?jeton={token}"),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn confirm_email_change(pool: &PgPool, token: &str) -> Result<(), ServiceError> {
    let mut tx = pool.begin().await?;
    let row = db::accounts::take_token(&mut tx, &token_hash(token), "email_change")
        .await?
        .ok_or(ServiceError::InvalidLink)?;
    let user = row.user_id.ok_or(ServiceError::InvalidLink)?;
    db::accounts::set_email(&mut tx, user, &row.email).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn invite(
    pool: &PgPool,
    public_url: &str,
    owner: &UserRow,
    email: &str,
) -> Result<(), ServiceError> {
    let organisation = owner
        .organisation_id
        .filter(|_| owner.role == "owner")
        .ok_or(ServiceError::NotAllowed)?;
    let mut tx = pool.begin().await?;
    let org = db::accounts::organisation(&mut tx, organisation)
        .await?
        .ok_or(ServiceError::NotAllowed)?;
    let (token, hash) = new_token();
    db::accounts::insert_token(
        &mut tx,
        &hash,
        "invitation",
        None,
        Some(organisation),
        email,
        Some(owner.id),
        INVITATION_SECS,
    )
    .await?;
    let invitation = Email::Invitation {
        link: format!("{public_url}/compte/invitation?jeton={token}"),
        organisation: org.name,
        inviter: owner.email.clone(),
    };
    mail::queue(&mut tx, email, &invitation).await?;
    tx.commit().await?;
    Ok(())
}

/// The invitation's organisation name and address, if the link is still valid.
pub async fn invitation(pool: &PgPool, token: &str) -> Result<(String, String), ServiceError> {
    let mut conn = pool.acquire().await?;
    let row = db::accounts::peek_token(&mut conn, &token_hash(token), "invitation")
        .await?
        .ok_or(ServiceError::InvalidLink)?;
    let org = db::accounts::organisation(
        &mut conn,
        row.organisation_id.ok_or(ServiceError::InvalidLink)?,
    )
    .await?
    .ok_or(ServiceError::InvalidLink)?;
    Ok((org.name, row.email))
}

/// The words a new password chosen from a reset link must not be made of: the account's
/// organisation name and e-mail address. `InvalidLink` for an unknown, used or expired link.
pub async fn reset_personal_words(pool: &PgPool, token: &str) -> Result<Vec<String>, ServiceError> {
    let mut conn = pool.acquire().await?;
    let row = db::accounts::peek_token(&mut conn, &token_hash(token), "reset")
        .await?
        .ok_or(ServiceError::InvalidLink)?;
    let user = db::accounts::user_by_id(&mut conn, row.user_id.ok_or(ServiceError::InvalidLink)?)
        .await?
        .ok_or(ServiceError::InvalidLink)?;
    let mut words = vec![user.email];
    if let Some(id) = user.organisation_id
        && let Some(organisation) = db::accounts::organisation(&mut conn, id).await?
    {
        words.push(organisation.name);
    }
    Ok(words)
}

pub async fn accept_invitation(
    pool: &PgPool,
    hasher: &Hasher,
    token: &str,
    password: &str,
) -> Result<UserRow, ServiceError> {
    if !link_is_valid(pool, token, "invitation").await? {
        return Err(ServiceError::InvalidLink);
    }
    let hash = hasher.hash(password).await?;
    let mut tx = pool.begin().await?;
    let row = db::accounts::take_token(&mut tx, &token_hash(token), "invitation")
        .await?
        .ok_or(ServiceError::InvalidLink)?;
    let organisation = row.organisation_id.ok_or(ServiceError::InvalidLink)?;
    let id = db::accounts::create_user(
        &mut tx,
        Some(organisation),
        &row.email,
        &hash,
        "member",
        true,
    )
    .await?;
    let user = db::accounts::user_by_id(&mut tx, id)
        .await?
        .ok_or(ServiceError::InvalidLink)?;
    tx.commit().await?;
    Ok(user)
}

/// Creates a verified account directly (command line: staff, demo data).
pub async fn create_account(
    pool: &PgPool,
    hasher: &Hasher,
    organisation: Option<Uuid>,
    email: &str,
    password: &str,
    role: &str,
) -> Result<Uuid, ServiceError> {
    let hash = hasher.hash(password).await?;
    let mut conn = pool.acquire().await?;
    Ok(db::accounts::create_user(&mut conn, organisation, email, &hash, role, true).await?)
}
