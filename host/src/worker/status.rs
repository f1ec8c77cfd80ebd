//! What a running worker shows to the outside: health, load, counters.
//!
//! The worker loop is the only writer; the health server and embedders read
//! snapshots through a [`WorkerHandle`](super::WorkerHandle).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::PluginSlot;

/// Connection state of the worker.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    /// Connecting for the first time.
    Connecting,
    /// Registered, with the worker id the server gave.
    Registered {
        /// `AW_...`.
        worker_id: String,
    },
    /// Lost the connection; retrying.
    Reconnecting {
        /// Attempts made so far.
        attempt: u32,
    },
    /// Gave up (retries exhausted, or credentials refused).
    Failed,
    /// Drained or stopped; the connection is closed.
    Closed,
}

/// A snapshot of the worker.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WorkerStatus {
    /// Connection state.
    pub connection: ConnectionState,
    /// Whether the worker is draining.
    pub draining: bool,
    /// Jobs running.
    pub active_jobs: usize,
    /// Offers accepted or being decided, not yet running.
    pub reserved_jobs: usize,
    /// Last load computed.
    pub load: f32,
    /// Whether the worker reports itself full.
    pub full: bool,
    /// Running jobs per plugin digest.
    pub jobs_by_version: BTreeMap<String, usize>,
}

/// Counters since the worker started.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Jobs started (assigned and running).
    pub jobs_started: AtomicU64,
    /// Jobs that ended with success.
    pub jobs_succeeded: AtomicU64,
    /// Jobs that failed.
    pub jobs_failed: AtomicU64,
    /// Jobs that were terminated.
    pub jobs_terminated: AtomicU64,
    /// Offers accepted.
    pub offers_accepted: AtomicU64,
    /// Offers declined (by the guest, for capacity or draining, or unanswered).
    pub offers_declined: AtomicU64,
    /// Connections lost and re-established.
    pub reconnects: AtomicU64,
    /// Plugin swaps done.
    pub swaps: AtomicU64,
    /// Plugin swaps refused (the component did not load).
    pub swaps_refused: AtomicU64,
}

impl Metrics {
    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The shared, observable part of a worker.
pub(crate) struct Shared {
    pub(crate) status: Mutex<WorkerStatus>,
    pub(crate) metrics: Metrics,
    pub(crate) plugins: PluginSlot,
}

impl Shared {
    pub(crate) fn new(plugins: PluginSlot) -> Self {
        Self {
            status: Mutex::new(WorkerStatus {
                connection: ConnectionState::Connecting,
                draining: false,
                active_jobs: 0,
                reserved_jobs: 0,
                load: 0.0,
                full: false,
                jobs_by_version: BTreeMap::new(),
            }),
            metrics: Metrics::default(),
            plugins,
        }
    }

    pub(crate) fn update(&self, change: impl FnOnce(&mut WorkerStatus)) {
        change(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }

    pub(crate) fn snapshot(&self) -> WorkerStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
