//! The operator commands of the contract that move credits: `credits adjust`, `limits raise`,
//! `check-ledger` and `renew`, through the services the back office uses too. Each prints one
//! line on standard output saying what it did, and refuses bad input with a French message
//! (`templates/messages/operator.txt`) and a non-zero exit.

use askama::Template;
use uuid::Uuid;

use crate::cli::say;
use crate::clock::Clock;
use crate::config::Config;
use crate::db;
use crate::domain::ledger::{AdjustmentError, parse_adjustment};
use crate::services::credits::{self, Adjustment, CreditError};
use crate::services::limits::{self, LimitError};
use crate::startup::with_pool;

/// A command that did not do what was asked, with its French explanation and exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    pub message: String,
    pub code: u8,
}

/// What the operator commands say, worded in `templates/messages/operator.txt`.
#[derive(Debug, Clone)]
pub enum Said {
    UnknownOrganisation {
        email: String,
    },
    NotAnOwner {
        email: String,
    },
    BadCredits {
        raw: String,
        error: AdjustmentError,
    },
    EmptyReason,
    BadDate {
        option: &'static str,
        raw: String,
    },
    ExpiryPassed,
    NotEnough {
        wanted: i64,
        available: i64,
    },
    Adjusted {
        credits: i64,
        email: String,
        available: i64,
    },
    LedgerClean,
    LedgerDifference {
        organisation: Uuid,
        what: String,
        expected: i64,
        found: i64,
    },
    LedgerDifferences {
        count: usize,
    },
    Renewed {
        periods: u64,
    },
    BadLimit {
        option: &'static str,
        raw: String,
    },
    RaiseDatesReversed,
    RaiseOver,
    Raised {
        email: String,
        daily: i64,
        monthly: i64,
        concurrent: i64,
        first_day: String,
        last_day: String,
    },
    BadKeyName,
    PlanWithoutApi {
        email: String,
    },
    KeyCreated {
        email: String,
        name: String,
    },
    /// The command line itself, as clap found it wrong (`cli::parse`); `help` is the command
    /// whose `--help` lists its options.
    MissingOptions {
        options: String,
        help: String,
    },
    UnknownOption {
        option: String,
        suggestion: Option<String>,
        help: String,
    },
    UnknownCommand {
        command: String,
        suggestion: Option<String>,
        help: String,
    },
    BadValue {
        option: String,
        raw: String,
        valid: Option<String>,
        help: String,
    },
    RepeatedOption {
        option: String,
        help: String,
    },
    MissingValue {
        option: String,
        help: String,
    },
    BadArguments {
        help: String,
    },
}

#[derive(Template)]
#[template(path = "messages/operator.txt")]
struct Words<'a> {
    said: &'a Said,
}

pub fn words(said: &Said) -> String {
    Words { said }
        .render()
        .unwrap_or_else(|_| format!("{said:?}"))
}

fn refuse(said: Said) -> anyhow::Error {
    Refused {
        message: words(&said),
        code: 2,
    }
    .into()
}

/// The organisation an owner's e-mail address names.
async fn organisation_of(pool: &sqlx::PgPool, email: &str) -> anyhow::Result<Uuid> {
    let mut conn = pool.acquire().await?;
    let user = db::accounts::user_by_email(&mut conn, email.trim()).await?;
    match user {
        Some(user) if user.role == crate::domain::account::Role::Owner => {
            user.organisation_id.ok_or_else(|| {
                refuse(Said::UnknownOrganisation {
                    email: email.to_owned(),
                })
            })
        }
        Some(_) => Err(refuse(Said::NotAnOwner {
            email: email.to_owned(),
        })),
        None => Err(refuse(Said::UnknownOrganisation {
            email: email.to_owned(),
        })),
    }
}

/// `nanoclip credits adjust --organisation EMAIL --credits N --reason TEXT [--expires DATE]`
pub async fn adjust(
    config: Config,
    email: &str,
    credits_raw: &str,
    reason: &str,
    expires: Option<&str>,
) -> anyhow::Result<()> {
    let credits = parse_adjustment(credits_raw).map_err(|error| {
        refuse(Said::BadCredits {
            raw: credits_raw.to_owned(),
            error,
        })
    })?;
    let reason =
        crate::domain::price_edit::parse_reason(reason).map_err(|_| refuse(Said::EmptyReason))?;
    let reason = reason.as_str();
    let last_day = match expires {
        None => None,
        Some(raw) => Some(
            time::Date::parse(
                raw.trim(),
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .map_err(|_| {
                refuse(Said::BadDate {
                    option: "--expires",
                    raw: raw.to_owned(),
                })
            })?,
        ),
    };
    let line = with_pool(&config, async |pool, _| {
        let organisation = organisation_of(pool, email).await?;
        let key = format!("cli:{}", Uuid::new_v4());
        let adjustment = Adjustment {
            organisation,
            credits,
            reason,
            last_day,
            key: &key,
            actor: "cli",
        };
        match credits::adjust(pool, adjustment, Clock::system().now()).await {
            Ok(available) => Ok(words(&Said::Adjusted {
                credits: credits.0,
                email: email.to_owned(),
                available: available.0,
            })),
            Err(CreditError::NotEnough { available }) => Err(refuse(Said::NotEnough {
                wanted: -credits.0,
                available: available.0,
            })),
            Err(CreditError::ExpiryPassed) => Err(refuse(Said::ExpiryPassed)),
            Err(CreditError::UnknownOrganisation) => Err(refuse(Said::UnknownOrganisation {
                email: email.to_owned(),
            })),
            Err(other) => Err(other.into()),
        }
    })
    .await?;
    say([line])?;
    Ok(())
}

fn parse_day(raw: &str, option: &'static str) -> Result<time::Date, anyhow::Error> {
    time::Date::parse(
        raw.trim(),
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| {
        refuse(Said::BadDate {
            option,
            raw: raw.to_owned(),
        })
    })
}

fn parse_limit(raw: &str, option: &'static str, max: i64) -> Result<i64, anyhow::Error> {
    match raw.trim().parse::<i64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(refuse(Said::BadLimit {
            option,
            raw: raw.to_owned(),
        })),
    }
}

/// The options of `limits raise`, as typed.
pub struct RaiseArgs<'a> {
    pub daily: &'a str,
    pub monthly: &'a str,
    pub concurrent: &'a str,
    pub until: &'a str,
    pub reason: &'a str,
    pub from: Option<&'a str>,
}

/// `nanoclip limits raise --organisation EMAIL --daily N --monthly N --concurrent N --until DATE --reason TEXT [--from DATE]`
pub async fn raise_limits(config: Config, email: &str, args: RaiseArgs<'_>) -> anyhow::Result<()> {
    let daily = parse_limit(args.daily, "--daily", limits::MAX_DAILY)?;
    let monthly = parse_limit(args.monthly, "--monthly", limits::MAX_MONTHLY)?;
    let concurrent = parse_limit(args.concurrent, "--concurrent", limits::MAX_CONCURRENT)?;
    let last_day = parse_day(args.until, "--until")?;
    let first_day = args.from.map(|raw| parse_day(raw, "--from")).transpose()?;
    let reason = crate::domain::price_edit::parse_reason(args.reason)
        .map_err(|_| refuse(Said::EmptyReason))?;
    let reason = reason.as_str();
    let line = with_pool(&config, async |pool, _| {
        let organisation = organisation_of(pool, email).await?;
        let raise = limits::Raise {
            organisation,
            daily,
            monthly,
            concurrent,
            first_day,
            last_day,
            reason,
            actor: "cli",
        };
        match limits::raise(pool, raise, Clock::system().now()).await {
            Ok(raised) => Ok(words(&Said::Raised {
                email: email.to_owned(),
                daily,
                monthly,
                concurrent,
                first_day: crate::domain::format::date_fr(raised.first_day),
                last_day: crate::domain::format::date_fr(raised.last_day),
            })),
            Err(LimitError::DatesReversed) => Err(refuse(Said::RaiseDatesReversed)),
            Err(LimitError::Over) => Err(refuse(Said::RaiseOver)),
            Err(LimitError::UnknownOrganisation) => Err(refuse(Said::UnknownOrganisation {
                email: email.to_owned(),
            })),
            Err(other) => Err(other.into()),
        }
    })
    .await?;
    say([line])?;
    Ok(())
}

/// `nanoclip api-key create --organisation EMAIL --name TEXT`: the key alone on the last line.
pub async fn create_api_key(config: Config, email: &str, name: &str) -> anyhow::Result<()> {
    let (line, key) = with_pool(&config, async |pool, _| {
        let organisation = organisation_of(pool, email).await?;
        let mut conn = pool.acquire().await?;
        let org = db::accounts::organisation(&mut conn, organisation)
            .await?
            .ok_or_else(|| {
                refuse(Said::UnknownOrganisation {
                    email: email.to_owned(),
                })
            })?;
        let allows_api: bool =
            sqlx::query_scalar!("SELECT allows_api FROM plans WHERE id = $1", org.plan_id)
                .fetch_one(&mut *conn)
                .await?;
        drop(conn);
        match crate::services::api_keys::create(
            pool,
            organisation,
            allows_api,
            name,
            "cli",
            None,
            Clock::system().now(),
        )
        .await
        {
            Ok((_, key)) => Ok((
                words(&Said::KeyCreated {
                    email: email.to_owned(),
                    name: name.trim().to_owned(),
                }),
                key,
            )),
            Err(crate::services::api_keys::KeyError::PlanWithoutApi) => {
                Err(refuse(Said::PlanWithoutApi {
                    email: email.to_owned(),
                }))
            }
            Err(crate::services::api_keys::KeyError::BadName) => Err(refuse(Said::BadKeyName)),
            Err(other) => Err(other.into()),
        }
    })
    .await?;
    say([line, key])?;
    Ok(())
}

/// `nanoclip check-ledger`
pub async fn check_ledger(config: Config) -> anyhow::Result<()> {
    let differences = with_pool(&config, async |pool, _| Ok(credits::check(pool).await?)).await?;
    if differences.is_empty() {
        say([words(&Said::LedgerClean)])?;
        return Ok(());
    }
    say(differences.iter().map(|d| {
        words(&Said::LedgerDifference {
            organisation: d.organisation_id,
            what: d.what.clone(),
            expected: d.expected,
            found: d.found,
        })
    }))?;
    Err(Refused {
        message: words(&Said::LedgerDifferences {
            count: differences.len(),
        }),
        code: 1,
    }
    .into())
}

/// `nanoclip renew`
pub async fn renew(config: Config) -> anyhow::Result<()> {
    let periods = with_pool(&config, async |pool, _| {
        let renewals = crate::services::billing::Renewals {
            payments: crate::services::payments::Payments::from_config(&config)?,
            public_url: config.public_url.clone(),
        };
        Ok(crate::services::billing::renew_due(pool, &renewals, Clock::system().now()).await?)
    })
    .await?;
    say([words(&Said::Renewed { periods })])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_in_the_commands_lines() {
        let said = Said::Adjusted {
            credits: 1,
            email: "a@b.fr".into(),
            available: 1,
        };
        assert_eq!(
            words(&said),
            "Ajustement de +1 crédit pour l’organisation de a@b.fr : solde disponible 1 crédit."
        );
        let said = Said::NotEnough {
            wanted: 2,
            available: 1,
        };
        assert_eq!(
            words(&said),
            "Impossible de retirer 2 crédits : le solde disponible n’est que de 1 crédit. Rien n’a été retiré."
        );
        let said = Said::Raised {
            email: "a@b.fr".into(),
            daily: 1,
            monthly: 1,
            concurrent: 1,
            first_day: "2026-12-24".into(),
            last_day: "2026-12-25".into(),
        };
        assert!(
            words(&said)
                .ends_with("inclus : 1 génération par jour, 1 crédit par mois, 1 rendu à la fois."),
            "{}",
            words(&said)
        );
    }
}
