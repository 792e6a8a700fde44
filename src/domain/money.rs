//! Money and credits as integers: `Cents` (euros × 100, VAT included) and `Credits`. No floats;
//! the French formats are `format`'s, used by the templates' filters.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, Sub};

use serde::Serialize;

use super::format;

/// An amount in euro cents. Stored as a `bigint` (see `db::types`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Cents(pub i64);

/// A number of credits. Stored as a `bigint` (see `db::types`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Credits(pub i64);

impl Cents {
    /// « 1 234,50 € »: comma, narrow no-break spaces between thousands, no-break space before €.
    pub fn euros(self) -> String {
        format::euros(self.0)
    }
}

impl Credits {
    /// « 1 234 », without the unit (the sentence says « crédits »).
    pub fn french(self) -> String {
        format::thousands(self.0)
    }
}

macro_rules! integer_ops {
    ($name:ident) => {
        impl Add for $name {
            type Output = $name;
            fn add(self, other: $name) -> $name {
                $name(self.0 + other.0)
            }
        }

        impl Sub for $name {
            type Output = $name;
            fn sub(self, other: $name) -> $name {
                $name(self.0 - other.0)
            }
        }

        impl Sum for $name {
            fn sum<I: Iterator<Item = $name>>(iter: I) -> $name {
                $name(iter.map(|v| v.0).sum())
            }
        }

        impl From<i64> for $name {
            fn from(value: i64) -> $name {
                $name(value)
            }
        }

        /// The bare number (templates add the unit).
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

integer_ops!(Cents);
integer_ops!(Credits);

/// A whole number of credits as people type it: « 20 », « 20 crédits », « 1 000 »,
/// « 1 000 credits » (spaces, no-break spaces or dots between thousands; the unit optional,
/// with or without its accent or plural). `None` for anything else.
pub fn parse_credits(typed: &str) -> Option<i64> {
    let lower = typed.trim().to_lowercase();
    let number = ["crédits", "credits", "crédit", "credit"]
        .iter()
        .find_map(|unit| lower.strip_suffix(unit))
        .unwrap_or(&lower);
    let digits: String = number
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}' | '.'))
        .collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credits_are_read_as_people_type_them() {
        for (typed, read) in [
            ("20", Some(20)),
            (" 20 crédits ", Some(20)),
            ("20 Credits", Some(20)),
            ("1 crédit", Some(1)),
            ("1\u{a0}000", Some(1000)),
            ("1\u{202f}000 crédits", Some(1000)),
            ("1.000", Some(1000)),
            ("0", Some(0)),
            ("", None),
            ("crédits", None),
            ("-5", None),
            ("2,5", None),
            ("vingt", None),
            ("99999999999999999999", None),
        ] {
            assert_eq!(parse_credits(typed), read, "{typed:?}");
        }
    }

    #[test]
    fn cents_are_written_as_french_euros() {
        assert_eq!(Cents(2900).euros(), "29,00\u{a0}€");
        assert_eq!(Cents(9900) - Cents(1650), Cents(8250));
        assert_eq!([Cents(1), Cents(2)].into_iter().sum::<Cents>(), Cents(3));
    }

    #[test]
    fn credits_are_grouped_by_thousands() {
        assert_eq!(Credits(1500).french(), "1\u{202f}500");
        assert_eq!(Credits(3).to_string(), "3");
        assert_eq!(Credits(2) + Credits(3), Credits(5));
    }
}
