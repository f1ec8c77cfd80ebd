//! `agent-host:agent/job`: facts about the job, and asking it to end.

use crate::bindings::agent_host::agent::job::Host;
use crate::bindings::types::{CloseReason, DispatchInfo, JobInfo};
use crate::bounded;
use crate::runtime::state::JobState;

impl Host for JobState {
    async fn info(&mut self) -> wasmtime::Result<JobInfo> {
        Ok(self.info.clone())
    }

    async fn dispatch(&mut self) -> wasmtime::Result<DispatchInfo> {
        Ok(self.dispatch.clone())
    }

    async fn shutdown(&mut self, reason: String) -> wasmtime::Result<()> {
        tracing::info!(reason = %bounded::log_line(&reason), "job asked to shut down");
        self.end.send_if_modified(|end| {
            let first = end.is_none();
            if first {
                *end = Some(CloseReason::ShutdownRequested);
            }
            first
        });
        Ok(())
    }
}
