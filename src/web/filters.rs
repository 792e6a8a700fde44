//! Template filters: French formats for dates, money and numbers.

use std::borrow::Borrow;

use askama::Values;

use crate::domain::format;

/// « 24 novembre 2026 »
#[askama::filter_fn]
pub fn date_fr<T: Borrow<time::Date>>(value: T, _: &dyn Values) -> askama::Result<String> {
    Ok(format::date_fr(*value.borrow()))
}

/// « 29,00 € » from integer cents.
#[askama::filter_fn]
pub fn euros<T: Borrow<i64>>(cents: T, _: &dyn Values) -> askama::Result<String> {
    Ok(format::euros(*cents.borrow()))
}

/// « 1 234 » with a narrow no-break space between thousands.
#[askama::filter_fn]
pub fn nombre<T: Borrow<i64>>(value: T, _: &dyn Values) -> askama::Result<String> {
    Ok(format::thousands(*value.borrow()))
}
