//! `agent-host:agent/events`: room and audio events from one queue.

use crate::bindings::agent_host::agent::events::Host;
use crate::bindings::events::Event;
use crate::runtime::state::JobState;

use super::room::deadline;

impl Host for JobState {
    async fn next(&mut self, timeout_ms: Option<u32>) -> wasmtime::Result<Option<Event>> {
        Ok(self.next_any(deadline(timeout_ms)).await)
    }
}
