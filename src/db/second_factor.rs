//! Staff's second factor: TOTP secrets, enrolment links and recovery codes.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

/// An enrolment waiting for its first code.
pub struct Pending {
    pub user_id: Uuid,
    pub email: String,
    pub secret: String,
}

/// A second factor in force.
pub struct Confirmed {
    pub email: String,
    pub secret: String,
    pub last_step: i64,
}

/// A new secret and enrolment link for the staff member (a second factor already in force
/// stays so until the new one is confirmed: the secret is kept apart until then).
pub async fn start_enrolment(
    conn: &mut PgConnection,
    user: Uuid,
    secret: &str,
    token_hash: &str,
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO staff_second_factors (user_id, secret, enrolment_token_hash, enrolment_expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id) DO UPDATE SET enrolment_token_hash = $3, enrolment_expires_at = $4,
             pending_secret = $2",
        user,
        secret,
        token_hash,
        expires_at,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn pending_enrolment(
    conn: &mut PgConnection,
    token_hash: &str,
    now: OffsetDateTime,
) -> sqlx::Result<Option<Pending>> {
    sqlx::query_as!(
        Pending,
        r#"SELECT f.user_id, u.email, coalesce(f.pending_secret, f.secret) AS "secret!"
           FROM staff_second_factors f JOIN users u ON u.id = f.user_id
           WHERE f.enrolment_token_hash = $1 AND f.enrolment_expires_at > $2 AND u.role = 'staff'"#,
        token_hash,
        now
    )
    .fetch_optional(conn)
    .await
}

pub async fn lock_pending_enrolment(
    conn: &mut PgConnection,
    token_hash: &str,
    now: OffsetDateTime,
) -> sqlx::Result<Option<Pending>> {
    sqlx::query_as!(
        Pending,
        r#"SELECT f.user_id, u.email, coalesce(f.pending_secret, f.secret) AS "secret!"
           FROM staff_second_factors f JOIN users u ON u.id = f.user_id
           WHERE f.enrolment_token_hash = $1 AND f.enrolment_expires_at > $2 AND u.role = 'staff'
           FOR UPDATE OF f"#,
        token_hash,
        now
    )
    .fetch_optional(conn)
    .await
}

/// The secret is in force from `step` on; the link is spent; the recovery codes replace any
/// earlier ones.
pub async fn confirm(
    conn: &mut PgConnection,
    user: Uuid,
    step: i64,
    recovery_hashes: &[String],
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE staff_second_factors
            SET secret = coalesce(pending_secret, secret), pending_secret = NULL,
                enrolment_token_hash = NULL, enrolment_expires_at = NULL,
                confirmed_at = $2, last_step = $3
          WHERE user_id = $1",
        user,
        now,
        step
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!("DELETE FROM staff_recovery_codes WHERE user_id = $1", user)
        .execute(&mut *conn)
        .await?;
    sqlx::query!(
        "INSERT INTO staff_recovery_codes (user_id, code_hash) SELECT $1, unnest($2::text[])",
        user,
        recovery_hashes as &[String]
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn lock_confirmed(
    conn: &mut PgConnection,
    user: Uuid,
) -> sqlx::Result<Option<Confirmed>> {
    sqlx::query_as!(
        Confirmed,
        r#"SELECT u.email, f.secret, f.last_step
           FROM staff_second_factors f JOIN users u ON u.id = f.user_id
           WHERE f.user_id = $1 AND f.confirmed_at IS NOT NULL FOR UPDATE OF f"#,
        user
    )
    .fetch_optional(conn)
    .await
}

/// Records the step of an accepted code; false when it is not later than the last one.
pub async fn accept_step(conn: &mut PgConnection, user: Uuid, step: i64) -> sqlx::Result<bool> {
    Ok(sqlx::query!(
        "UPDATE staff_second_factors SET last_step = $2 WHERE user_id = $1 AND last_step < $2",
        user,
        step
    )
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Uses a recovery code; false when it is unknown or used.
pub async fn use_recovery_code(
    conn: &mut PgConnection,
    user: Uuid,
    code_hash: &str,
    now: OffsetDateTime,
) -> sqlx::Result<bool> {
    Ok(sqlx::query!(
        "UPDATE staff_recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
        user,
        code_hash,
        now
    )
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

pub async fn is_confirmed(conn: &mut PgConnection, user: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM staff_second_factors WHERE user_id = $1 AND confirmed_at IS NOT NULL) AS "x!""#,
        user
    )
    .fetch_one(conn)
    .await
}
