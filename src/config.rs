//! Configuration from the environment.
//!
//! In development every value has a working default, so `cargo run` needs no set-up. In
//! production a missing or invalid value stops the process with one line per variable, naming
//! it and what is expected.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Who renders the generations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Reports each generation `succeeded` a few seconds after its launch, or `failed` when its
    /// prompt contains « échec test ».
    Test,
    /// NanoClip's engine: it reports through `POST /api/v1/moteur/generations/{id}`.
    External,
}

/// Who takes the payments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payments {
    /// The built-in « Paiement de test » page: the payer approves, declines or picks an outcome.
    Test,
    /// Stripe Checkout: a Checkout Session made on the server, the payer sent to Stripe, the
    /// payment confirmed by Stripe's webhooks (and asked again by the reconciliation job).
    Stripe,
}

/// Where the portal runs; production turns on secure cookies and HSTS and takes no defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Clone)]
pub struct Config {
    pub environment: Environment,
    pub bind: SocketAddr,
    /// `None` selects the embedded default (see `db::server`).
    pub database_url: Option<String>,
    /// Absolute URL the portal is reached at, without a trailing slash (canonical links, e-mails).
    pub public_url: String,
    /// Key signing the session cookie: 64 bytes or more.
    pub session_key: Vec<u8>,
    /// Local state: the private PostgreSQL cluster, outgoing mail in development.
    pub data_dir: PathBuf,
    pub content_dir: PathBuf,
    pub static_dir: PathBuf,
    /// `smtps://user:password@host` to send e-mail; unset: `.eml` files under `var/mail/`.
    pub smtp_url: Option<String>,
    pub mail_from: String,
    /// Failed-login throttling; `NANOCLIP_LOGIN_THROTTLE=off` (never in production) lets the
    /// login benchmark hash at full speed.
    pub login_throttle: bool,
    /// The read cache of sessions, users and dashboards (`src/cache.rs`);
    /// `NANOCLIP_READ_CACHE=off` reads everything from the database on every request.
    pub read_cache: bool,
    /// Password checks (argon2id hashes) per second this instance allows; past it, 429. `None`:
    /// 12 per hashing thread (a quarter of those threads' time).
    pub password_checks_per_second: Option<f64>,
    /// Addresses of the reverse proxies in front of the portal, whose `X-Forwarded-For` is
    /// believed (`NANOCLIP_TRUSTED_PROXIES`, comma-separated). Empty: the peer is the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The generation engine's token (`NANOCLIP_ENGINE_TOKEN`): its reports carry it as
    /// `Authorization: Bearer`. Unset: every report is refused.
    pub engine_token: Option<String>,
    /// Who renders (`NANOCLIP_ENGINE`): the built-in test engine (development) or NanoClip's
    /// engine, which reports through `/api/v1/moteur` (required in production).
    pub engine: Engine,
    /// Requests per second each API key may send (`NANOCLIP_API_REQUESTS_PER_SECOND`); the burst
    /// is six times it.
    pub api_requests_per_second: f64,
    /// Connections an instance keeps to the database at most (`NANOCLIP_DATABASE_POOL`, 20 by
    /// default). While a statement waits for a lock or for its commit to reach the disk, the
    /// others go on with the rest: on two cores, API launches ran 10 % faster with 20 than with
    /// 10 (bench/README.md, « The pool's size »).
    pub database_pool: u32,
    /// The payment provider's webhook signing secret (`NANOCLIP_WEBHOOK_SECRET`). Unset: every
    /// webhook is refused.
    pub webhook_secret: Option<String>,
    /// Who takes the payments (`NANOCLIP_PAYMENTS`): `test` in development, `stripe` (required in
    /// production).
    pub payments: Payments,
    /// Stripe's secret API key (`NANOCLIP_STRIPE_SECRET_KEY`, `sk_live_…` or `sk_test_…`).
    pub stripe_secret_key: Option<String>,
    /// Stripe's API (`NANOCLIP_STRIPE_API_URL`, default `https://api.stripe.com`): tests point it
    /// at a local fake.
    pub stripe_api_url: String,
    /// The seller's legal details printed on invoices (`NANOCLIP_SELLER_NAME`,
    /// `NANOCLIP_SELLER_ADDRESS`, `NANOCLIP_SELLER_SIREN`, `NANOCLIP_SELLER_VAT`).
    pub seller: Seller,
}

/// Who sells, as invoices must say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seller {
    pub name: String,
    pub address: String,
    pub siren: String,
    pub vat_number: String,
}

// Secrets stay out of logs: Debug never prints the database URL or the session key.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("environment", &self.environment)
            .field("bind", &self.bind)
            .field("database_url", &self.database_url.as_ref().map(|_| "[set]"))
            .field("public_url", &self.public_url)
            .field("session_key", &"[redacted]")
            .field("data_dir", &self.data_dir)
            .field("content_dir", &self.content_dir)
            .field("static_dir", &self.static_dir)
            .field("smtp_url", &self.smtp_url.as_ref().map(|_| "[set]"))
            .field("mail_from", &self.mail_from)
            .field("login_throttle", &self.login_throttle)
            .field("read_cache", &self.read_cache)
            .field(
                "password_checks_per_second",
                &self.password_checks_per_second,
            )
            .field("trusted_proxies", &self.trusted_proxies)
            .field("engine_token", &self.engine_token.as_ref().map(|_| "[set]"))
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "[set]"),
            )
            .field("payments", &self.payments)
            .field(
                "stripe_secret_key",
                &self.stripe_secret_key.as_ref().map(|_| "[set]"),
            )
            .field("stripe_api_url", &self.stripe_api_url)
            .finish()
    }
}

/// Every bad variable, one per line: `NAME: what is expected`.
#[derive(Debug, Default)]
pub struct ConfigErrors(Vec<(&'static str, String)>);

/// The number in variable `name` (read by `get`, trimmed) that `valid` accepts: `None` when
/// unset (the default), or when it is not one, with `expected` noted against `name`.
fn number<T: std::str::FromStr>(
    errors: &mut ConfigErrors,
    get: impl Fn(&str) -> Option<String>,
    name: &'static str,
    valid: impl Fn(&T) -> bool,
    expected: &'static str,
) -> Option<T> {
    let raw = get(name)?;
    match raw.trim().parse::<T>() {
        Ok(n) if valid(&n) => Some(n),
        _ => {
            errors.push(name, expected);
            None
        }
    }
}

impl ConfigErrors {
    fn push(&mut self, name: &'static str, expected: impl Into<String>) {
        self.0.push((name, expected.into()));
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|(name, _)| *name).collect()
    }

    pub fn lines(&self) -> impl Iterator<Item = String> + '_ {
        self.0
            .iter()
            .map(|(name, expected)| format!("{name}: {expected}"))
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in self.lines() {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

const MIN_SESSION_KEY_BYTES: usize = 64;

impl Config {
    pub fn from_env() -> Result<Self, ConfigErrors> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `var`, so tests can pass any environment.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigErrors> {
        // An empty variable counts as unset, as shells and .env files often leave them so.
        let get = |name: &str| var(name).filter(|value| !value.trim().is_empty());
        let mut errors = ConfigErrors::default();

        let environment = match get("NANOCLIP_ENV").as_deref().map(str::trim) {
            None | Some("development") => Environment::Development,
            Some("production") => Environment::Production,
            Some(_) => {
                errors.push("NANOCLIP_ENV", "`development` or `production`");
                Environment::Development
            }
        };
        let production = environment == Environment::Production;

        let bind = match get("NANOCLIP_BIND") {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(raw) => raw.trim().parse().unwrap_or_else(|_| {
                errors.push(
                    "NANOCLIP_BIND",
                    "an address and port such as 127.0.0.1:8080",
                );
                SocketAddr::from(([127, 0, 0, 1], 8080))
            }),
        };

        // Development mode sends cookies without `Secure` and no HSTS: a deployment that forgot
        // NANOCLIP_ENV must not serve that to the network.
        if !production && !bind.ip().is_loopback() {
            errors.push(
                "NANOCLIP_BIND",
                "a loopback address such as 127.0.0.1:8080 in development (insecure cookies); \
                 set NANOCLIP_ENV=production to listen on other addresses",
            );
        }

        let database_url = get("DATABASE_URL");
        match &database_url {
            Some(url) if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) => {
                errors.push(
                    "DATABASE_URL",
                    "a PostgreSQL URL such as postgres://user:password@host/nanoclip",
                );
            }
            None if production => {
                errors.push("DATABASE_URL", "a PostgreSQL URL such as postgres://user:password@host/nanoclip (required in production)");
            }
            _ => {}
        }

        let public_url = match get("NANOCLIP_PUBLIC_URL") {
            Some(url) => {
                let url = url.trim().trim_end_matches('/').to_owned();
                let scheme_ok = if production {
                    url.starts_with("https://")
                } else {
                    url.starts_with("https://") || url.starts_with("http://")
                };
                if !scheme_ok || url.split("://").nth(1).is_none_or(str::is_empty) {
                    errors.push(
                        "NANOCLIP_PUBLIC_URL",
                        if production {
                            "an https:// URL such as https://aide.nanoclip.fr"
                        } else {
                            "an http:// or https:// URL such as http://127.0.0.1:8080"
                        },
                    );
                }
                url
            }
            None if production => {
                errors.push(
                    "NANOCLIP_PUBLIC_URL",
                    "an https:// URL such as https://aide.nanoclip.fr (required in production)",
                );
                String::new()
            }
            None => {
                let host = if bind.ip().is_unspecified() {
                    "127.0.0.1".to_owned()
                } else {
                    bind.ip().to_string()
                };
                format!("http://{host}:{}", bind.port())
            }
        };

        let session_key = match get("NANOCLIP_SESSION_KEY") {
            Some(raw) => match hex::decode(raw.trim()) {
                Ok(key) if key.len() >= MIN_SESSION_KEY_BYTES => key,
                _ => {
                    errors.push("NANOCLIP_SESSION_KEY", "at least 64 random bytes in hex (128 characters), e.g. from `openssl rand -hex 64`");
                    Vec::new()
                }
            },
            None if production => {
                errors.push("NANOCLIP_SESSION_KEY", "at least 64 random bytes in hex (128 characters), e.g. from `openssl rand -hex 64` (required in production)");
                Vec::new()
            }
            // Development: a fresh key each start; sessions simply end with the process.
            None => (0..4)
                .flat_map(|_| *uuid::Uuid::new_v4().as_bytes())
                .collect(),
        };

        let project_dir = |name: &str| default_project_path(name);
        let data_dir = get("NANOCLIP_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| project_dir("var"));
        let content_dir = get("NANOCLIP_CONTENT_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| project_dir("content"));
        let static_dir = get("NANOCLIP_STATIC_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| project_dir("static"));

        let smtp_url = get("NANOCLIP_SMTP_URL");
        if smtp_url
            .as_deref()
            .is_some_and(|u| !(u.starts_with("smtp://") || u.starts_with("smtps://")))
        {
            errors.push(
                "NANOCLIP_SMTP_URL",
                "an smtp:// or smtps:// URL such as smtps://user:password@smtp.example.org",
            );
        }
        match &smtp_url {
            None if production => errors.push(
                "NANOCLIP_SMTP_URL",
                "an smtps:// URL to send e-mail (required in production)",
            ),
            // Passwords and reset links must not cross the network in clear.
            Some(url) if production && !smtp_requires_tls(url) => errors.push(
                "NANOCLIP_SMTP_URL",
                "TLS is required in production: smtps://user:password@host (implicit TLS, port \
                 465) or smtp://user:password@host?tls=required (STARTTLS, port 587)",
            ),
            _ => {}
        }
        let mail_from =
            get("NANOCLIP_MAIL_FROM").unwrap_or_else(|| "NanoClip <aide@nanoclip.fr>".to_owned());
        let login_throttle = match get("NANOCLIP_LOGIN_THROTTLE").as_deref().map(str::trim) {
            None | Some("on") => true,
            Some("off") if !production => false,
            Some(_) => {
                errors.push(
                    "NANOCLIP_LOGIN_THROTTLE",
                    "`on`, or `off` outside production (benchmarks only)",
                );
                true
            }
        };
        let read_cache = match get("NANOCLIP_READ_CACHE").as_deref().map(str::trim) {
            None | Some("on") => true,
            Some("off") => false,
            Some(_) => {
                errors.push("NANOCLIP_READ_CACHE", "`on` or `off`");
                true
            }
        };
        let password_checks_per_second = number(
            &mut errors,
            get,
            "NANOCLIP_PASSWORD_CHECKS_PER_SECOND",
            |rate: &f64| (0.1..=10_000.0).contains(rate),
            "a number of password checks per second, from 0.1 to 10000",
        );
        let mut trusted_proxies = Vec::new();
        for entry in get("NANOCLIP_TRUSTED_PROXIES")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            match entry.parse::<std::net::IpAddr>() {
                Ok(ip) => trusted_proxies.push(ip),
                Err(_) => errors.push(
                    "NANOCLIP_TRUSTED_PROXIES",
                    "IP addresses separated by commas, such as 10.0.0.5,10.0.0.6",
                ),
            }
        }

        let secret = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let engine_token = secret("NANOCLIP_ENGINE_TOKEN");
        let engine = match get("NANOCLIP_ENGINE").as_deref().map(str::trim) {
            None | Some("") | Some("test") if !production => Engine::Test,
            None | Some("") => {
                errors.push(
                    "NANOCLIP_ENGINE",
                    "`external` (required in production), with NANOCLIP_ENGINE_TOKEN",
                );
                Engine::External
            }
            Some("external") => Engine::External,
            Some("test") => {
                errors.push(
                    "NANOCLIP_ENGINE",
                    "`external` in production: the test engine is for development",
                );
                Engine::External
            }
            Some(_) => {
                errors.push("NANOCLIP_ENGINE", "`test` (development) or `external`");
                Engine::Test
            }
        };
        if engine == Engine::External && engine_token.is_none() {
            errors.push("NANOCLIP_ENGINE_TOKEN", "the generation engine's token (required with NANOCLIP_ENGINE=external), at least 32 random characters");
        }
        let api_requests_per_second = number(
            &mut errors,
            get,
            "NANOCLIP_API_REQUESTS_PER_SECOND",
            |rate: &f64| *rate > 0.0 && *rate <= 1_000_000.0,
            "a positive number of requests per second, such as 50",
        )
        .unwrap_or(50.0);
        let database_pool = number(
            &mut errors,
            get,
            "NANOCLIP_DATABASE_POOL",
            |size: &u32| (1..=500).contains(size),
            "a number of connections from 1 to 500, such as 20",
        )
        .unwrap_or(20);
        let webhook_secret = secret("NANOCLIP_WEBHOOK_SECRET");
        let payments = match get("NANOCLIP_PAYMENTS").as_deref().map(str::trim) {
            None | Some("") | Some("test") if !production => Payments::Test,
            None | Some("") => {
                errors.push(
                    "NANOCLIP_PAYMENTS",
                    "`stripe` (required in production), with NANOCLIP_STRIPE_SECRET_KEY and \
                     NANOCLIP_WEBHOOK_SECRET",
                );
                Payments::Stripe
            }
            Some("stripe") => Payments::Stripe,
            Some("test") => {
                errors.push(
                    "NANOCLIP_PAYMENTS",
                    "`stripe` in production: the test payment page is for development",
                );
                Payments::Stripe
            }
            Some(_) => {
                errors.push("NANOCLIP_PAYMENTS", "`test` (development) or `stripe`");
                Payments::Test
            }
        };
        let stripe_secret_key = secret("NANOCLIP_STRIPE_SECRET_KEY");
        if payments == Payments::Stripe {
            match stripe_secret_key.as_deref() {
                Some(key) if key.starts_with("sk_live_") || key.starts_with("sk_test_") => {
                    if production && key.starts_with("sk_test_") {
                        tracing::warn!("NANOCLIP_STRIPE_SECRET_KEY is a test-mode key");
                    }
                }
                // A restricted key (`rk_…`) works too, if it may create Checkout Sessions and
                // refunds.
                Some(key) if key.starts_with("rk_live_") || key.starts_with("rk_test_") => {}
                _ => errors.push(
                    "NANOCLIP_STRIPE_SECRET_KEY",
                    "Stripe's secret key, `sk_live_…` (required with NANOCLIP_PAYMENTS=stripe)",
                ),
            }
            if webhook_secret.is_none() {
                errors.push(
                    "NANOCLIP_WEBHOOK_SECRET",
                    "the webhook endpoint's signing secret from Stripe, `whsec_…` (required with \
                     NANOCLIP_PAYMENTS=stripe)",
                );
            }
        }
        let stripe_api_url = match get("NANOCLIP_STRIPE_API_URL").as_deref().map(str::trim) {
            None | Some("") => "https://api.stripe.com".to_owned(),
            Some(url)
                if url.starts_with("https://") || (!production && url.starts_with("http://")) =>
            {
                url.trim_end_matches('/').to_owned()
            }
            Some(_) => {
                errors.push(
                    "NANOCLIP_STRIPE_API_URL",
                    "an https:// URL (default https://api.stripe.com)",
                );
                String::new()
            }
        };
        let mut seller_field =
            |name: &'static str, default: &str, what: &'static str| match secret(name) {
                Some(value) => value,
                None if production => {
                    errors.push(name, what);
                    String::new()
                }
                None => default.to_owned(),
            };
        let seller = Seller {
            name: seller_field(
                "NANOCLIP_SELLER_NAME",
                "NanoClip SAS (développement)",
                "the seller's legal name, printed on invoices (required in production)",
            ),
            address: seller_field(
                "NANOCLIP_SELLER_ADDRESS",
                "Adresse de développement, 75000 Paris",
                "the seller's postal address, printed on invoices (required in production)",
            ),
            siren: seller_field(
                "NANOCLIP_SELLER_SIREN",
                "000 000 000",
                "the seller's SIREN, printed on invoices (required in production)",
            ),
            vat_number: seller_field(
                "NANOCLIP_SELLER_VAT",
                "FR00000000000",
                "the seller's VAT number, printed on invoices (required in production)",
            ),
        };
        for (name, value) in [
            ("NANOCLIP_ENGINE_TOKEN", &engine_token),
            ("NANOCLIP_WEBHOOK_SECRET", &webhook_secret),
        ] {
            if value.as_ref().is_some_and(|v| v.len() < 32) {
                errors.push(
                    name,
                    "at least 32 random characters, e.g. from `openssl rand -hex 32`",
                );
            }
        }

        if errors.0.is_empty() {
            Ok(Self {
                environment,
                bind,
                database_url,
                public_url,
                session_key,
                data_dir,
                content_dir,
                static_dir,
                smtp_url,
                mail_from,
                login_throttle,
                read_cache,
                password_checks_per_second,
                trusted_proxies,
                engine_token,
                engine,
                api_requests_per_second,
                database_pool,
                webhook_secret,
                payments,
                stripe_secret_key,
                stripe_api_url,
                seller,
            })
        } else {
            Err(errors)
        }
    }

    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }
}

/// `smtps://…` (TLS from the first byte) or `smtp://…?tls=required` (STARTTLS, refusing a
/// server that does not offer it): lettre's syntax. Plain `smtp://` and `tls=opportunistic` may
/// fall back to clear text.
fn smtp_requires_tls(url: &str) -> bool {
    let url = url.trim();
    if url.starts_with("smtps://") {
        return true;
    }
    // The query starts at the first `?` (one inside the credentials must be percent-encoded).
    let query = url
        .split_once('?')
        .map_or("", |(_, query)| query.split('#').next().unwrap_or_default());
    url.starts_with("smtp://") && query.split('&').any(|pair| pair == "tls=required")
}

/// `name` in the current directory if it exists there, else in the source tree the binary was
/// built from, so `cargo run` and the tests work from any directory.
fn default_project_path(name: &str) -> PathBuf {
    let here = Path::new(name);
    if here.exists() {
        here.to_path_buf()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_vars(|name| map.get(name).cloned())
    }

    #[test]
    fn development_needs_no_variable_at_all() {
        let config = config(&[]).expect("defaults");
        assert_eq!(config.environment, Environment::Development);
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.public_url, "http://127.0.0.1:8080");
        assert!(config.database_url.is_none());
        assert!(config.session_key.len() >= MIN_SESSION_KEY_BYTES);
    }

    #[test]
    fn the_database_pool_is_20_connections_unless_set_within_bounds() {
        assert_eq!(config(&[]).expect("defaults").database_pool, 20);
        let set = config(&[("NANOCLIP_DATABASE_POOL", " 32 ")]).expect("32");
        assert_eq!(set.database_pool, 32);
        for bad in ["0", "501", "-1", "vingt", "2.5"] {
            let errors = config(&[("NANOCLIP_DATABASE_POOL", bad)]).expect_err(bad);
            assert_eq!(errors.names(), ["NANOCLIP_DATABASE_POOL"], "{bad}");
        }
    }

    #[test]
    fn production_names_every_missing_variable() {
        let errors = config(&[("NANOCLIP_ENV", "production")]).expect_err("must fail");
        assert_eq!(
            errors.names(),
            [
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
                "NANOCLIP_SELLER_VAT"
            ]
        );
        assert_eq!(errors.lines().count(), 13);
    }

    #[test]
    fn invalid_values_are_refused_with_what_is_expected() {
        let errors = config(&[
            ("NANOCLIP_ENV", "prod"),
            ("NANOCLIP_BIND", "localhost"),
            ("DATABASE_URL", "mysql://x"),
            ("NANOCLIP_PUBLIC_URL", "ftp://x"),
            ("NANOCLIP_SESSION_KEY", "abcd"),
        ])
        .expect_err("must fail");
        assert_eq!(
            errors.names(),
            [
                "NANOCLIP_ENV",
                "NANOCLIP_BIND",
                "DATABASE_URL",
                "NANOCLIP_PUBLIC_URL",
                "NANOCLIP_SESSION_KEY"
            ]
        );
        assert!(
            errors
                .to_string()
                .contains("NANOCLIP_BIND: an address and port")
        );
    }

    #[test]
    fn the_password_check_rate_is_a_positive_number() {
        assert_eq!(config(&[]).unwrap().password_checks_per_second, None);
        let set = config(&[("NANOCLIP_PASSWORD_CHECKS_PER_SECOND", "4.5")]).unwrap();
        assert_eq!(set.password_checks_per_second, Some(4.5));
        let proxies = config(&[("NANOCLIP_TRUSTED_PROXIES", "10.0.0.5, ::1")]).unwrap();
        assert_eq!(proxies.trusted_proxies.len(), 2);
        let errors = config(&[("NANOCLIP_TRUSTED_PROXIES", "10.0.0.5,proxy")]).expect_err("fails");
        assert_eq!(errors.names(), ["NANOCLIP_TRUSTED_PROXIES"]);
        for bad in ["0", "-3", "beaucoup", "NaN"] {
            let errors =
                config(&[("NANOCLIP_PASSWORD_CHECKS_PER_SECOND", bad)]).expect_err("must fail");
            assert_eq!(
                errors.names(),
                ["NANOCLIP_PASSWORD_CHECKS_PER_SECOND"],
                "{bad}"
            );
        }
    }

    #[test]
    fn production_accepts_a_complete_configuration_and_requires_https() {
        let key = "ab".repeat(64);
        let mut vars = vec![
            ("NANOCLIP_ENV", "production"),
            ("DATABASE_URL", "postgres://u:p@db/nanoclip"),
            ("NANOCLIP_PUBLIC_URL", "https://aide.nanoclip.fr/"),
            ("NANOCLIP_SESSION_KEY", key.as_str()),
            ("NANOCLIP_SMTP_URL", "smtps://u:p@smtp.example.org"),
            ("NANOCLIP_ENGINE", "external"),
            (
                "NANOCLIP_ENGINE_TOKEN",
                "engine-token-value-0123456789abcdef",
            ),
            ("NANOCLIP_PAYMENTS", "stripe"),
            (
                "NANOCLIP_STRIPE_SECRET_KEY",
                "sk_live_0123456789abcdefghijklmn",
            ),
            (
                "NANOCLIP_WEBHOOK_SECRET",
                "whsec_0123456789abcdefghijklmnopqrstuv",
            ),
            ("NANOCLIP_SELLER_NAME", "NanoClip SAS"),
            ("NANOCLIP_SELLER_ADDRESS", "12 rue de la Paix, 75002 Paris"),
            ("NANOCLIP_SELLER_SIREN", "912 345 678"),
            ("NANOCLIP_SELLER_VAT", "FR12912345678"),
        ];
        let ok = config(&vars).expect("complete");
        assert!(ok.is_production());
        assert_eq!(ok.public_url, "https://aide.nanoclip.fr");
        vars[2] = ("NANOCLIP_PUBLIC_URL", "http://aide.nanoclip.fr");
        assert_eq!(
            config(&vars).expect_err("http").names(),
            ["NANOCLIP_PUBLIC_URL"]
        );
    }

    fn production(smtp: &str) -> Result<Config, ConfigErrors> {
        let key = "ab".repeat(64);
        config(&[
            ("NANOCLIP_ENV", "production"),
            (
                "DATABASE_URL",
                "postgres://u:p@db/nanoclip?sslmode=verify-full",
            ),
            ("NANOCLIP_PUBLIC_URL", "https://aide.nanoclip.fr"),
            ("NANOCLIP_SESSION_KEY", key.as_str()),
            ("NANOCLIP_SMTP_URL", smtp),
            ("NANOCLIP_ENGINE", "external"),
            (
                "NANOCLIP_ENGINE_TOKEN",
                "engine-token-value-0123456789abcdef",
            ),
            ("NANOCLIP_PAYMENTS", "stripe"),
            (
                "NANOCLIP_STRIPE_SECRET_KEY",
                "sk_live_0123456789abcdefghijklmn",
            ),
            (
                "NANOCLIP_WEBHOOK_SECRET",
                "whsec_0123456789abcdefghijklmnopqrstuv",
            ),
            ("NANOCLIP_SELLER_NAME", "NanoClip SAS"),
            ("NANOCLIP_SELLER_ADDRESS", "12 rue de la Paix, 75002 Paris"),
            ("NANOCLIP_SELLER_SIREN", "912 345 678"),
            ("NANOCLIP_SELLER_VAT", "FR12912345678"),
        ])
    }

    #[test]
    fn production_refuses_plain_smtp_and_takes_implicit_tls_or_required_starttls() {
        for plain in [
            "smtp://u:p@smtp.example.org",
            "smtp://u:p@smtp.example.org:587?tls=opportunistic",
            "smtp://u:p@smtp.example.org/?tls=",
        ] {
            let errors = production(plain).expect_err(plain);
            assert_eq!(errors.names(), ["NANOCLIP_SMTP_URL"], "{plain}");
            assert_eq!(errors.lines().count(), 1);
            assert!(errors.to_string().contains("smtps://"), "{errors}");
            assert!(
                !errors.to_string().contains("u:p@"),
                "no credentials in the message"
            );
        }
        for tls in [
            "smtps://u:p@smtp.example.org",
            "smtps://u:p@smtp.example.org:465",
            "smtp://u:p@smtp.example.org:587?tls=required",
        ] {
            assert!(production(tls).is_ok(), "{tls}");
        }
        // Development: a local catcher without TLS is fine.
        assert!(config(&[("NANOCLIP_SMTP_URL", "smtp://127.0.0.1:1025")]).is_ok());
    }

    #[test]
    fn development_mode_listens_on_loopback_only() {
        for public in ["0.0.0.0:8080", "[::]:8080", "192.0.2.10:8080"] {
            let errors = config(&[("NANOCLIP_BIND", public)]).expect_err(public);
            assert_eq!(errors.names(), ["NANOCLIP_BIND"], "{public}");
            assert!(
                errors.to_string().contains("NANOCLIP_ENV=production"),
                "{errors}"
            );
        }
        for local in ["127.0.0.1:8080", "[::1]:8080", "127.0.0.2:0"] {
            assert!(config(&[("NANOCLIP_BIND", local)]).is_ok(), "{local}");
        }
        let key = "ab".repeat(64);
        let everywhere = config(&[
            ("NANOCLIP_ENV", "production"),
            ("NANOCLIP_BIND", "0.0.0.0:8080"),
            ("DATABASE_URL", "postgres://u:p@db/nanoclip"),
            ("NANOCLIP_PUBLIC_URL", "https://aide.nanoclip.fr"),
            ("NANOCLIP_SESSION_KEY", key.as_str()),
            ("NANOCLIP_SMTP_URL", "smtps://u:p@smtp.example.org"),
            ("NANOCLIP_ENGINE", "external"),
            (
                "NANOCLIP_ENGINE_TOKEN",
                "engine-token-value-0123456789abcdef",
            ),
            ("NANOCLIP_PAYMENTS", "stripe"),
            (
                "NANOCLIP_STRIPE_SECRET_KEY",
                "sk_live_0123456789abcdefghijklmn",
            ),
            (
                "NANOCLIP_WEBHOOK_SECRET",
                "whsec_0123456789abcdefghijklmnopqrstuv",
            ),
            ("NANOCLIP_SELLER_NAME", "NanoClip SAS"),
            ("NANOCLIP_SELLER_ADDRESS", "12 rue de la Paix, 75002 Paris"),
            ("NANOCLIP_SELLER_SIREN", "912 345 678"),
            ("NANOCLIP_SELLER_VAT", "FR12912345678"),
        ]);
        assert!(everywhere.is_ok(), "{everywhere:?}");
    }

    #[test]
    fn debug_output_hides_secrets() {
        let config = config(&[
            ("DATABASE_URL", "postgres://u:pg-password-value@db/x"),
            (
                "NANOCLIP_ENGINE_TOKEN",
                "engine-token-value-0123456789abcdef",
            ),
            (
                "NANOCLIP_WEBHOOK_SECRET",
                "webhook-secret-value-0123456789abcdef",
            ),
        ])
        .expect("valid");
        let printed = format!("{config:?}");
        for value in [
            "pg-password-value",
            "engine-token-value",
            "webhook-secret-value",
        ] {
            assert!(!printed.contains(value), "{value} in {printed}");
        }
        let smtp = super::Config::from_vars(|n| {
            (n == "NANOCLIP_SMTP_URL").then(|| "smtps://u:pw123@h".to_owned())
        })
        .expect("valid");
        assert!(!format!("{smtp:?}").contains("pw123"));
        assert!(printed.contains("[redacted]"));
    }
}
