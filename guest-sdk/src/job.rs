//! The running job.

use crate::__bindings::agent_host::agent::job;
use crate::{Audio, DispatchInfo, JobInfo, JobRequest, Room, Server};

/// The running job: what it is about, the room it runs in, and how to end it.
///
/// Passed to [`Agent::run`](crate::Agent::run). It is a cheap handle onto the
/// host; copy it freely.
#[derive(Debug, Clone, Copy)]
pub struct JobContext {
    _private: (),
}

impl JobContext {
    pub(crate) fn new() -> Self {
        JobContext { _private: () }
    }

    /// Facts about the job: its id, room, dispatch metadata and the agent's
    /// own identity. Each call asks the host.
    pub fn info(&self) -> JobInfo {
        job::info()
    }

    /// How the job was dispatched: dispatch id, deployment, and whether the
    /// server records or redacts user data. Needs a host with WIT 0.1.2.
    pub fn dispatch(&self) -> DispatchInfo {
        job::dispatch()
    }

    /// Ask the host to end the job: the room session is closed and the room's
    /// events end with [`RoomEvent::Closed`](crate::RoomEvent::Closed)`(`
    /// [`CloseReason::ShutdownRequested`](crate::CloseReason::ShutdownRequested)`)`.
    /// The job still ends only when [`Agent::run`](crate::Agent::run) returns.
    pub fn shutdown(&self, reason: &str) {
        job::shutdown(reason)
    }

    /// The room the job runs in.
    pub fn room(&self) -> Room {
        Room::new()
    }

    /// Audio in and out of the room.
    pub fn audio(&self) -> Audio {
        Audio::new()
    }

    /// LiveKit's server API, limited to this job's room.
    pub fn server(&self) -> Server {
        Server::new()
    }
}

impl JobRequest {
    /// How the offered job was dispatched (see [`JobContext::dispatch`]);
    /// asks the host, so call it from [`Agent::on_request`](crate::Agent::on_request).
    pub fn dispatch(&self) -> DispatchInfo {
        job::dispatch()
    }
}
