//! Dispatching jobs through the fake server and timing their start.
//!
//! Every time is an [`Instant`] of this process: the fake server stamps
//! when it queues `JobAssignment` on the worker's socket
//! ([`JobRecord::assigned_at`]) and when a worker's `UpdateJobStatus`
//! arrives; body starts reported by a worker (a log line, a file) in wall
//! clock are brought onto the same clock by [`Clock`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use fake_livekit::livekit_protocol::JobStatus;
use fake_livekit::{DispatchOutcome, DispatchRequest, FakeLiveKit, JobId, StatusSource};

/// Wall clock → this process's `Instant`, from one reading of both.
///
/// Read it again for every time it maps, right after that time: the wall
/// clock may be slewed against the monotonic one (NTP slews at up to
/// 500 ppm, 30 ms a minute), so one reading for a whole run would add that
/// drift to every later latency. Read just after, the error is the drift
/// over the moments between the worker writing the time and this process
/// reading it.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    instant: Instant,
    wall: SystemTime,
}

impl Clock {
    /// Reads both clocks now.
    pub fn now() -> Clock {
        Clock {
            instant: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    /// The `Instant` of a wall-clock time.
    pub fn instant(&self, wall: SystemTime) -> Instant {
        match wall.duration_since(self.wall) {
            Ok(after) => self.instant + after,
            Err(e) => self.instant - e.duration(),
        }
    }
}

/// When each job's body started, as the worker itself reports it (job id →
/// time), filled in by a reader of the worker's output.
pub type BodyStarts = Arc<Mutex<HashMap<String, Instant>>>;

/// Start times of one dispatched job.
#[derive(Debug, Clone, Copy)]
pub struct Started {
    /// `dispatch` called.
    pub dispatched: Instant,
    /// `JobAssignment` queued by the server.
    pub assigned: Instant,
    /// The worker's `UpdateJobStatus(JS_RUNNING)` received by the server.
    pub running: Instant,
    /// The job body running, as the worker reported it.
    pub body: Instant,
}

/// How long a measurement may take before the benchmark gives up.
pub const PATIENCE: Duration = Duration::from_secs(300);

/// Dispatches `n` jobs with `metadata` to `agent` at once (one call after
/// another, no waiting) and waits until every one has started; their ids
/// and start times.
pub async fn burst(
    server: &FakeLiveKit,
    agent: &str,
    n: usize,
    metadata: &str,
    bodies: &BodyStarts,
) -> (Vec<JobId>, Vec<Started>) {
    let ids = dispatch_many(server, agent, n, metadata);
    let started = wait_started(server, &ids, bodies).await;
    (ids.into_iter().map(|(id, _)| id).collect(), started)
}

/// Waits until each job has been assigned, reported RUNNING and reported
/// its body running.
///
/// # Panics
/// If a dispatch fails, or after [`PATIENCE`].
pub async fn wait_started(
    server: &FakeLiveKit,
    ids: &[(JobId, Instant)],
    bodies: &BodyStarts,
) -> Vec<Started> {
    let deadline = Instant::now() + PATIENCE;
    let index: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (id.as_str(), i))
        .collect();
    // Polled: the times are the server's stamps, so the polling period
    // changes only when this returns. It is kept long enough that the
    // scan does not compete with the worker for CPU.
    let period = Duration::from_millis(if ids.len() > 100 { 50 } else { 2 });
    loop {
        // (assigned, running) by position in `ids`.
        let mut stamps: Vec<Option<(Instant, Instant)>> = vec![None; ids.len()];
        let mut failed = None;
        server.for_each_job(|job| {
            let Some(&i) = index.get(job.id.as_str()) else {
                return;
            };
            if !matches!(
                job.outcome,
                DispatchOutcome::Pending | DispatchOutcome::Assigned { .. }
            ) {
                failed = Some(format!("{}: {:?}", job.id, job.outcome));
            }
            let running = job
                .status_history
                .iter()
                .find(|c| c.source == StatusSource::Worker && c.status == JobStatus::JsRunning);
            if let (Some(assigned), Some(running)) = (job.assigned_at, running) {
                stamps[i] = Some((assigned, running.at));
            }
        });
        if let Some(failed) = failed {
            panic!("a dispatch failed: {failed}");
        }
        let done: Option<Vec<Started>> = {
            let bodies = bodies.lock().unwrap();
            ids.iter()
                .zip(&stamps)
                .map(|((id, dispatched), stamps)| {
                    let (assigned, running) = (*stamps)?;
                    Some(Started {
                        dispatched: *dispatched,
                        assigned,
                        running,
                        body: *bodies.get(id.as_str())?,
                    })
                })
                .collect()
        };
        if let Some(done) = done {
            return done;
        }
        assert!(
            Instant::now() < deadline,
            "jobs did not all start within {PATIENCE:?}"
        );
        tokio::time::sleep(period).await;
    }
}

/// Waits until every job in `ids` has ended on the server.
pub async fn wait_ended(server: &FakeLiveKit, ids: &[JobId]) {
    let deadline = Instant::now() + PATIENCE;
    let wanted: std::collections::HashSet<&str> = ids.iter().map(JobId::as_str).collect();
    loop {
        let mut ended = 0;
        server.for_each_job(|job| {
            if wanted.contains(job.id.as_str()) && job.ended_at.is_some() {
                ended += 1;
            }
        });
        if ended == wanted.len() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "jobs did not all end within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Dispatches `n` jobs with `metadata` to `agent`, one call after another;
/// their ids and when each was dispatched.
pub fn dispatch_many(
    server: &FakeLiveKit,
    agent: &str,
    n: usize,
    metadata: &str,
) -> Vec<(JobId, Instant)> {
    (0..n)
        .map(|_| {
            let at = Instant::now();
            let req = DispatchRequest::new(fresh_room(), agent).metadata(metadata);
            (server.dispatch(req), at)
        })
        .collect()
}

fn fresh_room() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("bench-room-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// p50/p99/max of a set of durations.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    /// Median, in ms.
    pub p50_ms: f64,
    /// 99th percentile (nearest rank), in ms.
    pub p99_ms: f64,
    /// Largest, in ms.
    pub max_ms: f64,
}

impl Spread {
    /// The spread of `samples` (not empty).
    pub fn of(mut samples: Vec<Duration>) -> Spread {
        samples.sort();
        let at = |p: f64| {
            let i = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[i].as_secs_f64() * 1e3
        };
        Spread {
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}
