//! The command line: `nanoclip [serve|migrate|create-staff|seed-demo|run-job]`.

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

#[derive(Debug, Default, Clone, Subcommand)]
pub enum Command {
    /// Serve the portal (the default). Applies pending migrations, then prints the URL to open.
    ///
    /// Without DATABASE_URL, uses the PostgreSQL server on 127.0.0.1:5432 if it accepts the
    /// `postgres` user without a password, or else starts a private cluster under var/postgres.
    #[default]
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Create a NanoClip staff account (back office). Prints a generated password unless
    /// --password-stdin is given.
    CreateStaff {
        /// The staff member's e-mail address.
        #[arg(long)]
        email: String,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Create a demo organisation on each plan, with an owner and a member, and print their
    /// development passwords. Refused when NANOCLIP_ENV=production.
    SeedDemo,
    /// Run one background job once, then exit (the server runs them by itself on a schedule);
    /// prints what it did.
    RunJob {
        /// The job's name.
        #[arg(value_enum)]
        job: crate::jobs::Job,
    },
}
