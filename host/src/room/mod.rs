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
//!   backpressure), nothing else waits on the guest;
//! - RPC: calls to methods the job did not register are answered by the
//!   transport (1400, unsupported method), never queued; a queued call the
//!   guest does not answer within its response timeout is answered by the
//!   transport (1502, response timeout) if the caller still waits, and a
//!   later [`RoomSession::respond_rpc`] for it fails with `closed`;
//! - byte streams on topics the job did not accept are dropped (as
//!   livekit-agents drops them); accepted ones are delivered whole once
//!   they end, at most [`BYTE_STREAM_MAX_BYTES`] each (the rest is
//!   dropped, and the stream says it is incomplete), and what a stream
//!   holds while it arrives is charged to the job's budget too.
//!
//! The caps the import enforces before a call reaches a transport (the
//! payload cap, RPC's 15 KiB, the numbers of methods, topics and open
//! writers, that an on-behalf sender is in the room) are policy of
//! [`crate::imports`], not of the transports.

pub mod ffi;
pub mod offline;
pub(crate) mod pcm;
pub mod queue;
pub mod rpc_codes;
pub mod service;
pub mod sim;

use std::time::Duration;

use futures::future::BoxFuture;

use crate::bindings::audio::AudioFormat;
pub use crate::bindings::rpc::RpcError;
pub use crate::bindings::streams::TextStreamOptions;
use crate::bindings::types::{JobInfo, Participant, RoomError};
use crate::host_memory::HostMemory;
pub use queue::{Incoming, Queued};

pub use crate::config::rooms::BYTE_STREAM_MAX_BYTES;

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

/// An RPC call the agent makes on a participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingCall {
    /// Identity of the participant called.
    pub destination: String,
    /// The method called.
    pub method: String,
    /// What is sent.
    pub payload: String,
    /// How long to wait for the answer (the import has capped it).
    pub response_timeout: Duration,
}

/// The answer to an [`OutgoingCall`], once it comes: the response, or the
/// error the callee, the transport or the timeout gave. Independent of the
/// session (`'static`), so the job can hold it while it acts in the room.
pub type CallAnswer = BoxFuture<'static, Result<String, RpcError>>;

/// A text stream the agent is writing. Dropping it closes the stream, as
/// [`close`](Self::close) with no attributes does.
pub trait TextStreamWriter: Send + 'static {
    /// The stream id receivers see.
    fn id(&self) -> &str;

    /// Appends `text`; receivers see it as one chunk.
    fn write(&mut self, text: String) -> BoxFuture<'_, Result<(), RoomError>>;

    /// Ends the stream, with `attributes` in its trailer. Called at most
    /// once (the import enforces it).
    fn close(&mut self, attributes: Vec<(String, String)>) -> BoxFuture<'_, Result<(), RoomError>>;
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

    /// The next event, call or byte stream, still charged to the job's
    /// budget; `None` once the session has ended. Cancel-safe.
    fn next_incoming(&mut self) -> BoxFuture<'_, Option<Queued>>;

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

    /// Publishes the agent's audio track and returns its sid. Called at most
    /// once per session (the `audio` import enforces it).
    fn publish_audio(
        &mut self,
        name: String,
        format: AudioFormat,
    ) -> BoxFuture<'_, Result<String, RoomError>>;

    /// Queues interleaved samples, in the published format, on the agent's
    /// track. Called only after a successful [`publish_audio`](Self::publish_audio).
    fn write_audio(&mut self, samples: Vec<i16>) -> BoxFuture<'_, Result<(), RoomError>>;

    /// Drops the audio queued on the agent's track and not yet played.
    fn clear_audio(&mut self) -> BoxFuture<'_, Result<(), RoomError>>;

    /// Opens a text stream, written incrementally. `options.sender`, when
    /// given, is a participant in the room (the import checked it).
    fn open_text_stream(
        &mut self,
        options: TextStreamOptions,
    ) -> BoxFuture<'_, Result<Box<dyn TextStreamWriter>, RoomError>>;

    /// Delivers the byte streams sent on `topic` from now on as
    /// [`Incoming::Bytes`].
    fn accept_byte_streams(&mut self, topic: String) -> BoxFuture<'_, Result<(), RoomError>>;

    /// Delivers calls to `method` from now on as [`Incoming::Call`].
    fn register_rpc(&mut self, method: String) -> BoxFuture<'_, Result<(), RoomError>>;

    /// Stops delivering calls to `method` (the transport answers later ones
    /// with 1400).
    fn unregister_rpc(&mut self, method: String) -> BoxFuture<'_, ()>;

    /// Answers the call `id` the session delivered. `closed` when it is not
    /// waiting for an answer (answered, timed out, unknown).
    fn respond_rpc(
        &mut self,
        id: String,
        response: Result<String, RpcError>,
    ) -> BoxFuture<'_, Result<(), RoomError>>;

    /// Starts a call; its answer comes through the returned future. Fails at
    /// once only when no call can be made (the session is gone).
    fn perform_rpc(&mut self, call: OutgoingCall) -> BoxFuture<'_, Result<CallAnswer, RoomError>>;

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
