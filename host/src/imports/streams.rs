//! `agent-host:agent/streams`: text streams written incrementally, byte
//! streams received.
//!
//! Policy:
//! - as for `room`: before the job has joined its room every call is
//!   `denied`; once the guest asked to shut down, or was told its room
//!   closed, it is `closed` (a terminated job may still write in its grace
//!   period);
//! - every guest string of a call (topic, each attribute key and value,
//!   each destination, the sender, each chunk) counts against the payload
//!   cap, per call ([`guest_bytes`]);
//! - a stream published on behalf of `sender` needs `sender` to be in the
//!   room now (or to be the agent itself): the agent may voice a
//!   participant's transcription, as livekit-agents does, but not speak as
//!   someone who is not there;
//! - at most [`BYTE_STREAM_MAX_TOPICS`] byte-stream topics per job
//!   (`denied` beyond);
//! - a writer is a resource in the job's table, under its resource cap;
//!   dropping it closes the stream; a closed writer's calls are `closed`.
//!
//! [`StreamsView`] is what the import reaches: the job's room link, its
//! table, the topics it accepts and its own identity.

use std::collections::HashSet;

use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime_wasi::p2::DynPollable;

use super::guest_bytes;
use super::room::{Kind, RoomLink};
use crate::bindings::agent_host::agent::streams::{Host, HostTextWriter};
use crate::bindings::streams::{ByteStream, TextStreamOptions};
use crate::bindings::types::RoomError;
use crate::config::rooms::BYTE_STREAM_MAX_TOPICS;
use crate::room::{Incoming, TextStreamWriter};

/// A text stream the guest writes: the `text-writer` resource.
pub struct TextWriter {
    writer: Box<dyn TextStreamWriter>,
    closed: bool,
}

/// What the `streams` import reaches.
pub(crate) struct StreamsView<'a> {
    /// The job's own session.
    pub(crate) link: &'a mut RoomLink,
    /// The job's resources: writers and pollables.
    pub(crate) table: &'a mut ResourceTable,
    /// The byte-stream topics the job accepts.
    pub(crate) topics: &'a mut HashSet<String>,
    /// The agent's own identity, a sender it may always name.
    pub(crate) identity: &'a str,
    /// [`JobLimits::max_payload_bytes`](crate::JobLimits::max_payload_bytes).
    pub(crate) max_payload: usize,
}

/// [`HasData`] for the `streams` import, whose data is a [`StreamsView`].
pub(crate) struct StreamsData;

impl HasData for StreamsData {
    type Data<'a> = StreamsView<'a>;
}

/// The guest bytes key/value pairs count for.
fn pairs<'a>(pairs: &'a [(String, String)]) -> impl Iterator<Item = &'a str> {
    pairs.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()])
}

impl StreamsView<'_> {
    /// `Ok` if the job may act in the room now.
    async fn open_to_guest(&mut self) -> Result<(), RoomError> {
        self.link.joined_session().await.map(drop)
    }

    fn check_size(&self, bytes: usize) -> Result<(), RoomError> {
        if bytes > self.max_payload {
            return Err(RoomError::TooLarge(
                u32::try_from(self.max_payload).unwrap_or(u32::MAX),
            ));
        }
        Ok(())
    }

    async fn open(&mut self, options: TextStreamOptions) -> Result<TextWriter, RoomError> {
        let fields = [options.topic.as_str()]
            .into_iter()
            .chain(pairs(&options.attributes))
            .chain(options.destinations.iter().map(String::as_str))
            .chain(options.sender.as_deref());
        self.check_size(guest_bytes(fields))?;
        let identity = self.identity;
        let mut session = self.link.joined_session().await?;
        if let Some(sender) = options.sender.as_deref()
            && sender != identity
            && !session.participants().iter().any(|p| p.identity == sender)
        {
            return Err(RoomError::Denied(format!(
                "`{sender}` is not in the room: a stream may only be sent on behalf of a participant who is"
            )));
        }
        let writer = session.open_text_stream(options).await?;
        Ok(TextWriter {
            writer,
            closed: false,
        })
    }

    async fn accept(&mut self, topic: String) -> Result<(), RoomError> {
        self.check_size(guest_bytes([topic.as_str()]))?;
        if !self.topics.contains(&topic) && self.topics.len() >= BYTE_STREAM_MAX_TOPICS {
            return Err(RoomError::Denied(format!(
                "a job may accept at most {BYTE_STREAM_MAX_TOPICS} byte-stream topics"
            )));
        }
        let mut session = self.link.joined_session().await?;
        session.accept_byte_streams(topic.clone()).await?;
        self.topics.insert(topic);
        Ok(())
    }
}

impl Host for StreamsView<'_> {
    async fn open_text(
        &mut self,
        options: TextStreamOptions,
    ) -> wasmtime::Result<Result<Resource<TextWriter>, RoomError>> {
        match self.open(options).await {
            Ok(writer) => Ok(Ok(self.table.push(writer)?)),
            Err(err) => Ok(Err(err)),
        }
    }

    async fn accept_bytes(&mut self, topic: String) -> wasmtime::Result<Result<(), RoomError>> {
        Ok(self.accept(topic).await)
    }

    async fn subscribe(&mut self) -> wasmtime::Result<Resource<DynPollable>> {
        let ready = self.table.push(self.link.readiness(Kind::Bytes))?;
        wasmtime_wasi::p2::subscribe(self.table, ready)
    }

    async fn next_bytes(&mut self) -> wasmtime::Result<Option<ByteStream>> {
        Ok(match self.link.next_now(Kind::Bytes).await {
            Some(Incoming::Bytes(stream)) => Some(stream),
            _ => None,
        })
    }
}

impl HostTextWriter for StreamsView<'_> {
    async fn id(&mut self, writer: Resource<TextWriter>) -> wasmtime::Result<String> {
        Ok(self.table.get(&writer)?.writer.id().to_string())
    }

    async fn write(
        &mut self,
        writer: Resource<TextWriter>,
        text: String,
    ) -> wasmtime::Result<Result<(), RoomError>> {
        if let Err(err) = self.check_size(text.len()) {
            return Ok(Err(err));
        }
        if let Err(err) = self.open_to_guest().await {
            return Ok(Err(err));
        }
        let writer = self.table.get_mut(&writer)?;
        if writer.closed {
            return Ok(Err(RoomError::Closed));
        }
        Ok(writer.writer.write(text).await)
    }

    async fn close(
        &mut self,
        writer: Resource<TextWriter>,
        attributes: Vec<(String, String)>,
    ) -> wasmtime::Result<Result<(), RoomError>> {
        if let Err(err) = self.check_size(guest_bytes(pairs(&attributes))) {
            return Ok(Err(err));
        }
        if let Err(err) = self.open_to_guest().await {
            return Ok(Err(err));
        }
        let writer = self.table.get_mut(&writer)?;
        if writer.closed {
            return Ok(Err(RoomError::Closed));
        }
        writer.closed = true;
        Ok(writer.writer.close(attributes).await)
    }

    async fn drop(&mut self, writer: Resource<TextWriter>) -> wasmtime::Result<()> {
        // The transport's writer closes the stream when dropped unclosed.
        self.table.delete(writer)?;
        Ok(())
    }
}
