//! Room transports: how a job reaches its LiveKit room.
//!
//! A [`RoomTransport`] opens one [`RoomSession`] per job. Events flow in
//! (`next_event`), actions flow out (`publish_data`, `send_text`,
//! `write_audio`, ...). The `room`, `audio` and `events` imports of the WIT
//! world are a thin, capability-checked layer over a session: a job can only
//! ever touch the session of its own room.
//!
//! Implementations:
//! - [`sim`]: an in-memory room for `agent-host console` and tests.
//! - [`ffi`]: real LiveKit rooms through LiveKit's client library;
//! - [`offline`]: no rooms (when that library is not installed).
//!
//! Beside the transports, [`service`] is LiveKit's server API
//! (`RoomService`), scoped to one job's room.
//!
//! Contract for implementors:
//! - `next_event` is cancel-safe (the host races it against timeouts and
//!   termination) and returns `None` once the room session has ended for
//!   good (room closed, agent removed, connection lost);
//! - [`RoomSession::ended`] resolves at that moment too, whether or not the
//!   guest reads its events: the host ends a job whose room is gone even
//!   if its guest never looks;
//! - actions never block on the guest; a failing action returns a
//!   [`RoomError`], it never panics;
//! - dropping a session leaves the room (a transport must not rely on
//!   [`RoomSession::close`] being called);
//! - audio is real time: a transport may drop audio frames a job does not
//!   read fast enough, never other events;
//! - what waits in a session's queue is charged to the job's host-memory
//!   budget ([`queue::Queued`]); [`RoomSession::write_audio`] may
//!   wait while about a second of audio is queued (that is the guest's
//!   backpressure), nothing else waits on the guest.

pub mod ffi;
pub mod offline;
pub(crate) mod pcm;
pub mod queue;
pub mod service;
pub mod sim;

use futures::future::BoxFuture;

use crate::bindings::audio::AudioFormat;
use crate::bindings::events::Event;
use crate::bindings::types::{JobInfo, Participant, RoomError};
use crate::host_memory::HostMemory;

/// What a transport needs to put a job into its room.
#[derive(Debug, Clone)]
pub struct ConnectRequest {
    /// The job, including its room and the identity it accepted with.
    pub job: JobInfo,
    /// LiveKit URL of the room's server (empty for the sim).
    pub url: String,
    /// Participant token issued by the server for this job.
    pub token: String,
    /// The job's host-memory budget: events queued for the job are charged
    /// to it (see [`queue`]).
    pub host_memory: HostMemory,
}

/// A data packet sent by the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingData {
    /// Payload bytes.
    pub payload: Vec<u8>,
    /// Optional topic.
    pub topic: Option<String>,
    /// Reliable (ordered, retransmitted) or lossy delivery.
    pub reliable: bool,
    /// Identities to deliver to; empty means everyone.
    pub destinations: Vec<String>,
}

/// A text message sent by the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingText {
    /// The text.
    pub text: String,
    /// Text-stream topic (`lk.chat` for chat).
    pub topic: String,
    /// Identities to deliver to; empty means everyone.
    pub destinations: Vec<String>,
}

/// Opens room sessions for jobs.
///
/// ```
/// use agent_host::room::{sim::SimRooms, RoomTransport};
/// let transport: std::sync::Arc<dyn RoomTransport> = std::sync::Arc::new(SimRooms::default());
/// # let _ = transport;
/// ```
pub trait RoomTransport: Send + Sync + 'static {
    /// Joins the job's room and returns the session.
    fn connect(
        &self,
        request: ConnectRequest,
    ) -> BoxFuture<'_, Result<Box<dyn RoomSession>, RoomError>>;
}

/// One job's presence in its room. See the [module docs](self) for the contract.
pub trait RoomSession: Send + 'static {
    /// Who is in the room now, the agent excluded.
    fn participants(&self) -> Vec<Participant>;

    /// The next event; `None` once the session has ended. Cancel-safe.
    fn next_event(&mut self) -> BoxFuture<'_, Option<Event>>;

    /// Sends a data packet.
    fn publish_data(&mut self, data: OutgoingData) -> BoxFuture<'_, Result<(), RoomError>>;

    /// Sends a text message.
    fn send_text(&mut self, text: OutgoingText) -> BoxFuture<'_, Result<(), RoomError>>;

    /// Replaces the agent's own metadata.
    fn set_metadata(&mut self, metadata: String) -> BoxFuture<'_, Result<(), RoomError>>;

    /// Sets (or, with an empty value, removes) the agent's own attributes.
    fn set_attributes(
        &mut self,
        attributes: Vec<(String, String)>,
    ) -> BoxFuture<'_, Result<(), RoomError>>;

    /// Starts (or, with a new format, changes) delivering `identity`'s
    /// microphone audio as [`Event::Audio`] frames in `format`.
    fn subscribe_audio(
        &mut self,
        identity: String,
        format: AudioFormat,
    ) -> BoxFuture<'_, Result<(), RoomError>>;

    /// Stops delivering `identity`'s audio.
    fn unsubscribe_audio(&mut self, identity: String) -> BoxFuture<'_, ()>;

    /// Publishes the agent's audio track. Called at most once per session
    /// (the `audio` import enforces it).
    fn publish_audio(
        &mut self,
        name: String,
        format: AudioFormat,
    ) -> BoxFuture<'_, Result<(), RoomError>>;

    /// Queues interleaved samples, in the published format, on the agent's
    /// track. Called only after a successful [`publish_audio`](Self::publish_audio).
    fn write_audio(&mut self, samples: Vec<i16>) -> BoxFuture<'_, Result<(), RoomError>>;

    /// Drops the audio queued on the agent's track and not yet played.
    fn clear_audio(&mut self) -> BoxFuture<'_, Result<(), RoomError>>;

    /// Why the session broke, if it did: a transport failure (for example the
    /// client library reported a panic) rather than the room ending
    /// normally. A job whose session broke fails with this reason even if
    /// the guest returns `ok`. Default: never broken.
    fn failure(&self) -> Option<String> {
        None
    }

    /// Resolves once the session has ended for good (room closed, agent
    /// removed, connection lost), whether or not the guest has read the
    /// events queued before (it may also resolve once the job has left by
    /// [`close`](Self::close)). Default: never.
    fn ended(&self) -> BoxFuture<'static, ()> {
        Box::pin(std::future::pending())
    }

    /// Leaves the room.
    fn close(&mut self) -> BoxFuture<'_, ()>;
}
