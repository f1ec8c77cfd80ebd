//! `agent-host:agent/room`: the job's own room session.
//!
//! Before the job has joined its room (while the guest answers
//! `on-request`) every action is denied and `next-event` returns none.
//! Once `next-event` has returned `closed(reason)` it keeps returning it;
//! `closed(room-closed)` also starts the job's grace period, after which a
//! guest that has not returned is stopped. Once the guest has called
//! `job.shutdown` the session is closed to it: every action fails with
//! `closed` (the agent stays in the room until the job ends, so that its
//! final status reaches the server first) and `next-event` returns
//! `closed(shutdown-requested)`.
//! `next-event` reads the same queue as `events.next` and skips the events
//! only `events` can express (audio frames, track events).
//! An action's guest input, every field of it (payload, topic, each
//! destination identity, attribute keys and values), counts against the
//! payload cap; over it the action fails with `too-large`.
//!
//! [`RoomLink`] is the job's link to its session; [`RoomView`] is what the
//! `room` import reaches: that link and the payload cap, nothing else.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use tokio::sync::{Mutex, MutexGuard, watch};
use tokio::time::Instant;
use wasmtime::component::HasData;
use wasmtime_wasi::p2::Pollable;

use super::guest_bytes;
use crate::bindings::agent_host::agent::room::Host;
use crate::bindings::events::Event;
use crate::bindings::types::{CloseReason, Participant, RoomError, RoomEvent};
use crate::config::rooms::AUDIO_QUEUE;
use crate::room::{Incoming, OutgoingData, OutgoingText, Queued, RoomSession};

/// Signals to the job that it must end: `Some(reason)` once it was
/// terminated by the worker, shutdown was requested by the guest, or the
/// guest was told its room session ended.
pub(crate) type EndSignal = Arc<watch::Sender<Option<CloseReason>>>;

/// A job's link to its room session, as its guest sees it.
///
/// Invariants: the session is `None` until the job has joined its room
/// (and again once the job has ended and the host took it back); `closed`,
/// once set, never changes; `shutdown_requested`, once set, is never
/// unset. The inbox is shared with the job's [`EventsReady`] pollables,
/// which only hold it while the guest waits in `wasi:io/poll`; the guest
/// is one thread, so an import's lock never waits in practice.
pub(crate) struct RoomLink {
    inbox: Arc<Mutex<Inbox>>,
    /// What the inbox's readers could take, readable without its lock.
    available: watch::Receiver<Available>,
    /// Set by `job.shutdown`: from then on every action fails with `closed`.
    shutdown_requested: bool,
    end: EndSignal,
}

/// The receiving side of a job's session.
///
/// The session delivers one stream of items; the inbox sorts them by the
/// interface that reads them ([`Kind`]), so that a guest waiting for an RPC
/// call takes the room events that arrive meanwhile out of the session
/// without losing them or their order. Items stay charged to the job's
/// budget until the guest takes them; audio frames routed aside are
/// capped as the transports' queues are ([`AUDIO_QUEUE`]), the newest
/// dropped, since audio is real time.
///
/// What each reader could take now is also published outside the lock
/// ([`Available`]): a pollable that waits for calls while another one
/// holds the inbox to pull events from the session learns from it that a
/// call was sorted, instead of waiting for a lock that is not let go
/// until an event comes.
struct Inbox {
    session: Option<Box<dyn RoomSession>>,
    /// Items taken from the session, waiting for their reader, by kind.
    events: VecDeque<Queued>,
    calls: VecDeque<Queued>,
    streams: VecDeque<Queued>,
    /// Audio frames among `events`.
    audio: usize,
    /// The session has ended: its `next_incoming` returned `None`.
    ended: bool,
    /// Set once `next-event` has returned `closed`; later calls repeat it.
    closed: Option<CloseReason>,
    /// What `available` last said; updated with every change above.
    available: watch::Sender<Available>,
}

/// What each reader of an inbox could take without waiting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Available {
    /// Items queued, by [`Kind`] (events, calls, byte streams).
    queued: [usize; 3],
    /// The session ended, or the guest was told it closed: every reader
    /// returns at once.
    over: bool,
}

impl Available {
    fn for_kind(&self, kind: Kind) -> bool {
        self.over || self.queued[kind as usize] > 0
    }
}

/// Which interface reads an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `events` and `room`.
    Event = 0,
    /// `rpc`.
    Call = 1,
    /// `streams`.
    Bytes = 2,
}

impl Kind {
    fn of(item: &Incoming) -> Self {
        match item {
            Incoming::Event(_) => Kind::Event,
            Incoming::Call(_) => Kind::Call,
            Incoming::Bytes(_) => Kind::Bytes,
        }
    }
}

impl Inbox {
    fn queue(&mut self, kind: Kind) -> &mut VecDeque<Queued> {
        match kind {
            Kind::Event => &mut self.events,
            Kind::Call => &mut self.calls,
            Kind::Bytes => &mut self.streams,
        }
    }

    /// Says what each reader could take now.
    fn publish(&self) {
        let now = Available {
            queued: [self.events.len(), self.calls.len(), self.streams.len()],
            over: self.ended || self.closed.is_some(),
        };
        self.available.send_if_modified(|was| {
            let changed = *was != now;
            *was = now;
            changed
        });
    }

    /// The next item of `kind`: one sorted aside already, else the session's
    /// next of that kind (sorting the others aside); `None` once the
    /// session ended. Without a session it never resolves. Cancel-safe, as
    /// [`pull`](Self::pull) is.
    async fn next(&mut self, kind: Kind) -> Option<Queued> {
        loop {
            if let Some(item) = self.queue(kind).pop_front() {
                if item.is_audio() {
                    self.audio -= 1;
                }
                self.publish();
                return Some(item);
            }
            if self.ended {
                return None;
            }
            self.pull().await;
        }
    }

    /// Takes one item from the session and sorts it (or learns that the
    /// session ended). Without a session it never resolves. Cancel-safe, as
    /// `RoomSession::next_incoming` is: an item taken from the session is
    /// sorted before the next await.
    async fn pull(&mut self) {
        let Some(session) = self.session.as_deref_mut() else {
            return std::future::pending().await;
        };
        match session.next_incoming().await {
            Some(item) => self.sort(item),
            None => self.ended = true,
        }
        self.publish();
    }

    /// Puts `item` in its reader's queue (an audio frame past the cap is
    /// dropped).
    fn sort(&mut self, item: Queued) {
        if item.is_audio() {
            if self.audio >= AUDIO_QUEUE {
                return;
            }
            self.audio += 1;
        }
        self.queue(Kind::of(item.get())).push_back(item);
    }

    /// The next item of `kind` if one is waiting, without waiting.
    fn next_now(&mut self, kind: Kind) -> Option<Incoming> {
        self.next(kind)
            .now_or_never()
            .flatten()
            .map(Queued::into_item)
    }

    /// The next event; `None` once the session ended.
    async fn next_event(&mut self) -> Option<Event> {
        loop {
            // Only events are sorted into the events queue.
            if let Incoming::Event(event) = self.next(Kind::Event).await?.into_item() {
                return Some(event);
            }
        }
    }
}

/// The job's session, borrowed by one import call.
///
/// Invariant: the inbox it holds has a session (checked when it is made,
/// and nobody else can take it while the guard holds the lock).
pub(super) struct SessionGuard<'a>(MutexGuard<'a, Inbox>);

impl std::ops::Deref for SessionGuard<'_> {
    type Target = dyn RoomSession;

    fn deref(&self) -> &Self::Target {
        self.0.session.as_deref().expect("a guard holds a session")
    }
}

impl std::ops::DerefMut for SessionGuard<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.0
            .session
            .as_deref_mut()
            .expect("a guard holds a session")
    }
}

impl RoomLink {
    /// A link that has not joined its room yet, ending with `end`.
    pub(crate) fn new(end: EndSignal) -> Self {
        let (available, watching) = watch::channel(Available::default());
        Self {
            available: watching,
            inbox: Arc::new(Mutex::new(Inbox {
                session: None,
                events: VecDeque::new(),
                calls: VecDeque::new(),
                streams: VecDeque::new(),
                audio: 0,
                ended: false,
                closed: None,
                available,
            })),
            shutdown_requested: false,
            end,
        }
    }

    /// The job has joined its room: from now on the guest acts through `session`.
    pub(crate) async fn join(&mut self, session: Box<dyn RoomSession>) {
        self.lock().await.session = Some(session);
    }

    /// The inbox, for an import or the runtime. Never contended in practice
    /// (see [`RoomLink`]), so taken without waiting when free: a lock that
    /// waits also spends tokio's cooperative budget and may yield, and a
    /// host call that yields counts as the guest giving the host back its
    /// thread, which would let a guest that floods the room in a loop slip
    /// past the runaway check.
    async fn lock(&self) -> MutexGuard<'_, Inbox> {
        match self.inbox.try_lock() {
            Ok(inbox) => inbox,
            Err(_) => self.inbox.lock().await,
        }
    }

    /// Takes the session away from the guest (the job has ended), for the
    /// host to close it.
    pub(crate) async fn take(&mut self) -> Option<Box<dyn RoomSession>> {
        self.lock().await.session.take()
    }

    /// Who is in the room now, the agent excluded; nobody before the job
    /// has joined.
    pub(super) async fn participants(&self) -> Vec<Participant> {
        self.lock()
            .await
            .session
            .as_ref()
            .map(|s| s.participants())
            .unwrap_or_default()
    }

    /// The session, if the job may act in the room now and the call's
    /// guest input (`bytes`, every field of it) is within `max` bytes.
    pub(super) async fn session_for(
        &mut self,
        bytes: usize,
        max: usize,
    ) -> Result<SessionGuard<'_>, RoomError> {
        if bytes > max {
            return Err(RoomError::TooLarge(u32::try_from(max).unwrap_or(u32::MAX)));
        }
        self.joined_session().await
    }

    /// The session, if the job has joined its room and it is still open to
    /// the guest.
    pub(super) async fn joined_session(&mut self) -> Result<SessionGuard<'_>, RoomError> {
        let inbox = self.lock().await;
        // A terminated job may still act in its grace period (say goodbye);
        // any other end closes the session to the guest.
        let ended = inbox.closed.is_some_and(|r| r != CloseReason::Terminated);
        if self.shutdown_requested || ended {
            return Err(RoomError::Closed);
        }
        if inbox.session.is_none() {
            return Err(RoomError::Denied(
                "the job has not joined its room yet".into(),
            ));
        }
        Ok(SessionGuard(inbox))
    }

    /// `job.shutdown`: closes the session to the guest and tells the job it
    /// should end (a waiting `next-event` returns
    /// `closed(shutdown-requested)`), unless something ended it first.
    fn shut_down(&mut self) {
        self.shutdown_requested = true;
        self.end_unless_ended(CloseReason::ShutdownRequested);
    }

    /// Signals the job's end with `reason`, unless an end was signalled
    /// already (the first reason stands).
    fn end_unless_ended(&self, reason: CloseReason) {
        self.end.send_if_modified(|end| {
            let first = end.is_none();
            if first {
                *end = Some(reason);
            }
            first
        });
    }

    /// The next event of any kind, waiting until `deadline` at most; none on
    /// timeout or before the job has joined its room.
    pub(super) async fn next_any(&mut self, deadline: Option<Instant>) -> Option<Event> {
        let mut end = self.end.subscribe();
        let mut inbox = self.lock().await;
        if let Some(reason) = inbox.closed {
            return Some(Event::Room(RoomEvent::Closed(reason)));
        }
        inbox.session.as_ref()?;
        let timeout = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        let reason = tokio::select! {
            // An end signal wins over queued events: a terminated job should
            // learn it at once, not after its backlog.
            biased;
            Ok(reason) = end.wait_for(Option::is_some) => reason.unwrap_or(CloseReason::Terminated),
            event = inbox.next_event() => match event {
                Some(event) => return Some(event),
                None => CloseReason::RoomClosed,
            },
            () = timeout => return None,
        };
        inbox.closed = Some(reason);
        inbox.publish();
        if reason == CloseReason::RoomClosed {
            // The guest now knows; its grace period starts (see
            // `runtime::job`), unless something else ended the job first.
            self.end_unless_ended(CloseReason::RoomClosed);
        }
        Some(Event::Room(RoomEvent::Closed(reason)))
    }

    /// A pollable's view of this link for `kind`: ready when the reader of
    /// that kind would not wait (`next_any` for events).
    pub(super) fn readiness(&self, kind: Kind) -> InboxReady {
        InboxReady {
            inbox: Arc::clone(&self.inbox),
            end: self.end.subscribe(),
            available: self.available.clone(),
            kind,
        }
    }

    /// The next RPC call or byte stream (`kind`) if one is waiting, without
    /// waiting; none before the job has joined or once its session closed.
    pub(super) async fn next_now(&mut self, kind: Kind) -> Option<Incoming> {
        let mut inbox = self.lock().await;
        if inbox.closed.is_some() {
            return None;
        }
        inbox.next_now(kind)
    }
}

/// What `events.subscribe`, `rpc.subscribe` and `streams.subscribe` return:
/// ready once the reader of its kind has something for the guest (an
/// item, the session's end or the job's), never before.
///
/// Several of them can wait in one `poll`: whichever gets the inbox pulls
/// from the session and sorts; the others watch [`Available`], so an item
/// for them is seen at once, whoever pulled it.
pub(crate) struct InboxReady {
    inbox: Arc<Mutex<Inbox>>,
    end: watch::Receiver<Option<CloseReason>>,
    available: watch::Receiver<Available>,
    kind: Kind,
}

#[async_trait::async_trait]
impl Pollable for InboxReady {
    async fn ready(&mut self) {
        loop {
            if self.end.borrow().is_some() || self.available.borrow_and_update().for_kind(self.kind)
            {
                return;
            }
            let mut inbox = tokio::select! {
                biased;
                _ = self.end.wait_for(Option::is_some) => return,
                changed = self.available.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    continue;
                }
                inbox = self.inbox.lock() => inbox,
            };
            // Not joined yet, `pull` never resolves: only the job's end can
            // come (no other reader can pull while this one holds the inbox).
            tokio::select! {
                biased;
                _ = self.end.wait_for(Option::is_some) => return,
                () = inbox.pull() => {}
            }
        }
    }
}

/// What `job.shutdown` may do to the room link: close it, nothing else
/// (no session, no events).
pub(crate) struct SessionCloser<'a>(&'a mut RoomLink);

impl<'a> SessionCloser<'a> {
    /// The closer of `link`.
    pub(crate) fn new(link: &'a mut RoomLink) -> Self {
        Self(link)
    }

    /// Closes the session to the guest; see [`RoomLink`].
    pub(super) fn shut_down(&mut self) {
        self.0.shut_down();
    }
}

/// The deadline `timeout-ms` from now, if given.
pub(super) fn deadline(timeout_ms: Option<u32>) -> Option<Instant> {
    timeout_ms.map(|ms| Instant::now() + Duration::from_millis(ms.into()))
}

/// What the `room` import reaches: the job's room link and its payload cap.
pub(crate) struct RoomView<'a> {
    /// The job's own session; there is no other room to name.
    pub(crate) link: &'a mut RoomLink,
    /// [`JobLimits::max_payload_bytes`](crate::JobLimits::max_payload_bytes).
    pub(crate) max_payload: usize,
}

/// [`HasData`] for the `room` import, whose data is a [`RoomView`].
pub(crate) struct RoomData;

impl HasData for RoomData {
    type Data<'a> = RoomView<'a>;
}

impl RoomView<'_> {
    async fn session_for(&mut self, bytes: usize) -> Result<SessionGuard<'_>, RoomError> {
        self.link.session_for(bytes, self.max_payload).await
    }
}

impl Host for RoomView<'_> {
    async fn participants(&mut self) -> wasmtime::Result<Vec<Participant>> {
        Ok(self.link.participants().await)
    }

    async fn publish_data(
        &mut self,
        payload: Vec<u8>,
        topic: Option<String>,
        reliable: bool,
        destinations: Vec<String>,
    ) -> wasmtime::Result<Result<(), RoomError>> {
        let fields = topic.iter().chain(&destinations).map(String::as_str);
        let mut session = match self.session_for(payload.len() + guest_bytes(fields)).await {
            Ok(session) => session,
            Err(err) => return Ok(Err(err)),
        };
        Ok(session
            .publish_data(OutgoingData {
                payload,
                topic,
                reliable,
                destinations,
            })
            .await)
    }

    async fn send_text(
        &mut self,
        text: String,
        topic: String,
        destinations: Vec<String>,
    ) -> wasmtime::Result<Result<(), RoomError>> {
        let fields = [&topic]
            .into_iter()
            .chain(&destinations)
            .map(String::as_str);
        let mut session = match self.session_for(text.len() + guest_bytes(fields)).await {
            Ok(session) => session,
            Err(err) => return Ok(Err(err)),
        };
        Ok(session
            .send_text(OutgoingText {
                text,
                topic,
                destinations,
            })
            .await)
    }

    async fn set_metadata(&mut self, metadata: String) -> wasmtime::Result<Result<(), RoomError>> {
        let mut session = match self.session_for(metadata.len()).await {
            Ok(session) => session,
            Err(err) => return Ok(Err(err)),
        };
        Ok(session.set_metadata(metadata).await)
    }

    async fn set_attributes(
        &mut self,
        attributes: Vec<(String, String)>,
    ) -> wasmtime::Result<Result<(), RoomError>> {
        let size = guest_bytes(
            attributes
                .iter()
                .flat_map(|(k, v)| [k.as_str(), v.as_str()]),
        );
        let mut session = match self.session_for(size).await {
            Ok(session) => session,
            Err(err) => return Ok(Err(err)),
        };
        Ok(session.set_attributes(attributes).await)
    }

    async fn next_event(&mut self, timeout_ms: Option<u32>) -> wasmtime::Result<Option<RoomEvent>> {
        let deadline = deadline(timeout_ms);
        loop {
            match self.link.next_any(deadline).await {
                Some(Event::Room(event)) => return Ok(Some(event)),
                // Audio and track events exist only for `events.next`.
                Some(_) => continue,
                None => return Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imports::testing::{end_signal, joined};
    use crate::room::sim::SimOutput;

    #[tokio::test]
    async fn every_field_counts_against_the_payload_cap() -> wasmtime::Result<()> {
        let mut joined = joined("caps").await;
        let mut room = RoomView {
            link: &mut joined.link,
            max_payload: 10,
        };
        // 4 payload bytes + "topic" and its framing (6): exactly the cap.
        let at_cap = room
            .publish_data(b"ping".to_vec(), Some("topic".into()), true, vec![])
            .await?;
        assert_eq!(at_cap, Ok(()));
        // One destination more is over it, in every action that takes one.
        let over = room
            .publish_data(
                b"ping".to_vec(),
                Some("topic".into()),
                true,
                vec!["".into()],
            )
            .await?;
        assert_eq!(over, Err(RoomError::TooLarge(10)));
        let over = room
            .send_text("hi".into(), "lk.chat".into(), vec!["bob".into()])
            .await?;
        assert_eq!(over, Err(RoomError::TooLarge(10)));
        assert_eq!(
            room.set_metadata("01234567890".into()).await?,
            Err(RoomError::TooLarge(10))
        );
        // Keys count as much as values.
        let attributes = vec![("key".into(), "value12".into())];
        assert_eq!(
            room.set_attributes(attributes).await?,
            Err(RoomError::TooLarge(10))
        );
        // Only the call within the cap reached the room.
        assert!(matches!(
            joined.next_output(),
            Some(SimOutput::Data { data, .. }) if data.payload == b"ping"
        ));
        assert_eq!(joined.next_output(), None);
        Ok(())
    }

    #[tokio::test]
    async fn nothing_is_possible_before_the_job_has_joined() -> wasmtime::Result<()> {
        let mut link = RoomLink::new(end_signal());
        let mut room = RoomView {
            link: &mut link,
            max_payload: 1024,
        };
        assert!(room.participants().await?.is_empty());
        assert!(matches!(
            room.send_text("hi".into(), "lk.chat".into(), vec![])
                .await?,
            Err(RoomError::Denied(_))
        ));
        assert_eq!(room.next_event(Some(0)).await?, None);
        Ok(())
    }

    #[tokio::test]
    async fn a_terminated_job_may_still_act_in_its_grace_period() -> wasmtime::Result<()> {
        let mut joined = joined("grace").await;
        joined.end.send_replace(Some(CloseReason::Terminated));
        let mut room = RoomView {
            link: &mut joined.link,
            max_payload: 1024,
        };
        let closed = Some(RoomEvent::Closed(CloseReason::Terminated));
        assert_eq!(room.next_event(None).await?, closed);
        assert_eq!(room.next_event(Some(0)).await?, closed, "it repeats");
        let goodbye = room
            .send_text("bye".into(), "lk.chat".into(), vec![])
            .await?;
        assert_eq!(goodbye, Ok(()));
        Ok(())
    }

    #[tokio::test]
    async fn a_closed_room_closes_the_session_and_starts_the_grace_period() -> wasmtime::Result<()>
    {
        let mut joined = joined("closing").await;
        joined.room.close();
        let mut room = RoomView {
            link: &mut joined.link,
            max_payload: 1024,
        };
        let closed = Some(RoomEvent::Closed(CloseReason::RoomClosed));
        assert_eq!(room.next_event(None).await?, closed);
        assert_eq!(*joined.end.borrow(), Some(CloseReason::RoomClosed));
        let mut room = RoomView {
            link: &mut joined.link,
            max_payload: 1024,
        };
        assert_eq!(
            room.set_metadata("late".into()).await?,
            Err(RoomError::Closed)
        );
        assert_eq!(room.next_event(Some(0)).await?, closed, "it repeats");
        Ok(())
    }
}
