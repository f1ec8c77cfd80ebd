//! Data streams in a sim room: text streams agents write, byte streams
//! scripted participants send.
//!
//! A text stream an agent writes shows as [`SimOutput::TextStreamOpened`],
//! one [`SimOutput::TextStreamChunk`] per write and
//! [`SimOutput::TextStreamClosed`] (also when the writer is dropped), and
//! reaches the other agents as one `text-received` once it is closed, as
//! a reader that reads it whole sees it. A byte stream reaches the agents
//! that accepted its topic, whole, at most
//! [`BYTE_STREAM_MAX_BYTES`](crate::room::BYTE_STREAM_MAX_BYTES) of it.

use futures::FutureExt as _;
use futures::future::BoxFuture;

use super::{SimOutput, SimRoom, lock};
use crate::bindings::streams::{ByteStream, TextStreamOptions};
use crate::bindings::types::{RoomError, RoomEvent, TextMessage};
use crate::room::queue::{Incoming, Queued};
use crate::room::{BYTE_STREAM_MAX_BYTES, TextStreamWriter};

/// A byte stream a scripted participant sends.
#[derive(Debug, Clone, Default)]
pub struct SimByteStream {
    /// Its topic.
    pub topic: String,
    /// Its name.
    pub name: String,
    /// Its MIME type.
    pub mime_type: String,
    /// Its attributes.
    pub attributes: Vec<(String, String)>,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

impl SimRoom {
    /// Participant `from` sends a byte stream to the agents that accepted
    /// its topic (`destinations` empty = all of them).
    pub fn send_bytes(&self, from: &str, stream: SimByteStream, destinations: &[String]) {
        let mut state = lock(&self.state);
        state.next_stream += 1;
        let id = format!("sim-stream-{}", state.next_stream);
        let incomplete = (stream.bytes.len() > BYTE_STREAM_MAX_BYTES)
            .then(|| format!("larger than the host's cap of {BYTE_STREAM_MAX_BYTES} bytes"));
        let mut bytes = stream.bytes;
        bytes.truncate(BYTE_STREAM_MAX_BYTES);
        let received = ByteStream {
            id,
            sender: from.to_string(),
            topic: stream.topic,
            name: stream.name,
            mime_type: stream.mime_type,
            attributes: stream.attributes,
            bytes,
            incomplete,
        };
        for session in &state.sessions {
            if !session.topics.contains(&received.topic)
                || (!destinations.is_empty() && !destinations.contains(&session.identity))
            {
                continue;
            }
            let delivered = Queued::charged(&session.memory, Incoming::Bytes(received.clone()))
                .map(|queued| session.events.try_send(queued).is_ok());
            if delivered != Ok(true) {
                tracing::warn!(agent = %session.identity, "dropping a byte stream: queue or budget full");
            }
        }
    }
}

/// A text stream an agent writes in a sim room.
pub(super) struct SimTextWriter {
    pub(super) room: SimRoom,
    pub(super) from: String,
    pub(super) id: String,
    pub(super) options: TextStreamOptions,
    /// Everything written, for the other agents once it is closed.
    pub(super) text: String,
    pub(super) closed: bool,
}

impl SimTextWriter {
    fn finish(&mut self, attributes: Vec<(String, String)>) {
        self.closed = true;
        let mut state = lock(&self.room.state);
        let event = RoomEvent::TextReceived(TextMessage {
            sender: self
                .options
                .sender
                .clone()
                .unwrap_or_else(|| self.from.clone()),
            topic: self.options.topic.clone(),
            text: std::mem::take(&mut self.text),
        });
        state.broadcast(Some(&self.from), &self.options.destinations, event);
        state.notify(SimOutput::TextStreamClosed {
            from: self.from.clone(),
            id: self.id.clone(),
            attributes,
        });
    }
}

impl TextStreamWriter for SimTextWriter {
    fn id(&self) -> &str {
        &self.id
    }

    fn write(&mut self, text: String) -> BoxFuture<'_, Result<(), RoomError>> {
        let result = if self.closed || self.room.is_closed() {
            Err(RoomError::Closed)
        } else {
            self.text.push_str(&text);
            lock(&self.room.state).notify(SimOutput::TextStreamChunk {
                from: self.from.clone(),
                id: self.id.clone(),
                text,
            });
            Ok(())
        };
        async move { result }.boxed()
    }

    fn close(&mut self, attributes: Vec<(String, String)>) -> BoxFuture<'_, Result<(), RoomError>> {
        let result = if self.closed {
            Err(RoomError::Closed)
        } else {
            self.finish(attributes);
            Ok(())
        };
        async move { result }.boxed()
    }
}

impl Drop for SimTextWriter {
    fn drop(&mut self) {
        if !self.closed {
            self.finish(Vec::new());
        }
    }
}
