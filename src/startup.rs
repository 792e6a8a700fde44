//! Building and running the application: database, migrations, middleware and the URL map (in
//! PRODUCT.md's order).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server as HttpServerFuture, ServerHandle, Service as _};
use actix_web::http::header;
use actix_web::middleware::{self, DefaultHeaders};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use tracing_actix_web::TracingLogger;

use actix_session::SessionMiddleware;
use actix_session::config::BrowserSession;
use actix_web::cookie::{Key, SameSite};

use crate::config::Config;
use crate::content::Library;
use crate::db::sessions::PgSessionStore;
use crate::db::{self, server};
use crate::domain::account::Role;
use crate::domain::prompt::{Model, PromptRules};
use crate::services::catalog::CatalogCache;
use crate::services::mail;
use crate::services::passwords::Hasher;
use crate::telemetry::RequestSpan;
use crate::web::{self as pages, AppState};

/// Extra routes a caller may add (tests add a slow endpoint to prove graceful shutdown).
pub type ExtraRoutes = fn(&mut web::ServiceConfig);

pub struct Application {
    server: HttpServerFuture,
    state: web::Data<AppState>,
    address: std::net::SocketAddr,
    pub pool: PgPool,
}

/// The prompt checks' rules as `content/` writes them.
fn load_prompt_rules(content_dir: &std::path::Path) -> anyhow::Result<PromptRules> {
    let rules_path = content_dir.join("prompt-rules.toml");
    let rules_text = std::fs::read_to_string(&rules_path)
        .with_context(|| format!("reading {}", rules_path.display()))?;
    PromptRules::from_toml(&rules_text).with_context(|| format!("in {}", rules_path.display()))
}

/// The prompt checks' statistical model as `content/` writes it.
fn load_prompt_model(content_dir: &std::path::Path) -> anyhow::Result<Model> {
    let model_path = content_dir.join("prompt-model.tsv");
    let model_text = std::fs::read_to_string(&model_path)
        .with_context(|| format!("reading {}", model_path.display()))?;
    Model::from_tsv(&model_text).with_context(|| format!("in {}", model_path.display()))
}

impl Application {
    /// Migrates the database behind `options`, loads content and binds `config.bind`.
    pub async fn build(
        config: Config,
        options: PgConnectOptions,
        extra: Option<ExtraRoutes>,
    ) -> anyhow::Result<Self> {
        Self::build_with_clock(config, options, extra, crate::clock::Clock::system()).await
    }

    /// As `build`, with the clock the application reads (tests move it).
    pub async fn build_with_clock(
        config: Config,
        options: PgConnectOptions,
        extra: Option<ExtraRoutes>,
        clock: crate::clock::Clock,
    ) -> anyhow::Result<Self> {
        // The guides and the search's index and model are read and parsed on blocking threads
        // while the migrations wait for the database: start-up is the longer of the two, not
        // their sum. The prompt checks' rules and model, longer than both, are read once the
        // guides are, and not waited for: the requests that check a prompt wait for them
        // (`PromptChecks`).
        let content_dir = config.content_dir.clone();
        let guides = tokio::task::spawn_blocking(move || {
            Library::load(&content_dir).map_err(|e| anyhow::anyhow!("the guides have errors:\n{e}"))
        });
        let pool = db::pool(options.clone(), config.database_pool);
        db::MIGRATOR
            .run(&pool)
            .await
            .context("applying migrations")?;
        let assets = pages::assets::Assets::load(&config.static_dir)?;
        let listener = TcpListener::bind(config.bind)
            .with_context(|| format!("cannot listen on {}", config.bind))?;
        let address = listener.local_addr()?;
        let config_smtp = config.smtp_url.clone();
        let mail_dir = config.data_dir.join("mail");
        let mail_from: lettre::message::Mailbox =
            config.mail_from.parse().context("NANOCLIP_MAIL_FROM")?;
        let library = guides.await.context("loading the guides")??;
        let content_dir = config.content_dir.clone();
        let prompt_checks = pages::prompt_checks::PromptChecks::load(move || {
            Ok(load_prompt_rules(&content_dir)?.with_model(load_prompt_model(&content_dir)?))
        });
        let hasher =
            Hasher::with_rate(config.password_checks_per_second).context("password hasher")?;
        let cpu =
            crate::services::cpu::CpuPool::per_core("cpu-work").context("CPU work threads")?;
        let config_api_rate = config.api_requests_per_second;
        let payments = crate::services::payments::Payments::from_config(&config)
            .context("NANOCLIP_PAYMENTS")?;
        let caches = Arc::new(crate::cache::Caches::new(config.read_cache));
        caches.start(pool.clone(), options);
        let state = web::Data::new(AppState {
            config: Arc::new(config),
            clock: clock.clone(),
            pool: pool.clone(),
            assets,
            catalog: CatalogCache::default(),
            prompt_checks,
            help: pages::aide::HelpCentre::new(library),
            hasher,
            simulator_pages: Default::default(),
            cpu,
            last_healthy: std::sync::RwLock::new(None),
            health_check_running: std::sync::atomic::AtomicBool::new(false),
            api_limiter: pages::api_reseau::ApiLimiter::new(config_api_rate),
            payments,
            caches: caches.clone(),
        });
        let transport =
            mail::Transport::new(config_smtp.as_deref(), mail_dir).context("NANOCLIP_SMTP_URL")?;
        let jobs = crate::jobs::Context {
            mailer: Some(mail::Mailer {
                transport,
                from: mail_from,
            }),
            public_url: state.config.public_url.clone(),
            test_engine: state.config.engine == crate::config::Engine::Test,
            payments: state.payments.clone(),
        };
        start_background(&state, jobs);
        let production = state.config.is_production();
        let app_state = state.clone();
        let session_store = PgSessionStore::new(pool.clone(), caches);
        let session_key = Key::try_from(state.config.session_key.as_slice())
            .context("NANOCLIP_SESSION_KEY: 64 bytes or more")?;
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                // Every form as large as the CSRF guard reads it: a contact message of 5,000
                // accented characters is about 30 KB once URL-encoded (actix's default: 16 KiB).
                .app_data(web::FormConfig::default().limit(pages::csrf::MAX_FORM_BYTES))
                .configure(|cfg| {
                    scopes(
                        cfg,
                        &app_state,
                        &session_store,
                        &session_key,
                        production,
                        extra,
                    )
                })
                .wrap(security_headers(production))
        })
        .shutdown_timeout(30)
        // As nginx does on keep-alive connections: a response's last segment leaves at once
        // instead of waiting for the client's ACK of the previous one (Nagle).
        .tcp_nodelay(true)
        .listen(listener)?
        .run();
        Ok(Self {
            server,
            state,
            address,
            pool,
        })
    }

    pub fn address(&self) -> std::net::SocketAddr {
        self.address
    }

    /// This instance's read cache (tests announce what they write behind its back).
    pub fn caches(&self) -> Arc<crate::cache::Caches> {
        self.state.caches.clone()
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT or SIGTERM (handled by actix: in-flight requests finish, up to 30 s).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let outcome = self.server.await;
        // Views counted since the last batch are written before the process ends.
        self.state.help.flush_views(&self.state.pool).await;
        outcome
    }
}

/// The background work of an instance, started in one place: the job runner (e-mail delivery,
/// purges, redaction: shared by every instance, one at a time), and what belongs to this
/// instance alone: writing the guide views it counted in memory, keeping its search index
/// current with the synonyms staff store (polled), and in development reloading edited guides.
fn start_background(state: &web::Data<AppState>, jobs: crate::jobs::Context) {
    tokio::spawn(crate::jobs::run_forever(
        state.pool.clone(),
        state.clock.clone(),
        jobs,
    ));
    tokio::spawn(pages::aide::flush_views_forever(state.clone()));
    tokio::spawn(pages::aide::keep_lexicon_current(state.clone()));
    if !state.config.is_production() {
        tokio::spawn(pages::aide::reload_on_change(state.clone()));
    }
}

/// One scope per kind of caller, each with its own middleware, built from the route table
/// (`web::routes`): a route names its caller, and so cannot land behind the wrong middleware.
///
/// Lightest first: shared pages (guides, assets, health) served from memory, not logged per
/// request (guide views are counted); then, logged: the generation engine's reports (its bearer
/// token), the payment provider's webhooks (a signature on the raw body), the JSON API (JSON
/// errors, no cookie, no CSRF), the staff back office (the browser stack plus the staff guard on the whole scope),
/// public pages without a session (search, robots, sitemap), the `cookieless` browser pages
/// (the simulator) for visitors without a session cookie (error pages and compression, no
/// session nor CSRF: `cookieless_guard`), and browser pages (sessions, CSRF, error pages,
/// compression), which also answer every unknown URL with the 404 page.
fn scopes(
    cfg: &mut web::ServiceConfig,
    state: &web::Data<AppState>,
    store: &PgSessionStore,
    key: &Key,
    production: bool,
    extra: Option<ExtraRoutes>,
) {
    use pages::routes::{Caller, register};
    cfg.service(
        web::scope("")
            // `/aide/recherche` is Public: the guard keeps `/aide/{slug}` from taking it.
            .guard(actix_web::guard::fn_guard(|ctx| {
                let path = ctx.head().uri.path();
                path.starts_with("/static/")
                    || path == "/healthz"
                    || (path.starts_with("/aide/")
                        && path != "/aide/recherche"
                        && path[6..].find('/').is_none())
            }))
            .configure(|cfg| register(cfg, Caller::Shared))
            .default_service(web::to(pages::error::shared_not_found))
            // Light pages are being served: the CPU pool's work leaves the workers to them
            // (`CpuPool::quiet`).
            .wrap_fn({
                let state = state.clone();
                move |request, service| {
                    state.cpu.light_request();
                    service.call(request)
                }
            }),
    )
    .service(
        web::scope("")
            .service(
                web::scope("/api/v1/moteur")
                    .app_data(web::PayloadConfig::new(pages::api_reseau::BODY_LIMIT))
                    .configure(|cfg| register(cfg, Caller::Engine))
                    .default_service(web::to(pages::api_error::not_found))
                    .wrap(middleware::from_fn(pages::guards::engine_bearer))
                    .wrap(middleware::from_fn(pages::api_error::json_errors)),
            )
            .service(
                web::scope("/webhooks")
                    .configure(|cfg| register(cfg, Caller::Webhook))
                    .default_service(web::to(pages::api_error::not_found))
                    .wrap(middleware::from_fn(pages::guards::webhook_signature))
                    .wrap(middleware::from_fn(pages::api_error::json_errors)),
            )
            .service(
                web::scope("/api/v1")
                    .app_data(web::PayloadConfig::new(pages::api_reseau::BODY_LIMIT))
                    .configure(|cfg| register(cfg, Caller::Api))
                    .default_service(web::to(pages::api_error::not_found))
                    .wrap(middleware::from_fn(pages::api_error::json_errors)),
            )
            .service(
                web::scope("/admin")
                    .configure(|cfg| register(cfg, Caller::Staff))
                    .default_service(web::to(pages::error::not_found))
                    .wrap(middleware::from_fn(pages::extract::staff_only))
                    .wrap(middleware::from_fn(pages::csrf::guard))
                    .wrap(middleware::from_fn(pages::error::session_store_down))
                    .wrap(session_middleware(store, key, production))
                    .wrap(middleware::from_fn(pages::error::error_pages))
                    .wrap(middleware::Compress::default()),
            )
            .service(
                web::scope("")
                    .guard(actix_web::guard::fn_guard(|ctx| {
                        matches!(
                            ctx.head().uri.path(),
                            "/aide/recherche" | "/robots.txt" | "/sitemap.xml"
                        )
                    }))
                    .configure(|cfg| register(cfg, Caller::Public)),
            )
            .service(
                web::scope("")
                    .guard(cookieless_guard(production))
                    .configure(pages::routes::register_cookieless)
                    .wrap(middleware::from_fn(pages::error::error_pages))
                    .wrap(middleware::Compress::default()),
            )
            .service(
                web::scope("")
                    .configure(|cfg| {
                        register(cfg, Caller::Browser);
                        if let Some(extra) = extra {
                            extra(cfg);
                        }
                    })
                    .default_service(web::to(pages::error::not_found))
                    .wrap(middleware::from_fn(pages::csrf::guard))
                    .wrap(middleware::from_fn(pages::error::session_store_down))
                    .wrap(session_middleware(store, key, production))
                    .wrap(middleware::from_fn(pages::error::error_pages))
                    .wrap(middleware::Compress::default()),
            )
            .wrap(middleware::from_fn(pages::changes::announce))
            .wrap(TracingLogger::<RequestSpan>::new())
            .wrap(middleware::from_fn(pages::compte::password_gate)),
    );
}

/// Which requests the `cookieless` scope takes: GET on a `cookieless` browser page (the
/// simulator) by a visitor without a session cookie. That scope has the browser scope's handlers,
/// error pages and compression, without the session middleware (no cookie: nothing to load, and
/// these pages write nothing), the session store check (it reports a failed load) and the CSRF
/// guard (GET, and a visitor's page shows no token). A request with a session cookie, stale or
/// not, goes to the browser scope.
fn cookieless_guard(production: bool) -> impl actix_web::guard::Guard {
    let paths = pages::routes::cookieless_paths();
    let session_cookie = pages::extract::session_cookie_name(production);
    actix_web::guard::fn_guard(move |ctx| {
        let head = ctx.head();
        head.method == actix_web::http::Method::GET
            && paths.contains(&head.uri.path())
            && !has_cookie(&head.headers, session_cookie)
    })
}

/// Whether the `Cookie` headers hold a cookie named `name` (whatever its value), read as
/// `HttpRequest::cookie` reads them (pairs split at `;`, each parsed by the cookie crate): a
/// guard sees only the head.
fn has_cookie(headers: &actix_web::http::header::HeaderMap, name: &str) -> bool {
    headers
        .get_all(header::COOKIE)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| actix_web::cookie::Cookie::parse_encoded(pair.trim()).ok())
        .any(|cookie| cookie.name() == name)
}

/// Server-side sessions (shared by every instance); the cookie is `__Host-` prefixed, Secure,
/// HttpOnly and SameSite=Lax outside local development.
fn session_middleware(
    store: &PgSessionStore,
    key: &Key,
    production: bool,
) -> SessionMiddleware<PgSessionStore> {
    SessionMiddleware::builder(store.clone(), key.clone())
        .cookie_name(pages::extract::session_cookie_name(production).to_owned())
        .cookie_secure(production)
        .cookie_http_only(true)
        .cookie_same_site(SameSite::Lax)
        .cookie_path("/".to_owned())
        .cookie_domain(None)
        .session_lifecycle(
            BrowserSession::default().state_ttl(actix_web::cookie::time::Duration::hours(12)),
        )
        .build()
}

fn security_headers(production: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        ))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "strict-origin-when-cross-origin"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((
            "Permissions-Policy",
            "camera=(), microphone=(), geolocation=()",
        ));
    if production {
        headers.add((
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=63072000; includeSubDomains",
        ))
    } else {
        headers
    }
}

/// `nanoclip serve`: find the database, migrate, serve, and stop the private cluster we started.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let started_at = std::time::Instant::now();
    let database =
        server::resolve(config.database_url.as_deref(), &config.data_dir, "nanoclip").await?;
    let explicit_url = std::env::var("NANOCLIP_PUBLIC_URL").is_ok_and(|v| !v.trim().is_empty());
    let public_url = config.public_url.clone();
    let outcome = async {
        let app = Application::build(config, database.options.clone(), None).await?;
        let url = if explicit_url { public_url } else { format!("http://{}", app.address()) };
        tracing::info!(origin = ?database.origin, elapsed_ms = started_at.elapsed().as_millis() as u64, "ready");
        // The address for whoever started the portal; a closed standard output stops nothing.
        if let Err(error) = crate::cli::say([format!("NanoClip portal: open {url}")]) {
            tracing::warn!(%error, "the portal's address could not be printed");
        }
        app.run_until_stopped().await.context("serving")
    }
    .await;
    database.shutdown();
    outcome
}

/// `nanoclip migrate`.
pub async fn migrate_only(config: Config) -> anyhow::Result<()> {
    let database =
        server::resolve(config.database_url.as_deref(), &config.data_dir, "nanoclip").await?;
    let pool = db::pool(database.options.clone(), config.database_pool);
    let outcome = tokio::time::timeout(Duration::from_secs(120), db::MIGRATOR.run(&pool)).await;
    pool.close().await;
    database.shutdown();
    outcome
        .context("migrations timed out")?
        .context("applying migrations")?;
    crate::cli::say(["migrations applied"])?;
    Ok(())
}

pub(crate) async fn with_pool<T>(
    config: &Config,
    work: impl AsyncFnOnce(&PgPool, &Hasher) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let database =
        server::resolve(config.database_url.as_deref(), &config.data_dir, "nanoclip").await?;
    let pool = db::pool(database.options.clone(), config.database_pool);
    let outcome = async {
        db::MIGRATOR
            .run(&pool)
            .await
            .context("applying migrations")?;
        let hasher = Hasher::new()?;
        let outcome = work(&pool, &hasher).await;
        // The serving instances' read caches forget what this command may have changed.
        crate::cache::broadcast_reset(&pool).await;
        outcome
    }
    .await;
    pool.close().await;
    database.shutdown();
    outcome
}

/// `nanoclip create-staff --email …`
pub async fn create_staff(
    config: Config,
    email: &str,
    password_stdin: bool,
    second_factor_only: bool,
) -> anyhow::Result<()> {
    let email = email.trim().to_owned();
    anyhow::ensure!(
        crate::web::contact::valid_email(&email),
        "not a valid e-mail address: {email}"
    );
    let public_url = config.public_url.clone();
    if second_factor_only {
        let link = with_pool(&config, async |pool, _| {
            let mut conn = pool.acquire().await?;
            let user = db::accounts::user_by_email(&mut conn, &email)
                .await?
                .filter(|u| u.role == Role::Staff)
                .ok_or_else(|| anyhow::anyhow!("no staff account with this address: {email}"))?;
            drop(conn);
            let now = crate::clock::Clock::system().now();
            crate::services::second_factor::start_enrolment(pool, user.id, &public_url, now)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))
        })
        .await?;
        crate::cli::say([format!(
            "second factor link (valid 72 hours, single use): {link}"
        )])?;
        return Ok(());
    }
    let (password, generated) = if password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the password")?;
        (line.trim_end_matches(['\n', '\r']).to_owned(), false)
    } else {
        (crate::random::password(), true)
    };
    if let Err(weakness) = crate::services::passwords::check_strength(&password, &[&email]) {
        anyhow::bail!("password refused: {weakness:?}");
    }
    let link = with_pool(&config, async |pool, hasher| {
        let user = crate::services::accounts::create_account(
            pool,
            hasher,
            None,
            &email,
            &password,
            Role::Staff,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let now = crate::clock::Clock::system().now();
        crate::services::second_factor::start_enrolment(pool, user, &public_url, now)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
    })
    .await?;
    let mut lines = vec![format!("staff account created: {email}")];
    if generated {
        lines.push(format!("password (shown once): {password}"));
    }
    lines.push(format!(
        "second factor link (valid 72 hours, single use): {link}"
    ));
    crate::cli::say(lines)?;
    Ok(())
}

/// `nanoclip seed-demo`: development only.
pub async fn seed_demo(config: Config) -> anyhow::Result<()> {
    anyhow::ensure!(
        !config.is_production(),
        "seed-demo is refused when NANOCLIP_ENV=production"
    );
    let accounts = with_pool(&config, async |pool, hasher| {
        let mut printed = Vec::new();
        for (plan, name, slug) in [
            ("eglise", "Paroisse Saint-Exemple (démo)", "eglise"),
            ("reseau", "Réseau diocésain (démo)", "reseau"),
        ] {
            let owner_email = format!("proprietaire.{slug}@demo.nanoclip.fr");
            let mut conn = pool.acquire().await?;
            if db::accounts::user_by_email(&mut conn, &owner_email)
                .await?
                .is_some()
            {
                printed.push(format!(
                    "{plan} : la démo « {name} » existe déjà ({owner_email}), laissée telle quelle ; réinitialisez ses mots de passe depuis la page de connexion"
                ));
                continue;
            }
            let now = crate::clock::Clock::system().now();
            let organisation =
                crate::services::accounts::open_organisation(&mut conn, name, plan, now)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            drop(conn);
            for (role, email) in [
                (Role::Owner, owner_email.clone()),
                (Role::Member, format!("membre.{slug}@demo.nanoclip.fr")),
            ] {
                let password = crate::random::password();
                crate::services::accounts::create_account(
                    pool,
                    hasher,
                    Some(organisation),
                    &email,
                    &password,
                    role,
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
                printed.push(format!("{plan} {role} {email} / {password}"));
            }
        }
        Ok(printed)
    })
    .await?;
    crate::cli::say(accounts)?;
    Ok(())
}

/// `nanoclip run-job NAME`: one run of a background job, now.
pub async fn run_job(config: Config, job: crate::jobs::Job) -> anyhow::Result<()> {
    let transport = mail::Transport::new(config.smtp_url.as_deref(), config.data_dir.join("mail"))
        .context("NANOCLIP_SMTP_URL")?;
    let from: lettre::message::Mailbox = config.mail_from.parse().context("NANOCLIP_MAIL_FROM")?;
    let context = crate::jobs::Context {
        mailer: Some(mail::Mailer { transport, from }),
        public_url: config.public_url.clone(),
        test_engine: config.engine == crate::config::Engine::Test,
        payments: crate::services::payments::Payments::from_config(&config)
            .context("NANOCLIP_PAYMENTS")?,
    };
    let outcome = with_pool(&config, async |pool, _| {
        crate::jobs::run(pool, job, crate::clock::Clock::system().now(), &context).await
    })
    .await?;
    let line = match outcome {
        crate::jobs::Outcome::Done(detail) => format!("{}: {detail}", job.name()),
        crate::jobs::Outcome::Skipped => {
            format!("{}: skipped, another instance is running it", job.name())
        }
    };
    crate::cli::say([line])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::has_cookie;
    use actix_web::http::header::{COOKIE, HeaderMap, HeaderValue};

    #[test]
    fn a_cookie_is_found_by_its_exact_name_in_any_cookie_header() {
        let headers = |values: &[&'static str]| {
            let mut map = HeaderMap::new();
            for v in values {
                map.append(COOKIE, HeaderValue::from_static(v));
            }
            map
        };
        let name = "nanoclip_session";
        assert!(has_cookie(&headers(&["nanoclip_session=abc"]), name));
        assert!(has_cookie(&headers(&["a=1; nanoclip_session=abc"]), name));
        assert!(has_cookie(&headers(&["a=1", "nanoclip_session="]), name));
        assert!(!has_cookie(&headers(&[]), name));
        assert!(!has_cookie(&headers(&["nanoclip_csrf=abc"]), name));
        assert!(!has_cookie(&headers(&["x_nanoclip_session=abc"]), name));
        assert!(!has_cookie(&headers(&["a=nanoclip_session"]), name));
    }
}
