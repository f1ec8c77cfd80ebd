//! `agent-host:agent/events`: room and audio events from one queue.
//!
//! [`EventsView`] is what the import reaches: the job's room link, which it
//! only reads from.

use wasmtime::component::HasData;

use super::room::{RoomLink, deadline};
use crate::bindings::agent_host::agent::events::Host;
use crate::bindings::events::Event;

/// What the `events` import reaches: the job's room link.
pub(crate) struct EventsView<'a> {
    /// The job's own session, whose queue `next` reads.
    pub(crate) link: &'a mut RoomLink,
}

/// [`HasData`] for the `events` import, whose data is an [`EventsView`].
pub(crate) struct EventsData;

impl HasData for EventsData {
    type Data<'a> = EventsView<'a>;
}

impl Host for EventsView<'_> {
    async fn next(&mut self, timeout_ms: Option<u32>) -> wasmtime::Result<Option<Event>> {
        Ok(self.link.next_any(deadline(timeout_ms)).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::types::{CloseReason, RoomEvent};
    use crate::imports::testing::{end_signal, joined};

    #[tokio::test]
    async fn one_queue_then_closed_for_good() -> wasmtime::Result<()> {
        let mut joined = joined("events").await;
        joined.room.join_identity("alice");
        joined.room.send_text("alice", "lk.chat", "hello", &[]);
        joined.room.close();
        let mut events = EventsView {
            link: &mut joined.link,
        };
        assert!(matches!(
            events.next(None).await?,
            Some(Event::Room(RoomEvent::ParticipantJoined(p))) if p.identity == "alice"
        ));
        assert!(matches!(
            events.next(None).await?,
            Some(Event::Room(RoomEvent::TextReceived(t))) if t.text == "hello"
        ));
        let closed = Some(Event::Room(RoomEvent::Closed(CloseReason::RoomClosed)));
        assert_eq!(events.next(None).await?, closed);
        assert_eq!(events.next(Some(0)).await?, closed, "it repeats");
        Ok(())
    }

    #[tokio::test]
    async fn none_before_the_job_has_joined() -> wasmtime::Result<()> {
        let mut link = RoomLink::new(end_signal());
        let mut events = EventsView { link: &mut link };
        assert_eq!(events.next(Some(0)).await?, None);
        assert_eq!(events.next(None).await?, None, "no session: no wait");
        Ok(())
    }
}
