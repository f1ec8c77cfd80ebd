//! Per-job resource limits: the settings one job's store runs under.
//!
//! The defaults, the bounds that are fixed, and how each limit is enforced
//! are listed in [`config::job`](crate::config::job); this module only
//! gathers the settings into [`JobLimits`], which holds the job's network
//! policy and so belongs to the runtime, not to the defaults.

use std::time::Duration;

use crate::config::job::{
    CpuQuota, DEFAULT_CPU_QUOTA, DEFAULT_CPU_SLICE, DEFAULT_HOST_MEMORY_BYTES,
    DEFAULT_HOSTCALL_BYTES, DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_MAX_RESOURCES, DEFAULT_MEMORY_BYTES,
    DEFAULT_TERMINATION_GRACE, DEFAULT_WALL_CLOCK,
};
use crate::config::net::{
    DEFAULT_HTTP_REQUEST_BYTES, DEFAULT_HTTP_RESPONSE_BYTES, DEFAULT_HTTP_TIMEOUT,
    DEFAULT_MAX_WEBSOCKETS, DEFAULT_WEBSOCKET_BUFFER_BYTES, DEFAULT_WEBSOCKET_MESSAGE_BYTES,
};
use crate::net::Network;
use crate::net::policy::HttpAllowList;

/// Limits applied to each job's store. See [`config::job`](crate::config::job)
/// for the defaults and how each one is enforced.
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
    /// Most WebSockets a job may have open at once (connecting, open or
    /// closing); they reach the destinations of
    /// [`http_allow`](Self::http_allow) only.
    pub max_websockets: u32,
    /// Largest WebSocket message (and frame) a guest may send or receive.
    pub websocket_message_bytes: u64,
    /// Most bytes one WebSocket buffers on the host in each direction
    /// (received and unread, queued and unsent).
    pub websocket_buffer_bytes: u64,
}

impl Default for JobLimits {
    fn default() -> Self {
        Self {
            memory_bytes: DEFAULT_MEMORY_BYTES,
            host_memory_bytes: DEFAULT_HOST_MEMORY_BYTES,
            cpu_slice: DEFAULT_CPU_SLICE,
            cpu_quota: DEFAULT_CPU_QUOTA,
            wall_clock: DEFAULT_WALL_CLOCK,
            max_resources: DEFAULT_MAX_RESOURCES,
            hostcall_bytes: DEFAULT_HOSTCALL_BYTES,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            termination_grace: DEFAULT_TERMINATION_GRACE,
            // Empty: outbound HTTP fails closed until the operator allows
            // a destination.
            http_allow: HttpAllowList::default(),
            http_request_bytes: DEFAULT_HTTP_REQUEST_BYTES,
            http_response_bytes: DEFAULT_HTTP_RESPONSE_BYTES,
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            // Direct, built-in roots: nothing from the environment unless
            // the operator's settings say so (`Network::from_env`).
            network: Network::default(),
            max_websockets: DEFAULT_MAX_WEBSOCKETS,
            websocket_message_bytes: DEFAULT_WEBSOCKET_MESSAGE_BYTES,
            websocket_buffer_bytes: DEFAULT_WEBSOCKET_BUFFER_BYTES,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The "kind" column of the limits table in `config/job.rs`: every
    /// field of `JobLimits` has a row naming it, and every other row is a
    /// fixed bound. A row calling a fixed bound a setting (or the other
    /// way round), or a field without its row, fails here.
    #[test]
    fn the_limits_table_names_every_setting_and_only_settings() {
        // Exhaustive: a new field does not compile until it is named here.
        let JobLimits {
            memory_bytes: _,
            host_memory_bytes: _,
            cpu_slice: _,
            cpu_quota: _,
            wall_clock: _,
            max_resources: _,
            hostcall_bytes: _,
            max_payload_bytes: _,
            termination_grace: _,
            http_allow: _,
            http_request_bytes: _,
            http_response_bytes: _,
            http_timeout: _,
            network: _,
            max_websockets: _,
            websocket_message_bytes: _,
            websocket_buffer_bytes: _,
        } = JobLimits::default();
        let mut fields = vec![
            "memory_bytes",
            "host_memory_bytes",
            "cpu_slice",
            "cpu_quota",
            "wall_clock",
            "max_resources",
            "hostcall_bytes",
            "max_payload_bytes",
            "termination_grace",
            "http_allow",
            "http_request_bytes",
            "http_response_bytes",
            "http_timeout",
            "network",
            "max_websockets",
            "websocket_message_bytes",
            "websocket_buffer_bytes",
        ];
        let doc = include_str!("../config/job.rs");
        let kinds: Vec<&str> = doc
            .lines()
            .filter(|l| l.starts_with("//! | ") && !l.starts_with("//! | limit |"))
            .map(|l| l.split('|').nth(3).expect("a kind column").trim())
            .collect();
        let mut settings: Vec<&str> = kinds
            .iter()
            .filter(|k| **k != "fixed")
            .map(|k| k.trim_matches('`'))
            .collect();
        fields.sort_unstable();
        settings.sort_unstable();
        assert_eq!(settings, fields, "the table's settings against JobLimits");
        assert!(kinds.contains(&"fixed"), "the table lists the fixed bounds");
    }
}
