//! Jobs in a sim room ([`agent_host::room::sim`]): start one where `alice`
//! already is, and wait for what agents do there.

use std::sync::Arc;
use std::time::Duration;

use agent_host::room::sim::{SimOutput, SimRoom, SimRooms};
use agent_host::{JobLimits, Outcome};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

use crate::{load, request, run_job, runtime};

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

/// Runs `guest` on one job (`id`, `metadata`) under `limits` in an empty
/// sim room until it ends: its outcome and the texts it sent.
///
/// # Panics
/// When the job has not ended after 60 s.
pub async fn run_to_end(
    guest: &str,
    id: &str,
    metadata: &str,
    limits: JobLimits,
) -> (Outcome, Vec<String>) {
    let runtime = runtime(2);
    let plugin = load(&runtime, guest);
    let rooms = SimRooms::default();
    let job = request(id, metadata);
    let mut outputs = rooms.room(&job.room.name).subscribe();
    let outcome = tokio::time::timeout(
        Duration::from_secs(60),
        run_job(&runtime, &plugin, &rooms, job, limits),
    )
    .await
    .expect("the job ends in time");
    let mut texts = Vec::new();
    while let Ok(out) = outputs.try_recv() {
        texts.extend(text(out));
    }
    (outcome, texts)
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

/// Runs a greeter (examples/greeter and its ports to other languages) in a
/// room where `alice` is: it greets her, greets `bob` when he joins and
/// says goodbye when he leaves, then ends as a success when the room
/// closes.
///
/// # Panics
/// When the greeter says something else, or fails.
pub async fn assert_greets_and_says_goodbye(guest: &str, id: &str) {
    let (room, mut outputs, outcome) = start(guest, id, "").await;
    assert_eq!(next(&mut outputs, text).await, "Hello, alice!");
    room.join_identity("bob");
    assert_eq!(next(&mut outputs, text).await, "Hello, bob!");
    assert!(room.leave("bob"));
    assert_eq!(next(&mut outputs, text).await, "Goodbye, bob!");
    room.close();
    let outcome = tokio::time::timeout(WAIT, outcome).await.unwrap().unwrap();
    assert_eq!(outcome, Outcome::Success);
}
