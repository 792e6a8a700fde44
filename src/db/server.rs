//! Finding a PostgreSQL server with no configuration: the embedded default.
//!
//! In order: `DATABASE_URL` if set; else the server on 127.0.0.1:5432 if it accepts the
//! `postgres` user without a password (the `nanoclip` database is created if missing); else a
//! private cluster under `var/postgres`, initialised and started with the server binaries found on
//! PATH or under /usr/lib/postgresql/*/bin, listening on a unix socket inside it only, reused on
//! the next start and stopped by whoever started it; else an error saying what to install.

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

/// How the database was found, for the start-up message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    DatabaseUrl,
    LocalServer,
    PrivateCluster,
}

/// A reachable server and the database the portal uses on it.
pub struct Server {
    pub origin: Origin,
    pub options: PgConnectOptions,
    /// The private cluster, when this process started it (and so stops it).
    pub started: Option<PrivateCluster>,
}

impl Server {
    /// Connection options for another database of the same server (tests create theirs).
    pub fn database(&self, name: &str) -> PgConnectOptions {
        self.options.clone().database(name)
    }

    /// Stops the private cluster if this process started it.
    pub fn shutdown(&self) {
        if let Some(cluster) = &self.started {
            match cluster.stop() {
                Ok(()) => tracing::info!("private PostgreSQL cluster stopped"),
                Err(error) => {
                    tracing::warn!("could not stop the private PostgreSQL cluster: {error:#}")
                }
            }
        }
    }
}

pub const LOCAL_SERVER: (&str, u16) = ("127.0.0.1", 5432);

/// Resolves the embedded default described in the module documentation.
pub async fn resolve(
    database_url: Option<&str>,
    data_dir: &Path,
    database: &str,
) -> anyhow::Result<Server> {
    if let Some(url) = database_url {
        let options = PgConnectOptions::from_str(url)
            .context("DATABASE_URL is not a valid PostgreSQL URL")?;
        return Ok(Server {
            origin: Origin::DatabaseUrl,
            options,
            started: None,
        });
    }
    if let Some(options) = probe_local_server(LOCAL_SERVER.0, LOCAL_SERVER.1, database).await {
        return Ok(Server {
            origin: Origin::LocalServer,
            options,
            started: None,
        });
    }
    let Some(bin) = find_binaries() else {
        bail!(
            "no PostgreSQL found. Install it and run again: `sudo apt-get install -y postgresql` \
             (Debian, Ubuntu), `sudo dnf install -y postgresql-server` (Fedora), \
             `brew install postgresql@15` (macOS); or set DATABASE_URL to an existing server"
        );
    };
    let cluster = PrivateCluster::new(data_dir.join("postgres"), bin, None);
    let started = tokio::task::spawn_blocking({
        let cluster = cluster.clone();
        move || cluster.ensure_running()
    })
    .await
    .context("starting the private cluster")??;
    let options = cluster.options(database);
    ensure_database(&cluster.options("postgres"), database).await?;
    Ok(Server {
        origin: Origin::PrivateCluster,
        options,
        started: started.then_some(cluster),
    })
}

/// The server at `host:port` if it lets `postgres` in without a password, with `database` created
/// if it is missing. Any failure (nothing listening, password required) means "not this one".
pub async fn probe_local_server(host: &str, port: u16, database: &str) -> Option<PgConnectOptions> {
    // `new_without_pgpass`: PG* variables and ~/.pgpass must not turn this into a password login.
    let admin = PgConnectOptions::new_without_pgpass()
        .host(host)
        .port(port)
        .username("postgres")
        .database("postgres")
        .log_statements(tracing::log::LevelFilter::Debug);
    let attempt =
        tokio::time::timeout(Duration::from_secs(2), PgConnection::connect_with(&admin)).await;
    match attempt {
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
        }
        Ok(Err(error)) => {
            tracing::debug!("no password-less postgres on {host}:{port}: {error}");
            return None;
        }
        Err(_) => return None,
    }
    match ensure_database(&admin, database).await {
        Ok(()) => Some(admin.database(database)),
        Err(error) => {
            tracing::warn!(
                "postgres on {host}:{port} answered but the database could not be created: {error:#}"
            );
            None
        }
    }
}

/// Creates `database` unless it exists; safe when several processes race to create it.
pub async fn ensure_database(admin: &PgConnectOptions, database: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !database.is_empty()
            && database
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "database names are lowercase ascii, digits and underscores: {database:?}"
    );
    let mut connection = connect_with_retry(admin).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(database)
            .fetch_one(&mut connection)
            .await?;
    if !exists {
        let created = sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE \"{database}\""
        )))
        .execute(&mut connection)
        .await;
        match created {
            Ok(_) => tracing::info!("created database {database}"),
            // 42P04 duplicate_database, 23505 unique_violation: another process created it first.
            Err(sqlx::Error::Database(e))
                if matches!(e.code().as_deref(), Some("42P04" | "23505")) => {}
            Err(error) => return Err(error).context("CREATE DATABASE"),
        }
    }
    let _ = connection.close().await;
    Ok(())
}

/// A server that has just started may refuse connections for a moment ("starting up").
async fn connect_with_retry(options: &PgConnectOptions) -> anyhow::Result<PgConnection> {
    let mut last = None;
    for _ in 0..50 {
        match PgConnection::connect_with(options).await {
            Ok(connection) => return Ok(connection),
            Err(error) => last = Some(error),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(last
        .map(anyhow::Error::from)
        .unwrap_or_else(|| anyhow::anyhow!("no attempt")))
    .context("connecting to PostgreSQL")
}

/// The directory holding `initdb` and `pg_ctl`: PATH first, then the newest Debian/Ubuntu layout.
pub fn find_binaries() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH")
        && let Some(dir) = std::env::split_paths(&path).find(|dir| has_both(dir))
    {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_both(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// A PostgreSQL cluster private to this checkout: `root/data`, its log, and a socket directory.
#[derive(Debug, Clone)]
pub struct PrivateCluster {
    root: PathBuf,
    bin: PathBuf,
    /// Also listen on 127.0.0.1 at this port (tests use it to play the "local server").
    tcp_port: Option<u16>,
    /// PostgreSQL refuses to run as root: when we are root, it runs as this system user.
    run_as: Option<String>,
    socket_dir: PathBuf,
}

/// The port number names the socket file; with no TCP listener it clashes with nothing.
const SOCKET_PORT: u16 = 5432;

impl PrivateCluster {
    pub fn new(root: PathBuf, bin: PathBuf, tcp_port: Option<u16>) -> Self {
        let root = std::path::absolute(&root).unwrap_or(root);
        // Unix socket paths are limited to 107 bytes; deep checkouts get a short directory in /tmp.
        let mut socket_dir = root.join("run");
        if socket_dir.as_os_str().len() + ".s.PGSQL.5432".len() + 1 > 100 {
            let digest = hex::encode(
                &<sha2::Sha256 as sha2::Digest>::digest(root.as_os_str().as_encoded_bytes())[..6],
            );
            socket_dir = std::env::temp_dir().join(format!("nanoclip-pg-{digest}"));
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        let root_user = unsafe { libc::geteuid() } == 0;
        let run_as = root_user.then(|| "postgres".to_owned());
        Self {
            root,
            bin,
            tcp_port,
            run_as,
            socket_dir,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    pub fn options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new_without_pgpass()
            .socket(&self.socket_dir)
            .port(self.tcp_port.unwrap_or(SOCKET_PORT))
            .username("postgres")
            .database(database)
            .log_statements(tracing::log::LevelFilter::Debug)
    }

    /// Initialises the cluster if needed and starts it unless it runs already. Returns whether
    /// this call started it. A file lock serialises processes doing this at the same time.
    pub fn ensure_running(&self) -> anyhow::Result<bool> {
        fs::create_dir_all(&self.root)
            .with_context(|| format!("creating {}", self.root.display()))?;
        let lock =
            File::create(self.root.join(".lock")).context("creating the cluster lock file")?;
        lock.lock().context("locking the cluster")?;
        let result = self.ensure_running_locked();
        let _ = lock.unlock();
        result
    }

    fn ensure_running_locked(&self) -> anyhow::Result<bool> {
        // Connecting to the socket is much cheaper than running pg_ctl (and runuser as root).
        let socket = self
            .socket_dir
            .join(format!(".s.PGSQL.{}", self.tcp_port.unwrap_or(SOCKET_PORT)));
        if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
            return Ok(false);
        }
        fs::create_dir_all(&self.socket_dir)?;
        fs::create_dir_all(self.root.join("log"))?;
        if let Some(user) = &self.run_as {
            self.hand_over_to(user)?;
        }
        let data = self.data_dir();
        if !data.join("PG_VERSION").exists() {
            tracing::info!(
                "initialising a private PostgreSQL cluster in {}",
                data.display()
            );
            let _ = fs::remove_dir_all(&data);
            self.pg(
                "initdb",
                &[
                    "-D",
                    path_str(&data)?,
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ],
            )
            .or_else(|_| {
                let _ = fs::remove_dir_all(&data);
                self.pg(
                    "initdb",
                    &[
                        "-D",
                        path_str(&data)?,
                        "-U",
                        "postgres",
                        "--auth=trust",
                        "-E",
                        "UTF8",
                        "--no-locale",
                    ],
                )
            })
            .context("initdb failed")?;
            let listen = if self.tcp_port.is_some() {
                "127.0.0.1"
            } else {
                ""
            };
            let settings = format!(
                "\n# Written by nanoclip: a private cluster, reachable only through its own socket.\n\
                 listen_addresses = '{listen}'\nport = {port}\nunix_socket_directories = '{socket}'\n\
                 unix_socket_permissions = 0770\nmax_connections = 300\n",
                port = self.tcp_port.unwrap_or(SOCKET_PORT),
                socket = self.socket_dir.display(),
            );
            let conf = data.join("postgresql.conf");
            let mut text = fs::read_to_string(&conf).context("reading postgresql.conf")?;
            text.push_str(&settings);
            fs::write(&conf, text).context("writing postgresql.conf")?;
        }
        if self
            .pg("pg_ctl", &["status", "-D", path_str(&data)?])
            .is_ok()
        {
            return Ok(false);
        }
        let log = self.root.join("log").join("postgresql.log");
        self.pg(
            "pg_ctl",
            &[
                "start",
                "-D",
                path_str(&data)?,
                "-l",
                path_str(&log)?,
                "-w",
                "-t",
                "60",
            ],
        )
        .with_context(|| format!("pg_ctl start failed; see {}", log.display()))?;
        tracing::info!(
            "private PostgreSQL cluster started (socket in {})",
            self.socket_dir.display()
        );
        Ok(true)
    }

    pub fn stop(&self) -> anyhow::Result<()> {
        let data = self.data_dir();
        self.pg(
            "pg_ctl",
            &[
                "stop",
                "-D",
                path_str(&data)?,
                "-m",
                "fast",
                "-w",
                "-t",
                "60",
            ],
        )?;
        Ok(())
    }

    /// Starts it again after `stop` (tests of recovery).
    pub fn start(&self) -> anyhow::Result<()> {
        self.ensure_running().map(|_| ())
    }

    fn pg(&self, program: &str, args: &[&str]) -> anyhow::Result<Output> {
        let binary = self.bin.join(program);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(&binary);
                command
            }
            None => Command::new(&binary),
        };
        // The server must not inherit our stdout: a test runner waits for it to close.
        let output = command
            .args(args)
            .env("LC_ALL", "C.UTF-8")
            .stdin(std::process::Stdio::null())
            .output()
            .with_context(|| format!("running {}", binary.display()))?;
        if output.status.success() {
            Ok(output)
        } else {
            bail!(
                "{program} {}: {}",
                args.first().unwrap_or(&""),
                String::from_utf8_lossy(&output.stderr).trim()
            )
        }
    }

    /// As root: give the cluster's directories to `user` and make sure it can reach them.
    fn hand_over_to(&self, user: &str) -> anyhow::Result<()> {
        let status = Command::new("chown")
            .args(["-R", &format!("{user}:")])
            .arg(&self.root)
            .arg(&self.socket_dir)
            .status()?;
        anyhow::ensure!(
            status.success(),
            "chown of the cluster to {user} failed (is the postgresql package installed?)"
        );
        for dir in [&self.root, &self.socket_dir] {
            for ancestor in dir.ancestors().skip(1) {
                let Ok(meta) = fs::metadata(ancestor) else {
                    continue;
                };
                let mode = meta.permissions().mode();
                if mode & 0o001 == 0 {
                    tracing::warn!(
                        "allowing other users to traverse {} so that {user} reaches the cluster",
                        ancestor.display()
                    );
                    fs::set_permissions(ancestor, fs::Permissions::from_mode(mode | 0o001))?;
                }
            }
        }
        Ok(())
    }
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("path is not UTF-8: {}", path.display()))
}
