//! LiveKit's data streams beyond one-shot text: text streams written
//! incrementally, with attributes, and byte streams received whole.
//!
//! A [`TextWriter`] is what LiveKit's frontends read transcriptions from
//! (topic [`TRANSCRIPTION_TOPIC`]): open it with the stream's attributes,
//! [`write`](TextWriter::write) chunks as they are known, and
//! [`close`](TextWriter::close) it with the trailer's attributes.
//!
//! ```no_run
//! # fn example() -> Result<(), agent_host_sdk::RoomError> {
//! use agent_host_sdk::streams::{self, TextStreamOptions, TRANSCRIPTION_TOPIC};
//!
//! let writer = streams::open_text(
//!     TextStreamOptions::new(TRANSCRIPTION_TOPIC)
//!         .attribute("lk.segment_id", "SG_1")
//!         .attribute("lk.transcription_final", "false"),
//! )?;
//! writer.write("Hello, ")?;
//! writer.write("world.")?;
//! writer.close([("lk.transcription_final", "true")])?;
//! # Ok(())
//! # }
//! ```
//!
//! Byte streams are received per topic once [`accept_bytes`] named it
//! (the host drops streams of topics nobody accepted, as livekit-agents
//! does); [`recv_bytes`] awaits the next one, [`next_bytes`] takes one
//! without waiting.
//!
//! Invariants: a writer is closed exactly once, by `close` or by its drop
//! (the host's `text-writer` resource closes the stream when dropped); a
//! byte stream is taken from the host only in the poll that returns it, so
//! a `recv_bytes` dropped mid-wait loses nothing.

use crate::__bindings::agent_host::agent::streams as wit;
use crate::RoomError;
use crate::task::ready;

/// The topic of transcriptions, as LiveKit's frontends read them.
pub const TRANSCRIPTION_TOPIC: &str = "lk.transcription";

/// The topic on which a LiveKit client sends the audio it recorded before
/// the agent joined (livekit-agents' `lk.agent.pre-connect-audio-buffer`).
pub const PRE_CONNECT_AUDIO_TOPIC: &str = "lk.agent.pre-connect-audio-buffer";

/// How [`open_text`] opens a text stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "options do nothing until a stream is opened with them"]
pub struct TextStreamOptions {
    topic: String,
    attributes: Vec<(String, String)>,
    destinations: Vec<String>,
    sender: Option<String>,
}

impl TextStreamOptions {
    /// A stream on `topic`, to everyone, sent as the agent, with no
    /// attributes.
    pub fn new(topic: &str) -> Self {
        TextStreamOptions {
            topic: topic.to_owned(),
            attributes: Vec::new(),
            destinations: Vec::new(),
            sender: None,
        }
    }

    /// Add a stream attribute, sent with the stream's header.
    pub fn attribute(mut self, key: &str, value: &str) -> Self {
        self.attributes.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Deliver to `identity` (called again, to several); by default the
    /// stream goes to everyone.
    pub fn destination(mut self, identity: &str) -> Self {
        self.destinations.push(identity.to_owned());
        self
    }

    /// Publish on behalf of the participant `identity`, who must be in the
    /// room (livekit-agents publishes a user's transcription as that user).
    pub fn sender(mut self, identity: &str) -> Self {
        self.sender = Some(identity.to_owned());
        self
    }
}

/// Open a text stream; write it with the returned [`TextWriter`].
pub fn open_text(options: TextStreamOptions) -> Result<TextWriter, RoomError> {
    let writer = wit::open_text(&wit::TextStreamOptions {
        topic: options.topic,
        attributes: options.attributes,
        destinations: options.destinations,
        sender: options.sender,
    })?;
    Ok(TextWriter { writer })
}

/// A text stream being written, from [`open_text`]. Dropping it closes the
/// stream with no trailer attributes.
#[derive(Debug)]
pub struct TextWriter {
    writer: wit::TextWriter,
}

impl TextWriter {
    /// The stream id receivers see.
    pub fn id(&self) -> String {
        self.writer.id()
    }

    /// Append `text`; receivers see it at once.
    pub fn write(&self, text: &str) -> Result<(), RoomError> {
        Ok(self.writer.write(text)?)
    }

    /// End the stream; `attributes` go with its trailer, and receivers
    /// merge them into the header's.
    pub fn close<I, K, V>(self, attributes: I) -> Result<(), RoomError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Ok(self.writer.close(&crate::room::pairs(attributes))?)
    }
}

pub use crate::__bindings::agent_host::agent::streams::ByteStream;

impl ByteStream {
    /// The value of the stream attribute `key`, if the sender set it.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Receive the byte streams sent on `topic` from now on. The host caps
/// the topics a job may accept and a stream's size.
pub fn accept_bytes(topic: &str) -> Result<(), RoomError> {
    Ok(wit::accept_bytes(topic)?)
}

/// The next byte stream received whole, without waiting; `None` when none
/// is waiting.
pub fn next_bytes() -> Option<ByteStream> {
    wit::next_bytes()
}

/// Wait for the next byte stream, letting the job's other tasks run
/// meanwhile. Needs the async runtime. A stream only arrives on a topic
/// [`accept_bytes`] named; once the session is over this waits forever,
/// so await it beside the room (which says when it closed).
pub async fn recv_bytes() -> ByteStream {
    loop {
        if let Some(stream) = wit::next_bytes() {
            return stream;
        }
        ready(wit::subscribe()).await;
        if let Some(stream) = wit::next_bytes() {
            return stream;
        }
        // Ready without a stream: the session ended or the job must end.
        // The room's events say which; wait for them rather than spin.
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_collect_attributes_destinations_and_sender() {
        let options = TextStreamOptions::new(TRANSCRIPTION_TOPIC)
            .attribute("lk.segment_id", "SG_1")
            .destination("alice")
            .sender("bob");
        assert_eq!(options.topic, "lk.transcription");
        assert_eq!(
            options.attributes,
            [("lk.segment_id".to_owned(), "SG_1".to_owned())]
        );
        assert_eq!(options.destinations, ["alice"]);
        assert_eq!(options.sender.as_deref(), Some("bob"));
    }

    #[test]
    fn byte_stream_attributes_by_key() {
        let stream = ByteStream {
            id: "BS_1".into(),
            sender: "alice".into(),
            topic: PRE_CONNECT_AUDIO_TOPIC.into(),
            name: String::new(),
            mime_type: String::new(),
            attributes: vec![("sampleRate".into(), "24000".into())],
            bytes: Vec::new(),
            incomplete: None,
        };
        assert_eq!(stream.attribute("sampleRate"), Some("24000"));
        assert_eq!(stream.attribute("channels"), None);
    }
}
