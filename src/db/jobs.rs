//! Job runs: one row per job (`job_runs`), and the advisory lock that makes one instance run a
//! job at a time.

use sqlx::PgConnection;
use time::OffsetDateTime;

/// Takes the job's lock for the current transaction; false when another instance holds it.
pub async fn try_lock(conn: &mut PgConnection, name: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_xact_lock(hashtext('job:' || $1)) AS "locked!""#,
        name
    )
    .fetch_one(conn)
    .await
}

pub async fn record_start(
    conn: &mut PgConnection,
    name: &str,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO job_runs (name, last_start) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET last_start = $2",
        name,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn record_ok(
    conn: &mut PgConnection,
    name: &str,
    now: OffsetDateTime,
    detail: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE job_runs SET last_finish = $2, last_ok = $2, last_detail = $3, runs = runs + 1
         WHERE name = $1",
        name,
        now,
        detail
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn record_failure(
    conn: &mut PgConnection,
    name: &str,
    now: OffsetDateTime,
    error: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO job_runs (name, last_start, last_finish, last_error, runs, failures)
         VALUES ($1, $2, $2, $3, 1, 1)
         ON CONFLICT (name) DO UPDATE SET last_finish = $2, last_error = $3,
             runs = job_runs.runs + 1, failures = job_runs.failures + 1",
        name,
        now,
        error
    )
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct JobRun {
    pub name: String,
    pub last_start: Option<OffsetDateTime>,
    pub last_ok: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    pub last_detail: Option<String>,
    pub runs: i64,
    pub failures: i64,
}

pub async fn all(conn: &mut PgConnection) -> sqlx::Result<Vec<JobRun>> {
    sqlx::query_as!(
        JobRun,
        "SELECT name, last_start, last_ok, last_error, last_detail, runs, failures
         FROM job_runs ORDER BY name"
    )
    .fetch_all(conn)
    .await
}
