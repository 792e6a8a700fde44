//! Use cases that own a transaction.
