//! Template filters: French formats for dates, money and numbers.

use askama::Values;

use crate::domain::format;
use crate::domain::money::{Cents, Credits};

/// Values the filters accept, whatever depth of reference a template hands over.
pub trait Value<T> {
    fn get(&self) -> T;
}

impl Value<time::Date> for time::Date {
    fn get(&self) -> time::Date {
        *self
    }
}

impl Value<time::OffsetDateTime> for time::OffsetDateTime {
    fn get(&self) -> time::OffsetDateTime {
        *self
    }
}

impl Value<i64> for i64 {
    fn get(&self) -> i64 {
        *self
    }
}

impl Value<Cents> for Cents {
    fn get(&self) -> Cents {
        *self
    }
}

impl Value<i64> for Credits {
    fn get(&self) -> i64 {
        self.0
    }
}

impl<T, V: Value<T> + ?Sized> Value<T> for &V {
    fn get(&self) -> T {
        (**self).get()
    }
}

/// « 24 novembre 2026 »
#[askama::filter_fn]
pub fn date_fr<V: Value<time::Date>>(value: V, _: &dyn Values) -> askama::Result<String> {
    Ok(format::date_fr(value.get()))
}

/// « 4 décembre 2026 à 23 h 49 »: an instant, in Paris time.
#[askama::filter_fn]
pub fn moment_fr<V: Value<time::OffsetDateTime>>(
    value: V,
    _: &dyn Values,
) -> askama::Result<String> {
    Ok(format::moment_fr(value.get()))
}

/// « 4 décembre 2026 »: the Paris day of an instant.
#[askama::filter_fn]
pub fn jour_fr<V: Value<time::OffsetDateTime>>(value: V, _: &dyn Values) -> askama::Result<String> {
    Ok(format::date_fr(format::paris(value.get()).date()))
}

/// « 29,00 € » from `Cents` (a bare integer does not compile: no amount without its unit).
#[askama::filter_fn]
pub fn euros<V: Value<Cents>>(cents: V, _: &dyn Values) -> askama::Result<String> {
    Ok(cents.get().euros())
}

/// « 1 234 » with a narrow no-break space between thousands (a count or `Credits`).
#[askama::filter_fn]
pub fn nombre<V: Value<i64>>(value: V, _: &dyn Values) -> askama::Result<String> {
    Ok(format::thousands(value.get()))
}

/// French typography on free text the reader sees (a reason typed by staff): a narrow no-break
/// space before ; : ! ? » and after «, as the templates have it.
#[askama::filter_fn]
pub fn typographie<S: std::fmt::Display>(value: S, _: &dyn Values) -> askama::Result<String> {
    Ok(crate::content::text::typography(&value.to_string()))
}

/// A list item continuing a sentence: its first letter in lower case (« Voix premium » →
/// « voix premium »), unless the word is an acronym or a number (« API », « 4K » are kept).
#[askama::filter_fn]
pub fn minuscule<S: std::fmt::Display>(value: S, _: &dyn Values) -> askama::Result<String> {
    let text = value.to_string();
    let mut chars = text.chars();
    Ok(match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if first.is_uppercase() && second.is_lowercase() => {
            first.to_lowercase().chain(text.chars().skip(1)).collect()
        }
        _ => text,
    })
}
