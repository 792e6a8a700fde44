//! The offer as data: plans, what each creation type accepts, packs. Loaded from the database;
//! pure structs here.

use serde::Serialize;

use super::money::{Cents, Credits};
use super::pricing::CreationType;

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub id: String,
    pub name: String,
    pub price_cents: Cents,
    pub credits_per_period: i64,
    pub rollover_cap: i64,
    pub features: Vec<String>,
    pub allows_4k: bool,
    pub allows_api: bool,
    pub daily_generations: i64,
    pub monthly_credits: i64,
    pub concurrent_renders: i64,
}

/// The accepted range of a creation type's main parameter (seconds or pages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeRange {
    pub creation_type: CreationType,
    pub min: Option<u16>,
    pub max: Option<u16>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Pack {
    pub id: String,
    pub name: String,
    pub credits: Credits,
    pub price_cents: Cents,
    pub restricted_to: Option<CreationType>,
}

impl Pack {
    /// VAT included in a TTC price at 20 %: price − price / 1.2, rounded to the cent.
    pub fn vat_cents(&self) -> Cents {
        vat_included(self.price_cents)
    }
}

/// The VAT part of a price that includes 20 % VAT, in cents, rounded half up.
pub fn vat_included(price: Cents) -> Cents {
    let net = (price.0 * 100 + 60) / 120;
    Cents(price.0 - net)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vat_is_a_sixth_of_a_ttc_price() {
        assert_eq!(vat_included(Cents(1200)), Cents(200));
        assert_eq!(vat_included(Cents(2900)), Cents(483));
        assert_eq!(vat_included(Cents(9900)), Cents(1650));
        assert_eq!(vat_included(Cents(400)), Cents(67));
    }
}
