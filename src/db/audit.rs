//! The append-only audit log of staff and operator actions.

use serde_json::Value;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

/// One action: who (`staff:<email>`, `cli`), on which organisation, what, why, and the values
/// before and after.
pub struct Entry<'a> {
    pub actor: &'a str,
    pub organisation: Option<Uuid>,
    pub action: &'a str,
    pub reason: &'a str,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub now: OffsetDateTime,
}

/// Records the action in the caller's transaction (it stands or falls with the action).
pub async fn record(conn: &mut PgConnection, entry: Entry<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO audit_log (actor, organisation_id, action, reason, before, after, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        entry.actor,
        entry.organisation,
        entry.action,
        entry.reason,
        entry.before,
        entry.after,
        entry.now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A line of the log, as staff read it.
pub struct Line {
    pub id: i64,
    pub actor: String,
    pub organisation_id: Option<Uuid>,
    pub organisation: Option<String>,
    pub action: String,
    pub reason: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub created_at: OffsetDateTime,
}

/// The newest lines, for one organisation or all of them.
pub async fn lines(
    conn: &mut PgConnection,
    organisation: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Line>> {
    sqlx::query_as!(
        Line,
        "SELECT a.id, a.actor, a.organisation_id, o.name AS \"organisation?\", a.action, a.reason, a.before, a.after, a.created_at
         FROM audit_log a LEFT JOIN organisations o ON o.id = a.organisation_id
         WHERE $1::uuid IS NULL OR a.organisation_id = $1 ORDER BY a.id DESC LIMIT $2",
        organisation,
        limit
    )
    .fetch_all(conn)
    .await
}

/// The newest line of an action (`ledger.check`), if any.
pub async fn last_of(conn: &mut PgConnection, action: &str) -> sqlx::Result<Option<Line>> {
    sqlx::query_as!(
        Line,
        "SELECT a.id, a.actor, a.organisation_id, o.name AS \"organisation?\", a.action, a.reason, a.before, a.after, a.created_at
         FROM audit_log a LEFT JOIN organisations o ON o.id = a.organisation_id
         WHERE a.action = $1 ORDER BY a.id DESC LIMIT 1",
        action
    )
    .fetch_optional(conn)
    .await
}
