//! NanoClip help centre and account portal.
//!
//! `run` is what the binary calls; tests build the same application with `startup::Application`.

pub mod admission;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod content;
pub mod db;
pub mod domain;
pub mod jobs;
pub mod operator;
pub mod pdf;
pub mod random;
pub mod services;
pub mod startup;
pub mod telemetry;
pub mod web;

use std::process::ExitCode;

use cli::{Cli, Command};
use config::Config;

/// Runs one command of the command line and turns its outcome into an exit code.
pub fn run(cli: Cli) -> ExitCode {
    telemetry::init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(errors) => {
            for line in errors.lines() {
                eprintln!("configuration error: {line}");
            }
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async move {
        match cli.command.unwrap_or_default() {
            Command::Serve => startup::serve(config).await,
            Command::Migrate => startup::migrate_only(config).await,
            Command::CreateStaff {
                email,
                password_stdin,
                second_factor_only,
            } => startup::create_staff(config, &email, password_stdin, second_factor_only).await,
            Command::SeedDemo => startup::seed_demo(config).await,
            Command::RunJob { job } => startup::run_job(config, job).await,
            Command::Credits {
                command:
                    cli::CreditsCommand::Adjust {
                        organisation,
                        credits,
                        reason,
                        expires,
                    },
            } => {
                operator::adjust(config, &organisation, &credits, &reason, expires.as_deref()).await
            }
            Command::CheckLedger => operator::check_ledger(config).await,
            Command::Renew => operator::renew(config).await,
            Command::Limits {
                command:
                    cli::LimitsCommand::Raise {
                        organisation,
                        daily,
                        monthly,
                        concurrent,
                        until,
                        reason,
                        from,
                    },
            } => {
                let raise = operator::RaiseArgs {
                    daily: &daily,
                    monthly: &monthly,
                    concurrent: &concurrent,
                    until: &until,
                    reason: &reason,
                    from: from.as_deref(),
                };
                operator::raise_limits(config, &organisation, raise).await
            }
            Command::ApiKey {
                command: cli::ApiKeyCommand::Create { organisation, name },
            } => operator::create_api_key(config, &organisation, &name).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => match error.downcast::<operator::Refused>() {
            // An operator's mistake or a finding: said in French, as it is.
            Ok(refused) => {
                eprintln!("{}", refused.message);
                ExitCode::from(refused.code)
            }
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        },
    }
}
