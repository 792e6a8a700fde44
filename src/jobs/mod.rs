//! Background work as named jobs: each is idempotent, safe when several portal instances run it
//! (one run at a time, under a transaction-scoped advisory lock), takes the time as an argument,
//! records its last run and last error in `job_runs` (for staff), and can be run once from the
//! command line (`nanoclip run-job NAME`). The server runs them on a schedule (`run_forever`).

use std::time::Duration;

use anyhow::Context as _;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::db;
use crate::services::{billing, credits, generations};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Job {
    /// Sends the e-mails of the outbox that are due (SMTP, or files in development).
    DeliverMail,
    /// Deletes expired sessions.
    PurgeSessions,
    /// Deletes e-mail tokens (links) used or expired more than a day ago.
    PurgeTokens,
    /// Deletes rate-limit windows that ended more than a day ago.
    PurgeRateLimits,
    /// Removes the links from e-mails once they have been sent.
    RedactSentMail,
    /// Renews the subscriptions whose period has ended (rollover, expiry, the charge that grants
    /// the new allotment) and charges again the past-due ones whose retry is due.
    Renew,
    /// Releases the credit holds left unresolved past their timeout (30 minutes).
    ReleaseOverdueHolds,
    /// Expires what is left in the buckets whose expiry has come.
    ExpireCredits,
    /// Notes the expiry notices due (14 and 3 days before credits are lost).
    ExpiryRadar,
    /// Sends the low-balance and expiry alerts through the outbox.
    SendCreditAlerts,
    /// The built-in test engine (`NANOCLIP_ENGINE=test`): reports the generations it renders.
    TestEngine,
    /// Deletes the API's idempotency keys after two days (they are kept at least 24 hours).
    PurgeIdempotencyKeys,
    /// Expires the orders left unpaid past their time (they can be started again).
    ExpireOrders,
    /// Asks the payment provider about the payments that may have been made without their
    /// webhook (pending orders, failed renewals paid by hand) and the refunds it has not
    /// confirmed, and applies its answers.
    ReconcilePayments,
}

/// Sent e-mails keep their links this long (the delivery worker and its logs are done by then).
pub const REDACT_AFTER: time::Duration = time::Duration::minutes(1);

impl Job {
    pub const ALL: [Job; 14] = [
        Job::DeliverMail,
        Job::PurgeSessions,
        Job::PurgeTokens,
        Job::PurgeRateLimits,
        Job::RedactSentMail,
        Job::Renew,
        Job::ReleaseOverdueHolds,
        Job::ExpireCredits,
        Job::ExpiryRadar,
        Job::SendCreditAlerts,
        Job::TestEngine,
        Job::PurgeIdempotencyKeys,
        Job::ExpireOrders,
        Job::ReconcilePayments,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Job::DeliverMail => "deliver-mail",
            Job::PurgeSessions => "purge-sessions",
            Job::PurgeTokens => "purge-tokens",
            Job::PurgeRateLimits => "purge-rate-limits",
            Job::RedactSentMail => "redact-sent-mail",
            Job::Renew => "renew",
            Job::ReleaseOverdueHolds => "release-overdue-holds",
            Job::ExpireCredits => "expire-credits",
            Job::ExpiryRadar => "expiry-radar",
            Job::SendCreditAlerts => "send-credit-alerts",
            Job::TestEngine => "test-engine",
            Job::PurgeIdempotencyKeys => "purge-idempotency-keys",
            Job::ExpireOrders => "expire-orders",
            Job::ReconcilePayments => "reconcile-payments",
        }
    }

    /// How often the server runs it.
    pub fn every(self) -> Duration {
        match self {
            Job::PurgeSessions | Job::PurgeRateLimits => Duration::from_secs(10 * 60),
            Job::PurgeTokens => Duration::from_secs(60 * 60),
            Job::RedactSentMail
            | Job::Renew
            | Job::ExpireCredits
            | Job::ExpireOrders
            | Job::ReconcilePayments => Duration::from_secs(60),
            Job::ReleaseOverdueHolds => Duration::from_secs(30),
            Job::ExpiryRadar => Duration::from_secs(15 * 60),
            Job::DeliverMail | Job::SendCreditAlerts => Duration::from_secs(2),
            Job::TestEngine => Duration::from_secs(1),
            Job::PurgeIdempotencyKeys => Duration::from_secs(60 * 60),
        }
    }

    /// Whether the server runs it as soon as it starts (e-mails should not wait); the others
    /// wait a little, differently on each instance.
    fn at_start(self) -> bool {
        matches!(
            self,
            Job::DeliverMail | Job::SendCreditAlerts | Job::ReleaseOverdueHolds
        )
    }

    /// The work itself, in the run's transaction; returns a short account of what it did.
    async fn work(
        self,
        pool: &PgPool,
        conn: &mut sqlx::PgConnection,
        now: OffsetDateTime,
        context: &Context,
    ) -> anyhow::Result<String> {
        let day_ago = now - time::Duration::days(1);
        let count = match self {
            Job::DeliverMail => match &context.mailer {
                Some(mailer) => mailer.deliver_due(conn).await? as u64,
                None => anyhow::bail!("no mail transport"),
            },
            Job::PurgeSessions => db::sessions::purge_expired(conn, now).await?,
            Job::PurgeTokens => db::accounts::purge_tokens(conn, day_ago).await?,
            Job::PurgeRateLimits => db::rate_limit::purge(conn, day_ago).await?,
            Job::RedactSentMail => db::outbox::redact_sent(conn, now - REDACT_AFTER).await?,
            // These commit each organisation's movements in their own transaction (the run's
            // transaction only holds the job's lock), so that a long run blocks nobody.
            Job::Renew => {
                let renewals = billing::Renewals {
                    payments: context.payments.clone(),
                    public_url: context.public_url.clone(),
                };
                billing::renew_due(pool, &renewals, now).await?
            }
            Job::ReleaseOverdueHolds => generations::expire_overdue(pool, now).await?,
            Job::ExpireCredits => credits::expire_due(conn, now).await? as u64,
            Job::ExpiryRadar => db::credits::note_expiry_notices(conn, now).await?,
            Job::SendCreditAlerts => credits::send_alerts(conn, &context.public_url, now).await?,
            Job::TestEngine if context.test_engine => {
                generations::run_test_engine(pool, now).await?
            }
            Job::TestEngine => 0,
            Job::ExpireOrders => billing::expire_orders(pool, now).await?,
            Job::ReconcilePayments => {
                billing::reconcile(pool, &context.payments, &context.public_url, now).await?
            }
            Job::PurgeIdempotencyKeys => {
                db::generations::purge_idempotency_keys(conn, now - time::Duration::days(2)).await?
            }
        };
        Ok(format!("{count} rows"))
    }
}

/// What jobs need besides the database.
#[derive(Default)]
pub struct Context {
    /// Delivers the outbox (`deliver-mail`).
    pub mailer: Option<crate::services::mail::Mailer>,
    /// The portal's address, for links in e-mails.
    pub public_url: String,
    /// Whether the built-in test engine renders (`NANOCLIP_ENGINE=test`).
    pub test_engine: bool,
    /// The payment provider (renewal charges, `reconcile-payments`).
    pub payments: crate::services::payments::Payments,
}

/// What one call of `run` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done(String),
    /// Another instance was running it.
    Skipped,
}

/// Runs `job` once at `now`, unless another instance is running it; records the outcome.
pub async fn run(
    pool: &PgPool,
    job: Job,
    now: OffsetDateTime,
    context: &Context,
) -> anyhow::Result<Outcome> {
    let mut tx = pool.begin().await.context("begin")?;
    if !db::jobs::try_lock(&mut tx, job.name()).await? {
        return Ok(Outcome::Skipped);
    }
    db::jobs::record_start(&mut tx, job.name(), now).await?;
    match job.work(pool, &mut tx, now, context).await {
        Ok(detail) => {
            db::jobs::record_ok(&mut tx, job.name(), now, &detail).await?;
            tx.commit().await.context("commit")?;
            // What a job changed is not known in detail: every instance's read cache forgets
            // everything (`crate::cache`). The renewals also retry charges, which their count
            // leaves out.
            if !detail.starts_with("0 ") || job == Job::Renew {
                crate::cache::broadcast_reset(pool).await;
            }
            // The frequent jobs are logged only when they did something.
            if job.every() >= Duration::from_secs(60) || !detail.starts_with("0 ") {
                tracing::info!(job = job.name(), %detail, "job done");
            }
            Ok(Outcome::Done(detail))
        }
        Err(error) => {
            drop(tx); // rolled back
            // Jobs that commit each organisation on its own may have committed some.
            crate::cache::broadcast_reset(pool).await;
            let message = format!("{error:#}");
            tracing::error!(job = job.name(), error = %message, "job failed");
            let mut conn = pool.acquire().await.context("acquire")?;
            db::jobs::record_failure(&mut conn, job.name(), now, &message).await?;
            Err(error.context(job.name()))
        }
    }
}

/// The server's scheduler: every job at its interval, for as long as the server runs. A failed
/// run is logged and recorded, and tried again at the next interval.
pub async fn run_forever(pool: PgPool, clock: crate::clock::Clock, context: Context) {
    // The first runs wait a little (10 to 40 s, different on each instance), so that a start is
    // quick and instances started together do not all run every job at once.
    let jitter =
        Duration::from_millis(10_000 + u64::from(uuid::Uuid::new_v4().as_u128() as u16) % 30_000);
    let start = tokio::time::Instant::now() + jitter;
    let now = tokio::time::Instant::now();
    let mut due: Vec<(Job, tokio::time::Instant)> = Job::ALL
        .iter()
        .map(|job| (*job, if job.at_start() { now } else { start }))
        .collect();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = tokio::time::Instant::now();
        for (job, next) in &mut due {
            if *next <= now {
                *next = now + job.every();
                // Errors are recorded by `run`; the loop goes on.
                let _ = run(&pool, *job, clock.now(), &context).await;
            }
        }
    }
}
