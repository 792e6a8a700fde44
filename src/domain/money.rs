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

#[cfg(test)]
mod tests {
    use super::*;

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
