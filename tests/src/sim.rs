//! Jobs in a sim room ([`agent_host::room::sim`]): start one where `alice`
//! already is, and wait for what agents do there.

use std::sync::Arc;
use std::time::Duration;

use agent_host::room::sim::{SimOutput, SimRoom, SimRooms};
use agent_host::{JobLimits, Outcome};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

use crate::{load, request, runtime};

/// How long [`next`] waits for the agent.
pub const WAIT: Duration = Duration::from_secs(30);

/// Starts `guest` in a room where `alice` already is; returns the room, what
/// agents do in it, and the job's outcome.
pub async fn start(
    guest: &str,
    id: &str,
    metadata: &str,
) -> (SimRoom, UnboundedReceiver<SimOutput>, JoinHandle<Outcome>) {
    start_with(guest, id, metadata, JobLimits::default()).await
}

/// [`start`], under `limits`.
pub async fn start_with(
    guest: &str,
    id: &str,
    metadata: &str,
    limits: JobLimits,
) -> (SimRoom, UnboundedReceiver<SimOutput>, JoinHandle<Outcome>) {
    let runtime = runtime(4);
    let plugin = load(&runtime, guest);
    let rooms = SimRooms::default();
    let req = request(id, metadata);
    let room = rooms.room(&req.room.name);
    let outputs = room.subscribe();
    room.join_identity("alice");
    let offer = runtime
        .offer(&plugin, req, limits)
        .await
        .expect("the guest answers the offer");
    let job = offer.job.expect("the guest accepts");
    let handle = job.start(Arc::new(rooms), String::new(), String::new());
    (room, outputs, tokio::spawn(handle.outcome()))
}

/// The next output that `keep` maps to something, skipping the others.
///
/// # Panics
/// After [`WAIT`] without one, or if the room's output ends.
pub async fn next<T>(
    outputs: &mut UnboundedReceiver<SimOutput>,
    mut keep: impl FnMut(SimOutput) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let output = outputs.recv().await.expect("the room is open");
            if let Some(found) = keep(output) {
                return found;
            }
        }
    })
    .await
    .expect("the agent did what the test waits for")
}

/// The text of a [`SimOutput::Text`], for [`next`].
pub fn text(output: SimOutput) -> Option<String> {
    match output {
        SimOutput::Text { text, .. } => Some(text.text),
        _ => None,
    }
}
