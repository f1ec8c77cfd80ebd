//! Per-job resource limits.
//!
//! Policy: every job runs under all of these limits at once; none can be
//! switched off, only raised. A job that hits a limit fails on its own, with a
//! reason naming the limit, and nothing else in the process notices.
//!
//! | limit | default | enforced by |
//! |---|---|---|
//! | linear memory + tables | 64 MiB | the store's resource limiter |
//! | host memory held for the guest | 16 MiB | the job's [`HostMemory`](crate::runtime::HostMemory) budget: HTTP fields, requests and responses, queued room events and audio, partial output lines |
//! | CPU slice | 1 s | epoch ticks: a guest that runs this long without returning to the host is trapped as a runaway |
//! | CPU quota | none | a share of one core per window ([`CpuQuota`]), measured on every poll of the guest |
//! | wall clock | none | a timer around the whole job |
//! | resource handles | 1,024 | the WASI resource table's capacity |
//! | bytes per host call | 1 MiB | wasmtime's hostcall fuel |
//! | room payload | 64 KiB | the `room` and `server` imports, per data packet, text message or server call |
//! | log line | 4 KiB | `log` import and stdout/stderr; longer lines are cut, with a `… [truncated N bytes]` marker |
//! | failure reason | 4 KiB | every `Failed` outcome (`host/src/bounded.rs`); a backtrace goes only to the debug log, names cut |
//! | outbound HTTP destinations | none (empty allow-list) | the `wasi:http` send hook: host allow-list, then every resolved address (see [`HttpAllowList`]) |
//! | outbound HTTP request body | 1 MiB | the send hook, as the body streams out |
//! | outbound HTTP response body | 4 MiB | the send hook, as the body streams in |
//! | outbound HTTP waits | 10 s each | connect, first response byte, between response bytes (a guest may ask for less) |

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

pub use crate::bounded::{MAX_FAILURE_REASON, MAX_LOG_LINE};
use crate::net::Network;
use crate::net::policy::HttpAllowList;
pub(crate) use crate::units::{human_bytes, human_duration};

/// Limits applied to each job's store. See the [module docs](self) for the
/// defaults and how each one is enforced.
///
/// ```
/// use std::time::Duration;
/// let limits = agent_host::JobLimits {
///     memory_bytes: 128 << 20,
///     wall_clock: Some(Duration::from_secs(3600)),
///     ..Default::default()
/// };
/// assert_eq!(limits.cpu_slice, Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLimits {
    /// Cap on the guest's linear memory plus tables, in bytes. It cannot be
    /// above the runtime's [`RuntimeConfig::max_memory_bytes`](crate::RuntimeConfig::max_memory_bytes).
    pub memory_bytes: u64,
    /// Cap on the host memory held on the guest's behalf (see
    /// [`HostMemory`](crate::runtime::HostMemory)), on top of
    /// [`memory_bytes`](Self::memory_bytes).
    pub host_memory_bytes: u64,
    /// Longest stretch a guest may compute without returning to the host.
    pub cpu_slice: Duration,
    /// Most CPU a job may use per window, if set.
    pub cpu_quota: Option<CpuQuota>,
    /// Longest a job may run in total, if set.
    pub wall_clock: Option<Duration>,
    /// Most resource handles (streams, pollables, ...) a guest may hold.
    pub max_resources: usize,
    /// Most bytes a guest may hand the host in one call.
    pub hostcall_bytes: usize,
    /// Largest data packet or text message a guest may send.
    pub max_payload_bytes: usize,
    /// Time a terminated job, or one told its room session ended
    /// (`closed(room-closed)`), gets to return from `run` before it is stopped.
    pub termination_grace: Duration,
    /// Where the guest may send HTTP requests; empty (the default) denies all.
    pub http_allow: HttpAllowList,
    /// Largest request body a guest may send over outbound HTTP.
    pub http_request_bytes: u64,
    /// Largest response body a guest may receive over outbound HTTP.
    pub http_response_bytes: u64,
    /// Longest an outbound HTTP request waits to connect, for the first
    /// response byte, and between response bytes (each).
    pub http_timeout: Duration,
    /// How outbound HTTP connects: proxy and TLS roots. Default: direct,
    /// built-in roots only.
    pub network: Network,
}

/// Default cap on linear memory and tables: 64 MiB, enough for an agent that
/// holds a few seconds of audio and its conversation state.
pub const DEFAULT_MEMORY_BYTES: u64 = 64 << 20;

/// Default cap on host memory held for a job: 16 MiB, a quarter of the
/// default linear memory. An agent needs a few requests in flight (each
/// charged its headers plus 192 KiB of buffers, its response 128 KiB) and
/// a second of unread events; 16 MiB is that many times over, and `--max-jobs` jobs at once
/// still cost the machine at most 16 MiB each beyond their linear memory.
pub const DEFAULT_HOST_MEMORY_BYTES: u64 = 16 << 20;

/// Window over which a [`CpuQuota`] is counted when none is given: 10 s,
/// long enough for a burst (a model loading, a long reply being
/// synthesised) and short enough to stop a busy loop within seconds.
pub const DEFAULT_CPU_WINDOW: Duration = Duration::from_secs(10);

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
/// let quota: agent_host::limits::CpuQuota = "0.25/30s".parse().unwrap();
/// assert_eq!(quota.window, Duration::from_secs(30));
/// assert_eq!(quota.to_string(), "0.25 of a core over 30 s");
/// assert_eq!("0.5".parse::<agent_host::limits::CpuQuota>().unwrap().window, Duration::from_secs(10));
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
        if window < Duration::from_millis(100) {
            return Err(bad("the window must be at least 100ms"));
        }
        Ok(Self { share, window })
    }
}

impl Default for JobLimits {
    fn default() -> Self {
        Self {
            memory_bytes: DEFAULT_MEMORY_BYTES,
            host_memory_bytes: DEFAULT_HOST_MEMORY_BYTES,
            cpu_slice: Duration::from_secs(1),
            // Off: a share that suits one plugin starves another; operators
            // who run third-party plugins choose one (`--job-cpu-limit`).
            cpu_quota: None,
            wall_clock: None,
            max_resources: 1024,
            hostcall_bytes: 1 << 20,
            max_payload_bytes: 64 << 10,
            // The official Python worker gives a terminated job 10 s too.
            termination_grace: Duration::from_secs(10),
            http_allow: HttpAllowList::default(),
            http_request_bytes: 1 << 20,
            http_response_bytes: 4 << 20,
            http_timeout: Duration::from_secs(10),
            network: Network::default(),
        }
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
