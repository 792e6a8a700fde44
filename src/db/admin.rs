//! What staff look up in the back office: organisations by name or address, and their members.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

pub struct OrganisationRow {
    pub id: Uuid,
    pub name: String,
    pub plan_id: String,
    pub owner_email: Option<String>,
    pub status: Option<String>,
    pub suspended_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

/// Organisations whose name or one of whose accounts' addresses contains `query` (case and
/// accents as typed), newest first; all of them for an empty query.
pub async fn search(
    conn: &mut PgConnection,
    query: &str,
    limit: i64,
) -> sqlx::Result<Vec<OrganisationRow>> {
    let pattern = format!(
        "%{}%",
        query
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    sqlx::query_as!(
        OrganisationRow,
        r#"SELECT o.id, o.name, o.plan_id,
                  (SELECT u.email FROM users u WHERE u.organisation_id = o.id AND u.role = 'owner' LIMIT 1) AS owner_email,
                  (SELECT s.status FROM subscriptions s WHERE s.organisation_id = o.id) AS status,
                  o.suspended_at, o.created_at
           FROM organisations o
           WHERE $1 = '%%' OR o.name ILIKE $1
              OR EXISTS (SELECT 1 FROM users u WHERE u.organisation_id = o.id AND u.email ILIKE $1)
           ORDER BY o.created_at DESC LIMIT $2"#,
        pattern,
        limit
    )
    .fetch_all(conn)
    .await
}

pub async fn organisation(
    conn: &mut PgConnection,
    id: Uuid,
) -> sqlx::Result<Option<OrganisationRow>> {
    sqlx::query_as!(
        OrganisationRow,
        r#"SELECT o.id, o.name, o.plan_id,
                  (SELECT u.email FROM users u WHERE u.organisation_id = o.id AND u.role = 'owner' LIMIT 1) AS owner_email,
                  (SELECT s.status FROM subscriptions s WHERE s.organisation_id = o.id) AS status,
                  o.suspended_at, o.created_at
           FROM organisations o WHERE o.id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await
}

pub struct Member {
    pub email: String,
    pub role: String,
    pub activated: bool,
}

pub async fn members(conn: &mut PgConnection, organisation: Uuid) -> sqlx::Result<Vec<Member>> {
    sqlx::query_as!(
        Member,
        r#"SELECT email, role, (email_verified_at IS NOT NULL) AS "activated!" FROM users
           WHERE organisation_id = $1 ORDER BY role DESC, email"#,
        organisation
    )
    .fetch_all(conn)
    .await
}

/// The raise recorded last and not replaced (in force, or to come, or over).
pub async fn current_raise(
    conn: &mut PgConnection,
    organisation: Uuid,
) -> sqlx::Result<Option<super::generations::Raise>> {
    let row = sqlx::query!(
        "SELECT daily, monthly, concurrent, first_day, last_day, reason FROM limit_raises
         WHERE organisation_id = $1 AND replaced_at IS NULL ORDER BY created_at DESC LIMIT 1",
        organisation
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| super::generations::Raise {
        daily: i64::from(r.daily),
        monthly: r.monthly,
        concurrent: i64::from(r.concurrent),
        first_day: r.first_day,
        last_day: r.last_day,
        reason: r.reason,
    }))
}

/// Whether staff have suspended the organisation (`None`: no such organisation).
pub async fn suspended(conn: &mut PgConnection, organisation: Uuid) -> sqlx::Result<Option<bool>> {
    sqlx::query_scalar!(
        r#"SELECT (suspended_at IS NOT NULL) AS "suspended!" FROM organisations WHERE id = $1"#,
        organisation
    )
    .fetch_optional(conn)
    .await
}

/// Suspends (`Some(now)`) or reactivates (`None`) the organisation, under its row's lock; the
/// suspension's start before the change (`None` inside: it was active), `None`: no such
/// organisation.
pub async fn set_suspended(
    conn: &mut PgConnection,
    organisation: Uuid,
    at: Option<OffsetDateTime>,
) -> sqlx::Result<Option<Option<OffsetDateTime>>> {
    let before = sqlx::query_scalar!(
        "SELECT suspended_at FROM organisations WHERE id = $1 FOR UPDATE",
        organisation
    )
    .fetch_optional(&mut *conn)
    .await?;
    if before.is_some() {
        sqlx::query!(
            "UPDATE organisations SET suspended_at = $2 WHERE id = $1",
            organisation,
            at
        )
        .execute(conn)
        .await?;
    }
    Ok(before)
}

/// A contact message as staff read it.
pub struct ContactMessage {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub organisation: String,
    pub subject: String,
    pub event_start: Option<time::Date>,
    pub event_end: Option<time::Date>,
    pub event_volume: Option<String>,
    pub page: Option<String>,
    pub message: String,
    pub created_at: OffsetDateTime,
    pub answered_at: Option<OffsetDateTime>,
    pub answered_by: Option<String>,
    /// The organisation of an account with the sender's address, if any.
    pub organisation_id: Option<Uuid>,
}

/// Contact messages, newest first: all, the new ones only (`only_new`), those sent from the
/// addresses of one organisation's accounts, or the one with id `id`.
pub async fn contact_messages(
    conn: &mut PgConnection,
    only_new: bool,
    organisation: Option<Uuid>,
    id: Option<i64>,
    offset: i64,
    limit: i64,
) -> sqlx::Result<Vec<ContactMessage>> {
    sqlx::query_as!(
        ContactMessage,
        r#"SELECT c.id, c.name, c.email, c.organisation, c.subject, c.event_start, c.event_end,
                  c.event_volume, c.page, c.message, c.created_at, c.answered_at, c.answered_by,
                  u.organisation_id AS "organisation_id?"
           FROM contact_messages c
           LEFT JOIN users u ON lower(u.email) = lower(c.email) AND u.organisation_id IS NOT NULL
           WHERE (NOT $1 OR c.answered_at IS NULL)
             AND ($2::uuid IS NULL OR u.organisation_id = $2)
             AND ($3::bigint IS NULL OR c.id = $3)
           ORDER BY c.created_at DESC, c.id DESC OFFSET $4 LIMIT $5"#,
        only_new,
        organisation,
        id,
        offset,
        limit
    )
    .fetch_all(conn)
    .await
}

pub async fn contact_message(
    conn: &mut PgConnection,
    id: i64,
) -> sqlx::Result<Option<ContactMessage>> {
    Ok(contact_messages(conn, false, None, Some(id), 0, 1)
        .await?
        .pop())
}

/// Marks the message answered; false when it was already (or does not exist).
pub async fn mark_answered(
    conn: &mut PgConnection,
    id: i64,
    actor: &str,
    now: OffsetDateTime,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE contact_messages SET answered_at = $3, answered_by = $2
         WHERE id = $1 AND answered_at IS NULL",
        id,
        actor,
        now
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The number of contact messages not answered yet.
pub async fn new_contact_count(conn: &mut PgConnection) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM contact_messages WHERE answered_at IS NULL"#
    )
    .fetch_one(conn)
    .await
}
