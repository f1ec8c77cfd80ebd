//! Structured logging into the host's log, tagged with the job id.
//!
//! Use the functions with a ready string, or the crate-level macros
//! [`trace!`](crate::trace), [`debug!`](crate::debug), [`info!`](crate::info),
//! [`warn!`](crate::warn) and [`error!`](crate::error) with `format!`
//! arguments:
//!
//! ```no_run
//! agent_host_sdk::log::info("starting");
//! let n = 3;
//! agent_host_sdk::warn!("{n} participants already present");
//! ```
//!
//! Anything written to stdout or stderr (`println!`, panic messages) also
//! ends up in the job's log, without a level.

use crate::__bindings::agent_host::agent::log as host;

pub use host::Level;

/// Log `message` at `level`.
pub fn log(level: Level, message: &str) {
    host::log(level, message)
}

/// Log `message` at [`Level::Trace`].
pub fn trace(message: &str) {
    log(Level::Trace, message)
}

/// Log `message` at [`Level::Debug`].
pub fn debug(message: &str) {
    log(Level::Debug, message)
}

/// Log `message` at [`Level::Info`].
pub fn info(message: &str) {
    log(Level::Info, message)
}

/// Log `message` at [`Level::Warn`].
pub fn warn(message: &str) {
    log(Level::Warn, message)
}

/// Log `message` at [`Level::Error`].
pub fn error(message: &str) {
    log(Level::Error, message)
}

/// Log a `format!`-style message at [`Level::Trace`](crate::log::Level::Trace).
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Trace, &::std::format!($($arg)+))
    };
}

/// Log a `format!`-style message at [`Level::Debug`](crate::log::Level::Debug).
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Debug, &::std::format!($($arg)+))
    };
}

/// Log a `format!`-style message at [`Level::Info`](crate::log::Level::Info).
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Info, &::std::format!($($arg)+))
    };
}

/// Log a `format!`-style message at [`Level::Warn`](crate::log::Level::Warn).
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Warn, &::std::format!($($arg)+))
    };
}

/// Log a `format!`-style message at [`Level::Error`](crate::log::Level::Error).
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Error, &::std::format!($($arg)+))
    };
}
