//! `agent-host:agent/events`: room and audio events from one queue.
//!
//! `subscribe` hands the guest a `wasi:io/poll` pollable over the same
//! queue, so that one `poll` waits on the room and on HTTP bodies,
//! sockets and timers. Policy: the pollable only peeks (the event stays
//! for `next` or `room.next-event`, in order), it is ready once the job
//! must end even with events queued (as `next` returns the end first), and
//! before the job has joined its room only the job's end makes it ready.
//! Each pollable is a resource in the job's table and counts against its
//! resource cap.
//!
//! [`EventsView`] is what the import reaches: the job's room link, which it
//! only reads from, and the resource table its pollables live in.

use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime_wasi::p2::DynPollable;

use super::room::{Kind, RoomLink, deadline};
use crate::bindings::agent_host::agent::events::Host;
use crate::bindings::events::Event;

/// What the `events` import reaches: the job's room link and its table.
pub(crate) struct EventsView<'a> {
    /// The job's own session, whose queue `next` reads.
    pub(crate) link: &'a mut RoomLink,
    /// The job's resources, where `subscribe` puts its pollables.
    pub(crate) table: &'a mut ResourceTable,
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

    async fn subscribe(&mut self) -> wasmtime::Result<Resource<DynPollable>> {
        let ready = self.table.push(self.link.readiness(Kind::Event))?;
        wasmtime_wasi::p2::subscribe(self.table, ready)
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
        let mut table = ResourceTable::new();
        let mut events = EventsView {
            link: &mut joined.link,
            table: &mut table,
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
        let mut table = ResourceTable::new();
        let mut events = EventsView {
            link: &mut link,
            table: &mut table,
        };
        assert_eq!(events.next(Some(0)).await?, None);
        assert_eq!(events.next(None).await?, None, "no session: no wait");
        Ok(())
    }

    /// Whether `ready` resolves within a moment (a wait that has nothing to
    /// wait for returns at once; one that waits is cut short).
    async fn is_ready(ready: &mut crate::imports::room::InboxReady) -> bool {
        use wasmtime_wasi::p2::Pollable as _;
        tokio::time::timeout(std::time::Duration::from_millis(50), ready.ready())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn the_pollable_peeks_and_next_still_takes_in_order() -> wasmtime::Result<()> {
        let mut joined = joined("poll").await;
        let mut ready = joined.link.readiness(Kind::Event);
        assert!(!is_ready(&mut ready).await, "nothing queued yet");
        joined.room.join_identity("alice");
        joined.room.send_text("alice", "lk.chat", "hello", &[]);
        assert!(is_ready(&mut ready).await, "an event is queued");
        assert!(is_ready(&mut ready).await, "and stays queued");
        let mut table = ResourceTable::new();
        let mut events = EventsView {
            link: &mut joined.link,
            table: &mut table,
        };
        assert!(matches!(
            events.next(Some(0)).await?,
            Some(Event::Room(RoomEvent::ParticipantJoined(p))) if p.identity == "alice"
        ));
        assert!(matches!(
            events.next(Some(0)).await?,
            Some(Event::Room(RoomEvent::TextReceived(t))) if t.text == "hello"
        ));
        assert_eq!(events.next(Some(0)).await?, None);
        let _pollable = events.subscribe().await?;
        assert!(!table.is_empty(), "the pollable is the job's resource");
        let mut full = ResourceTable::new();
        full.set_max_capacity(0);
        let mut events = EventsView {
            link: &mut joined.link,
            table: &mut full,
        };
        assert!(
            events.subscribe().await.is_err(),
            "pollables count against the job's resource cap"
        );
        Ok(())
    }

    #[tokio::test]
    async fn the_pollable_is_ready_once_the_job_must_end() {
        let joined = joined("poll-end").await;
        let mut ready = joined.link.readiness(Kind::Event);
        assert!(!is_ready(&mut ready).await);
        joined.end.send_replace(Some(CloseReason::Terminated));
        assert!(is_ready(&mut ready).await, "the end wakes it");
        let mut unjoined = RoomLink::new(end_signal());
        let mut ready = unjoined.readiness(Kind::Event);
        assert!(
            !is_ready(&mut ready).await,
            "before joining, only the end can come"
        );
        drop(unjoined.take().await);
    }

    #[tokio::test]
    async fn a_closed_room_makes_it_ready_and_stays_so() -> wasmtime::Result<()> {
        let mut joined = joined("poll-closed").await;
        joined.room.close();
        let mut ready = joined.link.readiness(Kind::Event);
        assert!(is_ready(&mut ready).await);
        let closed = Some(Event::Room(RoomEvent::Closed(CloseReason::RoomClosed)));
        assert_eq!(joined.link.next_any(None).await, closed);
        assert!(is_ready(&mut ready).await, "the close repeats");
        Ok(())
    }
}
