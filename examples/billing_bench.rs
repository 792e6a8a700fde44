//! The billing benchmark driver, run by `bench/billing` (see bench/README.md, « Billing »):
//! buyers who double-submit the purchase of a pack through the portal's forms, and the payment
//! webhook under a storm of replayed events. Each run ends with the counts read from the
//! database (orders, grants, invoices, events) and says which of them differ from what the run
//! did.
//!
//! ```text
//! billing_bench setup URL --buyers 50 --password P
//!                 migrates, then 50 organisations on plan Église, each with an owner
//!                 achat-banc-I@banc-essai.nanoclip.fr (I = 1..50), one a line
//! billing_bench buyers BASE URL --emails FILE --password P --seconds 10 --threads 2
//!                 each owner of FILE signs in through the login form, then, until the time is
//!                 up, buys pack-10: the confirmation form sent twice at once, the test
//!                 provider's approve button pressed twice at once; prints one line: tps=…
//! billing_bench webhooks BASE URL --orders 1000 --replays 20 --connections 32 --event FILE
//!                 1,000 orders awaiting Stripe's confirmation (made through the services), then
//!                 each order's signed checkout.session.completed sent 20 times, shuffled, from
//!                 32 connections; the secret in NANOCLIP_WEBHOOK_SECRET; prints one line
//! ```
//!
//! BASE is the portal (http://127.0.0.1:PORT), URL its database. Build:
//! `cargo build --release --example billing_bench`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use nanoclip::domain::account::Role;
use nanoclip::domain::billing::OrderState;
use nanoclip::services::billing::{self, Provider};
use nanoclip::services::passwords::Hasher;
use reqwest::StatusCode;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(
    name = "billing_bench",
    about = "The billing benchmark driver (bench/billing)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Applies the migrations, then opens N organisations (plan Église), each with an owner who
    /// signs in with PASSWORD; prints the owners' addresses, one a line.
    Setup {
        url: String,
        #[arg(long, default_value_t = 50)]
        buyers: usize,
        #[arg(long)]
        password: String,
    },
    /// Buyers who double-submit, for a while; then the counts of the database.
    Buyers {
        /// The portal, e.g. http://127.0.0.1:8080.
        base: String,
        /// The portal's database (for the counts afterwards).
        url: String,
        /// The owners' addresses, one a line (setup's output): one buyer each.
        #[arg(long)]
        emails: String,
        #[arg(long)]
        password: String,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Tokio worker threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        #[arg(long, default_value = "pack-10")]
        pack: String,
    },
    /// Orders awaiting Stripe's confirmation, then their signed events replayed from concurrent
    /// connections; then the counts of the database.
    Webhooks {
        base: String,
        url: String,
        /// Orders, and as many distinct event ids.
        #[arg(long, default_value_t = 1000)]
        orders: usize,
        /// Deliveries of each event.
        #[arg(long, default_value_t = 20)]
        replays: usize,
        /// The orders' organisations (the orders go round them).
        #[arg(long, default_value_t = 50)]
        organisations: usize,
        /// Concurrent connections, one request at a time each.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// A recorded `checkout.session.completed` event with {{ORDER_ID}}, {{SESSION_ID}} and
        /// {{AMOUNT}} to fill in.
        #[arg(
            long,
            default_value = "tests/data/stripe/checkout.session.completed.json"
        )]
        event: String,
        #[arg(long, default_value = "pack-10")]
        pack: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let threads = match &cli.command {
        Command::Buyers { threads, .. } | Command::Webhooks { threads, .. } => *threads,
        Command::Setup { .. } => 2,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Setup {
                url,
                buyers,
                password,
            } => setup(&url, buyers, &password).await,
            Command::Buyers {
                base,
                url,
                emails,
                password,
                seconds,
                pack,
                ..
            } => buyers(&base, &url, &emails, &password, seconds, &pack).await,
            Command::Webhooks {
                base,
                url,
                orders,
                replays,
                organisations,
                connections,
                event,
                pack,
                ..
            } => {
                let storm = Storm {
                    orders,
                    replays,
                    organisations,
                    connections,
                };
                webhooks(&base, &url, storm, &event, &pack).await
            }
        }
    })
}

async fn pool(url: &str) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = url.parse().context("the database URL")?;
    Ok(PgPoolOptions::new()
        .max_connections(2)
        .connect_lazy_with(options))
}

/// An organisation on `plan` and its owner: (organisation, owner).
async fn organisation_with_owner(
    pool: &PgPool,
    hasher: &Hasher,
    name: &str,
    plan: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<(Uuid, Uuid)> {
    let now = OffsetDateTime::now_utc();
    let mut conn = pool.acquire().await?;
    let organisation = nanoclip::services::accounts::open_organisation(&mut conn, name, plan, now)
        .await
        .map_err(|e| anyhow::anyhow!("opening {name}: {e}"))?;
    drop(conn);
    let owner = nanoclip::services::accounts::create_account(
        pool,
        hasher,
        Some(organisation),
        email,
        password,
        Role::Owner,
    )
    .await
    .map_err(|e| anyhow::anyhow!("creating {email}: {e}"))?;
    Ok((organisation, owner))
}

async fn setup(url: &str, buyers: usize, password: &str) -> anyhow::Result<()> {
    let pool = pool(url).await?;
    nanoclip::db::MIGRATOR
        .run(&pool)
        .await
        .context("migrations")?;
    // The portal's budget of password checks (12 a second per hashing thread) is for logins:
    // this one only makes the accounts.
    let hasher = Hasher::with_rate(Some(1000.0))?;
    for i in 1..=buyers {
        let email = format!("achat-banc-{i}@banc-essai.nanoclip.fr");
        organisation_with_owner(
            &pool,
            &hasher,
            &format!("Paroisse acheteuse du banc d'essai {i}"),
            "eglise",
            &email,
            password,
        )
        .await?;
        nanoclip::cli::say([&email])?;
    }
    pool.close().await;
    Ok(())
}

// --- what the database holds afterwards ---------------------------------------------------------

/// The counts of the billing tables (the database is the benchmark's own).
#[derive(Debug, Default)]
struct Counts {
    orders: i64,
    paid: i64,
    /// Credit buckets of purchases, and their distinct grant keys (`order:…`).
    grants: i64,
    grant_keys: i64,
    /// Ledger rows `grant` of an order.
    ledger_grants: i64,
    /// Invoices (series FA), and the distinct orders they are for.
    invoices: i64,
    invoice_orders: i64,
    /// Orders with other than exactly one grant, one invoice, one recorded event.
    not_one_grant: i64,
    not_one_invoice: i64,
    not_one_event: i64,
    /// Recorded provider events.
    events: i64,
    /// FA numbers per year: "FA-2026:1..812", and whether each year runs 1..=count.
    numbers: String,
    gap_free: bool,
}

async fn counts(url: &str) -> anyhow::Result<Counts> {
    let pool = pool(url).await?;
    let row: (i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT
           (SELECT count(*) FROM orders WHERE kind = 'pack'),
           (SELECT count(*) FROM orders WHERE kind = 'pack' AND state = 'paid'),
           (SELECT count(*) FROM credit_buckets WHERE source = 'purchase'),
           (SELECT count(DISTINCT grant_key) FROM credit_buckets WHERE source = 'purchase'),
           (SELECT count(*) FROM credit_ledger WHERE kind = 'grant' AND reference LIKE 'order:%'),
           (SELECT count(*) FROM invoices WHERE series = 'FA'),
           (SELECT count(DISTINCT order_id) FROM invoices WHERE series = 'FA'),
           (SELECT count(*) FROM orders o WHERE o.kind = 'pack' AND
              (SELECT count(*) FROM credit_buckets b
                WHERE b.organisation_id = o.organisation_id AND b.grant_key = 'order:' || o.id) <> 1),
           (SELECT count(*) FROM orders o WHERE o.kind = 'pack' AND
              (SELECT count(*) FROM invoices i WHERE i.order_id = o.id AND i.series = 'FA') <> 1),
           (SELECT count(*) FROM orders o WHERE o.kind = 'pack' AND
              (SELECT count(*) FROM payment_events e WHERE e.order_id = o.id) <> 1),
           (SELECT count(*) FROM payment_events)",
    )
    .fetch_one(&pool)
    .await
    .context("counting orders, grants and invoices")?;
    let years: Vec<(i32, i64, i32, i32, i64)> = sqlx::query_as(
        "SELECT year, count(*), min(sequence), max(sequence), count(DISTINCT sequence)
           FROM invoices WHERE series = 'FA' GROUP BY year ORDER BY year",
    )
    .fetch_all(&pool)
    .await
    .context("reading the invoice numbers")?;
    pool.close().await;
    let gap_free = years.iter().all(|&(_, count, first, last, distinct)| {
        first == 1 && i64::from(last) == count && distinct == count
    });
    let numbers = if years.is_empty() {
        "none".to_owned()
    } else {
        years
            .iter()
            .map(|(year, _, first, last, _)| format!("FA-{year}:{first}..{last}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    Ok(Counts {
        orders: row.0,
        paid: row.1,
        grants: row.2,
        grant_keys: row.3,
        ledger_grants: row.4,
        invoices: row.5,
        invoice_orders: row.6,
        not_one_grant: row.7,
        not_one_invoice: row.8,
        not_one_event: row.9,
        events: row.10,
        numbers,
        gap_free,
    })
}

/// `name:value!=expected` for each count that is not what it must be, comma-separated, or
/// `none`.
fn mismatches(checks: &[(&str, i64, i64)], gap_free: bool) -> String {
    let mut out: Vec<String> = checks
        .iter()
        .filter(|(_, value, expected)| value != expected)
        .map(|(name, value, expected)| format!("{name}:{value}!={expected}"))
        .collect();
    if !gap_free {
        out.push("invoice_numbers:gap".to_owned());
    }
    if out.is_empty() {
        "none".to_owned()
    } else {
        out.join(",")
    }
}

// --- measurements -------------------------------------------------------------------------------

fn micros(d: StdDuration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// The q-quantile (nearest rank) of sorted microseconds, in milliseconds.
fn percentile_ms(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

/// `kind:count,kind:count`, or `none`.
fn by_kind(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "none".to_owned();
    }
    counts
        .iter()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn transport_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "other"
    }
}

/// What the tasks saw.
#[derive(Default)]
struct Tally {
    done: u64,
    /// Microseconds of each counted purchase (or delivery).
    took_us: Vec<u32>,
    /// Purchases of each buyer.
    per_buyer: Vec<u64>,
    errors: BTreeMap<String, u64>,
}

impl Tally {
    fn error(&mut self, kind: String) {
        let seen = self.errors.entry(kind.clone()).or_default();
        if *seen == 0 {
            eprintln!("billing_bench: {kind}");
        }
        *seen += 1;
    }

    fn merge(&mut self, other: Tally) {
        self.done += other.done;
        self.took_us.extend(other.took_us);
        self.per_buyer.extend(other.per_buyer);
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }
}

// --- the buyers ---------------------------------------------------------------------------------

/// Sign-ins in flight at once before the clock starts.
const LOGINS_AT_ONCE: usize = 4;

/// A browser: its own cookies (the CSRF cookie, the session), no redirect followed.
fn browser() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        // Two requests at once (the double submit): two keep-alive connections.
        .pool_max_idle_per_host(2)
        .tcp_nodelay(true)
        .timeout(StdDuration::from_secs(30))
        .build()
}

/// The value of the form field `name` in a page (`name="…" value="…"`, as the templates write
/// hidden fields).
fn field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// GET a page that must answer 200: its HTML.
async fn page(http: &reqwest::Client, url: &str, step: &str) -> Result<String, String> {
    let answer = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{step}:transport:{}", transport_kind(&e)))?;
    let status = answer.status();
    let body = answer
        .text()
        .await
        .map_err(|e| format!("{step}:body:{}", transport_kind(&e)))?;
    if status != StatusCode::OK {
        return Err(format!("{step}:{}", status.as_u16()));
    }
    Ok(body)
}

/// A form's answer that must be 303: where it sends.
async fn see_other(
    answer: reqwest::Result<reqwest::Response>,
    step: &str,
) -> Result<String, String> {
    let answer = answer.map_err(|e| format!("{step}:transport:{}", transport_kind(&e)))?;
    let status = answer.status();
    let location = answer
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Read to the end, so that the connection is kept.
    let _ = answer.bytes().await;
    if status != StatusCode::SEE_OTHER {
        return Err(format!("{step}:{}", status.as_u16()));
    }
    location.ok_or_else(|| format!("{step}:303-without-location"))
}

/// Signs in through the login form (its CSRF cookie and token, then the POST); 429 (the
/// portal's budget of password checks) is waited out. Returns how many 429 it met.
async fn sign_in(
    http: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<u32> {
    let url = format!("{base}/compte/connexion");
    for busy in 0..60 {
        let form = page(http, &url, "login-form")
            .await
            .map_err(|e| anyhow::anyhow!("{email}: {e}"))?;
        let token = field(&form, "csrf").context("no CSRF token in the login form")?;
        let answer = http
            .post(&url)
            .form(&[
                ("csrf", token.as_str()),
                ("email", email),
                ("mot_de_passe", password),
            ])
            .send()
            .await
            .with_context(|| format!("signing in as {email}"))?;
        let status = answer.status();
        let _ = answer.bytes().await;
        match status {
            StatusCode::SEE_OTHER => return Ok(busy),
            StatusCode::TOO_MANY_REQUESTS => tokio::time::sleep(StdDuration::from_secs(1)).await,
            other => bail!("signing in as {email} answered {other}, expected 303"),
        }
    }
    bail!("signing in as {email}: still 429 after a minute")
}

/// One purchase as a hurried buyer makes it: the confirmation page, its form sent twice at once,
/// the test provider's page, its approve button pressed twice at once. Both answers of each
/// pair must send to the same place (one order).
async fn purchase(http: &reqwest::Client, base: &str, pack: &str) -> Result<(), String> {
    let confirm_url = format!("{base}/achats/{pack}");
    let html = page(http, &confirm_url, "confirmation").await?;
    let mut fields = Vec::new();
    for name in ["csrf", "cle", "prix"] {
        let value = field(&html, name).ok_or_else(|| format!("confirmation:no-{name}"))?;
        fields.push((name, value));
    }
    let submit = || http.post(&confirm_url).form(&fields).send();
    let (a, b) = tokio::join!(submit(), submit());
    let (a, b) = (
        see_other(a, "confirm").await?,
        see_other(b, "confirm").await?,
    );
    if a != b {
        return Err("confirm:two-places".to_owned());
    }
    let Some(order) = a.strip_prefix("/paiement-test/") else {
        return Err("confirm:not-the-test-provider".to_owned());
    };
    let pay_url = format!("{base}{a}");
    let html = page(http, &pay_url, "payment-page").await?;
    let token = field(&html, "csrf").ok_or("payment-page:no-csrf")?;
    let approve = || {
        http.post(&pay_url)
            .form(&[("csrf", token.as_str()), ("issue", "approuver")])
            .send()
    };
    let (x, y) = tokio::join!(approve(), approve());
    let (x, y) = (
        see_other(x, "approve").await?,
        see_other(y, "approve").await?,
    );
    let back = format!("/achats/retour/{order}");
    if x != back || y != back {
        return Err("approve:elsewhere".to_owned());
    }
    Ok(())
}

async fn buyers(
    base: &str,
    url: &str,
    emails: &str,
    password: &str,
    seconds: f64,
    pack: &str,
) -> anyhow::Result<()> {
    let base = base.trim_end_matches('/').to_owned();
    let emails: Vec<String> = std::fs::read_to_string(emails)
        .with_context(|| format!("reading {emails}"))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if emails.is_empty() {
        bail!("no buyer in the addresses file");
    }
    // Everyone signs in first (not measured), a few at a time: the portal admits four password
    // checks at once on two cores (hashing threads × 4) and answers the others 429 at once.
    let mut logins = tokio::task::JoinSet::new();
    let admitted = Arc::new(tokio::sync::Semaphore::new(LOGINS_AT_ONCE));
    for email in emails {
        let base = base.clone();
        let password = password.to_owned();
        let admitted = admitted.clone();
        logins.spawn(async move {
            let http = browser()?;
            let _turn = admitted.acquire_owned().await?;
            let busy = sign_in(&http, &base, &email, &password).await?;
            anyhow::Ok((http, busy))
        });
    }
    let mut browsers = Vec::new();
    let mut busy = 0;
    while let Some(joined) = logins.join_next().await {
        let (http, b) = joined.context("a login task")??;
        browsers.push(http);
        busy += b;
    }
    let buyers = browsers.len();
    let pack: Arc<str> = Arc::from(pack);
    let base: Arc<str> = Arc::from(base.as_str());
    let total = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let until = started + StdDuration::from_secs_f64(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for http in browsers {
        let (base, pack, total) = (base.clone(), pack.clone(), total.clone());
        tasks.spawn(async move {
            let mut tally = Tally::default();
            let mut mine = 0;
            // A purchase started before the end is finished (half a purchase would leave an
            // order without its payment); none starts after it.
            while Instant::now() < until {
                let began = Instant::now();
                match purchase(&http, &base, &pack).await {
                    Ok(()) => {
                        tally.done += 1;
                        mine += 1;
                        tally.took_us.push(micros(began.elapsed()));
                    }
                    Err(kind) => tally.error(kind),
                }
            }
            tally.per_buyer.push(mine);
            if let Ok(mut total) = total.lock() {
                total.merge(tally);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed().as_secs_f64();
    let mut t = total
        .lock()
        .map_or_else(|_| Tally::default(), |mut t| std::mem::take(&mut *t));
    t.took_us.sort_unstable();
    let c = counts(url).await?;
    let n = t.done as i64;
    let wrong = mismatches(
        &[
            ("orders", c.orders, n),
            ("paid", c.paid, n),
            ("grants", c.grants, n),
            ("grant_keys", c.grant_keys, n),
            ("ledger_grants", c.ledger_grants, n),
            ("invoices", c.invoices, n),
            ("invoice_orders", c.invoice_orders, n),
            ("orders_not_one_grant", c.not_one_grant, 0),
            ("orders_not_one_invoice", c.not_one_invoice, 0),
        ],
        c.gap_free,
    );
    // No purchase at all would make every count trivially equal.
    let wrong = match (n, wrong.as_str()) {
        (0, "none") => "purchases:0".to_owned(),
        (0, _) => format!("{wrong},purchases:0"),
        _ => wrong,
    };
    let errors: u64 = t.errors.values().sum();
    nanoclip::cli::say([format!(
        "mode=buyers buyers={buyers} seconds={elapsed:.2} purchases={} tps={:.1} \
         p50_ms={:.1} p90_ms={:.1} p99_ms={:.1} max_ms={:.1} per_buyer_min={} per_buyer_max={} \
         login_429={busy} errors={errors} errors_by={} orders={} paid={} grants={} grant_keys={} \
         ledger_grants={} invoices={} invoice_orders={} orders_not_one_grant={} \
         orders_not_one_invoice={} numbers={} gap_free={} mismatches={wrong}",
        t.done,
        t.done as f64 / elapsed,
        percentile_ms(&t.took_us, 0.50),
        percentile_ms(&t.took_us, 0.90),
        percentile_ms(&t.took_us, 0.99),
        percentile_ms(&t.took_us, 1.0),
        t.per_buyer.iter().min().copied().unwrap_or(0),
        t.per_buyer.iter().max().copied().unwrap_or(0),
        by_kind(&t.errors),
        c.orders,
        c.paid,
        c.grants,
        c.grant_keys,
        c.ledger_grants,
        c.invoices,
        c.invoice_orders,
        c.not_one_grant,
        c.not_one_invoice,
        c.numbers,
        c.gap_free,
    )])?;
    Ok(())
}

// --- the webhook storm --------------------------------------------------------------------------

/// A small, fast generator (splitmix64): the order of the deliveries.
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

struct Storm {
    orders: usize,
    replays: usize,
    organisations: usize,
    connections: usize,
}

/// The event id of the recorded payload, replaced by one per order.
const RECORDED_EVENT_ID: &str = "evt_1QdXyZA1b2C3d4E5completed";

/// `orders` pack orders over `organisations` organisations (an owner each), each pending at
/// « Stripe » with its Checkout Session, as `begin_payment` leaves them: (order, session) pairs.
async fn pending_orders(
    pool: &PgPool,
    storm: &Storm,
    pack: &str,
) -> anyhow::Result<(Vec<(Uuid, String)>, i64)> {
    nanoclip::db::MIGRATOR
        .run(pool)
        .await
        .context("migrations")?;
    let catalog = nanoclip::services::catalog::CatalogCache::default()
        .get(pool)
        .await
        .map_err(|e| anyhow::anyhow!("the catalogue: {e}"))?;
    let amount = catalog
        .packs
        .iter()
        .find(|p| p.id == pack)
        .with_context(|| format!("no pack {pack} in the catalogue"))?
        .price_cents
        .0;
    let hasher = Hasher::with_rate(Some(1000.0))?;
    // The owners never sign in: a password nobody knows.
    let password = Uuid::new_v4().simple().to_string();
    let mut owners = Vec::new();
    for i in 1..=storm.organisations.max(1) {
        owners.push(
            organisation_with_owner(
                pool,
                &hasher,
                &format!("Paroisse payée par webhook {i}"),
                "eglise",
                &format!("webhook-banc-{i}@banc-essai.nanoclip.fr"),
                &password,
            )
            .await?,
        );
    }
    let now = OffsetDateTime::now_utc();
    let mut orders = Vec::with_capacity(storm.orders);
    for i in 0..storm.orders {
        let (organisation, owner) = owners[i % owners.len()];
        let order = billing::order_pack(
            pool,
            &catalog,
            organisation,
            owner,
            pack,
            &format!("{i:064x}"),
            Provider::Stripe,
            now,
        )
        .await
        .map_err(|e| anyhow::anyhow!("order {i}: {e}"))?;
        let session = format!("cs_test_banc{i:06}");
        let mut conn = pool.acquire().await?;
        nanoclip::db::billing::move_order(&mut conn, order, OrderState::Pending, None, now).await?;
        nanoclip::db::billing::set_provider_ref(&mut conn, order, &session).await?;
        orders.push((order, session));
    }
    Ok((orders, amount))
}

/// One signed delivery, as Stripe sends it: whether the portal answered 200 `{"received":true}`.
async fn deliver(
    http: &reqwest::Client,
    endpoint: &str,
    secret: &str,
    body: &str,
) -> Result<(), String> {
    let at = OffsetDateTime::now_utc().unix_timestamp();
    let mac = nanoclip::web::csrf::sign_bytes(secret.as_bytes(), format!("{at}.{body}").as_bytes());
    let answer = http
        .post(endpoint)
        .header("content-type", "application/json")
        .header("stripe-signature", format!("t={at},v1={mac}"))
        .body(body.to_owned())
        .send()
        .await
        .map_err(|e| format!("transport:{}", transport_kind(&e)))?;
    let status = answer.status();
    let text = answer
        .text()
        .await
        .map_err(|e| format!("body:{}", transport_kind(&e)))?;
    if status != StatusCode::OK {
        return Err(format!("{}", status.as_u16()));
    }
    if !text.contains("\"received\":true") {
        return Err("200:unexpected-body".to_owned());
    }
    Ok(())
}

async fn webhooks(
    base: &str,
    url: &str,
    storm: Storm,
    event: &str,
    pack: &str,
) -> anyhow::Result<()> {
    let secret = std::env::var("NANOCLIP_WEBHOOK_SECRET")
        .context("NANOCLIP_WEBHOOK_SECRET: the webhook secret, as given to the portal")?;
    let template =
        std::fs::read_to_string(event).with_context(|| format!("reading the event {event}"))?;
    if !template.contains(RECORDED_EVENT_ID) || !template.contains("{{ORDER_ID}}") {
        bail!("{event} is not the recorded checkout.session.completed event");
    }
    let set_up = Instant::now();
    let pool = pool(url).await?;
    let (orders, amount) = pending_orders(&pool, &storm, pack).await?;
    pool.close().await;
    let setup_seconds = set_up.elapsed().as_secs_f64();
    let bodies: Arc<Vec<String>> = Arc::new(
        orders
            .iter()
            .enumerate()
            .map(|(i, (order, session))| {
                template
                    .replace(RECORDED_EVENT_ID, &format!("evt_banc_{i:06}"))
                    .replace("{{ORDER_ID}}", &order.to_string())
                    .replace("{{SESSION_ID}}", session)
                    .replace("{{AMOUNT}}", &amount.to_string())
            })
            .collect(),
    );
    // Every event `replays` times, shuffled (Fisher-Yates, a fixed seed).
    let mut schedule: Vec<u32> = (0..orders.len() as u32)
        .flat_map(|i| std::iter::repeat_n(i, storm.replays))
        .collect();
    let mut rng = Rng(0x5717_BE11);
    for k in (1..schedule.len()).rev() {
        let j = rng.below(k as u64 + 1) as usize;
        schedule.swap(k, j);
    }
    let schedule = Arc::new(schedule);
    let cursor = Arc::new(AtomicUsize::new(0));
    let endpoint: Arc<str> = Arc::from(format!("{}/webhooks/paiement", base.trim_end_matches('/')));
    let secret: Arc<str> = Arc::from(secret);
    let total = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..storm.connections.max(1) {
        let (bodies, schedule, cursor, endpoint, secret, total) = (
            bodies.clone(),
            schedule.clone(),
            cursor.clone(),
            endpoint.clone(),
            secret.clone(),
            total.clone(),
        );
        tasks.spawn(async move {
            let mut tally = Tally::default();
            // One keep-alive connection, one request at a time (as wrk's connections).
            let http = match reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .tcp_nodelay(true)
                .timeout(StdDuration::from_secs(30))
                .build()
            {
                Ok(h) => h,
                Err(e) => {
                    tally.error(format!("client:{e}"));
                    if let Ok(mut total) = total.lock() {
                        total.merge(tally);
                    }
                    return;
                }
            };
            loop {
                let k = cursor.fetch_add(1, Ordering::Relaxed);
                let Some(&i) = schedule.get(k) else { break };
                let began = Instant::now();
                match deliver(&http, &endpoint, &secret, &bodies[i as usize]).await {
                    Ok(()) => {
                        tally.done += 1;
                        tally.took_us.push(micros(began.elapsed()));
                    }
                    Err(kind) => tally.error(kind),
                }
            }
            if let Ok(mut total) = total.lock() {
                total.merge(tally);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed().as_secs_f64();
    let mut t = total
        .lock()
        .map_or_else(|_| Tally::default(), |mut t| std::mem::take(&mut *t));
    t.took_us.sort_unstable();
    let c = counts(url).await?;
    let n = orders.len() as i64;
    let deliveries = schedule.len() as i64;
    let wrong = mismatches(
        &[
            ("answered_200", t.done as i64, deliveries),
            ("events", c.events, n),
            ("orders_not_one_event", c.not_one_event, 0),
            ("orders", c.orders, n),
            ("paid", c.paid, n),
            ("grants", c.grants, n),
            ("grant_keys", c.grant_keys, n),
            ("ledger_grants", c.ledger_grants, n),
            ("invoices", c.invoices, n),
            ("invoice_orders", c.invoice_orders, n),
            ("orders_not_one_grant", c.not_one_grant, 0),
            ("orders_not_one_invoice", c.not_one_invoice, 0),
        ],
        c.gap_free,
    );
    let errors: u64 = t.errors.values().sum();
    nanoclip::cli::say([format!(
        "mode=webhooks orders={n} organisations={} replays={} deliveries={deliveries} \
         connections={} setup_seconds={setup_seconds:.1} seconds={elapsed:.2} answered_200={} \
         tps={:.1} p50_ms={:.1} p90_ms={:.1} p99_ms={:.1} max_ms={:.1} errors={errors} errors_by={} \
         events={} orders_not_one_event={} paid={} grants={} grant_keys={} ledger_grants={} \
         invoices={} invoice_orders={} orders_not_one_grant={} orders_not_one_invoice={} \
         numbers={} gap_free={} mismatches={wrong}",
        storm.organisations,
        storm.replays,
        storm.connections,
        t.done,
        deliveries as f64 / elapsed,
        percentile_ms(&t.took_us, 0.50),
        percentile_ms(&t.took_us, 0.90),
        percentile_ms(&t.took_us, 0.99),
        percentile_ms(&t.took_us, 1.0),
        by_kind(&t.errors),
        c.events,
        c.not_one_event,
        c.paid,
        c.grants,
        c.grant_keys,
        c.ledger_grants,
        c.invoices,
        c.invoice_orders,
        c.not_one_grant,
        c.not_one_invoice,
        c.numbers,
        c.gap_free,
    )])?;
    Ok(())
}
