//! Staff's price forms, parsed: a new version of the schedule (its date, its values) and a pack
//! (its name, credits, price). Pure: today's date is an argument. Each problem names its field;
//! the templates word it in French.

use time::{Date, OffsetDateTime};

use super::catalog::Pack;
use super::money::{Cents, Credits};
use super::pricing::{CreationType, Rule, RuleKind, Schedule};

/// Credits of a rule, percent of a credit per page, credits of a pack: at most this.
pub const MAX_CREDITS: i64 = 1_000;
pub const MAX_PERCENT: i64 = 1_000;
pub const MAX_PACK_CREDITS: i64 = 100_000;
/// 10 000,00 €.
pub const MAX_PRICE_CENTS: i64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// Not a date written 2027-01-01.
    DateFormat,
    /// Before today (Europe/Paris).
    DatePast,
    ReasonMissing,
    ReasonTooLong,
    /// A value that is not a whole number (or, for a price, an amount in euros).
    NotANumber,
    /// Zero or negative.
    NotPositive,
    TooLarge,
    NameMissing,
    NameTooLong,
    /// A pack's id: lowercase letters, digits and hyphens.
    IdFormat,
    /// A pack's id already taken.
    IdTaken,
    /// The restriction is not a creation type.
    UnknownType,
    /// The schedule changed since the form was shown: reload it.
    Stale,
}

/// Problems by field: `date`, `motif`, `regle-N`, `id`, `nom`, `credits`, `prix`, `type`.
pub type Problems = Vec<(String, Problem)>;

/// The date a version takes effect: today or later, Europe/Paris days.
pub fn parse_effective_date(raw: &str, today: Date) -> Result<Date, Problem> {
    let date = Date::parse(
        raw.trim(),
        &time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| Problem::DateFormat)?;
    if date < today {
        return Err(Problem::DatePast);
    }
    Ok(date)
}

/// A required reason for the audit log: 1 to 500 characters, with something to read (a reason
/// made only of spaces, punctuation or invisible characters such as U+200B is missing).
pub fn parse_reason(raw: &str) -> Result<String, Problem> {
    let reason = raw.trim_matches(|c: char| c.is_whitespace() || is_invisible(c));
    if !reason.chars().any(char::is_alphanumeric) {
        return Err(Problem::ReasonMissing);
    }
    match reason.chars().count() {
        0 => Err(Problem::ReasonMissing),
        1..=500 => Ok(reason.to_owned()),
        _ => Err(Problem::ReasonTooLong),
    }
}

/// A character that shows nothing: zero-width spaces and joiners, the word joiner, the byte order
/// mark, soft hyphen, and other format characters.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}'
    )
}

/// A positive whole number up to `max`; spaces (thousands) are ignored.
pub fn parse_positive(raw: &str, max: i64) -> Result<i64, Problem> {
    let digits: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}'))
        .collect();
    match digits.parse::<i64>() {
        Ok(n) if n <= 0 => Err(Problem::NotPositive),
        Ok(n) if n > max => Err(Problem::TooLarge),
        Ok(n) => Ok(n),
        Err(_) => Err(Problem::NotANumber),
    }
}

/// A price in euros as French write it (« 12 », « 12,50 », « 12.5 », « 12,00 € ») in cents.
pub fn parse_price(raw: &str) -> Result<Cents, Problem> {
    let cleaned: String = raw
        .trim()
        .trim_end_matches('€')
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}'))
        .collect();
    let cleaned = cleaned.replace(',', ".");
    let negative = cleaned.starts_with('-');
    let unsigned = cleaned.trim_start_matches(['-', '+']);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let well_formed = !whole.is_empty()
        && whole.len() <= 9
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.len() <= 2
        && fraction.bytes().all(|b| b.is_ascii_digit());
    if !well_formed {
        return Err(Problem::NotANumber);
    }
    let whole: i64 = whole.parse().map_err(|_| Problem::NotANumber)?;
    let fraction: i64 = match fraction.len() {
        0 => 0,
        1 => fraction.parse::<i64>().map_err(|_| Problem::NotANumber)? * 10,
        _ => fraction.parse().map_err(|_| Problem::NotANumber)?,
    };
    let cents = whole * 100 + fraction;
    if negative || cents == 0 {
        return Err(Problem::NotPositive);
    }
    if cents > MAX_PRICE_CENTS {
        return Err(Problem::TooLarge);
    }
    Ok(Cents(cents))
}

/// The rules of a new version: `base`'s rules (same order) with the values typed, one per
/// rule (credits, or percent of a credit per page).
pub fn new_rules(base: &Schedule, values: &[String]) -> Result<Vec<Rule>, Problems> {
    let mut problems = Problems::new();
    let mut rules = Vec::with_capacity(base.rules.len());
    for (i, rule) in base.rules.iter().enumerate() {
        let raw = values.get(i).map(String::as_str).unwrap_or("");
        let max = match rule.kind {
            RuleKind::PerPage { .. } => MAX_PERCENT,
            _ => MAX_CREDITS,
        };
        match parse_positive(raw, max) {
            Ok(value) => rules.push(Rule {
                kind: match rule.kind {
                    RuleKind::Tier { up_to, .. } => RuleKind::Tier {
                        up_to,
                        credits: value,
                    },
                    RuleKind::Surcharge4k { .. } => RuleKind::Surcharge4k { credits: value },
                    RuleKind::PerPage { illustrations, .. } => RuleKind::PerPage {
                        illustrations,
                        percent: value,
                    },
                },
                ..rule.clone()
            }),
            Err(problem) => problems.push((format!("regle-{i}"), problem)),
        }
    }
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(problems)
    }
}

/// The value of a rule as the form shows it.
pub fn rule_value(rule: &Rule) -> i64 {
    match rule.kind {
        RuleKind::Tier { credits, .. } | RuleKind::Surcharge4k { credits } => credits,
        RuleKind::PerPage { percent, .. } => percent,
    }
}

/// A pack's fields as typed.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct PackForm {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub nom: String,
    #[serde(default)]
    pub credits: String,
    #[serde(default)]
    pub prix: String,
    /// Empty: any creation; else a creation type's id.
    #[serde(default, rename = "type")]
    pub restricted_to: String,
    #[serde(default)]
    pub motif: String,
}

/// A pack from its form; `id` is the pack's (given for a new pack, the existing one's for a
/// change).
pub fn parse_pack(form: &PackForm, id: &str) -> Result<(Pack, String), Problems> {
    let mut problems = Problems::new();
    let id_ok = (1..=40).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !id_ok {
        problems.push(("id".into(), Problem::IdFormat));
    }
    let name = form.nom.trim();
    match name.chars().count() {
        0 => problems.push(("nom".into(), Problem::NameMissing)),
        1..=100 => {}
        _ => problems.push(("nom".into(), Problem::NameTooLong)),
    }
    let credits = parse_positive(&form.credits, MAX_PACK_CREDITS)
        .map_err(|p| problems.push(("credits".into(), p)))
        .ok();
    let price = parse_price(&form.prix)
        .map_err(|p| problems.push(("prix".into(), p)))
        .ok();
    let restricted_to = match form.restricted_to.trim() {
        "" => None,
        raw => {
            let found = CreationType::parse(raw);
            if found.is_none() {
                problems.push(("type".into(), Problem::UnknownType));
            }
            found
        }
    };
    let reason = parse_reason(&form.motif)
        .map_err(|p| problems.push(("motif".into(), p)))
        .ok();
    match (credits, price, reason) {
        (Some(credits), Some(price_cents), Some(reason)) if problems.is_empty() => Ok((
            Pack {
                id: id.to_owned(),
                name: name.to_owned(),
                credits: Credits(credits),
                price_cents,
                restricted_to,
            },
            reason,
        )),
        _ => Err(problems),
    }
}

/// The first instant of `date` in Europe/Paris (22:00 or 23:00 UTC the day before).
pub fn paris_midnight(date: Date) -> OffsetDateTime {
    let midnight = date.midnight().assume_utc();
    // Paris is UTC+1 or UTC+2: the candidate whose Paris time is midnight of `date`.
    [1, 2]
        .into_iter()
        .map(|h| midnight - time::Duration::hours(h))
        .find(|t| super::format::paris(*t) == date.midnight())
        .unwrap_or(midnight - time::Duration::hours(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_needs_something_to_read() {
        for missing in [
            "",
            "   ",
            "\u{200b}",
            " \u{feff}\u{2060} ",
            "\u{ad}",
            "…",
            "- -",
        ] {
            assert_eq!(
                parse_reason(missing),
                Err(Problem::ReasonMissing),
                "{missing:?}"
            );
        }
        assert_eq!(
            parse_reason("\u{200b} Geste commercial (JMJ) \u{200b}").as_deref(),
            Ok("Geste commercial (JMJ)")
        );
        assert_eq!(parse_reason(&"a".repeat(501)), Err(Problem::ReasonTooLong));
    }
    use time::macros::{date, datetime};

    #[test]
    fn a_version_is_dated_today_or_later() {
        let today = date!(2026 - 12 - 05);
        assert_eq!(
            parse_effective_date("2026-12-04", today),
            Err(Problem::DatePast)
        );
        assert_eq!(parse_effective_date(" 2026-12-05 ", today), Ok(today));
        assert_eq!(
            parse_effective_date("05/12/2026", today),
            Err(Problem::DateFormat)
        );
    }

    #[test]
    fn prices_are_positive_amounts_in_euros() {
        assert_eq!(parse_price("12"), Ok(Cents(1200)));
        assert_eq!(parse_price("12,5"), Ok(Cents(1250)));
        assert_eq!(parse_price("1\u{202f}234,56\u{a0}€"), Ok(Cents(123_456)));
        assert_eq!(parse_price("0"), Err(Problem::NotPositive));
        assert_eq!(parse_price("-3"), Err(Problem::NotPositive));
        assert_eq!(parse_price("douze"), Err(Problem::NotANumber));
        assert_eq!(parse_price("1,234"), Err(Problem::NotANumber));
        assert_eq!(parse_price("20000"), Err(Problem::TooLarge));
        assert_eq!(parse_positive("0", 10), Err(Problem::NotPositive));
        assert_eq!(parse_positive("-2", 10), Err(Problem::NotPositive));
        assert_eq!(parse_positive("2,5", 10), Err(Problem::NotANumber));
    }

    #[test]
    fn midnight_in_paris_follows_summer_time() {
        assert_eq!(
            paris_midnight(date!(2027 - 01 - 01)),
            datetime!(2026-12-31 23:00 UTC)
        );
        assert_eq!(
            paris_midnight(date!(2027 - 07 - 01)),
            datetime!(2027-06-30 22:00 UTC)
        );
    }
}
