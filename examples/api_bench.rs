//! The API's launch benchmark driver, run by `bench/credits api` (see bench/README.md): launches
//! through `POST /api/v1/generations`, each with its own Idempotency-Key, each followed by the
//! engine's report (`POST /api/v1/moteur/generations/{id}`, `succeeded`: the hold is captured).
//!
//! ```text
//! api_bench setup URL --organisations N --password P
//!                              migrates, then N organisations on plan Réseau, each with an
//!                              owner api-banc-I@banc-essai.nanoclip.fr (I = 1..N), one a line
//! api_bench run BASE --keys FILE --clients 32 --threads 2 --seconds 10 --warmup 1
//!                              launches from 32 concurrent clients, each on the API key of a
//!                              random organisation (FILE: one key a line), the engine's token in
//!                              NANOCLIP_ENGINE_TOKEN; prints one line: tps=… launch_p99_ms=…
//! ```
//!
//! Build: `cargo build --release --example api_bench`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use nanoclip::domain::account::Role;
use nanoclip::services::passwords::Hasher;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(
    name = "api_bench",
    about = "The API's launch benchmark driver (bench/credits api)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Applies the migrations, then opens N organisations on plan Réseau, each with an owner
    /// who signs in with PASSWORD; prints the owners' addresses, one a line.
    Setup {
        url: String,
        #[arg(long, default_value_t = 32)]
        organisations: usize,
        #[arg(long)]
        password: String,
    },
    /// Launches and their engine reports from concurrent clients for a while.
    Run {
        /// The portal, e.g. http://127.0.0.1:8080.
        base: String,
        /// The API keys, one a line: each launch takes a random one (its organisation).
        #[arg(long)]
        keys: String,
        #[arg(long, default_value_t = 32)]
        clients: u32,
        /// Driver threads, each a single-threaded runtime for its share of the clients
        /// (pgbench's -j).
        #[arg(long, default_value_t = 2)]
        threads: usize,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Seconds of the same work before the measured run (not counted).
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        /// The launch's JSON body.
        #[arg(long, default_value = r#"{"type":"image"}"#)]
        body: String,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Setup {
            url,
            organisations,
            password,
        } => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?
            .block_on(setup(&url, organisations, &password)),
        Command::Run {
            base,
            keys,
            clients,
            threads,
            seconds,
            warmup,
            body,
        } => run(&base, &keys, clients, threads, seconds, warmup, body),
    }
}

async fn setup(url: &str, organisations: usize, password: &str) -> anyhow::Result<()> {
    let options: PgConnectOptions = url.parse().context("the database URL")?;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_lazy_with(options);
    nanoclip::db::MIGRATOR
        .run(&pool)
        .await
        .context("migrations")?;
    // The portal's budget of password checks (12 a second per hashing thread) would refuse the
    // accounts after the first twenty or so: this one is not serving logins.
    let hasher = Hasher::with_rate(Some(1000.0))?;
    let now = OffsetDateTime::now_utc();
    for i in 1..=organisations {
        let mut conn = pool.acquire().await?;
        let organisation = nanoclip::services::accounts::open_organisation(
            &mut conn,
            &format!("Réseau du banc d'essai {i}"),
            "reseau",
            now,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        drop(conn);
        let email = format!("api-banc-{i}@banc-essai.nanoclip.fr");
        nanoclip::services::accounts::create_account(
            &pool,
            &hasher,
            Some(organisation),
            &email,
            password,
            Role::Owner,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        nanoclip::cli::say([&email])?;
    }
    pool.close().await;
    Ok(())
}

/// A small, fast generator (splitmix64): which key.
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

/// What one client saw.
#[derive(Default)]
struct Tally {
    /// Launches answered 201 and reported `succeeded`, both before the end.
    done: u64,
    /// Microseconds of each counted launch, of its report, of both.
    launch_us: Vec<u32>,
    report_us: Vec<u32>,
    cycle_us: Vec<u32>,
    /// Refused launches by rule (`{"refusal": {"rule": …}}`).
    refused: BTreeMap<String, u64>,
    /// Anything else: unexpected statuses and transport errors, by kind.
    errors: BTreeMap<String, u64>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.done += other.done;
        self.launch_us.extend(other.launch_us);
        self.report_us.extend(other.report_us);
        self.cycle_us.extend(other.cycle_us);
        for (k, v) in other.refused {
            *self.refused.entry(k).or_default() += v;
        }
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }
}

struct Setting {
    /// `host:port` of the portal (the connections' address and the `Host` header).
    authority: String,
    /// `Bearer …` of each API key.
    keys: Vec<String>,
    /// `Bearer …` of the engine's token.
    engine: String,
    body: Bytes,
}

/// The error code of an API error body (`{"error": {"code": …}}`), if any.
fn error_code(body: &Value) -> Option<&str> {
    body.get("error")?.get("code")?.as_str()
}

fn micros(d: StdDuration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

enum Step {
    Done {
        launch: StdDuration,
        report: StdDuration,
    },
    Refused(String),
    Error(String),
}

/// How long a connection or an answer may take before it counts as an error.
const TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// One client's connection to the portal, kept alive (as wrk's and pgbench's): hyper's HTTP/1.1
/// client connection without a pool, driven on the client's thread.
struct Connection {
    send: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    /// A request's status and JSON body; else what went wrong (`transport:KIND`, after which the
    /// client connects again, or `STATUS:not-json`).
    async fn exchange(
        &mut self,
        setting: &Setting,
        path: &str,
        bearer: &str,
        idempotency: Option<&str>,
        body: Bytes,
    ) -> Result<(StatusCode, Value), String> {
        let send = match self.send.as_mut() {
            Some(send) if !send.is_closed() => send,
            _ => match tokio::time::timeout(TIMEOUT, connect(&setting.authority)).await {
                Ok(Ok(send)) => self.send.insert(send),
                Ok(Err(_)) => return Err("transport:connect".to_owned()),
                Err(_) => return Err("transport:timeout".to_owned()),
            },
        };
        let mut request = Request::post(path)
            .header(header::HOST, setting.authority.as_str())
            .header(header::AUTHORIZATION, bearer)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(key) = idempotency {
            request = request.header("Idempotency-Key", key);
        }
        let Ok(request) = request.body(Full::new(body)) else {
            return Err("transport:request".to_owned());
        };
        let answer = tokio::time::timeout(TIMEOUT, async {
            send.ready().await?;
            let response = send.send_request(request).await?;
            let status = response.status();
            let bytes = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, bytes))
        })
        .await;
        match answer {
            Ok(Ok((status, bytes))) => serde_json::from_slice(&bytes)
                .map(|value| (status, value))
                .map_err(|_| format!("{}:not-json", status.as_u16())),
            Ok(Err(_)) => {
                self.send = None;
                Err("transport:other".to_owned())
            }
            Err(_) => {
                self.send = None;
                Err("transport:timeout".to_owned())
            }
        }
    }
}

async fn connect(authority: &str) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    let (send, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(send)
}

/// One launch and, when it runs, the engine's report.
async fn cycle(
    connection: &mut Connection,
    setting: &Setting,
    key: &str,
    idempotency: &str,
) -> Step {
    let started = Instant::now();
    let (status, body) = match connection
        .exchange(
            setting,
            "/api/v1/generations",
            key,
            Some(idempotency),
            setting.body.clone(),
        )
        .await
    {
        Ok(answer) => answer,
        Err(what) => return Step::Error(format!("launch:{what}")),
    };
    let launch = started.elapsed();
    if status != StatusCode::CREATED {
        if let Some(rule) = body
            .get("refusal")
            .and_then(|r| r.get("rule"))
            .and_then(Value::as_str)
        {
            return Step::Refused(format!("{rule}({})", status.as_u16()));
        }
        return Step::Error(format!(
            "launch:{}:{}",
            status.as_u16(),
            error_code(&body).unwrap_or("?")
        ));
    }
    let Some(id) = body.get("id").and_then(Value::as_str) else {
        return Step::Error("launch:201:no-id".to_owned());
    };
    if body.get("status").and_then(Value::as_str) != Some("running") {
        return Step::Error("launch:201:not-running".to_owned());
    }
    let reported = Instant::now();
    let (status, body) = match connection
        .exchange(
            setting,
            &format!("/api/v1/moteur/generations/{id}"),
            &setting.engine,
            None,
            Bytes::from_static(br#"{"status":"succeeded"}"#),
        )
        .await
    {
        Ok(answer) => answer,
        Err(what) => return Step::Error(format!("report:{what}")),
    };
    if status != StatusCode::OK || body.get("status").and_then(Value::as_str) != Some("succeeded") {
        return Step::Error(format!(
            "report:{}:{}",
            status.as_u16(),
            error_code(&body).unwrap_or("?")
        ));
    }
    Step::Done {
        launch,
        report: reported.elapsed(),
    }
}

/// One client: launches until `until`; those whose report ends before it are counted.
async fn client(setting: Arc<Setting>, client: u32, until: Instant, prefix: String) -> Tally {
    let mut connection = Connection { send: None };
    let mut tally = Tally::default();
    let mut rng = Rng((u64::from(client) << 32) | 0xA91);
    let mut seq = 0u64;
    loop {
        let started = Instant::now();
        if started >= until {
            break;
        }
        seq += 1;
        let key = &setting.keys[rng.below(setting.keys.len() as u64) as usize];
        let idempotency = format!("{prefix}-{seq}");
        let step = cycle(&mut connection, &setting, key, &idempotency).await;
        let ended = Instant::now();
        match step {
            Step::Done { launch, report } if ended <= until => {
                tally.done += 1;
                tally.launch_us.push(micros(launch));
                tally.report_us.push(micros(report));
                tally.cycle_us.push(micros(ended - started));
            }
            Step::Done { .. } => {}
            Step::Refused(rule) => *tally.refused.entry(rule).or_default() += 1,
            Step::Error(kind) => {
                let seen = tally.errors.entry(kind.clone()).or_default();
                if *seen == 0 {
                    eprintln!("api_bench: {kind}");
                }
                *seen += 1;
            }
        }
    }
    tally
}

/// `clients` clients on `threads` threads (pgbench's -j), each thread a single-threaded runtime
/// of its own (its clients' connections are driven where they are used), until `until`.
fn drive(
    setting: &Arc<Setting>,
    clients: u32,
    threads: usize,
    until: Instant,
    tag: &str,
) -> anyhow::Result<Tally> {
    let threads = threads.clamp(1, clients.max(1) as usize);
    // Every runtime first: a thread without one would leave its clients out of the count.
    let runtimes = (0..threads)
        .map(|_| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        })
        .collect::<Result<Vec<_>, _>>()
        .context("the driver threads' runtimes")?;
    let total = Mutex::new(Tally::default());
    std::thread::scope(|scope| {
        for (thread, runtime) in runtimes.into_iter().enumerate() {
            let total = &total;
            let setting = setting.clone();
            let mine: Vec<u32> = (0..clients)
                .filter(|c| *c as usize % threads == thread)
                .collect();
            scope.spawn(move || {
                let tally = runtime.block_on(async move {
                    let tasks: Vec<_> = mine
                        .into_iter()
                        .map(|c| {
                            tokio::spawn(client(setting.clone(), c, until, format!("{tag}-{c}")))
                        })
                        .collect();
                    let mut tally = Tally::default();
                    for task in tasks {
                        match task.await {
                            Ok(t) => tally.merge(t),
                            // A client that panicked: counted, so that the run is not taken
                            // for a clean one.
                            Err(_) => {
                                *tally
                                    .errors
                                    .entry("client:panicked".to_owned())
                                    .or_default() += 1
                            }
                        }
                    }
                    tally
                });
                if let Ok(mut total) = total.lock() {
                    total.merge(tally);
                }
            });
        }
    });
    let mut total = total.into_inner().unwrap_or_default();
    total.launch_us.sort_unstable();
    total.report_us.sort_unstable();
    total.cycle_us.sort_unstable();
    Ok(total)
}

/// The q-quantile (nearest rank) of sorted microseconds, in milliseconds.
fn percentile_ms(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

fn mean_ms(values: &[u32]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64 / 1000.0
}

/// `rule:count,rule:count`, or `none`.
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

fn run(
    base: &str,
    keys: &str,
    clients: u32,
    threads: usize,
    seconds: f64,
    warmup: f64,
    body: String,
) -> anyhow::Result<()> {
    let keys: Vec<String> = std::fs::read_to_string(keys)
        .with_context(|| format!("reading {keys}"))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|k| format!("Bearer {k}"))
        .collect();
    if keys.is_empty() {
        bail!("no API key in the keys file");
    }
    let engine = std::env::var("NANOCLIP_ENGINE_TOKEN")
        .context("NANOCLIP_ENGINE_TOKEN: the engine's token, as given to the portal")?;
    let uri: hyper::Uri = base
        .parse()
        .with_context(|| format!("the portal's URL {base}"))?;
    let (Some("http"), Some(authority), "", None) = (
        uri.scheme_str(),
        uri.authority(),
        uri.path().trim_end_matches('/'),
        uri.query(),
    ) else {
        bail!("the portal's URL is http://HOST:PORT, not {base}");
    };
    if authority.port_u16().is_none() || authority.as_str().contains('@') {
        bail!("the portal's URL is http://HOST:PORT, not {base}");
    }
    let organisations = keys.len();
    let setting = Arc::new(Setting {
        authority: authority.to_string(),
        keys,
        engine: format!("Bearer {engine}"),
        body: Bytes::from(body),
    });
    let nonce = Uuid::new_v4().simple().to_string();
    if warmup > 0.0 {
        let until = Instant::now() + StdDuration::from_secs_f64(warmup);
        let seen = drive(&setting, clients, threads, until, &format!("w{nonce}"))?;
        if !seen.errors.is_empty() || !seen.refused.is_empty() {
            eprintln!(
                "api_bench: warm-up: refused {} errors {}",
                by_kind(&seen.refused),
                by_kind(&seen.errors)
            );
        }
    }
    let started = Instant::now();
    let until = started + StdDuration::from_secs_f64(seconds);
    let t = drive(&setting, clients, threads, until, &format!("m{nonce}"))?;
    let elapsed = seconds.min(started.elapsed().as_secs_f64());
    let refused: u64 = t.refused.values().sum();
    let errors: u64 = t.errors.values().sum();
    nanoclip::cli::say([format!(
        "mode=api clients={clients} organisations={organisations} seconds={elapsed:.2} launches={} tps={:.1} \
         launch_p50_ms={:.2} launch_p90_ms={:.2} launch_p99_ms={:.2} launch_max_ms={:.2} \
         report_p50_ms={:.2} report_p99_ms={:.2} latency_ms={:.2} refused={refused} refused_by={} errors={errors} errors_by={}",
        t.done,
        t.done as f64 / elapsed,
        percentile_ms(&t.launch_us, 0.50),
        percentile_ms(&t.launch_us, 0.90),
        percentile_ms(&t.launch_us, 0.99),
        percentile_ms(&t.launch_us, 1.0),
        percentile_ms(&t.report_us, 0.50),
        percentile_ms(&t.report_us, 0.99),
        mean_ms(&t.cycle_us),
        by_kind(&t.refused),
        by_kind(&t.errors),
    )])?;
    Ok(())
}
