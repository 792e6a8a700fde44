//! Operations for staff: the outbox (backlog, failures, a resend), the job runner's last runs,
//! and `check-ledger` on demand (the same check as `nanoclip check-ledger`), each action
//! audited with its reason.

use sqlx::PgPool;
use time::OffsetDateTime;

use super::fault::Fault;
use crate::db;
use crate::jobs::Job;

/// The audit action of a `check-ledger` run from the back office.
pub const LEDGER_CHECK: &str = "ledger.check";

/// One job as staff see it: its schedule and its last run, if it ran.
pub struct JobState {
    pub name: &'static str,
    pub every_seconds: u64,
    pub run: Option<db::jobs::JobRun>,
}

pub struct Overview {
    pub backlog: db::outbox::Backlog,
    pub failures: Vec<db::outbox::Failure>,
    pub jobs: Vec<JobState>,
    /// The last check run from the back office.
    pub last_check: Option<db::audit::Line>,
}

pub async fn overview(pool: &PgPool) -> Result<Overview, Fault> {
    let mut conn = pool.acquire().await?;
    let backlog = db::outbox::backlog(&mut conn).await?;
    let failures = db::outbox::failures(&mut conn, 50).await?;
    let mut runs = db::jobs::all(&mut conn).await?;
    let jobs = Job::ALL
        .iter()
        .map(|job| JobState {
            name: job.name(),
            every_seconds: job.every().as_secs(),
            run: runs
                .iter()
                .position(|r| r.name == job.name())
                .map(|i| runs.swap_remove(i)),
        })
        .collect();
    let last_check = db::audit::last_of(&mut conn, LEDGER_CHECK).await?;
    Ok(Overview {
        backlog,
        failures,
        jobs,
        last_check,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ResendError {
    /// No such message, or it was sent, or it never failed.
    #[error("no failed message to resend")]
    NotFailed,
    #[error(transparent)]
    Fault(#[from] Fault),
}

impl From<sqlx::Error> for ResendError {
    fn from(error: sqlx::Error) -> Self {
        ResendError::Fault(error.into())
    }
}

/// Makes a failed message due now, its attempts counted afresh (the delivery job sends it at
/// its next run), with the audit line.
pub async fn resend(
    pool: &PgPool,
    id: i64,
    actor: &str,
    reason: &str,
    now: OffsetDateTime,
) -> Result<(), ResendError> {
    let mut tx = pool.begin().await?;
    let failure = db::outbox::lock_failure(&mut tx, id)
        .await?
        .ok_or(ResendError::NotFailed)?;
    db::outbox::retry_now(&mut tx, id, now).await?;
    let stamp = |t: OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    db::audit::record(
        &mut tx,
        db::audit::Entry {
            actor,
            organisation: None,
            action: "outbox.resend",
            reason,
            before: Some(serde_json::json!({
                "message": id,
                "attempts": failure.attempts,
                "next_try": stamp(failure.next_try),
                "last_error": failure.last_error,
            })),
            after: Some(serde_json::json!({
                "message": id,
                "attempts": 0,
                "next_try": stamp(now),
            })),
            now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Runs `check-ledger` (the command's check) and records it with its result in the audit log,
/// where the back office reads it back.
pub async fn check_ledger(
    pool: &PgPool,
    actor: &str,
    reason: &str,
    now: OffsetDateTime,
) -> Result<Vec<db::credits::Difference>, Fault> {
    let differences = super::credits::check(pool).await.map_err(|e| match e {
        super::credits::CreditError::Fault(fault) => fault,
        other => Fault::Internal(other.into()),
    })?;
    let found: Vec<serde_json::Value> = differences
        .iter()
        .map(|d| {
            serde_json::json!({
                "organisation": d.organisation_id,
                "what": d.what,
                "expected": d.expected,
                "found": d.found,
            })
        })
        .collect();
    let mut conn = pool.acquire().await?;
    db::audit::record(
        &mut conn,
        db::audit::Entry {
            actor,
            organisation: None,
            action: LEDGER_CHECK,
            reason,
            before: None,
            after: Some(serde_json::json!({ "differences": found })),
            now,
        },
    )
    .await?;
    Ok(differences)
}
