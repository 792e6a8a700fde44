//! Use cases that own a transaction, and in-memory caches of data read often.

pub mod catalog;
pub mod simulator;
pub mod passwords;
pub mod mail;
