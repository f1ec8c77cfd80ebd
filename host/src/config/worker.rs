//! The worker: dispatch defaults (the settings of
//! [`WorkerOptions`](crate::worker::WorkerOptions)) and the bounds of the
//! LiveKit wire.
//!
//! Policy: where the official Python worker has a default, this is it;
//! where the open-source server has a limit, the worker stays inside it.

use std::time::Duration;

/// Default number of jobs at once, per worker: 1,000. It also sizes the
/// runtime's pool (see [`engine`](super::engine)); 1,000 idle jobs take
/// about 36 MiB beyond the idle process (README, Performance), so the
/// default fits a small machine.
pub const DEFAULT_MAX_JOBS: u32 = 1000;

/// Default load at or above which the worker reports full and declines
/// offers: 0.7, as the official workers (and the server's own
/// [`SERVER_TARGET_LOAD`], above which a threshold has no effect).
pub const DEFAULT_LOAD_THRESHOLD: f32 = 0.7;

/// The open-source server's `target_load` (`agent/config.go`
/// `DefaultTargetLoad`): it picks a node only if some worker there reports
/// a load below it.
pub const SERVER_TARGET_LOAD: f32 = 0.7;

/// Default time a drain waits for running jobs: 1 h, as the Python worker.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(3600);

/// Default reconnect attempts before giving up: 16, as the Python worker.
pub const DEFAULT_MAX_RETRIES: u32 = 16;

/// Step of the reconnect backoff: attempt `n` waits `(n - 1) × 2 s`, as the
/// Python worker (`protocol/backoff.rs`).
pub const RECONNECT_STEP: Duration = Duration::from_secs(2);

/// Longest wait between reconnect attempts: 10 s, as the Python worker.
pub const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(10);

/// Default time the guest's `on-request` may take: 2 s; no answer is a
/// decline. The open-source server gives a worker about 3 s to answer.
pub const DEFAULT_OFFER_TIMEOUT: Duration = Duration::from_secs(2);

/// Default time an accepted offer waits for its assignment: 7.5 s, as the
/// Python worker.
pub const DEFAULT_ASSIGNMENT_TIMEOUT: Duration = Duration::from_millis(7500);

/// Default time the server may take to answer `register`: 10 s, the
/// server's own deadline.
pub const DEFAULT_REGISTER_TIMEOUT: Duration = Duration::from_secs(10);

/// Default period of `UpdateWorkerStatus`: 2.5 s, as the official workers.
pub const DEFAULT_STATUS_INTERVAL: Duration = Duration::from_millis(2500);

/// Default period of WebSocket pings: 30 s, as the Python worker.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(30);

/// Default silence after a ping after which the connection counts as dead:
/// 15 s, as the Python worker.
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(15);

/// Largest frame either side may send (the server's default limit).
pub const MAX_FRAME: usize = 2 << 20;

/// Largest frame this worker sends: half the server's limit, so a server
/// configured tighter than its default still takes every frame, and three
/// orders of magnitude above the largest legitimate message (an accept at
/// LiveKit's join limits is under 600 KiB; statuses are a few KiB).
pub const MAX_SEND_FRAME: usize = 1 << 20;

/// Longest the opening of a connection (TCP, proxy, TLS, upgrade) may take:
/// a black-holed address or proxy must not hold an attempt forever. 10 s,
/// the server's own deadline for `register`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Lifetime of the worker's own token (the agent grant it connects with):
/// 10 min, ample for one connection attempt; every attempt signs a new one.
pub const WORKER_TOKEN_TTL: Duration = Duration::from_secs(600);

/// Longest deployment name the server accepts (`MaxDeploymentLength`).
pub const MAX_DEPLOYMENT_BYTES: usize = 64;

/// tungstenite's read buffer. Its default (128 KiB) is zero-filled before
/// every socket read, which a profile of a burst of 1,000 assignments
/// showed as up to half of the host's instructions; server messages are a
/// few hundred bytes, and larger frames still arrive over several reads.
pub const READ_BUFFER: usize = 8 << 10;
