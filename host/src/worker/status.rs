//! What a running worker shows to the outside: health, load, counters.
//!
//! The worker loop is the only writer; the health server and embedders read
//! snapshots through a [`WorkerHandle`](super::WorkerHandle).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::PluginSlot;
use crate::runtime::JobUsage;

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
    /// CPU time of the jobs that ended.
    pub job_cpu: CpuHistogram,
}

/// A Prometheus histogram of jobs' CPU time, in seconds.
#[derive(Debug, Default)]
pub struct CpuHistogram {
    /// Jobs at or below each bound of [`CpuHistogram::BOUNDS`].
    buckets: [AtomicU64; CpuHistogram::BOUNDS.len()],
    /// Every job observed.
    count: AtomicU64,
    /// Their CPU time added up, in microseconds.
    sum_micros: AtomicU64,
}

impl CpuHistogram {
    /// Upper bounds of the buckets, in CPU-seconds: from a job that only
    /// answered and left (10 ms) to one that computed for an hour.
    pub const BOUNDS: [f64; 8] = [0.01, 0.1, 0.5, 1.0, 10.0, 60.0, 600.0, 3600.0];

    pub(crate) fn observe(&self, cpu: Duration) {
        let seconds = cpu.as_secs_f64();
        for (bound, bucket) in Self::BOUNDS.iter().zip(&self.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(cpu.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Cumulative counts per bound of [`BOUNDS`](Self::BOUNDS), the total
    /// count, and the sum in seconds.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let buckets = Self::BOUNDS
            .iter()
            .zip(&self.buckets)
            .map(|(bound, n)| (*bound, n.load(Ordering::Relaxed)))
            .collect();
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        (buckets, self.count.load(Ordering::Relaxed), sum)
    }
}

/// A running job, as `/worker` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JobSnapshot {
    /// The job id, `AJ_...`.
    pub id: String,
    /// The room's name.
    pub room: String,
    /// Digest of the plugin version it runs on.
    pub plugin: String,
    /// CPU time its guest has used so far, in seconds.
    pub cpu_seconds: f64,
    /// Host memory held on its behalf now, in bytes.
    pub host_memory_bytes: u64,
}

/// A running job's entry in [`WorkerShared::jobs`].
pub(crate) struct JobEntry {
    pub(crate) room: String,
    pub(crate) plugin: String,
    pub(crate) usage: JobUsage,
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
pub(crate) struct WorkerShared {
    pub(crate) status: Mutex<WorkerStatus>,
    pub(crate) metrics: Metrics,
    pub(crate) plugins: PluginSlot,
    /// The running jobs, by id; read only when `/worker` is asked for.
    pub(crate) jobs: Mutex<BTreeMap<String, JobEntry>>,
}

impl WorkerShared {
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
            jobs: Mutex::default(),
        }
    }

    /// The running jobs with what they use now.
    pub(crate) fn jobs(&self) -> Vec<JobSnapshot> {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(id, job)| JobSnapshot {
                id: id.clone(),
                room: job.room.clone(),
                plugin: job.plugin.clone(),
                cpu_seconds: job.usage.cpu_time().as_secs_f64(),
                host_memory_bytes: job.usage.host_memory(),
            })
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = CpuHistogram::default();
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_millis(700));
        h.observe(Duration::from_secs(7200));
        let (buckets, count, sum) = h.snapshot();
        assert_eq!(count, 3);
        assert!((sum - 7200.705).abs() < 1e-6, "{sum}");
        let at = |bound: f64| buckets.iter().find(|(b, _)| *b == bound).unwrap().1;
        assert_eq!((at(0.01), at(0.5), at(1.0), at(3600.0)), (1, 1, 2, 2));
    }
}
