//! The credit ledger's benchmark driver, run by `bench/credits` (see bench/README.md). Every
//! credit movement goes through the portal's own services (`nanoclip::services::credits`), on
//! the PostgreSQL server the portal finds.
//!
//! ```text
//! ledger_bench url NAME [--fresh]       the URL of database NAME on the portal's server
//!                                       (--fresh: dropped and created again)
//! ledger_bench drop NAME                drops database NAME
//! ledger_bench setup URL --organisations N --credits C
//!                                       migrates, then N organisations with C credits each
//! ledger_bench run URL --mode hold|pair --clients 50 --threads 2 --seconds 10
//!                                       holds (or hold + capture pairs) on random organisations
//!                                       from 50 concurrent clients; prints one line: tps=…
//! ledger_bench history URL --email E --password P [--days 365] [--per-day 7]
//!                                       an organisation whose owner is E, with a year of holds,
//!                                       captures, releases, renewals and purchases
//! ```
//!
//! Build: `cargo build --release --example ledger_bench`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration as StdDuration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use nanoclip::config::Config;
use nanoclip::db::server::{self, Origin};
use nanoclip::domain::account::Role;
use nanoclip::domain::money::Credits;
use nanoclip::services::credits::{self, Actor, Adjustment, HoldInput, HoldOutcome};
use nanoclip::services::passwords::Hasher;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use time::{Duration, OffsetDateTime, Time};
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(
    name = "ledger_bench",
    about = "The credit ledger's benchmark driver (bench/credits)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Prints the URL of database NAME on the server the portal finds (DATABASE_URL, the local
    /// server or the private cluster), usable by the portal (DATABASE_URL), psql and pgbench.
    Url {
        name: String,
        /// Drop the database if it exists, then create it empty.
        #[arg(long)]
        fresh: bool,
    },
    /// Drops database NAME on the portal's server.
    Drop { name: String },
    /// Applies the migrations, then opens N organisations (plan Réseau) with C credits each.
    Setup {
        url: String,
        #[arg(long, default_value_t = 50)]
        organisations: usize,
        #[arg(long, default_value_t = 10_000_000)]
        credits: i64,
    },
    /// Runs holds, or hold + capture pairs, from concurrent clients for a while.
    Run {
        url: String,
        #[arg(long, value_enum)]
        mode: Mode,
        #[arg(long, default_value_t = 50)]
        clients: u32,
        /// Tokio worker threads (pgbench's -j).
        #[arg(long, default_value_t = 2)]
        threads: usize,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Seconds of the same work before the measured run (prepares each connection's
        /// statements).
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
    },
    /// An organisation whose owner signs in with EMAIL / PASSWORD, with DAYS days of history
    /// ending now: PER_DAY generations a day (a hold, then its capture, one in ten released),
    /// the monthly renewals, and a purchase of 300 credits every 30 days.
    History {
        url: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        #[arg(long, default_value_t = 365)]
        days: i64,
        #[arg(long, default_value_t = 7)]
        per_day: i64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// One hold per operation.
    Hold,
    /// A hold, then its capture: two transactions per operation.
    Pair,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let threads = match &cli.command {
        Command::Run { threads, .. } => *threads,
        _ => 2,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Url { name, fresh } => url(&name, fresh).await,
            Command::Drop { name } => drop_database(&name).await,
            Command::Setup {
                url,
                organisations,
                credits,
            } => setup(&url, organisations, credits).await,
            Command::Run {
                url,
                mode,
                clients,
                seconds,
                warmup,
                ..
            } => run(&url, mode, clients, seconds, warmup).await,
            Command::History {
                url,
                email,
                password,
                days,
                per_day,
            } => history(&url, &email, &password, days, per_day).await,
        }
    })
}

/// The server the portal finds, as `nanoclip serve` resolves it.
async fn portal_server() -> anyhow::Result<server::Server> {
    let config = Config::from_env().map_err(|e| anyhow::anyhow!("configuration: {e:?}"))?;
    let found = server::resolve(config.database_url.as_deref(), &config.data_dir, "nanoclip")
        .await
        .context("finding the portal's PostgreSQL server")?;
    if found.started.is_some() {
        eprintln!(
            "ledger_bench: started the private cluster; it keeps running (stop it with pg_ctl)"
        );
    }
    Ok(found)
}

fn check_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        bail!("database names are lowercase ascii, digits and underscores: {name:?}");
    }
    Ok(())
}

async fn url(name: &str, fresh: bool) -> anyhow::Result<()> {
    check_name(name)?;
    let found = portal_server().await?;
    let admin = found.database("postgres");
    if fresh {
        drop_on(&admin, name).await?;
    }
    server::ensure_database(&admin, name).await?;
    let url = match found.origin {
        Origin::DatabaseUrl => {
            let given = std::env::var("DATABASE_URL").context("DATABASE_URL")?;
            with_database(&given, name)?
        }
        Origin::LocalServer | Origin::PrivateCluster => {
            let o = &found.options;
            match o.get_socket() {
                Some(dir) => format!(
                    "postgres://{}@localhost:{}/{name}?host={}",
                    o.get_username(),
                    o.get_port(),
                    dir.display()
                ),
                None => format!(
                    "postgres://{}@{}:{}/{name}",
                    o.get_username(),
                    o.get_host(),
                    o.get_port()
                ),
            }
        }
    };
    nanoclip::cli::say([&url])?;
    Ok(())
}

/// `url` with its database (the path) replaced by `name`.
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let scheme_end = base.find("://").context("DATABASE_URL has no scheme")? + 3;
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..host_end]);
    if !query.is_empty() {
        out.push('?');
        out.push_str(query);
    }
    Ok(out)
}

async fn drop_on(admin: &PgConnectOptions, name: &str) -> anyhow::Result<()> {
    check_name(name)?;
    let mut conn = PgConnection::connect_with(admin).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .with_context(|| format!("dropping {name}"))?;
    let _ = conn.close().await;
    Ok(())
}

async fn drop_database(name: &str) -> anyhow::Result<()> {
    let found = portal_server().await?;
    drop_on(&found.database("postgres"), name).await
}

/// A pool configured as the portal's (`db::pool`: `synchronous_commit = on`, no ping before a
/// checkout), with `size` connections.
async fn pool(url: &str, size: u32) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = url.parse().context("the database URL")?;
    let options = options.options([("synchronous_commit", "on")]);
    Ok(PgPoolOptions::new()
        .max_connections(size)
        .min_connections(0)
        .test_before_acquire(false)
        .acquire_timeout(StdDuration::from_secs(3))
        .idle_timeout(StdDuration::from_secs(300))
        .connect_lazy_with(options))
}

async fn setup(url: &str, organisations: usize, amount: i64) -> anyhow::Result<()> {
    let pool = pool(url, 4).await?;
    nanoclip::db::MIGRATOR
        .run(&pool)
        .await
        .context("migrations")?;
    let now = OffsetDateTime::now_utc();
    for i in 0..organisations {
        let mut conn = pool.acquire().await?;
        let organisation = nanoclip::services::accounts::open_organisation(
            &mut conn,
            &format!("Paroisse du banc d'essai {}", i + 1),
            "reseau",
            now,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        drop(conn);
        credits::adjust(
            &pool,
            Adjustment {
                organisation,
                credits: Credits(amount),
                reason: "banc d'essai",
                last_day: None,
                key: "bench-setup",
                actor: "cli",
            },
            now,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    sqlx::query("VACUUM ANALYZE").execute(&pool).await?;
    pool.close().await;
    nanoclip::cli::say([format!(
        "organisations={organisations} credits_each={amount}"
    )])?;
    Ok(())
}

/// A small, fast generator (splitmix64): which organisation, how many credits.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const ENGINE: Actor<'static> = Actor {
    actor: "engine",
    reason: "succeeded",
};

/// One operation: a hold, or a hold and its capture. Whether it succeeded.
async fn operation(
    pool: &PgPool,
    mode: Mode,
    organisation: Uuid,
    amount: i64,
    key: &str,
) -> Result<(), String> {
    let input = HoldInput {
        organisation,
        amount: Credits(amount),
        creation_type: "video",
        key,
        reference: "generation:bench",
        actor: "user:bench",
    };
    let now = OffsetDateTime::now_utc();
    let hold = match credits::hold(pool, input, now).await {
        Ok(HoldOutcome::Placed { hold, .. }) => hold,
        Ok(other) => return Err(format!("hold: {other:?}")),
        Err(error) => return Err(format!("hold: {error}")),
    };
    if mode == Mode::Pair {
        let resolution = credits::capture(pool, hold.id, ENGINE, OffsetDateTime::now_utc())
            .await
            .map_err(|e| format!("capture: {e}"))?;
        if !resolution.changed {
            return Err(format!("capture: {resolution:?}"));
        }
    }
    Ok(())
}

#[derive(Default)]
struct Counters {
    done: AtomicU64,
    errors: AtomicU64,
    /// Microseconds spent in measured operations, summed over clients.
    busy_us: AtomicU64,
}

/// `clients` tasks run operations until `until`; those that end before it are counted when
/// `measured`.
async fn drive(
    pool: &PgPool,
    mode: Mode,
    organisations: &Arc<Vec<Uuid>>,
    clients: u32,
    until: Instant,
    tag: &str,
) -> Arc<Counters> {
    let counters = Arc::new(Counters::default());
    let mut tasks = Vec::new();
    for client in 0..clients {
        let pool = pool.clone();
        let organisations = organisations.clone();
        let counters = counters.clone();
        let prefix = format!("{tag}-{client}");
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng((u64::from(client) << 32) | 0x5EED);
            let mut seq = 0u64;
            loop {
                let started = Instant::now();
                if started >= until {
                    break;
                }
                seq += 1;
                let organisation = organisations[rng.below(organisations.len() as u64) as usize];
                let amount = 1 + rng.below(5) as i64;
                let key = format!("{prefix}-{seq}");
                let outcome = operation(&pool, mode, organisation, amount, &key).await;
                let ended = Instant::now();
                match outcome {
                    Ok(()) if ended <= until => {
                        counters.done.fetch_add(1, Ordering::Relaxed);
                        counters
                            .busy_us
                            .fetch_add((ended - started).as_micros() as u64, Ordering::Relaxed);
                    }
                    Ok(()) => {}
                    Err(error) => {
                        if counters.errors.fetch_add(1, Ordering::Relaxed) < 5 {
                            eprintln!("ledger_bench: {error}");
                        }
                    }
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    counters
}

async fn run(url: &str, mode: Mode, clients: u32, seconds: f64, warmup: f64) -> anyhow::Result<()> {
    let pool = pool(url, clients).await?;
    // pgbench vacuums its small, hot tables (branches, tellers) before a run: so do we (the
    // accounts and buckets every hold updates).
    sqlx::query("VACUUM credit_accounts, credit_buckets")
        .execute(&pool)
        .await?;
    let organisations: Vec<Uuid> =
        sqlx::query_scalar("SELECT organisation_id FROM credit_accounts ORDER BY 1")
            .fetch_all(&pool)
            .await?;
    if organisations.is_empty() {
        bail!("no organisation: run `ledger_bench setup` first");
    }
    let organisations = Arc::new(organisations);
    // Every connection open before the clock starts, as pgbench's.
    let mut open = Vec::new();
    for _ in 0..clients {
        open.push(pool.acquire().await?);
    }
    drop(open);
    let nonce = Uuid::new_v4().simple().to_string();
    if warmup > 0.0 {
        let until = Instant::now() + StdDuration::from_secs_f64(warmup);
        drive(
            &pool,
            mode,
            &organisations,
            clients,
            until,
            &format!("w{nonce}"),
        )
        .await;
    }
    let started = Instant::now();
    let until = started + StdDuration::from_secs_f64(seconds);
    let counters = drive(
        &pool,
        mode,
        &organisations,
        clients,
        until,
        &format!("m{nonce}"),
    )
    .await;
    let elapsed = seconds.min(started.elapsed().as_secs_f64());
    let done = counters.done.load(Ordering::Relaxed);
    let errors = counters.errors.load(Ordering::Relaxed);
    let latency_ms = if done > 0 {
        counters.busy_us.load(Ordering::Relaxed) as f64 / done as f64 / 1000.0
    } else {
        0.0
    };
    pool.close().await;
    nanoclip::cli::say([format!(
        "mode={} clients={clients} organisations={} seconds={elapsed:.2} ops={done} tps={:.1} latency_ms={latency_ms:.2} errors={errors}",
        match mode {
            Mode::Hold => "hold",
            Mode::Pair => "pair",
        },
        organisations.len(),
        done as f64 / elapsed,
    )])?;
    Ok(())
}

async fn history(
    url: &str,
    email: &str,
    password: &str,
    days: i64,
    per_day: i64,
) -> anyhow::Result<()> {
    let pool = pool(url, 2).await?;
    nanoclip::db::MIGRATOR
        .run(&pool)
        .await
        .context("migrations")?;
    let now = OffsetDateTime::now_utc();
    let first_day = now.replace_time(Time::MIDNIGHT) - Duration::days(days);
    let mut conn = pool.acquire().await?;
    let organisation = nanoclip::services::accounts::open_organisation(
        &mut conn,
        "Paroisse d'une année d'historique",
        "reseau",
        first_day + Duration::hours(7),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    drop(conn);
    let hasher = Hasher::new()?;
    nanoclip::services::accounts::create_account(
        &pool,
        &hasher,
        Some(organisation),
        email,
        password,
        Role::Owner,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut rng = Rng(0xC0FFEE);
    let mut short = 0;
    for d in 0..=days {
        let day = first_day + Duration::days(d);
        nanoclip::services::billing::renew_due(
            &pool,
            &nanoclip::services::billing::Renewals {
                payments: Default::default(),
                public_url: String::new(),
            },
            day + Duration::hours(1),
        )
        .await
        .map_err(|e| anyhow::anyhow!("renewal: {e}"))?;
        if d % 30 == 2 {
            let key = format!("achat-{d}");
            credits::adjust(
                &pool,
                Adjustment {
                    organisation,
                    credits: Credits(300),
                    reason: "achat",
                    last_day: None,
                    key: &key,
                    actor: "staff:banc",
                },
                day + Duration::hours(7),
            )
            .await
            .map_err(|e| anyhow::anyhow!("purchase: {e}"))?;
        }
        for i in 0..per_day {
            let at = day + Duration::hours(8) + Duration::minutes(80 * i);
            if at + Duration::minutes(4) >= now {
                break;
            }
            let key = format!("generation-{d}-{i}");
            let input = HoldInput {
                organisation,
                amount: Credits(1 + rng.below(3) as i64),
                creation_type: if i % 3 == 0 { "image" } else { "video" },
                key: &key,
                reference: &format!("generation:{d}-{i}"),
                actor: "user:owner",
            };
            let hold = match credits::hold(&pool, input, at).await {
                Ok(HoldOutcome::Placed { hold, .. }) => hold,
                Ok(_) => {
                    short += 1;
                    continue;
                }
                Err(error) => bail!("hold: {error}"),
            };
            let later = at + Duration::minutes(4);
            let outcome = if rng.below(10) == 0 {
                let failed = Actor {
                    actor: "engine",
                    reason: "failed",
                };
                credits::release(&pool, hold.id, failed, later).await
            } else {
                credits::capture(&pool, hold.id, ENGINE, later).await
            };
            outcome.map_err(|e| anyhow::anyhow!("resolution: {e}"))?;
        }
    }
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM credit_ledger WHERE organisation_id = $1")
            .bind(organisation)
            .fetch_one(&pool)
            .await?;
    let differences = credits::check(&pool)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    pool.close().await;
    if !differences.is_empty() {
        bail!("check-ledger after the history: {differences:#?}");
    }
    nanoclip::cli::say([format!(
        "organisation={organisation} ledger_rows={rows} refused_holds={short} days={days}"
    )])?;
    Ok(())
}
