//! Use cases that own a transaction, and in-memory caches of data read often.

pub mod accounts;
pub mod admin;
pub mod api_keys;
pub mod billing;
pub mod catalog;
pub mod cpu;
pub mod credits;
pub mod fault;
pub mod generations;
pub mod health;
pub mod help;
pub mod help_quality;
pub mod limits;
pub mod mail;
pub mod operations;
pub mod passwords;
pub mod payments;
pub mod prices;
pub mod second_factor;
pub mod simulator;
pub mod turns;
