//! The domain: pure rules with no I/O. Time and data are arguments.

pub mod account;
pub mod billing;
pub mod catalog;
pub mod fold;
pub mod format;
pub mod ledger;
pub mod limits;
pub mod logistic;
pub mod money;
pub mod price_edit;
pub mod pricing;
pub mod prompt;
pub mod simulation;
pub mod throttle;
