//! The skeleton: isolation, the embedded default, configuration, error pages, health, shutdown.

use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};
use nanoclip::db::server::{self, PrivateCluster};
use nanoclip::web::error::PageError;
use sqlx::{Connection, PgConnection};

use crate::common::{self, attr, spawn_app, spawn_app_with, test_config, text};

#[tokio::test]
async fn each_test_gets_its_own_migrated_database() {
    let a = spawn_app().await;
    let b = spawn_app().await;
    assert_ne!(a.database, b.database);
    sqlx::query("UPDATE plans SET price_cents = 1 WHERE id = 'eglise'")
        .execute(&a.pool)
        .await
        .unwrap();
    let in_a: i64 = sqlx::query_scalar("SELECT price_cents FROM plans WHERE id = 'eglise'")
        .fetch_one(&a.pool)
        .await
        .unwrap();
    let in_b: i64 = sqlx::query_scalar("SELECT price_cents FROM plans WHERE id = 'eglise'")
        .fetch_one(&b.pool)
        .await
        .unwrap();
    assert_eq!((in_a, in_b), (1, 2900));
}

#[tokio::test]
async fn the_home_page_is_french_and_carries_the_security_headers() {
    let app = spawn_app().await;
    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(
        headers["referrer-policy"],
        "strict-origin-when-cross-origin"
    );
    assert!(
        headers.get("strict-transport-security").is_none(),
        "no HSTS in local development"
    );
    let html = scraper::Html::parse_document(&response.text().await.unwrap());
    assert_eq!(attr(&html, "html", "lang").as_deref(), Some("fr"));
    assert_eq!(
        attr(&html, "a.skip-link", "href").as_deref(),
        Some("#contenu")
    );
    assert_eq!(
        attr(&html, "link[rel=canonical]", "href").as_deref(),
        Some("http://portail.test/")
    );
    assert!(
        attr(&html, "meta[name=viewport]", "content")
            .unwrap()
            .contains("width=device-width")
    );
}

#[tokio::test]
async fn production_sends_hsts() {
    let mut config = test_config();
    config.environment = nanoclip::config::Environment::Production;
    let app = spawn_app_with(config, None).await;
    let response = app.get("/healthz").await;
    assert!(
        response.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
}

#[tokio::test]
async fn static_assets_are_fingerprinted_and_cached_for_a_year() {
    let app = spawn_app().await;
    let (_, html) = app.get_html("/").await;
    let css = attr(&html, "link[rel=stylesheet]", "href").unwrap();
    assert!(
        css.starts_with("/static/app.")
            && css.ends_with(".css")
            && css.len() > "/static/app.css".len()
    );
    let response = app.get(&css).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    let etag = response.headers()["etag"].clone();
    let again = app
        .client
        .get(app.url(&css))
        .header("If-None-Match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(
        app.get("/static/app.css").await.status(),
        404,
        "only fingerprinted names are served"
    );
    let js = attr(&html, "script[src]", "src").unwrap();
    assert_eq!(app.get(&js).await.status(), 200);
}

#[tokio::test]
async fn an_unknown_page_is_a_french_404_with_a_search_box() {
    let app = spawn_app().await;
    let (status, html) = app.get_html("/cette-page-n-existe-pas").await;
    assert_eq!(status, 404);
    assert_eq!(attr(&html, "html", "lang").as_deref(), Some("fr"));
    assert_eq!(text(&html, "h1"), "Page introuvable");
    assert_eq!(
        attr(&html, "form[role=search]", "action").as_deref(),
        Some("/aide/recherche")
    );
}

fn failing_routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/__test/panne",
        web::get().to(|| async {
            Err::<HttpResponse, _>(PageError::Internal(
                anyhow::anyhow!("password=hunter2 in the connection string")
                    .context("loading the dashboard"),
            ))
        }),
    );
    cfg.route(
        "/__test/lent",
        web::get().to(|| async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            HttpResponse::Ok().body("fini")
        }),
    );
}

#[tokio::test]
async fn an_internal_error_shows_a_request_id_and_leaks_nothing() {
    let app = spawn_app_with(test_config(), Some(failing_routes)).await;
    let response = app.get("/__test/panne").await;
    assert_eq!(response.status(), 500);
    let body = response.text().await.unwrap();
    assert!(
        !body.contains("hunter2") && !body.contains("dashboard"),
        "no internal detail on the page"
    );
    let html = scraper::Html::parse_document(&body);
    assert_eq!(text(&html, "h1"), "Erreur interne");
    let id = text(&html, ".request-id");
    assert!(
        uuid::Uuid::parse_str(&id).is_ok(),
        "request id shown: {id:?}"
    );
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish() {
    let app = spawn_app_with(test_config(), Some(failing_routes)).await;
    let slow = tokio::spawn({
        let client = app.client.clone();
        let url = app.url("/__test/lent");
        async move { client.get(url).send().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // nextest runs each test in its own process, so the signal reaches only this server.
    // SAFETY: sending a signal to our own process; actix handles SIGTERM with a graceful stop.
    unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
    let response = slow
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "fini");
    // And the server no longer accepts new connections.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = reqwest::Client::new()
        .get(app.url("/healthz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(after.is_err(), "server stopped after the signal");
}

/// A private cluster in a temporary directory, for tests that stop and start a server.
fn temporary_cluster(tcp_port: Option<u16>) -> Option<(tempdir::TempDir, PrivateCluster)> {
    let Some(bin) = server::find_binaries() else {
        eprintln!("SKIPPED: no PostgreSQL server binaries on this machine");
        return None;
    };
    let dir = tempdir::TempDir::new();
    let cluster = PrivateCluster::new(dir.path().join("postgres"), bin, tcp_port);
    Some((dir, cluster))
}

#[tokio::test]
async fn the_embedded_default_starts_a_private_cluster_and_reuses_it() {
    let Some((_dir, cluster)) = temporary_cluster(None) else {
        return;
    };
    let c = cluster.clone();
    let started = tokio::task::spawn_blocking(move || c.ensure_running())
        .await
        .unwrap()
        .unwrap();
    assert!(started, "first call initialises and starts the cluster");
    let c = cluster.clone();
    let again = tokio::task::spawn_blocking(move || c.ensure_running())
        .await
        .unwrap()
        .unwrap();
    assert!(!again, "second call reuses the running cluster");
    assert!(
        cluster.socket_dir().join(".s.PGSQL.5432").exists(),
        "listens on a unix socket of its own"
    );
    server::ensure_database(&cluster.options("postgres"), "nanoclip")
        .await
        .unwrap();
    let mut conn = PgConnection::connect_with(&cluster.options("nanoclip"))
        .await
        .unwrap();
    let listen: String = sqlx::query_scalar("SHOW listen_addresses")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(listen, "", "no TCP listener");
    conn.close().await.unwrap();
    cluster.stop().unwrap();
    assert!(
        PgConnection::connect_with(&cluster.options("nanoclip"))
            .await
            .is_err(),
        "stopped cleanly"
    );
}

#[tokio::test]
async fn the_embedded_default_uses_a_passwordless_local_server_and_creates_the_database() {
    let port = free_port();
    let Some((_dir, cluster)) = temporary_cluster(Some(port)) else {
        return;
    };
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.ensure_running())
        .await
        .unwrap()
        .unwrap();
    let options = server::probe_local_server("127.0.0.1", port, "nanoclip")
        .await
        .expect("server accepted postgres");
    let mut conn = PgConnection::connect_with(&options)
        .await
        .expect("database created");
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(name, "nanoclip");
    conn.close().await.unwrap();
    cluster.stop().unwrap();
    assert!(
        server::probe_local_server("127.0.0.1", port, "nanoclip")
            .await
            .is_none(),
        "nothing listening: next branch"
    );
}

#[tokio::test]
async fn database_url_wins_over_the_embedded_default() {
    let server = server::resolve(
        Some("postgres://someone@db.invalid:6543/app"),
        std::path::Path::new("/nonexistent"),
        "x",
    )
    .await
    .unwrap();
    assert_eq!(server.origin, server::Origin::DatabaseUrl);
    assert_eq!(server.options.get_port(), 6543);
    assert_eq!(server.options.get_database(), Some("app"));
}

#[tokio::test]
async fn healthz_goes_503_when_the_database_stops_and_recovers_by_itself() {
    let Some((_dir, cluster)) = temporary_cluster(None) else {
        return;
    };
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.ensure_running())
        .await
        .unwrap()
        .unwrap();
    server::ensure_database(&cluster.options("postgres"), "nanoclip")
        .await
        .unwrap();
    let app = common::spawn_on(
        test_config(),
        cluster.options("nanoclip"),
        String::new(),
        None,
    )
    .await;
    assert_eq!(app.get("/healthz").await.status(), 200);

    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.stop())
        .await
        .unwrap()
        .unwrap();
    // A success is remembered for one second, no longer.
    let mut down = app.get("/healthz").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while down.status() == 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        down = app.get("/healthz").await;
    }
    assert_eq!(down.status(), 503);
    let body: serde_json::Value = down.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert!(body["reason"].as_str().unwrap().contains("database"));

    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.start())
        .await
        .unwrap()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if app.get("/healthz").await.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "healthz back to 200 without a restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.stop().await;
    cluster.stop().unwrap();
}

#[test]
fn production_without_configuration_stops_with_one_line_per_variable() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_nanoclip"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NANOCLIP_ENV", "production")
        .env("NANOCLIP_BIND", "nowhere")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("configuration error: "))
        .collect();
    assert_eq!(lines.len(), 14, "{stderr}");
    for name in [
        "NANOCLIP_BIND",
        "DATABASE_URL",
        "NANOCLIP_PUBLIC_URL",
        "NANOCLIP_SESSION_KEY",
        "NANOCLIP_SMTP_URL",
        "NANOCLIP_ENGINE",
        "NANOCLIP_ENGINE_TOKEN",
        "NANOCLIP_PAYMENTS",
        "NANOCLIP_STRIPE_SECRET_KEY",
        "NANOCLIP_WEBHOOK_SECRET",
        "NANOCLIP_SELLER_NAME",
        "NANOCLIP_SELLER_ADDRESS",
        "NANOCLIP_SELLER_SIREN",
        "NANOCLIP_SELLER_VAT",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(name)),
            "{name} named in {stderr}"
        );
    }
}

#[test]
fn help_explains_each_command() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_nanoclip"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(help.contains("serve") && help.contains("migrate"), "{help}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A temporary directory removed on drop (enough for our needs; no extra crate).
mod tempdir {
    use std::path::{Path, PathBuf};

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new() -> Self {
            let path = std::env::temp_dir()
                .join(format!("nanoclip-test-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A fake PostgreSQL server on a local port that accepts the SSLRequest and tells whether the
/// client then opened a TLS handshake (a ClientHello: record type 22, then TLS version 3.x),
/// with the client's error (the fake goes no further, so the connection itself fails).
async fn starts_tls_with(sslmode: &str) -> (bool, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let fake = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 8];
        // SSLRequest: length 8, code 80877103.
        if socket.read_exact(&mut request).await.is_err()
            || request != [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]
        {
            return false;
        }
        socket.write_all(b"S").await.unwrap();
        let mut hello = [0u8; 2];
        socket.read_exact(&mut hello).await.is_ok() && hello == [22, 3]
    });
    let server = server::resolve(
        Some(&format!(
            "postgres://nanoclip:secret@localhost:{port}/nanoclip?sslmode={sslmode}"
        )),
        std::path::Path::new("/nonexistent"),
        "x",
    )
    .await
    .unwrap();
    let connecting = PgConnection::connect_with(&server.options);
    let error = match tokio::time::timeout(Duration::from_secs(10), connecting).await {
        Ok(Err(e)) => e.to_string(),
        Ok(Ok(_)) => "connected".to_owned(),
        Err(_) => "timed out".to_owned(),
    };
    let started = tokio::time::timeout(Duration::from_secs(10), fake)
        .await
        .is_ok_and(|r| r.unwrap_or(false));
    (started, error)
}

#[tokio::test]
async fn a_database_url_can_require_tls() {
    use sqlx::postgres::PgSslMode;
    for sslmode in ["require", "verify-full"] {
        let server = server::resolve(
            Some(&format!(
                "postgres://u:p@db.example.org/app?sslmode={sslmode}"
            )),
            std::path::Path::new("/nonexistent"),
            "x",
        )
        .await
        .unwrap();
        let mode = server.options.get_ssl_mode();
        assert!(
            match sslmode {
                "require" => matches!(mode, PgSslMode::Require),
                _ => matches!(mode, PgSslMode::VerifyFull),
            },
            "{sslmode}: {mode:?}"
        );
        let (started, error) = starts_tls_with(sslmode).await;
        assert!(started, "no TLS handshake with sslmode={sslmode}: {error}");
    }
}
