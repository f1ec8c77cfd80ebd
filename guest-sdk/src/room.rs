//! The room the job runs in.

use std::fmt;
use std::iter::FusedIterator;
use std::time::Duration;

use crate::__bindings::agent_host::agent::{events, room, types};
use crate::{Event, Participant, RoomEvent};

/// The text stream topic LiveKit clients use for chat.
pub const CHAT_TOPIC: &str = "lk.chat";

/// The room the job runs in, seen as the agent participant.
///
/// Obtained from [`JobContext::room`](crate::JobContext::room). It is a cheap
/// handle onto the host; copy it freely.
#[derive(Debug, Clone, Copy)]
pub struct Room {
    _private: (),
}

/// How [`Room::send_text_with`] sends a text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextOptions {
    /// Text stream topic. Default: [`CHAT_TOPIC`] (`lk.chat`).
    pub topic: String,
    /// Identities to send to; empty (the default) means everyone.
    pub destinations: Vec<String>,
}

impl Default for TextOptions {
    fn default() -> Self {
        TextOptions {
            topic: CHAT_TOPIC.to_owned(),
            destinations: Vec::new(),
        }
    }
}

/// How [`Room::publish_data`] sends a data packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataOptions {
    /// Topic; default none.
    pub topic: Option<String>,
    /// Reliable (ordered, retransmitted) or lossy delivery. Default: reliable.
    pub reliable: bool,
    /// Identities to send to; empty (the default) means everyone.
    pub destinations: Vec<String>,
}

impl Default for DataOptions {
    fn default() -> Self {
        DataOptions {
            topic: None,
            reliable: true,
            destinations: Vec::new(),
        }
    }
}

/// Why a room action failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomError {
    /// The payload is larger than the host allows; the limit in bytes.
    TooLarge(u32),
    /// The room session has ended.
    Closed,
    /// The host does not allow this action; the host's explanation.
    Denied(String),
    /// The transport failed; the host's explanation.
    Transport(String),
}

impl fmt::Display for RoomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoomError::TooLarge(limit) => {
                write!(f, "payload too large: the host allows {limit} bytes")
            }
            RoomError::Closed => f.write_str("the room session has ended"),
            RoomError::Denied(why) => write!(f, "denied by the host: {why}"),
            RoomError::Transport(why) => write!(f, "transport failed: {why}"),
        }
    }
}

impl std::error::Error for RoomError {}

impl From<types::RoomError> for RoomError {
    fn from(error: types::RoomError) -> Self {
        match error {
            types::RoomError::TooLarge(limit) => RoomError::TooLarge(limit),
            types::RoomError::Closed => RoomError::Closed,
            types::RoomError::Denied(why) => RoomError::Denied(why),
            types::RoomError::Transport(why) => RoomError::Transport(why),
        }
    }
}

/// Lets `?` turn a [`RoomError`] into the `Err(String)` of
/// [`Agent::run`](crate::Agent::run).
impl From<RoomError> for String {
    fn from(error: RoomError) -> Self {
        error.to_string()
    }
}

impl Room {
    pub(crate) fn new() -> Self {
        Room { _private: () }
    }

    /// Who is in the room now, the agent excluded.
    pub fn participants(&self) -> Vec<Participant> {
        room::participants()
    }

    /// Send a chat message (topic [`CHAT_TOPIC`]) to everyone.
    pub fn send_text(&self, text: &str) -> Result<(), RoomError> {
        Ok(room::send_text(text, CHAT_TOPIC, &[])?)
    }

    /// Send a chat message (topic [`CHAT_TOPIC`]) to the participants with
    /// the given identities. An empty list means everyone.
    pub fn send_text_to<S: AsRef<str>>(
        &self,
        destinations: &[S],
        text: &str,
    ) -> Result<(), RoomError> {
        Ok(room::send_text(text, CHAT_TOPIC, &owned(destinations))?)
    }

    /// Send a text message with explicit topic and destinations.
    ///
    /// ```no_run
    /// # let room: agent_host_sdk::Room = unimplemented!();
    /// use agent_host_sdk::TextOptions;
    /// room.send_text_with("42", TextOptions {
    ///     topic: "answers".into(),
    ///     ..TextOptions::default()
    /// })?;
    /// # Ok::<(), agent_host_sdk::RoomError>(())
    /// ```
    pub fn send_text_with(&self, text: &str, options: TextOptions) -> Result<(), RoomError> {
        Ok(room::send_text(
            text,
            &options.topic,
            &options.destinations,
        )?)
    }

    /// Send a data packet.
    ///
    /// ```no_run
    /// # let room: agent_host_sdk::Room = unimplemented!();
    /// use agent_host_sdk::DataOptions;
    /// room.publish_data(b"\x01\x02", DataOptions {
    ///     topic: Some("telemetry".into()),
    ///     reliable: false,
    ///     ..DataOptions::default()
    /// })?;
    /// # Ok::<(), agent_host_sdk::RoomError>(())
    /// ```
    pub fn publish_data(&self, payload: &[u8], options: DataOptions) -> Result<(), RoomError> {
        Ok(room::publish_data(
            payload,
            options.topic.as_deref(),
            options.reliable,
            &options.destinations,
        )?)
    }

    /// Replace the agent's own participant metadata.
    pub fn set_metadata(&self, metadata: &str) -> Result<(), RoomError> {
        Ok(room::set_metadata(metadata)?)
    }

    /// Set the agent's own participant attributes; an empty value removes
    /// the attribute. Attributes not named are left alone.
    pub fn set_attributes<I, K, V>(&self, attributes: I) -> Result<(), RoomError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Ok(room::set_attributes(&pairs(attributes))?)
    }

    /// Wait for the next room event, at most `timeout` when given (rounded
    /// up to whole milliseconds). Returns `None` on timeout.
    ///
    /// Once the session is over this returns
    /// [`RoomEvent::Closed`] every time. Waiting blocks only this job.
    pub fn next_event(&self, timeout: Option<Duration>) -> Option<RoomEvent> {
        room::next_event(timeout.map(timeout_ms))
    }

    /// Iterate over the room's events, waiting as long as needed for each.
    ///
    /// The iterator yields every event **including** the final
    /// [`RoomEvent::Closed`], so the close reason can be seen, and then ends.
    pub fn events(&self) -> Events {
        Events { done: false }
    }

    /// Wait for the next event of any kind (room, track or audio), at most
    /// `timeout` when given. Returns `None` on timeout. Reads the same queue
    /// as [`next_event`](Self::next_event), which skips audio and track
    /// events; use one or the other.
    pub fn next(&self, timeout: Option<Duration>) -> Option<Event> {
        events::next(timeout.map(timeout_ms))
    }

    /// Iterate over every event (room, track and audio), waiting as long as
    /// needed for each, up to and including
    /// `Event::Room(RoomEvent::Closed(_))`.
    pub fn all_events(&self) -> AllEvents {
        AllEvents { done: false }
    }
}

/// Every event, from [`Room::all_events`].
#[derive(Debug)]
pub struct AllEvents {
    done: bool,
}

impl Iterator for AllEvents {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        if self.done {
            return None;
        }
        let event = events::next(None);
        self.done = matches!(event, None | Some(Event::Room(RoomEvent::Closed(_))));
        event
    }
}

impl FusedIterator for AllEvents {}

/// The room's events, from [`Room::events`]: every event up to and
/// including [`RoomEvent::Closed`].
#[derive(Debug)]
pub struct Events {
    done: bool,
}

impl Iterator for Events {
    type Item = RoomEvent;

    fn next(&mut self) -> Option<RoomEvent> {
        if self.done {
            return None;
        }
        // Without a timeout the host only returns `None` if it is broken;
        // ending the iteration then beats spinning.
        let event = room::next_event(None);
        self.done = matches!(event, None | Some(RoomEvent::Closed(_)));
        event
    }
}

impl FusedIterator for Events {}

/// Key/value pairs of anything string-like, as the host takes them.
pub(crate) fn pairs<I, K, V>(attributes: I) -> Vec<(String, String)>
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: Into<String>,
{
    attributes
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
}

fn owned<S: AsRef<str>>(identities: &[S]) -> Vec<String> {
    identities.iter().map(|s| s.as_ref().to_owned()).collect()
}

/// Whole milliseconds, rounded up so that a short timeout does not become a
/// poll, saturating at `u32::MAX` (about 49 days).
fn timeout_ms(timeout: Duration) -> u32 {
    let ms = timeout.as_nanos().div_ceil(1_000_000);
    u32::try_from(ms).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_round_up_and_saturate() {
        assert_eq!(timeout_ms(Duration::ZERO), 0);
        assert_eq!(timeout_ms(Duration::from_micros(1)), 1);
        assert_eq!(timeout_ms(Duration::from_millis(1500)), 1500);
        assert_eq!(timeout_ms(Duration::from_secs(u64::MAX)), u32::MAX);
    }

    #[test]
    fn defaults() {
        assert_eq!(TextOptions::default().topic, "lk.chat");
        assert!(DataOptions::default().reliable);
    }

    #[test]
    fn room_error_reads_well() {
        assert_eq!(
            String::from(RoomError::TooLarge(15_000)),
            "payload too large: the host allows 15000 bytes"
        );
    }
}
