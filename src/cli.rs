//! The command line: `nanoclip [serve|migrate]`.

use clap::{Parser, Subcommand};

/// NanoClip portal: help centre, credit simulator and account pages.
///
/// Configuration comes from the environment (see README.md and .env.example); in development
/// every value has a working default, including the database.
#[derive(Debug, Parser)]
#[command(name = "nanoclip", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Default, Clone, Copy, Subcommand)]
pub enum Command {
    /// Serve the portal (the default). Applies pending migrations, then prints the URL to open.
    ///
    /// Without DATABASE_URL, uses the PostgreSQL server on 127.0.0.1:5432 if it accepts the
    /// `postgres` user without a password, or else starts a private cluster under var/postgres.
    #[default]
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
}
