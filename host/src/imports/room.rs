//! `agent-host:agent/room`: the job's own room session.
//!
//! Before the job has joined its room (while the guest answers
//! `on-request`) every action is denied and `next-event` returns none.
//! Once `next-event` has returned `closed(reason)` it keeps returning it;
//! `closed(room-closed)` also starts the job's grace period, after which a
//! guest that has not returned is stopped.
//! `next-event` reads the same queue as `events.next` and skips the events
//! only `events` can express (audio frames, track events).
//! An action's guest input, every field of it (payload, topic, each
//! destination identity, attribute keys and values), counts against the
//! payload cap; over it the action fails with `too-large`.

use std::time::Duration;

use tokio::time::Instant;

use super::guest_bytes;
use crate::bindings::agent_host::agent::room::Host;
use crate::bindings::events::Event;
use crate::bindings::types::{CloseReason, Participant, RoomError, RoomEvent};
use crate::room::{OutgoingData, OutgoingText, RoomSession};
use crate::runtime::state::JobState;

impl JobState {
    /// The session, if the job may act in the room now and the call's
    /// guest input (`bytes`, every field of it) is within the cap.
    pub(crate) fn session_for(&mut self, bytes: usize) -> Result<&mut dyn RoomSession, RoomError> {
        let max = self.limits.max_payload_bytes;
        if bytes > max {
            return Err(RoomError::TooLarge(u32::try_from(max).unwrap_or(u32::MAX)));
        }
        self.joined_session()
    }

    /// The session, if the job has joined its room and it is still open.
    pub(crate) fn joined_session(&mut self) -> Result<&mut dyn RoomSession, RoomError> {
        if self.closed.is_some() && self.closed != Some(CloseReason::Terminated) {
            return Err(RoomError::Closed);
        }
        match self.session.as_deref_mut() {
            Some(session) => Ok(session),
            None => Err(RoomError::Denied(
                "the job has not joined its room yet".into(),
            )),
        }
    }

    /// The next event of any kind, waiting until `deadline` at most; none on
    /// timeout or before the job has joined its room.
    pub(crate) async fn next_any(&mut self, deadline: Option<Instant>) -> Option<Event> {
        if let Some(reason) = self.closed {
            return Some(Event::Room(RoomEvent::Closed(reason)));
        }
        let session = self.session.as_deref_mut()?;
        let mut end = self.end.subscribe();
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
            event = session.next_event() => match event {
                Some(event) => return Some(event),
                None => CloseReason::RoomClosed,
            },
            () = timeout => return None,
        };
        self.closed = Some(reason);
        if reason == CloseReason::RoomClosed {
            // The guest now knows; its grace period starts (see
            // `runtime::job`), unless something else ended the job first.
            self.end.send_if_modified(|end| {
                let first = end.is_none();
                if first {
                    *end = Some(CloseReason::RoomClosed);
                }
                first
            });
        }
        Some(Event::Room(RoomEvent::Closed(reason)))
    }
}

/// The deadline `timeout-ms` from now, if given.
pub(crate) fn deadline(timeout_ms: Option<u32>) -> Option<Instant> {
    timeout_ms.map(|ms| Instant::now() + Duration::from_millis(ms.into()))
}

impl Host for JobState {
    async fn participants(&mut self) -> wasmtime::Result<Vec<Participant>> {
        Ok(self
            .session
            .as_ref()
            .map(|s| s.participants())
            .unwrap_or_default())
    }

    async fn publish_data(
        &mut self,
        payload: Vec<u8>,
        topic: Option<String>,
        reliable: bool,
        destinations: Vec<String>,
    ) -> wasmtime::Result<Result<(), RoomError>> {
        let fields = topic.iter().chain(&destinations).map(String::as_str);
        let session = match self.session_for(payload.len() + guest_bytes(fields)) {
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
        let session = match self.session_for(text.len() + guest_bytes(fields)) {
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
        let session = match self.session_for(metadata.len()) {
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
        let session = match self.session_for(size) {
            Ok(session) => session,
            Err(err) => return Ok(Err(err)),
        };
        Ok(session.set_attributes(attributes).await)
    }

    async fn next_event(&mut self, timeout_ms: Option<u32>) -> wasmtime::Result<Option<RoomEvent>> {
        let deadline = deadline(timeout_ms);
        loop {
            match self.next_any(deadline).await {
                Some(Event::Room(event)) => return Ok(Some(event)),
                // Audio and track events exist only for `events.next`.
                Some(_) => continue,
                None => return Ok(None),
            }
        }
    }
}
