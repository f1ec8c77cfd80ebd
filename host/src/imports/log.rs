//! `agent-host:agent/log`: guest log lines into the host's `tracing` log,
//! inside the job's span (so each carries the job id), cut to the log line
//! limit with a visible marker.

use crate::bindings::agent_host::agent::log::{Host, Level};
use crate::bounded;
use crate::runtime::state::JobState;

impl Host for JobState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let message = bounded::log_line(&message);
        match level {
            Level::Trace => tracing::trace!(target: "agent_host::guest", "{message}"),
            Level::Debug => tracing::debug!(target: "agent_host::guest", "{message}"),
            Level::Info => tracing::info!(target: "agent_host::guest", "{message}"),
            Level::Warn => tracing::warn!(target: "agent_host::guest", "{message}"),
            Level::Error => tracing::error!(target: "agent_host::guest", "{message}"),
        }
        Ok(())
    }
}
