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
