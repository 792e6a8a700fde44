//! Account use cases: each owns its transaction; e-mails are queued inside it and leave after.

use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::fault::Fault;
use super::mail::{self, Email};
use super::passwords::{HashError, Hasher};
use crate::db::{self, accounts::UniqueEmailError, accounts::UserRow};
use crate::domain::account::{Role, SubscriptionStatus, TokenPurpose};

/// The links a security event (password changed or reset, signed out everywhere, e-mail
/// changed) ends.
const ENDED_BY_SECURITY_EVENTS: &[TokenPurpose] = &[TokenPurpose::Reset, TokenPurpose::EmailChange];

const ACTIVATION_SECS: f64 = 24.0 * 3600.0;
const RESET_SECS: f64 = 3600.0;
const EMAIL_CHANGE_SECS: f64 = 24.0 * 3600.0;
const INVITATION_SECS: f64 = 7.0 * 24.0 * 3600.0;

/// Failed password checks (log-in, and the current password on the account page) in a window
/// of 15 minutes. A client is refused after 5 failures on one account, or 30 on any; an account
/// is never locked: past 5 failures from anywhere, each check waits a little longer (at most
/// 3 s), so that nobody can lock its owner out by sending wrong passwords.
pub const LOGIN_WINDOW_SECS: i32 = 15 * 60;
pub const LOGIN_FAILURES_PER_PAIR: i64 = 5;
pub const LOGIN_FAILURES_PER_ACCOUNT: i64 = 5;
pub const LOGIN_FAILURES_PER_CLIENT: i64 = 30;
const MAX_ACCOUNT_DELAY_SECS: i64 = 3;

/// Reset links: 3 an hour per address, 10 an hour per client, and none while one sent less
/// than 15 minutes ago still works. Invitations: 3 an hour per address and 30 per
/// organisation.
const RESETS_PER_ADDRESS: i32 = 3;
const RESETS_PER_CLIENT: i32 = 10;
const INVITATIONS_PER_ADDRESS: i32 = 3;
const INVITATIONS_PER_ORGANISATION: i32 = 30;
const LINK_WINDOW_SECS: i32 = 3600;
const RECENT_LINK_SECS: f64 = 15.0 * 60.0;

/// The rate-limit keys of a password check by `client` on the account `email`.
struct FailureKeys {
    account: String,
    pair: String,
    client: String,
}

impl FailureKeys {
    fn new(email: &str, client: &str) -> Self {
        let email = email.to_lowercase();
        Self {
            pair: format!("{}{client}", pair_prefix(&email)),
            account: format!("login:email:{email}"),
            client: format!("login:ip:{client}"),
        }
    }

    /// Refuses a client that failed too often; an account's failures only slow it down.
    async fn check(&self, conn: &mut PgConnection) -> Result<(), AccountError> {
        let window = LOGIN_WINDOW_SECS;
        let pair = db::rate_limit::current(conn, &self.pair, window).await?;
        let client = db::rate_limit::current(conn, &self.client, window).await?;
        let waits = [
            (pair, LOGIN_FAILURES_PER_PAIR),
            (client, LOGIN_FAILURES_PER_CLIENT),
        ]
        .into_iter()
        .filter(|(failures, max)| failures.count() >= *max)
        .map(|(failures, max)| failures.wait_below(max));
        if let Some(retry_after) = waits.max() {
            return Err(AccountError::Throttled { retry_after });
        }
        let account = db::rate_limit::current(conn, &self.account, window).await?;
        let excess = account.count() - LOGIN_FAILURES_PER_ACCOUNT + 1;
        if excess > 0 {
            let secs = excess.min(MAX_ACCOUNT_DELAY_SECS) as u64;
            tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
        }
        Ok(())
    }

    async fn count_failure(&self, conn: &mut PgConnection) -> sqlx::Result<()> {
        for key in [&self.pair, &self.account, &self.client] {
            db::rate_limit::hit(conn, key, LOGIN_WINDOW_SECS, i32::MAX).await?;
        }
        Ok(())
    }
}

fn pair_prefix(email: &str) -> String {
    format!("login:pair:{}|", email.to_lowercase())
}

/// Forgets an account's failures from every client (after a successful reset).
async fn clear_failures(conn: &mut PgConnection, email: &str) -> sqlx::Result<()> {
    db::rate_limit::clear(conn, &format!("login:email:{}", email.to_lowercase())).await?;
    db::rate_limit::clear_prefix(conn, &pair_prefix(email)).await
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("too many password checks in flight")]
    Busy,
    #[error("too many failed attempts")]
    Throttled { retry_after: i64 },
    #[error("too many invitations")]
    TooManyInvitations,
    #[error("wrong e-mail or password")]
    InvalidCredentials,
    #[error("account not activated")]
    NotActivated,
    #[error("link expired or already used")]
    InvalidLink,
    #[error("e-mail address already used")]
    EmailTaken,
    /// An invitation to an address that already has an account (another organisation's, or
    /// staff's): an account belongs to one organisation, so it cannot be accepted.
    #[error("the invited address already has an account")]
    InvitedAddressHasAccount,
    #[error("not allowed")]
    NotAllowed,
    #[error(transparent)]
    Fault(#[from] Fault),
}

impl From<sqlx::Error> for AccountError {
    fn from(e: sqlx::Error) -> Self {
        AccountError::Fault(e.into())
    }
}

impl From<anyhow::Error> for AccountError {
    fn from(e: anyhow::Error) -> Self {
        AccountError::Fault(e.into())
    }
}

impl From<HashError> for AccountError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => AccountError::Busy,
            HashError::Internal(m) => AccountError::Fault(Fault::Internal(anyhow::anyhow!(m))),
        }
    }
}

impl From<UniqueEmailError> for AccountError {
    fn from(e: UniqueEmailError) -> Self {
        match e {
            UniqueEmailError::EmailTaken => AccountError::EmailTaken,
            UniqueEmailError::Db(e) => e.into(),
        }
    }
}

/// A random single-use token for a link, and the hash that is stored.
pub fn new_token() -> (String, String) {
    let token = crate::random::token();
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

/// Creates the organisation, inactive, with the order of its first period, and its owner (to
/// activate by e-mail; activated, the owner pays, and « paid » starts the subscription). An
/// address that has an account already gets an e-mail saying so, and the page says the same
/// thing in both cases: sign-up never reveals who has an account.
pub async fn sign_up(
    pool: &PgPool,
    hasher: &Hasher,
    public_url: &str,
    input: SignUp<'_>,
    asker: Asker<'_>,
    provider: super::billing::Provider,
    now: OffsetDateTime,
) -> Result<(), AccountError> {
    asker.charge(hasher)?;
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
    // Inactive until its first period is paid: no subscription yet, an order for it.
    let organisation =
        db::accounts::create_organisation(&mut tx, input.organisation, input.plan).await?;
    let user = db::accounts::create_user(
        &mut tx,
        Some(organisation),
        input.email,
        &hash,
        Role::Owner,
        false,
    )
    .await?;
    super::billing::order_signup_in(&mut tx, organisation, user, input.plan, provider, now)
        .await
        .map_err(|e| match e {
            super::billing::BillingError::Credit(super::credits::CreditError::Fault(f)) => {
                AccountError::Fault(f)
            }
            other => AccountError::Fault(Fault::Internal(other.into())),
        })?;
    let (token, token_hash) = new_token();
    db::accounts::insert_token(
        &mut tx,
        &token_hash,
        TokenPurpose::Activation,
        Some(user),
        Some(organisation),
        input.email,
        None,
        ACTIVATION_SECS,
        now,
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

pub async fn activate(
    pool: &PgPool,
    token: &str,
    now: OffsetDateTime,
) -> Result<UserRow, AccountError> {
    let mut tx = pool.begin().await?;
    let row = db::accounts::take_token(&mut tx, &token_hash(token), TokenPurpose::Activation, now)
        .await?
        .ok_or(AccountError::InvalidLink)?;
    let user_id = row.user_id.ok_or(AccountError::InvalidLink)?;
    db::accounts::mark_verified(&mut tx, user_id).await?;
    let user = db::accounts::user_by_id(&mut tx, user_id)
        .await?
        .ok_or(AccountError::InvalidLink)?;
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
) -> Result<UserRow, AccountError> {
    let keys = FailureKeys::new(email, client);
    let mut conn = pool.acquire().await?;
    // Without throttling (benchmarks only), failures are neither checked nor counted: a login
    // storm on a development portal leaves no lock-out behind it.
    if throttle {
        keys.check(&mut conn).await?;
    }
    let user = db::accounts::user_by_email(&mut conn, email).await?;
    drop(conn);
    if throttle {
        hasher.charge_client(client)?;
    }
    let verified = hasher
        .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
        .await?;
    let mut conn = pool.acquire().await?;
    let Some(user) = user.filter(|_| verified.ok) else {
        if throttle {
            keys.count_failure(&mut conn).await?;
        }
        return Err(AccountError::InvalidCredentials);
    };
    if !user.verified {
        return Err(AccountError::NotActivated);
    }
    db::rate_limit::clear(&mut conn, &keys.pair).await?;
    if verified.needs_rehash {
        let hash = hasher.hash(password).await?;
        db::accounts::set_password(&mut conn, user.id, &hash, false).await?;
    }
    Ok(user)
}

/// Sends a reset link if the address has an active account; says nothing either way. A client
/// asking too often is refused (429); an address asked for too often, or whose last link is
/// recent and still valid, gets no new e-mail, and the answer is the same.
pub async fn request_reset(
    pool: &PgPool,
    public_url: &str,
    email: &str,
    client: &str,
    now: OffsetDateTime,
) -> Result<(), AccountError> {
    let mut tx = pool.begin().await?;
    if let Some(retry_after) = db::rate_limit::hit(
        &mut tx,
        &format!("reset:ip:{client}"),
        LINK_WINDOW_SECS,
        RESETS_PER_CLIENT,
    )
    .await?
    {
        tx.commit().await?;
        return Err(AccountError::Throttled { retry_after });
    }
    let address_over = db::rate_limit::hit(
        &mut tx,
        &format!("reset:email:{}", email.to_lowercase()),
        LINK_WINDOW_SECS,
        RESETS_PER_ADDRESS,
    )
    .await?
    .is_some();
    let recent = db::accounts::recent_token(
        &mut tx,
        email,
        TokenPurpose::Reset,
        None,
        RECENT_LINK_SECS,
        now,
    )
    .await?;
    if address_over || recent {
        tx.commit().await?;
        return Ok(());
    }
    if let Some(user) = db::accounts::user_by_email(&mut tx, email)
        .await?
        .filter(|u| u.verified)
    {
        let (token, hash) = new_token();
        db::accounts::insert_token(
            &mut tx,
            &hash,
            TokenPurpose::Reset,
            Some(user.id),
            user.organisation_id,
            &user.email,
            None,
            RESET_SECS,
            now,
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
    purpose: TokenPurpose,
    now: OffsetDateTime,
) -> Result<bool, AccountError> {
    let mut conn = pool.acquire().await?;
    Ok(
        db::accounts::peek_token(&mut conn, &token_hash(token), purpose, now)
            .await?
            .is_some(),
    )
}

/// The first steps of choosing a password from a link (reset, invitation): the link is checked
/// before the password is hashed (a made-up link costs no hash: it cannot drain the budget that
/// logins share), then taken in the transaction returned (two uses of one link at once: only
/// one succeeds).
async fn password_from_link(
    pool: &PgPool,
    hasher: &Hasher,
    (token, purpose): (&str, TokenPurpose),
    password: &str,
    asker: Asker<'_>,
    now: OffsetDateTime,
) -> Result<
    (
        String,
        sqlx::Transaction<'static, sqlx::Postgres>,
        db::accounts::TokenRow,
    ),
    AccountError,
> {
    if !link_is_valid(pool, token, purpose, now).await? {
        return Err(AccountError::InvalidLink);
    }
    asker.charge(hasher)?;
    let hash = hasher.hash(password).await?;
    let mut tx = pool.begin().await?;
    let row = db::accounts::take_token(&mut tx, &token_hash(token), purpose, now)
        .await?
        .ok_or(AccountError::InvalidLink)?;
    Ok((hash, tx, row))
}

/// Sets the new password and signs the user out of every session.
pub async fn reset_password(
    pool: &PgPool,
    hasher: &Hasher,
    public_url: &str,
    token: &str,
    password: &str,
    asker: Asker<'_>,
    now: OffsetDateTime,
) -> Result<UserRow, AccountError> {
    let (hash, mut tx, row) = password_from_link(
        pool,
        hasher,
        (token, TokenPurpose::Reset),
        password,
        asker,
        now,
    )
    .await?;
    let user_id = row.user_id.ok_or(AccountError::InvalidLink)?;
    db::accounts::set_password(&mut tx, user_id, &hash, true).await?;
    let user = db::accounts::user_by_id(&mut tx, user_id)
        .await?
        .ok_or(AccountError::InvalidLink)?;
    after_password_change(&mut tx, public_url, &user).await?;
    clear_failures(&mut tx, &user.email).await?;
    tx.commit().await?;
    Ok(user)
}

/// What follows every change of password: the user's other pending links stop working, and
/// the address is told (in case it was not its owner).
async fn after_password_change(
    conn: &mut PgConnection,
    public_url: &str,
    user: &UserRow,
) -> Result<(), AccountError> {
    db::accounts::revoke_user_tokens(conn, user.id, ENDED_BY_SECURITY_EVENTS).await?;
    let notice = Email::PasswordChanged {
        reset_link: format!("{public_url}/compte/mot-de-passe-oublie"),
    };
    mail::queue(conn, &user.email, &notice).await?;
    Ok(())
}

/// Who asks for a password check, for its throttling: the client's rate-limit key, and whether
/// throttling is on (off for benchmarks only).
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    pub client: &'a str,
    pub throttle: bool,
}

impl Asker<'_> {
    /// Charges a password check to this client's share of the hashing budget.
    fn charge(self, hasher: &Hasher) -> Result<(), AccountError> {
        if self.throttle {
            hasher.charge_client(self.client)?;
        }
        Ok(())
    }
}

/// Checks the signed-in user's current password, throttled like a log-in: a stolen session
/// cannot guess it at hashing speed.
async fn check_current_password(
    pool: &PgPool,
    hasher: &Hasher,
    user: Uuid,
    password: &str,
    asker: Asker<'_>,
) -> Result<UserRow, AccountError> {
    let mut conn = pool.acquire().await?;
    let row = db::accounts::user_by_id(&mut conn, user)
        .await?
        .ok_or(AccountError::NotAllowed)?;
    let keys = FailureKeys::new(&row.email, asker.client);
    if asker.throttle {
        keys.check(&mut conn).await?;
    }
    drop(conn);
    asker.charge(hasher)?;
    if !hasher.verify(password, Some(&row.password_hash)).await?.ok {
        if asker.throttle {
            let mut conn = pool.acquire().await?;
            keys.count_failure(&mut conn).await?;
        }
        return Err(AccountError::InvalidCredentials);
    }
    Ok(row)
}

/// Returns the new session epoch: the caller keeps its own session, every other one ends.
pub async fn change_password(
    pool: &PgPool,
    hasher: &Hasher,
    public_url: &str,
    user: Uuid,
    current: &str,
    new: &str,
    asker: Asker<'_>,
) -> Result<i32, AccountError> {
    let row = check_current_password(pool, hasher, user, current, asker).await?;
    let hash = hasher.hash(new).await?;
    let mut tx = pool.begin().await?;
    let epoch = db::accounts::set_password(&mut tx, user, &hash, true).await?;
    after_password_change(&mut tx, public_url, &row).await?;
    tx.commit().await?;
    Ok(epoch)
}

/// « Se déconnecter partout »: every session ends, and so do the user's pending links.
pub async fn sign_out_everywhere(pool: &PgPool, user: Uuid) -> Result<(), AccountError> {
    let mut tx = pool.begin().await?;
    db::accounts::bump_epoch(&mut tx, user).await?;
    db::accounts::revoke_user_tokens(&mut tx, user, ENDED_BY_SECURITY_EVENTS).await?;
    tx.commit().await?;
    Ok(())
}

/// Sends a confirmation link to the new address; the change happens when it is opened.
#[allow(clippy::too_many_arguments)]
pub async fn request_email_change(
    pool: &PgPool,
    hasher: &Hasher,
    public_url: &str,
    user: Uuid,
    password: &str,
    new_email: &str,
    asker: Asker<'_>,
    now: OffsetDateTime,
) -> Result<(), AccountError> {
    let row = check_current_password(pool, hasher, user, password, asker).await?;
    let mut tx = pool.begin().await?;
    let (token, hash) = new_token();
    db::accounts::insert_token(
        &mut tx,
        &hash,
        TokenPurpose::EmailChange,
        Some(user),
        row.organisation_id,
        new_email,
        None,
        EMAIL_CHANGE_SECS,
        now,
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

/// Switches to the new address; the old one is told, and links sent to it stop working.
pub async fn confirm_email_change(
    pool: &PgPool,
    public_url: &str,
    token: &str,
    now: OffsetDateTime,
) -> Result<(), AccountError> {
    let mut tx = pool.begin().await?;
    let row = db::accounts::take_token(&mut tx, &token_hash(token), TokenPurpose::EmailChange, now)
        .await?
        .ok_or(AccountError::InvalidLink)?;
    let user = row.user_id.ok_or(AccountError::InvalidLink)?;
    let old = db::accounts::user_by_id(&mut tx, user)
        .await?
        .ok_or(AccountError::InvalidLink)?;
    db::accounts::set_email(&mut tx, user, &row.email).await?;
    db::accounts::revoke_user_tokens(&mut tx, user, ENDED_BY_SECURITY_EVENTS).await?;
    let notice = Email::EmailChanged {
        new_email: row.email.clone(),
        contact_link: format!("{public_url}/contact?sujet=compte"),
    };
    mail::queue(&mut tx, &old.email, &notice).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn invite(
    pool: &PgPool,
    public_url: &str,
    owner: &UserRow,
    email: &str,
    now: OffsetDateTime,
) -> Result<(), AccountError> {
    let organisation = owner
        .organisation_id
        .filter(|_| owner.role == Role::Owner)
        .ok_or(AccountError::NotAllowed)?;
    let mut tx = pool.begin().await?;
    let org = db::accounts::organisation(&mut tx, organisation)
        .await?
        .ok_or(AccountError::NotAllowed)?;
    if db::rate_limit::hit(
        &mut tx,
        &format!("invite:org:{organisation}"),
        LINK_WINDOW_SECS,
        INVITATIONS_PER_ORGANISATION,
    )
    .await?
    .is_some()
    {
        tx.commit().await?;
        return Err(AccountError::TooManyInvitations);
    }
    // The same address again soon: the invitation already sent still works; no new e-mail.
    let address_over = db::rate_limit::hit(
        &mut tx,
        &format!("invite:email:{organisation}:{}", email.to_lowercase()),
        LINK_WINDOW_SECS,
        INVITATIONS_PER_ADDRESS,
    )
    .await?
    .is_some();
    let recent = db::accounts::recent_token(
        &mut tx,
        email,
        TokenPurpose::Invitation,
        Some(organisation),
        RECENT_LINK_SECS,
        now,
    )
    .await?;
    if address_over || recent {
        tx.commit().await?;
        return Ok(());
    }
    let (token, hash) = new_token();
    db::accounts::insert_token(
        &mut tx,
        &hash,
        TokenPurpose::Invitation,
        None,
        Some(organisation),
        email,
        Some(owner.id),
        INVITATION_SECS,
        now,
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

/// Invites the first owner of an organisation staff opened (`staff` is the inviter), in the
/// caller's transaction: the e-mail goes through the outbox once it commits.
pub async fn invite_first_owner(
    conn: &mut PgConnection,
    public_url: &str,
    organisation: Uuid,
    organisation_name: &str,
    email: &str,
    staff: Uuid,
    now: OffsetDateTime,
) -> Result<(), AccountError> {
    let (token, hash) = new_token();
    db::accounts::insert_token(
        conn,
        &hash,
        TokenPurpose::Invitation,
        None,
        Some(organisation),
        email,
        Some(staff),
        INVITATION_SECS,
        now,
    )
    .await?;
    let invitation = Email::OwnerInvitation {
        link: format!("{public_url}/compte/invitation?jeton={token}"),
        organisation: organisation_name.to_owned(),
    };
    mail::queue(conn, email, &invitation).await?;
    Ok(())
}

/// Revokes a pending invitation of the owner's organisation; `NotAllowed` when there is none
/// with that id there (another organisation's id included).
pub async fn revoke_invitation(
    pool: &PgPool,
    owner: &UserRow,
    invitation: Uuid,
) -> Result<(), AccountError> {
    let organisation = owner
        .organisation_id
        .filter(|_| owner.role == Role::Owner)
        .ok_or(AccountError::NotAllowed)?;
    let mut conn = pool.acquire().await?;
    if db::accounts::revoke_invitation(&mut conn, organisation, invitation).await? {
        Ok(())
    } else {
        Err(AccountError::NotAllowed)
    }
}

/// The invitation's organisation name and address, if the link is still valid.
pub async fn invitation(
    pool: &PgPool,
    token: &str,
    now: OffsetDateTime,
) -> Result<(String, String), AccountError> {
    let mut conn = pool.acquire().await?;
    let row =
        db::accounts::peek_token(&mut conn, &token_hash(token), TokenPurpose::Invitation, now)
            .await?
            .ok_or(AccountError::InvalidLink)?;
    let org = db::accounts::organisation(
        &mut conn,
        row.organisation_id.ok_or(AccountError::InvalidLink)?,
    )
    .await?
    .ok_or(AccountError::InvalidLink)?;
    if db::accounts::user_by_email(&mut conn, &row.email)
        .await?
        .is_some()
    {
        return Err(AccountError::InvitedAddressHasAccount);
    }
    Ok((org.name, row.email))
}

/// The words a new password chosen from a reset link must not be made of: the account's
/// organisation name and e-mail address. `InvalidLink` for an unknown, used or expired link.
pub async fn reset_personal_words(
    pool: &PgPool,
    token: &str,
    now: OffsetDateTime,
) -> Result<Vec<String>, AccountError> {
    let mut conn = pool.acquire().await?;
    let row = db::accounts::peek_token(&mut conn, &token_hash(token), TokenPurpose::Reset, now)
        .await?
        .ok_or(AccountError::InvalidLink)?;
    let user = db::accounts::user_by_id(&mut conn, row.user_id.ok_or(AccountError::InvalidLink)?)
        .await?
        .ok_or(AccountError::InvalidLink)?;
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
    asker: Asker<'_>,
    now: OffsetDateTime,
) -> Result<UserRow, AccountError> {
    let (hash, mut tx, row) = password_from_link(
        pool,
        hasher,
        (token, TokenPurpose::Invitation),
        password,
        asker,
        now,
    )
    .await?;
    let organisation = row.organisation_id.ok_or(AccountError::InvalidLink)?;
    // An organisation staff opened has no owner yet: its first invitation accepted makes it.
    let role = if db::admin::members(&mut tx, organisation)
        .await?
        .iter()
        .any(|m| m.role == "owner")
    {
        Role::Member
    } else {
        Role::Owner
    };
    let id = db::accounts::create_user(&mut tx, Some(organisation), &row.email, &hash, role, true)
        .await?;
    let user = db::accounts::user_by_id(&mut tx, id)
        .await?
        .ok_or(AccountError::InvalidLink)?;
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
    role: Role,
) -> Result<Uuid, AccountError> {
    let hash = hasher.hash(password).await?;
    let mut conn = pool.acquire().await?;
    Ok(db::accounts::create_user(&mut conn, organisation, email, &hash, role, true).await?)
}

/// A new organisation on `plan` with its subscription, whose first period starts at `now`, in
/// the caller's transaction, without payment (status `unpaid`): the demo and test fixtures.
/// Sign-up pays its first period instead (`sign_up`). The renewals charge it like any other.
pub async fn open_organisation(
    conn: &mut PgConnection,
    name: &str,
    plan: &str,
    now: OffsetDateTime,
) -> Result<Uuid, AccountError> {
    let organisation = db::accounts::create_organisation(conn, name, plan).await?;
    super::credits::start_subscription(conn, organisation, plan, SubscriptionStatus::Unpaid, now)
        .await
        .map_err(|e| match e {
            super::credits::CreditError::Fault(fault) => AccountError::Fault(fault),
            other => AccountError::Fault(Fault::Internal(other.into())),
        })?;
    Ok(organisation)
}

/// A signed-in user's row (sessions are checked against it on every request).
pub async fn user(pool: &PgPool, id: Uuid) -> Result<Option<UserRow>, AccountError> {
    let mut conn = pool.acquire().await?;
    Ok(db::accounts::user_by_id(&mut conn, id).await?)
}

/// An organisation, if it exists.
pub async fn organisation(
    pool: &PgPool,
    id: Uuid,
) -> Result<Option<db::accounts::Organisation>, AccountError> {
    let mut conn = pool.acquire().await?;
    Ok(db::accounts::organisation(&mut conn, id).await?)
}

/// What the account page shows of the user's organisation.
pub struct AccountOverview {
    pub organisation: Option<db::accounts::Organisation>,
    pub members: Vec<db::accounts::Member>,
    /// Pending invitations (owners only).
    pub invitations: Vec<db::accounts::PendingInvitation>,
}

pub async fn account_overview(
    pool: &PgPool,
    user: &UserRow,
    now: OffsetDateTime,
) -> Result<AccountOverview, AccountError> {
    let Some(id) = user.organisation_id else {
        return Ok(AccountOverview {
            organisation: None,
            members: Vec::new(),
            invitations: Vec::new(),
        });
    };
    let mut conn = pool.acquire().await?;
    let organisation = db::accounts::organisation(&mut conn, id).await?;
    let members = db::accounts::members(&mut conn, id).await?;
    let invitations = if user.role == Role::Owner {
        db::accounts::pending_invitations(&mut conn, id, now).await?
    } else {
        Vec::new()
    };
    Ok(AccountOverview {
        organisation,
        members,
        invitations,
    })
}

/// The owner's organisation, or `NotAllowed`.
fn owned_organisation(owner: &UserRow) -> Result<Uuid, AccountError> {
    owner
        .organisation_id
        .filter(|_| owner.role == Role::Owner)
        .ok_or(AccountError::NotAllowed)
}

/// A member (not the owner) of the owner's organisation; `NotAllowed` for anyone else, another
/// organisation's member included.
pub async fn member(
    pool: &PgPool,
    owner: &UserRow,
    member: Uuid,
) -> Result<db::accounts::Member, AccountError> {
    let organisation = owned_organisation(owner)?;
    let mut conn = pool.acquire().await?;
    db::accounts::members(&mut conn, organisation)
        .await?
        .into_iter()
        .find(|m| m.id == member && m.role == Role::Member)
        .ok_or(AccountError::NotAllowed)
}

/// Removes a member of the owner's organisation (their sessions end: their row is gone);
/// `NotAllowed` for anyone else, another organisation's member included.
pub async fn remove_member(
    pool: &PgPool,
    owner: &UserRow,
    member: Uuid,
) -> Result<(), AccountError> {
    let organisation = owned_organisation(owner)?;
    let mut conn = pool.acquire().await?;
    if db::accounts::remove_member(&mut conn, organisation, member).await? {
        Ok(())
    } else {
        Err(AccountError::NotAllowed)
    }
}

/// Hands the organisation over to one of its members; the owner becomes a member.
pub async fn transfer_ownership(
    pool: &PgPool,
    owner: &UserRow,
    member: Uuid,
) -> Result<(), AccountError> {
    let organisation = owned_organisation(owner)?;
    let mut tx = pool.begin().await?;
    if !db::accounts::transfer_ownership(&mut tx, organisation, owner.id, member).await? {
        return Err(AccountError::NotAllowed); // the transaction rolls back
    }
    tx.commit().await?;
    Ok(())
}

/// The low-balance alert threshold, in credits (0 to 100,000).
pub async fn set_threshold(
    pool: &PgPool,
    owner: &UserRow,
    credits: i64,
) -> Result<(), AccountError> {
    let organisation = owned_organisation(owner)?;
    let mut conn = pool.acquire().await?;
    db::accounts::set_threshold(&mut conn, organisation, credits).await?;
    Ok(())
}

/// The back office's overview: organisations, messages, feedback, searches that found nothing,
/// the outbox backlog and the background jobs.
pub struct StaffOverview {
    pub organisations: Vec<db::accounts::OrganisationSummary>,
    pub contacts: Vec<db::help::ContactSummary>,
    pub feedback: Vec<db::help::FeedbackSummary>,
    pub misses: Vec<(String, i64)>,
    pub outbox_pending: i64,
    pub jobs: Vec<db::jobs::JobRun>,
    /// The newest entries of the audit log.
    pub audit: Vec<db::audit::Line>,
}

/// The audit log, for one organisation or all of them (newest first).
pub async fn audit_log(
    pool: &PgPool,
    organisation: Option<Uuid>,
) -> Result<Vec<db::audit::Line>, AccountError> {
    let mut conn = pool.acquire().await?;
    Ok(db::audit::lines(&mut conn, organisation, 500).await?)
}

pub async fn staff_overview(pool: &PgPool) -> Result<StaffOverview, AccountError> {
    let mut conn = pool.acquire().await?;
    Ok(StaffOverview {
        organisations: db::accounts::organisations(&mut conn, 50).await?,
        contacts: db::help::recent_contacts(&mut conn, 30).await?,
        feedback: db::help::feedback_summary(&mut conn).await?,
        misses: db::help::top_misses(&mut conn, 30).await?,
        outbox_pending: db::outbox::pending_count(pool).await?,
        jobs: db::jobs::all(&mut conn).await?,
        audit: db::audit::lines(&mut conn, None, 30).await?,
    })
}
