//! The domain: pure rules with no I/O. Time and data are arguments.

pub mod format;
