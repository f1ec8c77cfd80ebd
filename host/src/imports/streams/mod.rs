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
//! table, its [`Streams`] (writers, accepted topics) and its own identity.

pub(crate) mod handle;

use std::collections::{HashMap, HashSet};

use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime_wasi::p2::DynPollable;

use super::guest_bytes;
use super::room::{Kind, RoomLink};
use crate::bindings::agent_host::agent::streams::{Host, HostTextWriter};
use crate::bindings::streams::{ByteStream, TextStreamOptions};
use crate::bindings::types::RoomError;
use crate::config::rooms::BYTE_STREAM_MAX_TOPICS;
use crate::room::{Incoming, TextStreamWriter};

use self::handle::TextWriter;

/// A text stream the guest writes.
struct Writer {
    writer: Box<dyn TextStreamWriter>,
    closed: bool,
}

/// A job's text-stream writers and the byte-stream topics it accepts.
#[derive(Default)]
pub(crate) struct Streams {
    topics: HashSet<String>,
    /// Every writer the guest holds, by the id its handle names.
    writers: HashMap<u64, Writer>,
    /// The id of the next writer.
    next: u64,
}

impl Streams {
    fn writer(&mut self, handle: &TextWriter) -> wasmtime::Result<&mut Writer> {
        self.writers
            .get_mut(&handle.id)
            .ok_or_else(|| wasmtime::format_err!("a text-writer handle outlived its writer"))
    }
}

/// What the `streams` import reaches.
pub(crate) struct StreamsView<'a> {
    /// The job's own session.
    pub(crate) link: &'a mut RoomLink,
    /// The job's resources: writers and pollables.
    pub(crate) table: &'a mut ResourceTable,
    /// The job's writers and accepted topics.
    pub(crate) state: &'a mut Streams,
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
fn pairs(pairs: &[(String, String)]) -> impl Iterator<Item = &str> {
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

    async fn open(&mut self, options: TextStreamOptions) -> Result<Writer, RoomError> {
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
        Ok(Writer {
            writer,
            closed: false,
        })
    }

    async fn accept(&mut self, topic: String) -> Result<(), RoomError> {
        self.check_size(guest_bytes([topic.as_str()]))?;
        let topics = &self.state.topics;
        if !topics.contains(&topic) && topics.len() >= BYTE_STREAM_MAX_TOPICS {
            return Err(RoomError::Denied(format!(
                "a job may accept at most {BYTE_STREAM_MAX_TOPICS} byte-stream topics"
            )));
        }
        let mut session = self.link.joined_session().await?;
        session.accept_byte_streams(topic.clone()).await?;
        self.state.topics.insert(topic);
        Ok(())
    }
}

impl Host for StreamsView<'_> {
    async fn open_text(
        &mut self,
        options: TextStreamOptions,
    ) -> wasmtime::Result<Result<Resource<TextWriter>, RoomError>> {
        let writer = match self.open(options).await {
            Ok(writer) => writer,
            Err(err) => return Ok(Err(err)),
        };
        let id = self.state.next;
        let handle = self.table.push(TextWriter { id })?;
        self.state.next += 1;
        self.state.writers.insert(id, writer);
        Ok(Ok(handle))
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
        let handle = self.table.get(&writer)?;
        Ok(self.state.writer(handle)?.writer.id().to_string())
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
        let writer = self.state.writer(self.table.get(&writer)?)?;
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
        let writer = self.state.writer(self.table.get(&writer)?)?;
        if writer.closed {
            return Ok(Err(RoomError::Closed));
        }
        writer.closed = true;
        Ok(writer.writer.close(attributes).await)
    }

    async fn drop(&mut self, writer: Resource<TextWriter>) -> wasmtime::Result<()> {
        // The transport's writer closes the stream when dropped unclosed.
        let handle = self.table.delete(writer)?;
        self.state.writers.remove(&handle.id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imports::testing::{Joined, joined, joined_with_budget};
    use crate::room::BYTE_STREAM_MAX_BYTES;
    use crate::room::sim::{SimByteStream, SimOutput};

    struct Fixture {
        joined: Joined,
        table: ResourceTable,
        state: Streams,
    }

    impl Fixture {
        async fn new(room: &str) -> Self {
            Self::from(joined(room).await)
        }

        fn from(joined: Joined) -> Self {
            Self {
                joined,
                table: ResourceTable::new(),
                state: Streams::default(),
            }
        }

        fn view(&mut self) -> StreamsView<'_> {
            StreamsView {
                link: &mut self.joined.link,
                table: &mut self.table,
                state: &mut self.state,
                identity: "agent-AJ_test",
                max_payload: 64 << 10,
            }
        }
    }

    fn transcription(sender: Option<&str>) -> TextStreamOptions {
        TextStreamOptions {
            topic: "lk.transcription".into(),
            attributes: vec![
                ("lk.segment_id".into(), "SG_1".into()),
                ("lk.transcription_final".into(), "false".into()),
            ],
            destinations: Vec::new(),
            sender: sender.map(str::to_string),
        }
    }

    #[tokio::test]
    async fn a_text_stream_is_written_chunk_by_chunk_and_closed_with_its_trailer()
    -> wasmtime::Result<()> {
        let mut f = Fixture::new("streams").await;
        let mut streams = f.view();
        let writer = streams.open_text(transcription(None)).await??;
        let rep = Resource::<TextWriter>::new_borrow(writer.rep());
        let id = streams.id(Resource::new_borrow(rep.rep())).await?;
        assert_eq!(
            streams
                .write(Resource::new_borrow(rep.rep()), "Hel".into())
                .await?,
            Ok(())
        );
        assert_eq!(
            streams
                .write(Resource::new_borrow(rep.rep()), "lo".into())
                .await?,
            Ok(())
        );
        let last = vec![("lk.transcription_final".into(), "true".into())];
        let closed = streams
            .close(Resource::new_borrow(rep.rep()), last.clone())
            .await?;
        assert_eq!(closed, Ok(()));
        assert_eq!(
            streams
                .close(Resource::new_borrow(rep.rep()), Vec::new())
                .await?,
            Err(RoomError::Closed),
            "a stream closes once"
        );
        assert_eq!(
            streams
                .write(Resource::new_borrow(rep.rep()), "late".into())
                .await?,
            Err(RoomError::Closed)
        );
        streams.drop(writer).await?;

        assert!(matches!(
            f.joined.next_output(),
            Some(SimOutput::TextStreamOpened { id: opened, options, .. })
                if opened == id && options == transcription(None)
        ));
        for chunk in ["Hel", "lo"] {
            assert!(matches!(
                f.joined.next_output(),
                Some(SimOutput::TextStreamChunk { text, .. }) if text == chunk
            ));
        }
        assert_eq!(
            f.joined.next_output(),
            Some(SimOutput::TextStreamClosed {
                from: "agent-AJ_test".into(),
                id,
                attributes: last,
            })
        );
        assert_eq!(
            f.joined.next_output(),
            None,
            "dropping a closed writer sends nothing"
        );
        Ok(())
    }

    #[tokio::test]
    async fn dropping_an_open_writer_closes_its_stream() -> wasmtime::Result<()> {
        let mut f = Fixture::new("drop").await;
        let mut streams = f.view();
        let writer = streams.open_text(transcription(None)).await??;
        streams.drop(writer).await?;
        assert!(matches!(
            f.joined.next_output(),
            Some(SimOutput::TextStreamOpened { .. })
        ));
        assert!(matches!(
            f.joined.next_output(),
            Some(SimOutput::TextStreamClosed { attributes, .. }) if attributes.is_empty()
        ));
        Ok(())
    }

    #[tokio::test]
    async fn only_a_participant_in_the_room_can_be_the_sender() -> wasmtime::Result<()> {
        let mut f = Fixture::new("behalf").await;
        let absent = f.view().open_text(transcription(Some("bob"))).await?;
        assert!(matches!(absent, Err(RoomError::Denied(why)) if why.contains("`bob`")));
        f.joined.room.join_identity("bob");
        let mut streams = f.view();
        let on_behalf = streams.open_text(transcription(Some("bob"))).await??;
        streams.drop(on_behalf).await?;
        let own = streams
            .open_text(transcription(Some("agent-AJ_test")))
            .await??;
        streams.drop(own).await?;
        Ok(())
    }

    #[tokio::test]
    async fn every_field_counts_against_the_payload_cap() -> wasmtime::Result<()> {
        let mut f = Fixture::new("caps").await;
        let mut streams = f.view();
        streams.max_payload = 20;
        let mut options = transcription(None);
        options.attributes.clear();
        let writer = streams.open_text(options).await??;
        let rep = writer.rep();
        let long = "x".repeat(21);
        assert_eq!(
            streams
                .write(Resource::new_borrow(rep), long.clone())
                .await?,
            Err(RoomError::TooLarge(20))
        );
        let attributes = vec![(long, String::new())];
        assert_eq!(
            streams.close(Resource::new_borrow(rep), attributes).await?,
            Err(RoomError::TooLarge(20))
        );
        // Over the cap with its attributes, a stream does not open.
        assert!(matches!(
            streams.open_text(transcription(None)).await?,
            Err(RoomError::TooLarge(20))
        ));
        Ok(())
    }

    #[tokio::test]
    async fn byte_streams_arrive_on_accepted_topics_only_and_capped() -> wasmtime::Result<()> {
        let budget = 2 * BYTE_STREAM_MAX_BYTES as u64;
        let mut f = Fixture::from(joined_with_budget("bytes", budget).await);
        let audio = |len: usize| SimByteStream {
            topic: "lk.agent.pre-connect-audio-buffer".into(),
            attributes: vec![("sampleRate".into(), "16000".into())],
            bytes: vec![7; len],
            ..SimByteStream::default()
        };
        f.joined.room.send_bytes("alice", audio(10), &[]);
        let mut streams = f.view();
        assert_eq!(streams.next_bytes().await?, None, "not accepted: dropped");
        streams
            .accept_bytes("lk.agent.pre-connect-audio-buffer".into())
            .await??;
        f.joined.room.send_bytes("alice", audio(10), &[]);
        f.joined
            .room
            .send_bytes("alice", audio(BYTE_STREAM_MAX_BYTES + 1), &[]);
        let mut streams = f.view();
        let whole = streams.next_bytes().await?.expect("the first stream");
        assert_eq!((whole.sender.as_str(), whole.bytes.len()), ("alice", 10));
        assert_eq!(
            whole.attributes,
            vec![("sampleRate".into(), "16000".into())]
        );
        assert_eq!(whole.incomplete, None);
        let capped = streams.next_bytes().await?.expect("the second stream");
        assert_eq!(capped.bytes.len(), BYTE_STREAM_MAX_BYTES);
        assert!(capped.incomplete.is_some_and(|why| why.contains("cap")));
        assert_eq!(streams.next_bytes().await?, None);
        Ok(())
    }

    #[tokio::test]
    async fn a_stream_wakes_its_pollable_while_an_events_pollable_holds_the_inbox()
    -> wasmtime::Result<()> {
        use futures::FutureExt as _;
        use wasmtime_wasi::p2::Pollable as _;

        let mut f = Fixture::new("two-pollables").await;
        f.view().accept_bytes("files".into()).await??;
        let mut events = f.joined.link.readiness(Kind::Event);
        let mut bytes = f.joined.link.readiness(Kind::Bytes);
        let mut waiting_for_events = events.ready();
        // Nothing is queued: it takes the inbox and waits on the session.
        assert!((&mut waiting_for_events).now_or_never().is_none());
        let stream = SimByteStream {
            topic: "files".into(),
            bytes: b"x".to_vec(),
            ..SimByteStream::default()
        };
        f.joined.room.send_bytes("alice", stream, &[]);
        let woken = async {
            tokio::select! {
                () = bytes.ready() => true,
                () = &mut waiting_for_events => false,
            }
        };
        let woken = tokio::time::timeout(std::time::Duration::from_secs(10), woken).await;
        assert_eq!(
            woken,
            Ok(true),
            "the byte stream's pollable, not the events'"
        );
        drop(waiting_for_events);
        let stream = f.view().next_bytes().await?.expect("the stream waits");
        assert_eq!(stream.bytes, b"x");
        Ok(())
    }

    #[tokio::test]
    async fn a_job_accepts_a_bounded_number_of_topics() -> wasmtime::Result<()> {
        let mut f = Fixture::new("topics").await;
        let mut streams = f.view();
        for n in 0..BYTE_STREAM_MAX_TOPICS {
            streams.accept_bytes(format!("topic-{n}")).await??;
        }
        streams.accept_bytes("topic-0".into()).await??;
        assert!(matches!(
            streams.accept_bytes("one-more".into()).await?,
            Err(RoomError::Denied(_))
        ));
        Ok(())
    }
}
