//! Organisations, users, subscriptions and single-use e-mail tokens.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::account::{Role, SubscriptionStatus, TokenPurpose};

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: Uuid,
    pub organisation_id: Option<Uuid>,
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    pub session_epoch: i32,
    pub verified: bool,
}

#[derive(Debug, Clone)]
pub struct Organisation {
    pub id: Uuid,
    pub name: String,
    pub plan_id: String,
    pub low_balance_threshold: i64,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub verified: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum UniqueEmailError {
    #[error("this e-mail address is already used")]
    EmailTaken,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

fn email_taken(error: sqlx::Error) -> UniqueEmailError {
    match &error {
        sqlx::Error::Database(e) if e.constraint() == Some("users_email_unique") => {
            UniqueEmailError::EmailTaken
        }
        _ => UniqueEmailError::Db(error),
    }
}

pub async fn create_organisation(
    conn: &mut PgConnection,
    name: &str,
    plan_id: &str,
) -> sqlx::Result<Uuid> {
    sqlx::query_scalar!(
        "INSERT INTO organisations (name, plan_id) VALUES ($1, $2) RETURNING id",
        name,
        plan_id
    )
    .fetch_one(conn)
    .await
}

/// A new subscription, anchored on `now`'s day (Europe/Paris): its first period runs from that
/// day's midnight to the same day next month.
pub async fn create_subscription(
    conn: &mut PgConnection,
    organisation: Uuid,
    plan_id: &str,
    status: SubscriptionStatus,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "WITH a AS (SELECT ($4::timestamptz AT TIME ZONE 'Europe/Paris')::date AS anchor)
         INSERT INTO subscriptions (organisation_id, plan_id, status, anchor_date, period_number, period_start, period_end)
         SELECT $1, $2, $3, anchor, 1, paris_period_bound(anchor, 0), paris_period_bound(anchor, 1) FROM a",
        organisation,
        plan_id,
        status.as_str(),
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn create_user(
    conn: &mut PgConnection,
    organisation: Option<Uuid>,
    email: &str,
    password_hash: &str,
    role: Role,
    verified: bool,
) -> Result<Uuid, UniqueEmailError> {
    sqlx::query_scalar!(
        "INSERT INTO users (organisation_id, email, password_hash, role, email_verified_at)
         VALUES ($1, $2, $3, $4, CASE WHEN $5 THEN now() END) RETURNING id",
        organisation,
        email,
        password_hash,
        role.as_str(),
        verified
    )
    .fetch_one(conn)
    .await
    .map_err(email_taken)
}

pub async fn user_by_email(conn: &mut PgConnection, email: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as!(
        UserRow,
        r#"SELECT id, organisation_id, email, password_hash, role AS "role: Role", session_epoch,
                  email_verified_at IS NOT NULL AS "verified!"
           FROM users WHERE lower(email) = lower($1)"#,
        email
    )
    .fetch_optional(conn)
    .await
}

pub async fn user_by_id(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as!(
        UserRow,
        r#"SELECT id, organisation_id, email, password_hash, role AS "role: Role", session_epoch,
                  email_verified_at IS NOT NULL AS "verified!"
           FROM users WHERE id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await
}

pub async fn organisation(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Organisation>> {
    sqlx::query_as!(
        Organisation,
        "SELECT id, name, plan_id, low_balance_threshold FROM organisations WHERE id = $1",
        id
    )
    .fetch_optional(conn)
    .await
}

/// Stores a new hash; with `sign_out_everywhere`, every open session of the user ends.
/// Returns the user's session epoch afterwards.
pub async fn set_password(
    conn: &mut PgConnection,
    id: Uuid,
    hash: &str,
    sign_out_everywhere: bool,
) -> sqlx::Result<i32> {
    sqlx::query_scalar!(
        "UPDATE users SET password_hash = $2, session_epoch = session_epoch + CASE WHEN $3 THEN 1 ELSE 0 END
         WHERE id = $1 RETURNING session_epoch",
        id,
        hash,
        sign_out_everywhere
    )
    .fetch_one(conn)
    .await
}

pub async fn bump_epoch(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<i32> {
    sqlx::query_scalar!(
        "UPDATE users SET session_epoch = session_epoch + 1 WHERE id = $1 RETURNING session_epoch",
        id
    )
    .fetch_one(conn)
    .await
}

pub async fn mark_verified(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET email_verified_at = coalesce(email_verified_at, now()) WHERE id = $1",
        id
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_email(
    conn: &mut PgConnection,
    id: Uuid,
    email: &str,
) -> Result<(), UniqueEmailError> {
    sqlx::query!(
        "UPDATE users SET email = $2, email_verified_at = now() WHERE id = $1",
        id,
        email
    )
    .execute(conn)
    .await
    .map_err(email_taken)?;
    Ok(())
}

pub async fn members(conn: &mut PgConnection, organisation: Uuid) -> sqlx::Result<Vec<Member>> {
    sqlx::query_as!(
        Member,
        r#"SELECT id, email, role AS "role: Role", email_verified_at IS NOT NULL AS "verified!"
           FROM users WHERE organisation_id = $1 ORDER BY role = 'owner' DESC, lower(email)"#,
        organisation
    )
    .fetch_all(conn)
    .await
}

/// Removes a member (never the owner) of `organisation`; false if there is no such member.
pub async fn remove_member(
    conn: &mut PgConnection,
    organisation: Uuid,
    member: Uuid,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "DELETE FROM users WHERE id = $1 AND organisation_id = $2 AND role = 'member'",
        member,
        organisation
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Hands ownership from `owner` to `member` of the same organisation, in one transaction.
pub async fn transfer_ownership(
    conn: &mut PgConnection,
    organisation: Uuid,
    owner: Uuid,
    member: Uuid,
) -> sqlx::Result<bool> {
    let demoted = sqlx::query!(
        "UPDATE users SET role = 'member' WHERE id = $1 AND organisation_id = $2 AND role = 'owner'",
        owner,
        organisation
    )
    .execute(&mut *conn)
    .await?;
    if demoted.rows_affected() != 1 {
        return Ok(false);
    }
    let promoted = sqlx::query!(
        "UPDATE users SET role = 'owner' WHERE id = $1 AND organisation_id = $2 AND role = 'member'",
        member,
        organisation
    )
    .execute(conn)
    .await?;
    Ok(promoted.rows_affected() == 1)
}

pub async fn set_threshold(
    conn: &mut PgConnection,
    organisation: Uuid,
    threshold: i64,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE organisations SET low_balance_threshold = $2 WHERE id = $1",
        organisation,
        threshold
    )
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct TokenRow {
    pub user_id: Option<Uuid>,
    pub organisation_id: Option<Uuid>,
    pub email: String,
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_token(
    conn: &mut PgConnection,
    token_hash: &str,
    purpose: TokenPurpose,
    user: Option<Uuid>,
    organisation: Option<Uuid>,
    email: &str,
    created_by: Option<Uuid>,
    valid_secs: f64,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO email_tokens (token_hash, purpose, user_id, organisation_id, email, created_by, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $8::timestamptz, $8::timestamptz + make_interval(secs => $7))",
        token_hash,
        purpose.as_str(),
        user,
        organisation,
        email,
        created_by,
        valid_secs,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The token if it is unused and not expired (to show the form that will use it).
pub async fn peek_token(
    conn: &mut PgConnection,
    token_hash: &str,
    purpose: TokenPurpose,
    now: OffsetDateTime,
) -> sqlx::Result<Option<TokenRow>> {
    sqlx::query_as!(
        TokenRow,
        "SELECT user_id, organisation_id, email FROM email_tokens
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
        token_hash,
        purpose.as_str(),
        now
    )
    .fetch_optional(conn)
    .await
}

/// Uses the token: at most once, even with two requests at the same time.
pub async fn take_token(
    conn: &mut PgConnection,
    token_hash: &str,
    purpose: TokenPurpose,
    now: OffsetDateTime,
) -> sqlx::Result<Option<TokenRow>> {
    sqlx::query_as!(
        TokenRow,
        "UPDATE email_tokens SET used_at = $3
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3
         RETURNING user_id, organisation_id, email",
        token_hash,
        purpose.as_str(),
        now
    )
    .fetch_optional(conn)
    .await
}

#[derive(Debug, Clone)]
pub struct OrganisationSummary {
    pub name: String,
    pub plan_id: String,
    pub users: i64,
    pub created_at: OffsetDateTime,
}

pub async fn organisations(
    conn: &mut PgConnection,
    limit: i64,
) -> sqlx::Result<Vec<OrganisationSummary>> {
    sqlx::query_as!(
        OrganisationSummary,
        r#"SELECT o.name, o.plan_id, count(u.id) AS "users!", o.created_at
           FROM organisations o LEFT JOIN users u ON u.organisation_id = o.id
           GROUP BY o.id ORDER BY o.created_at DESC LIMIT $1"#,
        limit
    )
    .fetch_all(conn)
    .await
}

/// Deletes the tokens used or expired before `before` (the `purge-tokens` job).
pub async fn purge_tokens(conn: &mut PgConnection, before: OffsetDateTime) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "DELETE FROM email_tokens WHERE expires_at < $1 OR used_at < $1",
        before
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// Ends the user's pending links of these purposes (a security event: password changed or
/// reset, signed out everywhere, e-mail changed).
pub async fn revoke_user_tokens(
    conn: &mut PgConnection,
    user: Uuid,
    purposes: &[TokenPurpose],
) -> sqlx::Result<u64> {
    let purposes: Vec<String> = purposes.iter().map(|p| p.as_str().to_owned()).collect();
    Ok(sqlx::query!(
        "UPDATE email_tokens SET used_at = now()
         WHERE user_id = $1 AND purpose = ANY($2) AND used_at IS NULL",
        user,
        &purposes
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// Whether a link of `purpose` for `email` was sent less than `secs` ago and still works.
pub async fn recent_token(
    conn: &mut PgConnection,
    email: &str,
    purpose: TokenPurpose,
    organisation: Option<Uuid>,
    secs: f64,
    now: OffsetDateTime,
) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (
               SELECT 1 FROM email_tokens
               WHERE lower(email) = lower($1) AND purpose = $2
                 AND organisation_id IS NOT DISTINCT FROM coalesce($3, organisation_id)
                 AND used_at IS NULL AND expires_at > $5
                 AND created_at > $5 - make_interval(secs => $4)
           ) AS "found!""#,
        email,
        purpose.as_str(),
        organisation,
        secs,
        now
    )
    .fetch_one(conn)
    .await
}

#[derive(Debug, Clone)]
pub struct PendingInvitation {
    pub id: Uuid,
    pub email: String,
    pub expires_at: OffsetDateTime,
}

pub async fn pending_invitations(
    conn: &mut PgConnection,
    organisation: Uuid,
    now: OffsetDateTime,
) -> sqlx::Result<Vec<PendingInvitation>> {
    sqlx::query_as!(
        PendingInvitation,
        "SELECT id, email, expires_at FROM email_tokens
         WHERE organisation_id = $1 AND purpose = 'invitation' AND used_at IS NULL
           AND expires_at > $2
         ORDER BY created_at DESC",
        organisation,
        now
    )
    .fetch_all(conn)
    .await
}

/// Revokes an invitation of `organisation`; false when there is no such pending invitation.
pub async fn revoke_invitation(
    conn: &mut PgConnection,
    organisation: Uuid,
    id: Uuid,
) -> sqlx::Result<bool> {
    Ok(sqlx::query!(
        "UPDATE email_tokens SET used_at = now()
         WHERE id = $1 AND organisation_id = $2 AND purpose = 'invitation' AND used_at IS NULL",
        id,
        organisation
    )
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}
