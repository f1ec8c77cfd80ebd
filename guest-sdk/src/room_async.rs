//! Room events, awaited: the async side of [`Room`].
//!
//! Built on `events.subscribe` (a `wasi:io/poll` pollable that is ready once
//! an event is queued) and a non-blocking take (`next(some(0))`), so that
//! the executor waits on the room in the same `poll` as on HTTP bodies,
//! WebSockets and timers.
//!
//! Invariants: an event is only taken from the host's queue in the poll
//! that returns it, so a `recv` future dropped mid-wait (the loser of a
//! select) loses nothing; a wake-up that finds no event (the pollable may
//! be ready for an event the other reader skips) subscribes again.

use crate::__bindings::agent_host::agent::{events, room};
use crate::task::ready;
use crate::{Event, Room, RoomEvent};

impl Room {
    /// Wait for the next room event, letting the job's other tasks run
    /// meanwhile. Skips audio and track events, as
    /// [`next_event`](Self::next_event) does.
    ///
    /// Once the session is over this returns [`RoomEvent::Closed`] every
    /// time. Each event goes to one reader: have one task read the room
    /// and hand work to others, as `examples/assistant` does. Needs the
    /// async runtime (an [`AsyncAgent`](crate::AsyncAgent)'s
    /// `run`, or [`block_on`](crate::block_on)).
    pub async fn recv(&self) -> RoomEvent {
        take_when_ready(|| room::next_event(Some(0))).await
    }

    /// Wait for the next event of any kind (room, track or audio), letting
    /// the job's other tasks run meanwhile. Reads the same queue as
    /// [`recv`](Self::recv); use one or the other.
    pub async fn recv_any(&self) -> Event {
        take_when_ready(|| events::next(Some(0))).await
    }

    /// The room's events as an async stream: every event up to and
    /// including [`RoomEvent::Closed`], then `None`, as
    /// [`events`](Self::events) does without blocking.
    ///
    /// ```no_run
    /// # async fn example(room: agent_host_sdk::Room) -> Result<(), String> {
    /// use agent_host_sdk::RoomEvent;
    /// let mut events = room.stream();
    /// while let Some(event) = events.next().await {
    ///     if let RoomEvent::TextReceived(msg) = event {
    ///         room.send_text_to(&[&msg.sender], &msg.text)?;
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn stream(&self) -> EventStream {
        EventStream {
            room: *self,
            done: false,
        }
    }
}

/// The room's events, from [`Room::stream`].
#[derive(Debug)]
pub struct EventStream {
    room: Room,
    done: bool,
}

impl EventStream {
    /// The next event; `None` once [`RoomEvent::Closed`] was returned.
    pub async fn next(&mut self) -> Option<RoomEvent> {
        if self.done {
            return None;
        }
        let event = self.room.recv().await;
        self.done = matches!(event, RoomEvent::Closed(_));
        Some(event)
    }
}

/// `take()`'s first `Some`, subscribing to the room's queue whenever it has
/// nothing.
async fn take_when_ready<T>(mut take: impl FnMut() -> Option<T>) -> T {
    loop {
        if let Some(event) = take() {
            return event;
        }
        ready(events::subscribe()).await;
    }
}
