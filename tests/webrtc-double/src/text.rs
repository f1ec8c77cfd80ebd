//! Data streams (LiveKit's data-stream spec) in both directions.
//!
//! Sending: one `stream_header` (text header, `text/plain`, or byte
//! header with a name and MIME type; total length; attributes), then
//! `stream_chunk`s of at most [`CHUNK_SIZE`] bytes (text cut at UTF-8
//! character boundaries), then a `stream_trailer`, all as reliable
//! `DataPacket`s from the same participant.
//!
//! Receiving ([`Reassembler`]): packets are grouped by stream id; the
//! stream's sender is the identity on its header packet (the server lets
//! an agent send a text stream on behalf of another participant), its
//! header and trailer attributes and its chunks are kept as they came; a
//! stream is complete at its trailer, or at once when its header carries
//! `inline_content` (data streams v2: clients send short streams to
//! recipients of protocol ≥ 2, *and into empty rooms*, as one header
//! packet). Raw-deflate compression is understood. Bounds: at most [`MAX_OPEN_STREAMS`] open
//! streams (a new header beyond that is dropped) and [`MAX_STREAM_BYTES`]
//! per stream (a longer stream is discarded). Chunks for an unknown stream
//! and trailers without a header are ignored.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use livekit_protocol::data_stream::{self, header::ContentHeader};
use livekit_protocol::{DataPacket, data_packet};

/// Largest chunk payload sent (livekit's `STREAM_CHUNK_SIZE` is 15 000).
pub const CHUNK_SIZE: usize = 15_000;
/// Streams open at once in one [`Reassembler`].
pub const MAX_OPEN_STREAMS: usize = 64;
/// Largest stream reassembled.
pub const MAX_STREAM_BYTES: usize = 1 << 20;

/// A text stream to send.
#[derive(Debug, Clone)]
pub struct OutgoingText<'a> {
    /// Sender identity (`DataPacket.participant_identity`).
    pub sender: &'a str,
    /// Sender sid.
    pub sender_sid: &'a str,
    /// Stream id.
    pub stream_id: &'a str,
    /// Topic (`lk.chat` for chat).
    pub topic: &'a str,
    /// The text.
    pub text: &'a str,
    /// Unix time in ms.
    pub timestamp_ms: i64,
    /// Destinations; empty for everyone.
    pub destinations: &'a [String],
}

/// A byte stream to send.
#[derive(Debug, Clone)]
pub struct OutgoingBytes<'a> {
    /// Sender identity.
    pub sender: &'a str,
    /// Sender sid.
    pub sender_sid: &'a str,
    /// Stream id.
    pub stream_id: &'a str,
    /// Topic (`lk.agent.pre-connect-audio-buffer`, say).
    pub topic: &'a str,
    /// Header attributes.
    pub attributes: &'a [(String, String)],
    /// The bytes.
    pub bytes: &'a [u8],
    /// Unix time in ms.
    pub timestamp_ms: i64,
    /// Destinations; empty for everyone.
    pub destinations: &'a [String],
}

fn packet(
    (sender, sender_sid, destinations): (&str, &str, &[String]),
    value: data_packet::Value,
) -> DataPacket {
    DataPacket {
        kind: data_packet::Kind::Reliable as i32,
        participant_identity: sender.to_string(),
        participant_sid: sender_sid.to_string(),
        destination_identities: destinations.to_vec(),
        value: Some(value),
        ..Default::default()
    }
}

/// Header, chunks and trailer of one stream.
fn stream_packets(
    from: (&str, &str, &[String]),
    header: data_stream::Header,
    chunks: Vec<&[u8]>,
) -> Vec<DataPacket> {
    let stream_id = header.stream_id.clone();
    let mut v = vec![packet(from, data_packet::Value::StreamHeader(header))];
    for (i, c) in chunks.into_iter().enumerate() {
        v.push(packet(
            from,
            data_packet::Value::StreamChunk(data_stream::Chunk {
                stream_id: stream_id.clone(),
                chunk_index: i as u64,
                content: c.to_vec(),
                ..Default::default()
            }),
        ));
    }
    v.push(packet(
        from,
        data_packet::Value::StreamTrailer(data_stream::Trailer {
            stream_id,
            ..Default::default()
        }),
    ));
    v
}

/// The packets of one byte stream: header, chunks, trailer.
pub fn byte_packets(out: &OutgoingBytes<'_>) -> Vec<DataPacket> {
    let header = data_stream::Header {
        stream_id: out.stream_id.to_string(),
        timestamp: out.timestamp_ms,
        topic: out.topic.to_string(),
        mime_type: "application/octet-stream".into(),
        total_length: Some(out.bytes.len() as u64),
        attributes: out.attributes.iter().cloned().collect(),
        content_header: Some(ContentHeader::ByteHeader(data_stream::ByteHeader {
            name: out.stream_id.to_string(),
        })),
        ..Default::default()
    };
    let from = (out.sender, out.sender_sid, out.destinations);
    stream_packets(from, header, out.bytes.chunks(CHUNK_SIZE).collect())
}

/// Splits `text` into chunks of at most `max` bytes at char boundaries.
fn chunks(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.len().min(max.max(4));
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (head, tail) = rest.split_at(end);
        out.push(head);
        rest = tail;
    }
    out
}

/// The packets of one text stream: header, chunks, trailer.
pub fn packets(out: &OutgoingText<'_>) -> Vec<DataPacket> {
    let header = data_stream::Header {
        stream_id: out.stream_id.to_string(),
        timestamp: out.timestamp_ms,
        topic: out.topic.to_string(),
        mime_type: "text/plain".into(),
        total_length: Some(out.text.len() as u64),
        content_header: Some(ContentHeader::TextHeader(data_stream::TextHeader {
            operation_type: data_stream::OperationType::Create as i32,
            ..Default::default()
        })),
        ..Default::default()
    };
    let chunks = chunks(out.text, CHUNK_SIZE)
        .into_iter()
        .map(str::as_bytes)
        .collect();
    stream_packets(
        (out.sender, out.sender_sid, out.destinations),
        header,
        chunks,
    )
}

/// A completed incoming stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedStream {
    /// Stream id.
    pub stream_id: String,
    /// Who sent it: the identity on its header packet.
    pub sender: String,
    /// Topic from the header.
    pub topic: String,
    /// Destinations of the header packet.
    pub destinations: Vec<String>,
    /// The text (lossy UTF-8), or `None` for a byte stream.
    pub text: Option<String>,
    /// Byte length of the content.
    pub len: usize,
    /// The header's attributes.
    pub attributes: BTreeMap<String, String>,
    /// The chunks as they came, in index order (one for inline content;
    /// lossy UTF-8; the whole content when it was compressed).
    pub chunks: Vec<String>,
    /// The trailer's attributes.
    pub trailer: BTreeMap<String, String>,
}

struct Partial {
    header: data_stream::Header,
    sender: String,
    destinations: Vec<String>,
    chunks: Vec<(u64, Vec<u8>)>,
    bytes: usize,
}

/// What a stream's packets said besides its content.
struct Envelope<'a> {
    header: &'a data_stream::Header,
    sender: String,
    destinations: Vec<String>,
    trailer: BTreeMap<String, String>,
}

/// A finished stream from its header and content (inflated when the header
/// says so); `None` when the content does not inflate within bounds.
fn complete(envelope: Envelope<'_>, chunks: Vec<Vec<u8>>) -> Option<CompletedStream> {
    let Envelope {
        header,
        sender,
        destinations,
        trailer,
    } = envelope;
    let raw = chunks.concat();
    let compressed = header.compression == data_stream::CompressionType::DeflateRaw as i32;
    let content = if compressed {
        let mut out = Vec::new();
        let inflated = flate2::read::DeflateDecoder::new(raw.as_slice())
            .take(MAX_STREAM_BYTES as u64 + 1)
            .read_to_end(&mut out);
        if inflated.is_err() || out.len() > MAX_STREAM_BYTES {
            tracing::warn!(stream_id = header.stream_id, "stream does not inflate");
            return None;
        }
        out
    } else {
        raw
    };
    let is_text = matches!(header.content_header, Some(ContentHeader::TextHeader(_)));
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let chunks = if compressed {
        vec![lossy(&content)]
    } else {
        chunks.iter().map(|c| lossy(c)).collect()
    };
    Some(CompletedStream {
        stream_id: header.stream_id.clone(),
        sender,
        topic: header.topic.clone(),
        destinations,
        len: content.len(),
        text: is_text.then(|| lossy(&content)),
        attributes: header.attributes.clone().into_iter().collect(),
        chunks,
        trailer,
    })
}

/// Reassembles the streams of one sender. See the module docs for bounds.
#[derive(Default)]
pub struct Reassembler {
    open: HashMap<String, Partial>,
}

impl Reassembler {
    /// Feeds one packet; returns a stream when this packet completed it.
    /// Packets that are not stream packets are ignored.
    pub fn push(&mut self, packet: &DataPacket) -> Option<CompletedStream> {
        match packet.value.as_ref()? {
            data_packet::Value::StreamHeader(h) => {
                // Data streams v2: a header with inline content is the
                // whole stream (no chunks, no trailer).
                if let Some(inline) = &h.inline_content {
                    let envelope = Envelope {
                        header: h,
                        sender: packet.participant_identity.clone(),
                        destinations: packet.destination_identities.clone(),
                        trailer: BTreeMap::new(),
                    };
                    return complete(envelope, vec![inline.clone()]);
                }
                if self.open.len() >= MAX_OPEN_STREAMS && !self.open.contains_key(&h.stream_id) {
                    tracing::warn!(stream_id = h.stream_id, "too many open streams; dropped");
                    return None;
                }
                self.open.insert(
                    h.stream_id.clone(),
                    Partial {
                        header: h.clone(),
                        sender: packet.participant_identity.clone(),
                        destinations: packet.destination_identities.clone(),
                        chunks: Vec::new(),
                        bytes: 0,
                    },
                );
                None
            }
            data_packet::Value::StreamChunk(c) => {
                let p = self.open.get_mut(&c.stream_id)?;
                p.bytes += c.content.len();
                if p.bytes > MAX_STREAM_BYTES {
                    tracing::warn!(stream_id = c.stream_id, "stream too long; discarded");
                    self.open.remove(&c.stream_id);
                    return None;
                }
                p.chunks.push((c.chunk_index, c.content.clone()));
                None
            }
            data_packet::Value::StreamTrailer(t) => {
                let mut p = self.open.remove(&t.stream_id)?;
                p.chunks.sort_by_key(|(i, _)| *i);
                let envelope = Envelope {
                    header: &p.header,
                    sender: p.sender,
                    destinations: p.destinations,
                    trailer: t.attributes.clone().into_iter().collect(),
                };
                complete(envelope, p.chunks.into_iter().map(|(_, c)| c).collect())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out<'a>(text: &'a str, dest: &'a [String]) -> OutgoingText<'a> {
        OutgoingText {
            sender: "alice",
            sender_sid: "PA_a",
            stream_id: "s1",
            topic: "lk.chat",
            text,
            timestamp_ms: 1,
            destinations: dest,
        }
    }

    #[test]
    fn chunks_at_char_boundaries() {
        let text = "é".repeat(10_000); // 20 000 bytes
        let parts = chunks(&text, CHUNK_SIZE);
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.len() <= CHUNK_SIZE));
        assert_eq!(parts.concat(), text);
        assert!(chunks("", CHUNK_SIZE).is_empty());
        assert_eq!(chunks("a€b", 1).concat(), "a€b");
    }

    #[test]
    fn packets_round_trip_through_the_reassembler() {
        let dest = vec!["bob".to_string()];
        let text = format!("héllo {}", "x".repeat(40_000));
        let pkts = packets(&out(&text, &dest));
        assert_eq!(pkts.len(), 2 + 3);
        assert!(pkts.iter().all(|p| p.participant_identity == "alice"));
        let mut r = Reassembler::default();
        let mut done = None;
        for p in &pkts {
            if let Some(c) = r.push(p) {
                done = Some(c);
            }
        }
        let done = done.unwrap();
        assert_eq!(done.text.as_deref(), Some(text.as_str()));
        assert_eq!(done.sender, "alice");
        assert_eq!(done.chunks.len(), 3);
        assert_eq!(done.chunks.concat(), text);
        assert_eq!(done.topic, "lk.chat");
        assert_eq!(done.destinations, dest);
        assert!(r.open.is_empty());
    }

    #[test]
    fn byte_streams_round_trip_with_their_attributes() {
        let bytes = vec![9u8; 2 * CHUNK_SIZE + 1];
        let attributes = vec![("sampleRate".to_string(), "16000".to_string())];
        let pkts = byte_packets(&OutgoingBytes {
            sender: "alice",
            sender_sid: "PA_a",
            stream_id: "b1",
            topic: "lk.agent.pre-connect-audio-buffer",
            attributes: &attributes,
            bytes: &bytes,
            timestamp_ms: 1,
            destinations: &[],
        });
        assert_eq!(pkts.len(), 2 + 3);
        let mut r = Reassembler::default();
        let done: Vec<_> = pkts.iter().filter_map(|p| r.push(p)).collect();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].text, None);
        assert_eq!(done[0].len, bytes.len());
        assert_eq!(
            done[0].attributes.get("sampleRate").map(String::as_str),
            Some("16000")
        );
    }

    #[test]
    fn trailer_attributes_are_kept() {
        let mut pkts = packets(&out("abc", &[]));
        let last = pkts.len() - 1;
        let Some(data_packet::Value::StreamTrailer(t)) = pkts[last].value.as_mut() else {
            panic!()
        };
        t.attributes
            .insert("lk.transcription_final".into(), "true".into());
        let mut r = Reassembler::default();
        let done: Vec<_> = pkts.iter().filter_map(|p| r.push(p)).collect();
        assert_eq!(
            done[0]
                .trailer
                .get("lk.transcription_final")
                .map(String::as_str),
            Some("true")
        );
    }

    #[test]
    fn understands_inline_and_deflated_content() {
        use std::io::Write;
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"hello deflate").unwrap();
        let deflated = enc.finish().unwrap();
        let mut pkts = packets(&out("", &[]));
        let data_packet::Value::StreamHeader(h) = pkts[0].value.as_mut().unwrap() else {
            panic!()
        };
        h.inline_content = Some(deflated);
        h.compression = data_stream::CompressionType::DeflateRaw as i32;
        let mut r = Reassembler::default();
        // The header alone is the stream; the trailer is then an orphan.
        let got: Vec<_> = pkts.iter().filter_map(|p| r.push(p)).collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].text.as_deref(), Some("hello deflate"));
        assert!(r.open.is_empty());
    }

    #[test]
    fn bounds_hold() {
        let mut r = Reassembler::default();
        // Orphan chunk and trailer are ignored.
        let pkts = packets(&out("abc", &[]));
        assert!(r.push(&pkts[1]).is_none());
        assert!(r.push(&pkts[2]).is_none());
        // Too many open streams.
        for i in 0..MAX_OPEN_STREAMS + 5 {
            let id = format!("s{i}");
            let mut o = out("x", &[]);
            o.stream_id = &id;
            r.push(&packets(&o)[0]);
        }
        assert_eq!(r.open.len(), MAX_OPEN_STREAMS);
        // An over-long stream is discarded.
        let mut r = Reassembler::default();
        let big = "y".repeat(MAX_STREAM_BYTES + 1);
        let got: Vec<_> = packets(&out(&big, &[]))
            .iter()
            .filter_map(|p| r.push(p))
            .collect();
        assert!(got.is_empty());
        assert!(r.open.is_empty());
    }
}
