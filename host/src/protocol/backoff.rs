//! When to try connecting again, and when to give up.
//!
//! Policy (the Python worker's, `worker.py`): after the n-th consecutive
//! failed attempt the next one waits `min((n - 1) * 2, 10)` s, so 0, 2, 4,
//! ... 10, 10 s; the count goes back to 0 once an attempt connects; after
//! `max_retries` failures in a row the worker gives up.

use std::time::Duration;

use crate::config::worker::RECONNECT_MAX_DELAY;

use crate::config::worker::RECONNECT_STEP;

/// Consecutive failed connection attempts, and what follows from them.
#[derive(Debug)]
pub(crate) struct Backoff {
    max_retries: u32,
    failures: u32,
}

/// What to do after a failed attempt.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Try again after this wait; the attempt that failed was the
    /// `attempt`-th in a row.
    Retry { attempt: u32, delay: Duration },
    /// Give up: `attempts` attempts in a row failed.
    GiveUp { attempts: u32 },
}

impl Backoff {
    /// A backoff that gives up after `max_retries` failures in a row.
    pub(crate) fn new(max_retries: u32) -> Self {
        Self {
            max_retries,
            failures: 0,
        }
    }

    /// Whether the last attempt came after failed ones.
    pub(crate) fn failed_before(&self) -> bool {
        self.failures > 0
    }

    /// An attempt connected: the count starts again.
    pub(crate) fn connected(&mut self) {
        self.failures = 0;
    }

    /// An attempt failed.
    pub(crate) fn failed(&mut self) -> Next {
        self.failures = self.failures.saturating_add(1);
        if self.failures > self.max_retries {
            return Next::GiveUp {
                attempts: self.failures,
            };
        }
        Next::Retry {
            attempt: self.failures,
            delay: (RECONNECT_STEP * (self.failures - 1)).min(RECONNECT_MAX_DELAY),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_to_ten_seconds_then_it_gives_up() {
        let mut backoff = Backoff::new(7);
        let delays: Vec<u64> = (0..7)
            .map(|_| match backoff.failed() {
                Next::Retry { delay, .. } => delay.as_secs(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(delays, [0, 2, 4, 6, 8, 10, 10]);
        assert_eq!(backoff.failed(), Next::GiveUp { attempts: 8 });
    }

    #[test]
    fn connecting_starts_the_count_again() {
        let mut backoff = Backoff::new(1);
        assert_eq!(
            backoff.failed(),
            Next::Retry {
                attempt: 1,
                delay: Duration::ZERO
            }
        );
        assert!(backoff.failed_before());
        backoff.connected();
        assert!(!backoff.failed_before());
        assert!(matches!(backoff.failed(), Next::Retry { attempt: 1, .. }));
    }
}
