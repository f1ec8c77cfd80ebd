//! Data streams in LiveKit rooms: text streams the job writes, byte
//! streams it receives.
//!
//! Policy:
//! - a text stream is the library's incremental writer (`TextStreamOpen`,
//!   one `TextStreamWriterWrite` per write, `TextStreamWriterClose` with
//!   the trailer's attributes); a stream sent on behalf of a participant
//!   names them as `sender_identity`. Every request waits at most
//!   [`ROOM_CALL_TIMEOUT`]. A writer dropped unclosed is closed without
//!   waiting, and its handle is kept until the library has closed it;
//! - a byte stream on a topic the job did not accept is disposed of as it
//!   opens (its reader handle is released at once); one on an accepted
//!   topic is read incrementally, each chunk charged to the job's budget
//!   ([`MemoryKind::RoomEvents`]) as it arrives, and queued whole when it
//!   ends. At most [`BYTE_STREAM_MAX_BYTES`] are kept: the stream is then
//!   queued at once, marked incomplete, and its reader released; a stream
//!   the sender aborts is queued with what arrived and the library's
//!   reason. A chunk the budget cannot take fails the job, as any other
//!   event would.

use futures::FutureExt as _;
use futures::future::BoxFuture;

use super::client::Client;
use super::connected::ConnectedRoom;
use super::handle::OwnedHandle;
use super::in_flight::Arriving;
use super::proto::{self, ffi_event, ffi_request, ffi_response};
use super::routes::Routes;
use super::sys::{Library, request_sync};
use crate::bindings::streams::{ByteStream, TextStreamOptions};
use crate::bindings::types::RoomError;
use crate::config::rooms::ROOM_CALL_TIMEOUT;
use crate::host_memory::MemoryKind;
use crate::room::queue::{Incoming, item_bytes};
use crate::room::{BYTE_STREAM_MAX_BYTES, TextStreamWriter};

/// Opens a text stream as `local_participant_handle`.
pub(super) async fn open_text(
    client: &'static Client,
    local_participant_handle: u64,
    options: TextStreamOptions,
) -> Result<FfiTextWriter, RoomError> {
    let request = ffi_request::Message::TextStreamOpen(proto::TextStreamOpenRequest {
        local_participant_handle,
        options: proto::StreamTextOptions {
            topic: options.topic,
            attributes: options.attributes.into_iter().collect(),
            destination_identities: options.destinations,
            sender_identity: options.sender,
        },
    });
    let event = client
        .call(request, ROOM_CALL_TIMEOUT)
        .await
        .map_err(|e| in_what("opening a text stream", e))?;
    let ffi_event::Message::TextStreamOpen(callback) = event else {
        return Err(RoomError::Transport(
            "opening a text stream: unexpected callback".into(),
        ));
    };
    match callback.result {
        Some(proto::text_stream_open_callback::Result::Writer(writer)) => {
            let handle = OwnedHandle::take(client.lib, writer.handle).ok_or_else(|| {
                RoomError::Transport("the library opened a text stream without a writer".into())
            })?;
            Ok(FfiTextWriter {
                client,
                id: writer.info.stream_id,
                handle: Some(handle),
            })
        }
        Some(proto::text_stream_open_callback::Result::Error(e)) => Err(RoomError::Transport(
            format!("opening a text stream: {}", e.description),
        )),
        None => Err(RoomError::Transport(
            "opening a text stream: the callback carried no writer".into(),
        )),
    }
}

fn in_what(what: &str, err: RoomError) -> RoomError {
    match err {
        RoomError::Transport(reason) => RoomError::Transport(format!("{what}: {reason}")),
        other => other,
    }
}

/// A callback's optional stream error, as a result.
fn stream_result(what: &str, error: Option<proto::StreamError>) -> Result<(), RoomError> {
    match error {
        Some(e) => Err(RoomError::Transport(format!("{what}: {}", e.description))),
        None => Ok(()),
    }
}

/// A text stream the job writes through the library's writer; `handle`
/// is none once it is closed.
pub(super) struct FfiTextWriter {
    client: &'static Client,
    id: String,
    handle: Option<OwnedHandle>,
}

fn close_request(writer_handle: u64, attributes: Vec<(String, String)>) -> ffi_request::Message {
    ffi_request::Message::TextStreamClose(proto::TextStreamWriterCloseRequest {
        writer_handle,
        reason: None,
        attributes: attributes.into_iter().collect(),
    })
}

impl TextStreamWriter for FfiTextWriter {
    fn id(&self) -> &str {
        &self.id
    }

    fn write(&mut self, text: String) -> BoxFuture<'_, Result<(), RoomError>> {
        async move {
            let writer_handle = self.handle.as_ref().ok_or(RoomError::Closed)?.id();
            let request =
                ffi_request::Message::TextStreamWrite(proto::TextStreamWriterWriteRequest {
                    writer_handle,
                    text,
                });
            let what = "writing to a text stream";
            match self.client.call(request, ROOM_CALL_TIMEOUT).await {
                Ok(ffi_event::Message::TextStreamWriterWrite(c)) => stream_result(what, c.error),
                Ok(_) => Err(RoomError::Transport(format!("{what}: unexpected callback"))),
                Err(e) => Err(in_what(what, e)),
            }
        }
        .boxed()
    }

    fn close(&mut self, attributes: Vec<(String, String)>) -> BoxFuture<'_, Result<(), RoomError>> {
        async move {
            // The handle lives until the close is done, then goes.
            let handle = self.handle.take().ok_or(RoomError::Closed)?;
            let what = "closing a text stream";
            match self
                .client
                .call(close_request(handle.id(), attributes), ROOM_CALL_TIMEOUT)
                .await
            {
                Ok(ffi_event::Message::TextStreamWriterClose(c)) => stream_result(what, c.error),
                Ok(_) => Err(RoomError::Transport(format!("{what}: unexpected callback"))),
                Err(e) => Err(in_what(what, e)),
            }
        }
        .boxed()
    }
}

impl Drop for FfiTextWriter {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take()
            && self.client.check_usable().is_ok()
        {
            let request = close_request(handle.id(), Vec::new());
            self.client.detach_holding(request, Some(handle));
        }
    }
}

impl ConnectedRoom {
    /// A byte stream opened: read it if its topic is accepted, else
    /// dispose of it.
    pub(super) fn on_byte_stream_opened(
        &mut self,
        lib: &'static Library,
        opened: proto::ByteStreamOpened,
        routes: &mut Routes,
    ) {
        let Some(reader) = OwnedHandle::take(lib, opened.reader.handle) else {
            return;
        };
        let info = opened.reader.info;
        if self.events.is_none() || !self.topics.contains(&info.topic) {
            return; // `reader` is released here.
        }
        let request = ffi_request::Message::ByteReadIncremental(
            proto::ByteStreamReaderReadIncrementalRequest {
                reader_handle: reader.id(),
            },
        );
        match request_sync(lib, request) {
            Ok(ffi_response::Message::ByteReadIncremental(_)) => {}
            Ok(_) => return tracing::warn!("unexpected answer to reading a byte stream"),
            Err(err) => return tracing::warn!(error = %err, "could not read a byte stream"),
        }
        let mut attributes: Vec<(String, String)> = info.attributes.into_iter().collect();
        attributes.sort();
        let stream = ByteStream {
            id: info.stream_id,
            sender: opened.participant_identity,
            topic: info.topic,
            name: info.name,
            mime_type: info.mime_type,
            attributes,
            bytes: Vec::new(),
            incomplete: None,
        };
        self.read_bytes(reader, stream, routes);
    }

    /// Takes the chunks of `stream`, which `reader` reads, as they come.
    pub(super) fn read_bytes(
        &mut self,
        reader: OwnedHandle,
        stream: ByteStream,
        routes: &mut Routes,
    ) {
        let header = item_bytes(&Incoming::Bytes(stream.clone()));
        let charge = match self.memory.charge(MemoryKind::RoomEvents, header) {
            Ok(charge) => charge,
            Err(over) => return self.fail(over.to_string()),
        };
        routes.readers.insert(reader.id(), self.handle_id);
        self.byte_streams.insert(
            reader.id(),
            Arriving {
                stream,
                header,
                charge,
                _reader: reader,
            },
        );
    }

    /// A chunk or the end of a byte stream being read.
    pub(super) fn on_bytes_event(
        &mut self,
        event: proto::ByteStreamReaderEvent,
        routes: &mut Routes,
    ) {
        let reader = event.reader_handle;
        let Some(arriving) = self.byte_streams.get_mut(&reader) else {
            return;
        };
        match event.detail {
            Some(proto::byte_stream_reader_event::Detail::ChunkReceived(chunk)) => {
                let room = BYTE_STREAM_MAX_BYTES - arriving.stream.bytes.len();
                let too_big = chunk.content.len() > room;
                let kept = &chunk.content[..chunk.content.len().min(room)];
                arriving.stream.bytes.extend_from_slice(kept);
                let bytes = arriving.header + arriving.stream.bytes.len() as u64;
                if let Err(over) = arriving.charge.resize(bytes) {
                    self.drop_byte_stream(reader, routes);
                    return self.fail(over.to_string());
                }
                if too_big {
                    arriving.stream.incomplete = Some(format!(
                        "larger than the host's cap of {BYTE_STREAM_MAX_BYTES} bytes"
                    ));
                    self.finish_byte_stream(reader, routes);
                }
            }
            Some(proto::byte_stream_reader_event::Detail::Eos(eos)) => {
                if let Some(error) = eos.error {
                    arriving.stream.incomplete = Some(error.description);
                }
                // Trailer attributes are merged into the header's.
                for (key, value) in eos.attributes {
                    match arriving
                        .stream
                        .attributes
                        .iter_mut()
                        .find(|(k, _)| *k == key)
                    {
                        Some(pair) => pair.1 = value,
                        None => arriving.stream.attributes.push((key, value)),
                    }
                }
                arriving.stream.attributes.sort();
                self.finish_byte_stream(reader, routes);
            }
            None => {}
        }
    }

    /// Queues a byte stream that ended (or reached the cap); its reader
    /// is released.
    fn finish_byte_stream(&mut self, reader: u64, routes: &mut Routes) {
        if let Some(arriving) = self.drop_byte_stream(reader, routes) {
            // Charged again as it is queued; the arrival's charge goes
            // with `arriving`.
            self.queue(Incoming::Bytes(arriving.stream));
        }
    }

    /// Stops reading a byte stream, releasing its reader.
    pub(super) fn drop_byte_stream(
        &mut self,
        reader: u64,
        routes: &mut Routes,
    ) -> Option<Arriving> {
        routes.readers.remove(&reader);
        self.byte_streams.remove(&reader)
    }
}
