//! Per-job resource limits.
//!
//! Policy: every job runs under all of these limits at once; none can be
//! switched off, only raised. A job that hits a limit fails on its own, with a
//! reason naming the limit, and nothing else in the process notices.
//!
//! | limit | default | enforced by |
//! |---|---|---|
//! | linear memory + tables | 64 MiB | the store's resource limiter |
//! | CPU slice | 1 s | epoch ticks: a guest that runs this long without returning to the host is trapped as a runaway |
//! | wall clock | none | a timer around the whole job |
//! | resource handles | 1,024 | the WASI resource table's capacity |
//! | bytes per host call | 1 MiB | wasmtime's hostcall fuel |
//! | room payload | 64 KiB | the `room` and `server` imports, per data packet, text message or server call |
//! | log line | 4 KiB | `log` import and stdout/stderr; longer lines are cut |
//! | outbound HTTP destinations | none (empty allow-list) | the `wasi:http` send hook: host allow-list, then every resolved address (see [`HttpAllowList`]) |
//! | outbound HTTP request body | 1 MiB | the send hook, as the body streams out |
//! | outbound HTTP response body | 4 MiB | the send hook, as the body streams in |
//! | outbound HTTP waits | 10 s each | connect, first response byte, between response bytes (a guest may ask for less) |

use std::time::Duration;

pub use crate::runtime::http::{HttpAllowList, HttpRule};

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
    /// Longest stretch a guest may compute without returning to the host.
    pub cpu_slice: Duration,
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
}

/// Default cap on linear memory and tables: 64 MiB, enough for an agent that
/// holds a few seconds of audio and its conversation state.
pub const DEFAULT_MEMORY_BYTES: u64 = 64 << 20;

/// Longest line the host keeps from a guest's log or stdout/stderr.
pub const MAX_LOG_LINE: usize = 4096;

impl Default for JobLimits {
    fn default() -> Self {
        Self {
            memory_bytes: DEFAULT_MEMORY_BYTES,
            cpu_slice: Duration::from_secs(1),
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
        }
    }
}

/// Cuts guest-provided text to [`MAX_LOG_LINE`] bytes, on a char boundary.
pub(crate) fn cut_log_line(text: &str) -> &str {
    if text.len() <= MAX_LOG_LINE {
        return text;
    }
    let mut end = MAX_LOG_LINE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Formats a byte count the way limit messages show it (`64 MiB`, `512 KiB`).
pub(crate) fn human_bytes(bytes: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} bytes")
}

/// Formats a duration the way limit messages show it (`1 s`, `250 ms`).
pub(crate) fn human_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(64 << 20), "64 MiB");
        assert_eq!(human_bytes(3 << 30), "3 GiB");
        assert_eq!(human_bytes(1536), "1536 bytes");
        assert_eq!(human_bytes(512 << 10), "512 KiB");
        assert_eq!(human_duration(Duration::from_secs(1)), "1 s");
        assert_eq!(human_duration(Duration::from_millis(250)), "250 ms");
    }
}
