//! Template filters: French formats for dates, money and numbers.

use askama::Values;

use crate::domain::format;

/// « 24 novembre 2026 »
#[askama::filter_fn]
pub fn date_fr(value: &time::Date, _: &dyn Values) -> askama::Result<String> {
    Ok(format::date_fr(*value))
}

/// « 29,00 € » from integer cents.
#[askama::filter_fn]
pub fn euros(cents: &i64, _: &dyn Values) -> askama::Result<String> {
    Ok(format::euros(*cents))
}

/// « 1 234 » with a narrow no-break space between thousands.
#[askama::filter_fn]
pub fn nombre(value: &i64, _: &dyn Values) -> askama::Result<String> {
    Ok(format::thousands(*value))
}
