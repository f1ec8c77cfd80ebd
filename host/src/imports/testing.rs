//! What the imports' unit tests build their views from: a room link joined
//! to a sim room, with no `Store` and no guest.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::room::{EndSignal, RoomLink};
use crate::bindings::types::{JobInfo, JobType, RoomInfo};
use crate::host_memory::HostMemory;
use crate::room::sim::{SimOutput, SimRoom, SimRooms};
use crate::room::{ConnectRequest, RoomTransport as _};

/// The job every test runs as, in room `room`, as agent `agent-AJ_test`.
pub(super) fn job_info(room: &str) -> JobInfo {
    JobInfo {
        id: "AJ_test".into(),
        job_type: JobType::Room,
        room: RoomInfo {
            sid: format!("RM_{room}"),
            name: room.into(),
            metadata: String::new(),
        },
        participant: None,
        agent_name: String::new(),
        metadata: String::new(),
        attributes: Vec::new(),
        identity: "agent-AJ_test".into(),
    }
}

/// A fresh end signal, as the runtime makes one per job.
pub(super) fn end_signal() -> EndSignal {
    Arc::new(watch::channel(None).0)
}

/// A job's room link joined to a sim room, with what a test needs around it.
pub(super) struct Joined {
    /// The link, as the job's store holds it.
    pub(super) link: RoomLink,
    /// The job's end signal, which the link reads and writes.
    pub(super) end: EndSignal,
    /// The sim room, to script other participants.
    pub(super) room: SimRoom,
    /// What the agent does in the room from its arrival on.
    pub(super) output: mpsc::UnboundedReceiver<SimOutput>,
}

/// A link that has joined sim room `room`, with a 1 MiB host-memory budget.
pub(super) async fn joined(room: &str) -> Joined {
    joined_with_budget(room, 1 << 20).await
}

/// A link that has joined sim room `room`, with `budget` bytes of host memory.
pub(super) async fn joined_with_budget(room: &str, budget: u64) -> Joined {
    let rooms = SimRooms::default();
    let output = rooms.room(room).subscribe();
    let session = rooms
        .connect(ConnectRequest {
            job: job_info(room),
            url: String::new(),
            token: String::new(),
            host_memory: HostMemory::new(budget),
        })
        .await
        .expect("a sim room always lets an agent in");
    let end = end_signal();
    let mut link = RoomLink::new(end.clone());
    link.join(session).await;
    Joined {
        link,
        end,
        room: rooms.room(room),
        output,
    }
}

impl Joined {
    /// What the agent did next in the room, skipping its own arrival; none
    /// when it did nothing more.
    pub(super) fn next_output(&mut self) -> Option<SimOutput> {
        loop {
            match self.output.try_recv().ok()? {
                SimOutput::AgentJoined(_) => continue,
                other => return Some(other),
            }
        }
    }
}
