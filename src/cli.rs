//! The command line: `nanoclip [serve|migrate|create-staff|seed-demo|run-job|credits|
//! check-ledger|renew|limits|api-key]`, and how a command writes its answer on standard output
//! (`say`).

use clap::{Parser, Subcommand};

use crate::operator::{Said, words};

/// The command line, or the exit code of its help, its version, or its French error on
/// standard error (clap words its own errors in English).
pub fn parse() -> Result<Cli, std::process::ExitCode> {
    use clap::error::{ContextKind, ErrorKind};
    use std::io::Write;
    let error = match Cli::try_parse() {
        Ok(cli) => return Ok(cli),
        Err(error) => error,
    };
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = error.print();
            return Err(std::process::ExitCode::SUCCESS);
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            return Err(std::process::ExitCode::from(2));
        }
        _ => {}
    }
    let text = |kind| {
        error
            .get(kind)
            .map(|v| context_text(v, kind != ContextKind::InvalidValue))
    };
    // « nanoclip credits adjust »: the command and the subcommands named before the error.
    let mut path = vec!["nanoclip".to_owned()];
    let mut found = <Cli as clap::CommandFactory>::command();
    for arg in std::env::args_os().skip(1) {
        // Not UTF-8 (clap says so in its error): not a command's name.
        let Some(arg) = arg.to_str().map(str::to_owned) else {
            break;
        };
        let Some(sub) = found.find_subcommand(&arg).cloned() else {
            break;
        };
        path.push(arg);
        found = sub;
    }
    let path = path.join(" ");
    let help = || path.clone();
    // A positional value (`<JOB>`) is named by its command.
    let option = || match text(ContextKind::InvalidArg) {
        Some(arg) if arg.starts_with('<') => path.clone(),
        other => other.unwrap_or_default(),
    };
    let said = match error.kind() {
        ErrorKind::MissingRequiredArgument => Said::MissingOptions {
            options: option(),
            help: help(),
        },
        ErrorKind::UnknownArgument => Said::UnknownOption {
            option: option(),
            suggestion: text(ContextKind::SuggestedArg),
            help: help(),
        },
        ErrorKind::InvalidSubcommand => Said::UnknownCommand {
            command: text(ContextKind::InvalidSubcommand).unwrap_or_default(),
            suggestion: text(ContextKind::SuggestedSubcommand),
            help: help(),
        },
        // « --reason » last, without its value.
        ErrorKind::InvalidValue
            if text(ContextKind::InvalidValue).is_none_or(|raw| raw.is_empty()) =>
        {
            Said::MissingValue {
                option: option(),
                help: help(),
            }
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => Said::BadValue {
            option: option(),
            raw: text(ContextKind::InvalidValue).unwrap_or_default(),
            valid: text(ContextKind::ValidValue),
            help: help(),
        },
        ErrorKind::ArgumentConflict => Said::RepeatedOption {
            option: option(),
            help: help(),
        },
        _ => Said::BadArguments { help: help() },
    };
    let _ = writeln!(std::io::stderr(), "{}", words(&said));
    Err(std::process::ExitCode::from(2))
}

/// A piece of clap's error context as plain text; `names`: options without their value's name
/// (`--reason`, not `--reason <REASON>`).
fn context_text(value: &clap::error::ContextValue, names: bool) -> String {
    use clap::error::ContextValue;
    let bare = |s: String| {
        if names {
            s.split(' ').next().unwrap_or_default().to_owned()
        } else {
            s
        }
    };
    match value {
        ContextValue::String(s) => bare(s.clone()),
        ContextValue::Strings(list) => list
            .iter()
            .map(|s| bare(s.clone()))
            .collect::<Vec<_>>()
            .join(", "),
        ContextValue::StyledStr(s) => bare(s.to_string()),
        ContextValue::StyledStrs(list) => list
            .iter()
            .map(|s| bare(s.to_string()))
            .collect::<Vec<_>>()
            .join(", "),
        ContextValue::Number(n) => n.to_string(),
        ContextValue::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

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
    /// --password-stdin is given, then the link that sets up the second factor (valid 72 hours).
    CreateStaff {
        /// The staff member's e-mail address.
        #[arg(long)]
        email: String,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        /// For an existing staff account: only print a new second-factor link (a lost phone).
        #[arg(long)]
        second_factor_only: bool,
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
    /// Credits of an organisation (staff operations).
    Credits {
        #[command(subcommand)]
        command: CreditsCommand,
    },
    /// Recompute every balance from the credit ledger; exit 0 and « 0 écart » when all agree,
    /// else list each difference and exit 1.
    CheckLedger,
    /// Run the subscription renewals that are due (the server also runs them by itself).
    Renew,
    /// Fair-use limits of an organisation.
    Limits {
        #[command(subcommand)]
        command: LimitsCommand,
    },
    /// Plan Réseau API keys.
    ApiKey {
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum LimitsCommand {
    /// A temporary raise for an event: its caps replace the plan's from --from (default: today,
    /// Europe/Paris) to --until inclusive; it replaces any raise in force.
    Raise {
        /// The organisation, named by its owner's e-mail address.
        #[arg(long)]
        organisation: String,
        /// Generations per day.
        #[arg(long, allow_hyphen_values = true)]
        daily: String,
        /// Credits spent per month.
        #[arg(long, allow_hyphen_values = true)]
        monthly: String,
        /// Renders at the same time.
        #[arg(long, allow_hyphen_values = true)]
        concurrent: String,
        /// The last day of the raise (YYYY-MM-DD, inclusive).
        #[arg(long)]
        until: String,
        /// Why (the event).
        #[arg(long)]
        reason: String,
        /// The first day (YYYY-MM-DD); default: today.
        #[arg(long)]
        from: Option<String>,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key for a Plan Réseau organisation; prints it once, alone on the last line.
    Create {
        /// The organisation, named by its owner's e-mail address.
        #[arg(long)]
        organisation: String,
        /// A name to recognise the key by.
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum CreditsCommand {
    /// A staff adjustment: adds credits (in a new bucket) or removes them (never below zero),
    /// recorded in the ledger with the reason; prints the new available balance.
    Adjust {
        /// The organisation, named by its owner's e-mail address.
        #[arg(long)]
        organisation: String,
        /// Credits to add, or to remove when negative (`--credits=-30` or `--credits -30`).
        #[arg(long, allow_hyphen_values = true)]
        credits: String,
        /// Why (kept in the ledger).
        #[arg(long)]
        reason: String,
        /// The last day added credits can be used (YYYY-MM-DD, Europe/Paris); default: a year.
        #[arg(long)]
        expires: Option<String>,
    },
}

/// Writes `lines` on standard output, each ended by a newline. A reader that went away
/// (`nanoclip check-ledger | head -1`) ends the writing quietly, as a Unix tool's output ends,
/// where `println!` panicked; the command's outcome and exit status stay what they were. Any
/// other failure to write (a full disk) is the command's error.
pub fn say<I>(lines: I) -> std::io::Result<()>
where
    I: IntoIterator,
    I::Item: std::fmt::Display,
{
    use std::io::{ErrorKind, Write};
    let mut out = std::io::stdout().lock();
    let written = lines
        .into_iter()
        .try_for_each(|line| writeln!(out, "{line}"))
        .and_then(|()| out.flush());
    match written {
        Err(error) if error.kind() == ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
