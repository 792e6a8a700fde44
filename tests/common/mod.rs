//! Test harness: the real application on a random port, on a fresh database per test.
//!
//! The server is found with the portal's own embedded default (`DATABASE_URL`, else a
//! password-less server on 127.0.0.1:5432, else the private cluster under `var/postgres`), so one
//! server is shared by every test process. Each test gets a database copied from a template that
//! holds the migrations (made once per migration set, under an advisory lock), and drops it at
//! the end, even when the test fails.

#![allow(dead_code)]

pub mod accounts;
pub mod pdf;

use std::path::PathBuf;
use std::sync::OnceLock;

use nanoclip::config::Config;
use nanoclip::db::{MIGRATOR, server};
use nanoclip::startup::{Application, ExtraRoutes};
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection};

/// A copy of `content/` in a temporary folder of its own, for a test that changes it.
pub fn content_copy(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("nanoclip-{name}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(project_dir().join("content")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    dir
}

pub fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Connection options of the shared server's `postgres` database, resolved once per process.
async fn shared_server() -> PgConnectOptions {
    static OPTIONS: OnceLock<PgConnectOptions> = OnceLock::new();
    if let Some(options) = OPTIONS.get() {
        return options.clone();
    }
    let url = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty());
    let server = server::resolve(url.as_deref(), &project_dir().join("var"), "nanoclip_test")
        .await
        .expect("a PostgreSQL server for the tests (see README)");
    let admin = server.database("postgres");
    OPTIONS.get_or_init(|| admin).clone()
}

/// Name of the template database for the current migrations: a new migration makes a new one.
fn template_name() -> String {
    let mut hasher = Sha256::new();
    for migration in MIGRATOR.iter() {
        hasher.update(migration.version.to_le_bytes());
        hasher.update(&*migration.checksum);
    }
    format!("nanoclip_tpl_{}", hex::encode(&hasher.finalize()[..6]))
}

/// A fresh database with every migration applied.
pub async fn fresh_database() -> (String, PgConnectOptions) {
    let admin = shared_server().await;
    let template = template_name();
    let mut conn = PgConnection::connect_with(&admin)
        .await
        .expect("connect to the test server");
    // One process builds the template; the others wait on the lock, then find it.
    sqlx::query("SELECT pg_advisory_lock(727274)")
        .execute(&mut conn)
        .await
        .expect("lock");
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&template)
            .fetch_one(&mut conn)
            .await
            .expect("query");
    if !exists {
        let building = format!("{template}_building");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await
        .expect("drop");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE \"{building}\""
        )))
        .execute(&mut conn)
        .await
        .expect("create template");
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(admin.clone().database(&building))
            .await
            .expect("connect");
        MIGRATOR
            .run(&pool)
            .await
            .expect("migrations apply on a fresh database");
        pool.close().await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE \"{building}\" RENAME TO \"{template}\""
        )))
        .execute(&mut conn)
        .await
        .expect("rename template");
        // Old test databases left by killed runs are removed with the old templates.
        let stale: Vec<String> = sqlx::query_scalar(
            "SELECT datname FROM pg_database WHERE (datname LIKE 'nanoclip_tpl_%' AND datname <> $1) \
             OR (datname LIKE 'nanoclip_t_%' AND datname < 'nanoclip_t_' || to_char(now() - interval '1 hour', 'YYYYMMDDHH24MI'))",
        )
        .bind(&template)
        .fetch_all(&mut conn)
        .await
        .expect("list stale");
        for name in stale {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await;
        }
    }
    sqlx::query("SELECT pg_advisory_unlock(727274)")
        .execute(&mut conn)
        .await
        .expect("unlock");
    let stamp = time::OffsetDateTime::now_utc();
    let name = format!(
        "nanoclip_t_{:04}{:02}{:02}{:02}{:02}_{}",
        stamp.year(),
        u8::from(stamp.month()),
        stamp.day(),
        stamp.hour(),
        stamp.minute(),
        uuid::Uuid::new_v4().simple()
    );
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""
    )))
    .execute(&mut conn)
    .await
    .expect("create test database");
    let _ = conn.close().await;
    (name.clone(), admin.database(&name))
}

fn drop_database(name: String) {
    // Runs from Drop, possibly inside the test's runtime: use a thread with a runtime of its own.
    let _ = std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async move {
            let admin = shared_server().await;
            if let Ok(mut conn) = PgConnection::connect_with(&admin).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await;
            }
        });
    })
    .join();
}

pub fn test_config() -> Config {
    let mut config = Config::from_vars(|name| match name {
        "NANOCLIP_BIND" => Some("127.0.0.1:0".to_owned()),
        _ => None,
    })
    .expect("development defaults");
    config.public_url = "http://portail.test".to_owned();
    // Tests send many password forms from one address (127.0.0.1): a large budget, so that only
    // the tests of the budget (which set their own) meet it.
    config.password_checks_per_second = Some(200.0);
    config
}

pub struct TestApp {
    pub address: String,
    pub pool: PgPool,
    pub client: reqwest::Client,
    pub database: String,
    /// The application's clock: `app.clock.advance(…)` moves the portal's time.
    pub clock: nanoclip::clock::Clock,
    /// The portal's read cache: a test that writes through the services, as an operator
    /// command or another instance would, announces it (`app.caches.touch(…)`).
    pub caches: std::sync::Arc<nanoclip::cache::Caches>,
    handle: actix_web::dev::ServerHandle,
}

impl TestApp {
    /// What the renewals need (the test provider, this portal's address for e-mail links).
    pub fn renewals(&self) -> nanoclip::services::billing::Renewals {
        nanoclip::services::billing::Renewals {
            payments: nanoclip::services::payments::Payments::Test,
            public_url: "http://portail.test".to_owned(),
        }
    }

    /// Runs the renewals due at `at` (what the job and `nanoclip renew` do).
    pub async fn renew_due(
        &self,
        at: time::OffsetDateTime,
    ) -> Result<u64, nanoclip::services::billing::BillingError> {
        nanoclip::services::billing::renew_due(&self.pool, &self.renewals(), at).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn get_html(&self, path: &str) -> (u16, scraper::Html) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        let body = response.text().await.expect("body");
        (status, scraper::Html::parse_document(&body))
    }

    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }

    /// Runs the portal's binary on the test's database: (success, stdout, stderr), trimmed.
    pub fn command(&self, args: &[&str]) -> (bool, String, String) {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_nanoclip"))
            .args(args)
            .env("DATABASE_URL", self.database_url())
            .env("RUST_LOG", "error")
            .output()
            .expect("the portal's binary runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).trim().to_owned(),
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        )
    }

    /// The URL of the test's database, for a command or a process of the portal.
    pub fn database_url(&self) -> String {
        let options = self.pool.connect_options();
        let host = options
            .get_socket()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| options.get_host().to_owned());
        format!(
            "postgres://{}@localhost:{}/{}?host={host}",
            options.get_username(),
            options.get_port(),
            self.database
        )
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
        drop_database(std::mem::take(&mut self.database));
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(test_config(), None).await
}

pub async fn spawn_app_with(config: Config, extra: Option<ExtraRoutes>) -> TestApp {
    let (database, options) = fresh_database().await;
    spawn_on(config, options, database, extra).await
}

/// Spawns the application on a given database (`database` is dropped at the end unless empty).
pub async fn spawn_on(
    config: Config,
    options: PgConnectOptions,
    database: String,
    extra: Option<ExtraRoutes>,
) -> TestApp {
    nanoclip::telemetry::init();
    let clock = nanoclip::clock::Clock::system();
    let app = Application::build_with_clock(config, options, extra, clock.clone())
        .await
        .expect("application builds");
    let address = format!("http://{}", app.address());
    let pool = app.pool.clone();
    let handle = app.handle();
    let caches = app.caches();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .expect("client");
    TestApp {
        address,
        pool,
        client,
        database,
        clock,
        caches,
        handle,
    }
}

/// Text of the first element matching `selector`, ASCII whitespace collapsed (no-break spaces kept).
pub fn text(html: &scraper::Html, selector: &str) -> String {
    select_texts(html, selector)
        .into_iter()
        .next()
        .unwrap_or_default()
}

/// Texts of every element matching `selector`, in document order, whitespace collapsed as in
/// `text`: `select_texts(&html, "table td")`.
pub fn select_texts(html: &scraper::Html, selector: &str) -> Vec<String> {
    let selector = scraper::Selector::parse(selector).expect("valid selector");
    html.select(&selector)
        .map(|e| {
            e.text()
                .collect::<Vec<_>>()
                .join(" ")
                .split_ascii_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// The attribute `name` of every element matching `selector` that has it, in document order:
/// `select_attrs(&html, "nav a", "href")`.
pub fn select_attrs(html: &scraper::Html, selector: &str, name: &str) -> Vec<String> {
    let selector = scraper::Selector::parse(selector).expect("valid selector");
    html.select(&selector)
        .filter_map(|e| e.value().attr(name))
        .map(str::to_owned)
        .collect()
}

pub fn count(html: &scraper::Html, selector: &str) -> usize {
    let selector = scraper::Selector::parse(selector).expect("valid selector");
    html.select(&selector).count()
}

/// The attribute `name` of the first element matching `selector`, if it has it.
pub fn attr(html: &scraper::Html, selector: &str, name: &str) -> Option<String> {
    let selector = scraper::Selector::parse(selector).expect("valid selector");
    html.select(&selector)
        .next()
        .and_then(|e| e.value().attr(name))
        .map(str::to_owned)
}

impl TestApp {
    /// GETs a page with a form and returns its CSRF token (the client keeps the session cookie).
    pub async fn csrf_token(&self, path: &str) -> String {
        let (status, html) = self.get_html(path).await;
        assert_eq!(status, 200, "{path}");
        attr(&html, "input[name=csrf]", "value").expect("a CSRF token in the form")
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .expect("request")
    }
}

/// Another browser on the same portal: its own cookies.
#[derive(Clone)]
pub struct Browser {
    pub client: reqwest::Client,
    pub base: String,
    jar: std::sync::Arc<reqwest::cookie::Jar>,
}

impl Browser {
    pub fn new(base: &str) -> Self {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_provider(jar.clone())
            // Below the portal's keep-alive (5 s): on a loaded machine a connection idle that
            // long could be closed by the server just as the client reuses it.
            .pool_idle_timeout(std::time::Duration::from_secs(2))
            .build()
            .expect("client");
        Self {
            client,
            base: base.to_owned(),
            jar,
        }
    }

    /// The session cookie's value, if the portal set one.
    pub fn session_cookie(&self) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let header = self.jar.cookies(&self.base.parse().ok()?)?;
        let cookies = header.to_str().ok()?.to_owned();
        cookies
            .split("; ")
            .find_map(|c| c.strip_prefix("nanoclip_session=").map(str::to_owned))
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{}", self.base, path))
            .send()
            .await
            .expect("request")
    }

    pub async fn html(&self, path: &str) -> (u16, scraper::Html) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        (
            status,
            scraper::Html::parse_document(&response.text().await.expect("body")),
        )
    }

    pub async fn token(&self, path: &str) -> String {
        let (status, html) = self.html(path).await;
        assert_eq!(status, 200, "{path}");
        attr(&html, "input[name=csrf]", "value").expect("a CSRF token")
    }

    /// POSTs a form from `page` (whose CSRF token is added).
    pub async fn submit(
        &self,
        page: &str,
        action: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let token = self.token(page).await;
        let mut fields: Vec<(&str, &str)> = vec![("csrf", token.as_str())];
        fields.extend_from_slice(form);
        self.client
            .post(format!("{}{}", self.base, action))
            .form(&fields)
            .send()
            .await
            .expect("request")
    }
}

impl TestApp {
    pub fn browser(&self) -> Browser {
        Browser::new(&self.address)
    }

    /// The last e-mail queued for `to`: (subject, text body).
    pub async fn last_email(&self, to: &str) -> (String, String) {
        sqlx::query_as(
            "SELECT subject, body_text FROM outbox WHERE to_address = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(to)
        .fetch_one(&self.pool)
        .await
        .expect("an e-mail in the outbox")
    }

    /// The site path of the first link of the last e-mail to `to`.
    pub async fn link_in_last_email(&self, to: &str) -> String {
        let (_, body) = self.last_email(to).await;
        let start = body
            .find("http://portail.test")
            .expect("a link in the e-mail");
        let url: String = body[start..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        url.trim_start_matches("http://portail.test").to_owned()
    }
}

/// A TCP proxy between a portal and its database that a test can cut and restore, to play a
/// database outage without stopping the server the other tests share.
pub struct DbProxy {
    pub port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    links: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl DbProxy {
    /// Forwards 127.0.0.1:`port` to the server behind `options` (unix socket or TCP).
    pub async fn start(options: &PgConnectOptions) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let up = std::sync::Arc::new(AtomicBool::new(true));
        let links = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let socket = options
            .get_socket()
            .map(|dir| dir.join(format!(".s.PGSQL.{}", options.get_port())));
        let tcp = format!("{}:{}", options.get_host(), options.get_port());
        let (up2, links2) = (up.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound); // the server is "down": the connection is closed at once
                    continue;
                }
                let socket = socket.clone();
                let tcp = tcp.clone();
                let link = tokio::spawn(async move {
                    match socket {
                        Some(path) => {
                            if let Ok(mut outbound) = tokio::net::UnixStream::connect(path).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound)
                                    .await;
                            }
                        }
                        None => {
                            if let Ok(mut outbound) = tokio::net::TcpStream::connect(tcp).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound)
                                    .await;
                            }
                        }
                    }
                });
                if let Ok(mut links) = links2.lock() {
                    links.push(link);
                }
            }
        });
        Self { port, up, links }
    }

    /// Connection options for the portal: the same database, through the proxy.
    pub fn options(&self, options: &PgConnectOptions) -> PgConnectOptions {
        let through = PgConnectOptions::new_without_pgpass()
            .host("127.0.0.1")
            .port(self.port)
            .username(options.get_username());
        let through = match options.get_database() {
            Some(name) => through.database(name),
            None => through,
        };
        if options.get_socket().is_some() {
            through
        } else {
            // A TCP server may want the password: keep every option but the address.
            options.clone().host("127.0.0.1").port(self.port)
        }
    }

    /// The database "goes down": open connections are cut, new ones are refused.
    pub fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut links) = self.links.lock() {
            for link in links.drain(..) {
                link.abort();
            }
        }
    }

    pub fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
