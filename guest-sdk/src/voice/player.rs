//! Plays the agent's voice: writes synthesized PCM to the published track
//! at the pace it is played, and drops it at once on barge-in.
//!
//! `audio.write` blocks the job's only thread while the host's queue
//! (about a second) is full, which would stall every task, the one that
//! listens for barge-in included. So the player keeps its own count of
//! the audio queued ahead of the clock and writes a chunk only once less
//! than [`LEAD`] is ahead: the host's queue never fills and `write` never
//! waits. `audio.clear` then drops at most `LEAD` plus a chunk. The
//! player's own waits are one blocking `poll` on a timer and the room's
//! events ([`pause`]), which an event ends at once.
//!
//! Invariant: `until` is when the audio written so far ends playing, if
//! that is in the future; a clear resets it.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::__bindings::agent_host::agent::events;
use crate::{Audio, RoomError, yield_now};

/// How far ahead of the clock the player keeps the host's queue: 300 ms,
/// three chunks, enough to ride out a scheduling hiccup of the guest or a
/// slow chunk from the provider without an audible gap, and under the
/// host's one-second queue so that a write never blocks.
pub const LEAD: Duration = Duration::from_millis(300);

/// The most audio one write carries: 100 ms, a tenth of the host's queue,
/// so that the pacing above has a fine grain without a host call per
/// 10 ms frame.
const CHUNK: Duration = Duration::from_millis(100);

/// The agent's track, paced.
#[derive(Debug)]
pub(crate) struct Player {
    audio: Audio,
    /// Samples per chunk (mono).
    chunk: usize,
    sample_rate: u32,
    until: Cell<Option<Instant>>,
}

impl Player {
    /// A player of mono audio at `sample_rate` on the published track.
    pub(crate) fn new(audio: Audio, sample_rate: u32) -> Self {
        Player {
            audio,
            chunk: (sample_rate as usize * CHUNK.as_millis() as usize / 1_000).max(1),
            sample_rate: sample_rate.max(1),
            until: Cell::new(None),
        }
    }

    /// When what was written ends playing, if that is still ahead.
    fn ahead(&self, now: Instant) -> Duration {
        self.until
            .get()
            .map(|until| until.saturating_duration_since(now))
            .unwrap_or_default()
    }

    /// Queue `samples`, waiting (without blocking other tasks) while
    /// [`LEAD`] is queued already.
    pub(crate) async fn write(&self, samples: &[i16]) -> Result<(), RoomError> {
        for chunk in samples.chunks(self.chunk) {
            let ahead = self.ahead(Instant::now());
            if ahead > LEAD {
                pause(ahead - LEAD).await;
            }
            self.audio.write(chunk)?;
            let now = Instant::now();
            let length =
                Duration::from_micros(chunk.len() as u64 * 1_000_000 / u64::from(self.sample_rate));
            self.until.set(Some(now + self.ahead(now) + length));
        }
        Ok(())
    }

    /// Drop what is queued and not yet played.
    pub(crate) fn clear(&self) -> Result<(), RoomError> {
        self.until.set(None);
        self.audio.clear()
    }

    /// Wait until what was written has played.
    pub(crate) async fn drained(&self) {
        let ahead = self.ahead(Instant::now());
        if !ahead.is_zero() {
            pause(ahead).await;
        }
        self.until.set(None);
    }
}

/// Wait `duration`, or less if the room has an event, in one blocking
/// `poll` on a timer and `events.subscribe`; after an event, yield so that
/// the task reading the room takes it (and may cancel this reply).
///
/// Not [`sleep`](crate::sleep): the host counts the executor's waits on timers beside
/// the room as computing and stops a replying agent as a runaway after
/// its CPU slice (reported; a blocking `poll` is a wait it counts). The
/// room's event wakes this wait at once, so barge-in is not delayed.
async fn pause(duration: Duration) {
    let deadline = Instant::now() + duration;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let timer = wasip2::clocks::monotonic_clock::subscribe_duration(left.as_nanos() as u64);
        let room = events::subscribe();
        let ready = wasip2::io::poll::poll(&[&timer, &room]);
        if ready.contains(&1) {
            yield_now().await;
        }
    }
}
