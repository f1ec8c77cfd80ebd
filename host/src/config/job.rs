//! Per-job limits: the default of every setting of
//! [`JobLimits`](crate::JobLimits), and the bounds that are fixed.
//!
//! Policy: every job runs under all of these at once, and none can be
//! switched off. The **settings** (a field of `JobLimits`, most of them a
//! flag of `run` and `console`) can be raised or lowered per worker; the
//! **fixed** bounds cannot be changed at all, each for the reason given
//! where it is set: they bound what the host itself writes (its log, its
//! messages to the server) or size the engine's pool, so no operator
//! choice about a guest should move them. A job that hits a limit fails on
//! its own, with a reason naming the limit, and nothing else in the
//! process notices.
//!
//! | limit | default | kind | enforced by |
//! |---|---|---|---|
//! | linear memory + tables | 64 MiB | `memory_bytes` | the store's resource limiter |
//! | host memory held for the guest | 16 MiB | `host_memory_bytes` | the job's [`HostMemory`](crate::runtime::HostMemory) budget: HTTP fields, requests and responses, queued room events and audio, partial output lines |
//! | CPU slice | 1 s | `cpu_slice` | epoch ticks: a guest that runs this long without returning to the host is trapped as a runaway |
//! | CPU quota | none | `cpu_quota` | a share of one core per window ([`CpuQuota`]), measured on every poll of the guest |
//! | wall clock | none | `wall_clock` | a timer around the whole job |
//! | termination grace | 10 s | `termination_grace` | a timer started by a termination or the end of the room session |
//! | resource handles | 1,024 | `max_resources` | the WASI resource table's capacity |
//! | bytes per host call | 1 MiB | `hostcall_bytes` | wasmtime's hostcall fuel |
//! | room payload | 64 KiB | `max_payload_bytes` | the `room` and `server` imports, per data packet, text message or server call |
//! | outbound HTTP destinations | none (empty allow-list) | `http_allow` | the `wasi:http` send hook: host allow-list, then every resolved address |
//! | outbound HTTP request body | 1 MiB | `http_request_bytes` | the send hook, as the body streams out |
//! | outbound HTTP response body | 4 MiB | `http_response_bytes` | the send hook, as the body streams in |
//! | outbound HTTP waits | 10 s | `http_timeout` | connect, first response byte, between response bytes, each (a guest may ask for less) |
//! | outbound connections | direct, built-in roots | `network` | proxies and private CAs from the operator's environment |
//! | credentials | none | `credentials` | the send hook, after the allow-list and address checks: headers for the destinations the operator named, never shown to the guest |
//! | open WebSockets | 8 | `max_websockets` | the `websocket` import's `connect` (`too-many-sockets`) |
//! | WebSocket message | 1 MiB | `websocket_message_bytes` | `send` (`too-large`), and tungstenite's message and frame caps as messages come in |
//! | WebSocket buffer, each direction | 256 KiB | `websocket_buffer_bytes` | `send` (`would-block`) and the socket's task, which stops reading until the guest reads |
//! | table elements | 100,000 | fixed | the store's resource limiter, and the pooling allocator's slots |
//! | log line | 4 KiB | fixed | `log` import and stdout/stderr; longer lines are cut, with a `… [truncated N bytes]` marker |
//! | failure reason | 4 KiB | fixed | every `Failed` outcome (`host/src/bounded.rs`); a backtrace goes only to the debug log, names cut |
//! | guest value in a host log line | 256 bytes | fixed | identities, topics, host names the host logs |
//! | function name in a backtrace | 128 bytes | fixed | the debug log line of a guest backtrace |
//! | stderr lines kept for a failure reason | 16 | fixed | the job's stderr tail |
//!
//! Figures in this table are checked against the constants below by
//! `host/tests/defaults.rs`; the "kind" column against the fields of
//! `JobLimits` by its unit tests.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::units::human_duration;

/// Default cap on linear memory and tables: 64 MiB, enough for an agent that
/// holds a few seconds of audio and its conversation state.
pub const DEFAULT_MEMORY_BYTES: u64 = 64 << 20;

/// Default cap on host memory held for a job: 16 MiB, a quarter of the
/// default linear memory. An agent needs a few requests in flight (each
/// charged its headers plus 192 KiB of buffers, its response 128 KiB) and
/// a second of unread events; 16 MiB is that many times over, and `--max-jobs` jobs at once
/// still cost the machine at most 16 MiB each beyond their linear memory.
pub const DEFAULT_HOST_MEMORY_BYTES: u64 = 16 << 20;

/// Default CPU slice: 1 s. An agent spends its time waiting on its room or
/// the network; a second of computing without one host call is far beyond
/// any step of its work, and short enough that a runaway is stopped before
/// a person notices. It is 100 epoch ticks, so the check costs nothing.
pub const DEFAULT_CPU_SLICE: Duration = Duration::from_secs(1);

/// Longest a plugin's `prewarm` may take, computing or waiting: 30 s. It
/// runs once per version, while the version loads (nothing waits on it but
/// the load), and does what the Python worker's `prewarm_fnc` does per
/// process (loading a model, building tables): seconds, not minutes. A
/// prewarm that is still running then refuses the version rather than
/// holding `run`, `check` or a hot swap forever.
pub const PREWARM_TIMEOUT: Duration = Duration::from_secs(30);

/// Default CPU quota: off. A share that suits one plugin starves another;
/// operators who run third-party plugins choose one (`--job-cpu-limit`).
pub const DEFAULT_CPU_QUOTA: Option<CpuQuota> = None;

/// Window over which a [`CpuQuota`] is counted when none is given: 10 s,
/// long enough for a burst (a model loading, a long reply being
/// synthesised) and short enough to stop a busy loop within seconds.
pub const DEFAULT_CPU_WINDOW: Duration = Duration::from_secs(10);

/// Shortest window a [`CpuQuota`] may have: 100 ms, ten epoch ticks, below
/// which the measurement (taken on every poll) is mostly noise.
pub const MIN_CPU_WINDOW: Duration = Duration::from_millis(100);

/// Default wall-clock limit: none. Agents live as long as their call; the
/// room's end, not a timer, ends a healthy one.
pub const DEFAULT_WALL_CLOCK: Option<Duration> = None;

/// Default grace of a terminated job, or of one told its room session
/// ended: 10 s, as the official Python worker gives a terminated job.
pub const DEFAULT_TERMINATION_GRACE: Duration = Duration::from_secs(10);

/// Default cap on resource handles a guest holds: 1,024, many times the
/// streams, pollables and requests an agent holds at once, and few enough
/// that a guest creating them in a loop fails long before the host notices.
pub const DEFAULT_MAX_RESOURCES: usize = 1024;

/// Default cap on the bytes a guest hands the host in one call (wasmtime's
/// hostcall fuel): 1 MiB, far above what one import call carries (a room
/// payload is capped at 64 KiB, an audio write at one second of audio).
pub const DEFAULT_HOSTCALL_BYTES: usize = 1 << 20;

/// Default cap on a room payload (a data packet, text message or server
/// call, every guest field counted): 64 KiB, far above a chat message or a
/// control packet, and small enough that a flood of sends costs the room
/// little.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 64 << 10;

/// Most elements a job's table may hold (Spin uses the same default, also
/// for its pooling allocator): room for the tables of large guests such
/// as interpreters compiled to wasm. Fixed: the pooling allocator's slots
/// are sized to it when the engine is built, so both allocators enforce
/// the same number for every job of the process.
pub const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Longest failure reason a job reports (the `error` of LiveKit's
/// `UpdateJobStatus`, the `job ended` log line, the console's last line).
/// 4 KiB holds any message a person reads; with it a status frame stays
/// below 5 KiB, far from the server's 2 MiB frame limit, whatever the guest.
/// Fixed: it bounds the host's own message to the server.
pub const MAX_FAILURE_REASON: usize = 4 << 10;

/// Longest line the host keeps from a guest's log or stdout/stderr: a
/// line a person reads, and a flood of lines still costs the log at most
/// 4 KiB per guest call. Fixed: it bounds the host's own log, which no
/// choice about a guest should make unbounded.
pub const MAX_LOG_LINE: usize = 4096;

/// Longest guest-supplied value inside a host log line (identities,
/// topics, host names): LiveKit's own limit on an identity, 256 bytes.
/// Fixed, as [`MAX_LOG_LINE`].
pub const MAX_LOG_FIELD: usize = 256;

/// Longest function name from a guest's name section in a logged
/// backtrace: long enough for any demangled Rust path a person reads.
/// Fixed, as [`MAX_LOG_LINE`].
pub const MAX_FRAME_NAME: usize = 128;

/// How many stderr lines are kept for failure reasons: 16, the end of a
/// panic message and its context; each line is at most [`MAX_LOG_LINE`].
pub const STDERR_TAIL_LINES: usize = 16;

/// A per-job CPU quota: at most `share` of one core, counted over windows
/// of `window` from the job's start (`0.5/10s`: 5 CPU-seconds in every
/// 10 s). A job that uses more within one window fails at once with
/// `CPU quota exceeded: ...`.
///
/// Why a share per window rather than a total of CPU-seconds: agents live
/// as long as their call, so a total budget either cuts long calls or lets
/// a busy loop burn for an hour. A share bounds what a job takes from the
/// others at any time, whatever its length, and still allows bursts.
///
/// ```
/// use std::time::Duration;
/// let quota: agent_host::config::job::CpuQuota = "0.25/30s".parse().unwrap();
/// assert_eq!(quota.window, Duration::from_secs(30));
/// assert_eq!(quota.to_string(), "0.25 of a core over 30 s");
/// assert_eq!("0.5".parse::<agent_host::config::job::CpuQuota>().unwrap().window, Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuQuota {
    /// Share of one core, above 0 and at most 1 (a guest runs on one core).
    pub share: f64,
    /// The window the share is counted over.
    pub window: Duration,
}

impl Eq for CpuQuota {}

impl CpuQuota {
    /// CPU time the job may use in one window.
    pub fn per_window(&self) -> Duration {
        self.window.mul_f64(self.share)
    }
}

impl fmt::Display for CpuQuota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of a core over {}",
            self.share,
            human_duration(self.window)
        )
    }
}

impl FromStr for CpuQuota {
    type Err = String;

    /// `SHARE` or `SHARE/WINDOW` (`0.5`, `0.25/30s`).
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("bad CPU quota `{text}`: {why} (e.g. `0.5` or `0.25/30s`)");
        let (share, window) = match text.trim().split_once('/') {
            Some((share, window)) => (
                share,
                humantime::parse_duration(window.trim()).map_err(|e| bad(&e.to_string()))?,
            ),
            None => (text.trim(), DEFAULT_CPU_WINDOW),
        };
        let share: f64 = share
            .trim()
            .parse()
            .map_err(|_| bad("the share is not a number"))?;
        if !(share > 0.0 && share <= 1.0) {
            return Err(bad("the share must be above 0 and at most 1"));
        }
        if window < MIN_CPU_WINDOW {
            let min = super::units::flag_duration(MIN_CPU_WINDOW);
            return Err(bad(&format!("the window must be at least {min}")));
        }
        Ok(Self { share, window })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quotas() {
        let q: CpuQuota = "0.5".parse().unwrap();
        assert_eq!(q.per_window(), Duration::from_secs(5));
        let q: CpuQuota = " 1 / 2s ".parse().unwrap();
        assert_eq!((q.share, q.window), (1.0, Duration::from_secs(2)));
        for bad in [
            "", "0", "-0.5", "1.5", "NaN", "half", "0.5/", "0.5/10", "0.5/1ms",
        ] {
            assert!(bad.parse::<CpuQuota>().is_err(), "{bad:?} parsed");
        }
    }
}
