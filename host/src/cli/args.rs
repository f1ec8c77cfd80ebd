//! Arguments shared by several commands.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use agent_host::config::job::CpuQuota;
use agent_host::{HttpAllowList, HttpRule, JobLimits, RuntimeConfig};

use super::parse::{parse_bytes, parse_cpu_quota, parse_http_rule};
use super::settings::WorkerSettings;

/// Where the LiveKit server is, for the commands a developer points at a
/// local `livekit-server --dev` (whose address and credentials are the
/// defaults).
#[derive(Debug, Clone, Args)]
pub struct DevServerArgs {
    /// LiveKit server URL; the default is where `livekit-server --dev` listens.
    #[arg(long, env = "LIVEKIT_URL", default_value = "ws://localhost:7880")]
    pub url: String,

    /// LiveKit API key (`livekit-server --dev` uses `devkey`).
    #[arg(long, env = "LIVEKIT_API_KEY", default_value = "devkey")]
    pub api_key: String,

    /// LiveKit API secret (`livekit-server --dev` uses `secret`).
    #[arg(
        long,
        env = "LIVEKIT_API_SECRET",
        default_value = "secret",
        hide_env_values = true
    )]
    pub api_secret: String,
}

/// Per-job limits and engine settings. Unset values come from the config
/// file (for `run`) or the defaults of [`JobLimits`].
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Cap on each job's linear memory and tables (e.g. `64MiB`, `1GiB`).
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes, env = "AGENT_HOST_MEMORY_LIMIT")]
    pub memory_limit: Option<u64>,

    /// Cap on the host memory each job may hold through the host (HTTP
    /// fields, requests and responses, unread room events and audio,
    /// buffered output), on top of --memory-limit.
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes, env = "AGENT_HOST_HOST_MEMORY_LIMIT")]
    pub host_memory_limit: Option<u64>,

    /// Most CPU each job may use: a share of one core, over a window
    /// (`SHARE[/WINDOW]`, e.g. `0.5` for half a core, `0.25/30s`).
    /// A job over it fails. For third-party plugins.
    #[arg(long, value_name = "SHARE[/WINDOW]", value_parser = parse_cpu_quota, env = "AGENT_HOST_JOB_CPU_LIMIT")]
    pub job_cpu_limit: Option<CpuQuota>,

    /// Longest a guest may compute without waiting on the host before it
    /// is stopped as a runaway (e.g. `1s`, `500ms`).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, env = "AGENT_HOST_CPU_SLICE")]
    pub cpu_slice: Option<Duration>,

    /// Longest a job may run in total (e.g. `1h`).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, env = "AGENT_HOST_WALL_CLOCK_LIMIT")]
    pub wall_clock_limit: Option<Duration>,

    /// Directory for compiled components [default: ~/.cache/agent-host/components].
    #[arg(long, value_name = "DIR", env = "AGENT_HOST_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Compile plugins every time instead of using the on-disk cache.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,

    #[command(flatten)]
    pub precompiled: PrecompiledArgs,

    /// Let guests send HTTP requests to this destination: a host name
    /// (`api.example.com`), `*.example.com`, an IP address or a CIDR block,
    /// each with an optional `:PORT`. Repeatable. None given (the default):
    /// guests get no outbound HTTP at all.
    #[arg(long, value_name = "HOST[:PORT]", value_parser = parse_http_rule, env = "AGENT_HOST_ALLOW_HTTP", value_delimiter = ',')]
    pub allow_http: Vec<HttpRule>,

    /// Let allowed host names reach loopback, private, link-local and other
    /// non-public addresses (IP and CIDR rules reach them without this).
    #[arg(long, env = "AGENT_HOST_ALLOW_HTTP_PRIVATE")]
    pub allow_http_private: bool,

    /// Most WebSockets each job may have open at once (they reach the
    /// --allow-http destinations only).
    #[arg(long, value_name = "N", env = "AGENT_HOST_MAX_WEBSOCKETS")]
    pub max_websockets: Option<u32>,

    /// Largest WebSocket message (and frame) a job may send or receive
    /// (e.g. `1MiB`); a larger one from the server ends that socket.
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes, env = "AGENT_HOST_WEBSOCKET_MESSAGE_LIMIT")]
    pub websocket_message_limit: Option<u64>,

    /// Most bytes each WebSocket buffers on the host in each direction
    /// (unread and unsent messages); a full one stops reading the socket.
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes, env = "AGENT_HOST_WEBSOCKET_BUFFER_LIMIT")]
    pub websocket_buffer_limit: Option<u64>,
}

impl LimitArgs {
    /// The job limits: these flags where given, else `file`, else defaults.
    pub fn job_limits(&self, file: &WorkerSettings) -> JobLimits {
        let defaults = JobLimits::default();
        JobLimits {
            memory_bytes: self
                .memory_limit
                .or(file.memory_limit)
                .unwrap_or(defaults.memory_bytes),
            host_memory_bytes: self
                .host_memory_limit
                .or(file.host_memory_limit)
                .unwrap_or(defaults.host_memory_bytes),
            cpu_slice: self
                .cpu_slice
                .or(file.cpu_slice)
                .unwrap_or(defaults.cpu_slice),
            cpu_quota: self.job_cpu_limit.or(file.job_cpu_limit),
            wall_clock: self.wall_clock_limit.or(file.wall_clock_limit),
            termination_grace: file.termination_grace.unwrap_or(defaults.termination_grace),
            http_allow: HttpAllowList::new(
                if self.allow_http.is_empty() {
                    file.allow_http.clone().unwrap_or_default()
                } else {
                    self.allow_http.clone()
                },
                self.allow_http_private || file.allow_http_private.unwrap_or(false),
            ),
            max_websockets: self
                .max_websockets
                .or(file.max_websockets)
                .unwrap_or(defaults.max_websockets),
            websocket_message_bytes: self
                .websocket_message_limit
                .or(file.websocket_message_limit)
                .unwrap_or(defaults.websocket_message_bytes),
            websocket_buffer_bytes: self
                .websocket_buffer_limit
                .or(file.websocket_buffer_limit)
                .unwrap_or(defaults.websocket_buffer_bytes),
            ..defaults
        }
    }

    /// Runtime settings for at most `max_jobs` jobs of at most
    /// `max_memory_bytes` each.
    pub fn runtime_config(
        &self,
        max_jobs: u32,
        max_memory_bytes: u64,
        file_cache: Option<PathBuf>,
    ) -> RuntimeConfig {
        let defaults = RuntimeConfig::default();
        RuntimeConfig {
            max_jobs,
            max_memory_bytes,
            cache_dir: if self.no_cache {
                None
            } else {
                self.cache_dir
                    .clone()
                    .or(file_cache)
                    .or(defaults.cache_dir.clone())
            },
            allow_precompiled: self.precompiled.allow_precompiled,
            ..defaults
        }
    }
}

/// The opt-in to ahead-of-time plugins, for every command that loads one.
#[derive(Debug, Clone, Args)]
pub struct PrecompiledArgs {
    /// Also accept plugins precompiled by `agent-host compile` (`.cwasm`):
    /// native code, loaded unverified, so only from your own builds (see
    /// SECURITY.md).
    #[arg(long, env = "AGENT_HOST_ALLOW_PRECOMPILED")]
    pub allow_precompiled: bool,
}
