//! The codec: one protobuf message per binary WebSocket frame,
//! `WorkerMessage` out, `ServerMessage` in.
//!
//! Policy: a frame of 2 MiB or more ends the connection on the server's
//! side, so nothing over [`MAX_SEND_FRAME`] is ever sent, whatever a guest
//! does: a job status over it goes out with a short error, anything else
//! over it is dropped with an error in the log. What comes in is decoded
//! without ever panicking; bytes that do not decode and kinds this worker
//! does not know are logged and skipped; text frames are ignored with a
//! warning, as the Python worker does.

use futures::{SinkExt as _, StreamExt as _};
use livekit_protocol as proto;
use prost::Message as _;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use crate::config::worker::MAX_FRAME;

pub use crate::config::worker::MAX_SEND_FRAME;

/// What replaces the error text of a job status that would not fit in a
/// frame (it cannot happen with the host's own bounds; this is the last
/// line of defence).
const STATUS_TOO_LARGE: &str = "failure reason too large to report";

/// An open connection to the agent service.
pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Sends one worker message as a binary frame, never one over
/// [`MAX_SEND_FRAME`]: a job status over it goes out with its error text
/// replaced, anything else over it is not sent, with an error in the log
/// (the connection, and every job on it, is worth more than one message).
pub(crate) async fn send(
    socket: &mut Socket,
    message: proto::worker_message::Message,
) -> Result<(), tungstenite::Error> {
    match frame(message) {
        Some(frame) => socket.send(Message::binary(frame)).await,
        None => Ok(()),
    }
}

/// The encoded frame for `message`, within [`MAX_SEND_FRAME`]; `None` if
/// it cannot be made to fit (logged).
fn frame(message: proto::worker_message::Message) -> Option<Vec<u8>> {
    use proto::worker_message::Message as M;
    let wrap = |message| proto::WorkerMessage {
        message: Some(message),
    };
    let wrapped = wrap(message);
    let len = wrapped.encoded_len();
    if len <= MAX_SEND_FRAME {
        return Some(wrapped.encode_to_vec());
    }
    match wrapped.message {
        Some(M::UpdateJob(mut update)) => {
            tracing::error!(job_id = %crate::bounded::log_field(&update.job_id), len, "a job status does not fit in a frame; sending it with a short error");
            update.error = format!("{STATUS_TOO_LARGE} ({} bytes)", update.error.len());
            let wrapped = wrap(M::UpdateJob(update));
            (wrapped.encoded_len() <= MAX_SEND_FRAME).then(|| wrapped.encode_to_vec())
        }
        _ => {
            tracing::error!(
                len,
                max = MAX_SEND_FRAME,
                "not sending a worker message over the frame cap"
            );
            None
        }
    }
}

/// What came in on the socket.
pub(crate) enum Incoming {
    /// A server message with a known kind.
    Message(Box<proto::server_message::Message>),
    /// Something that is not a server message; already logged.
    Skipped,
    /// A pong (answer to our keepalive) or any other sign of life.
    Alive,
    /// The connection ended.
    Closed(String),
}

/// Reads the next frame and decodes it.
pub(crate) async fn receive(socket: &mut Socket) -> Incoming {
    match socket.next().await {
        None => Incoming::Closed("the server closed the connection".into()),
        Some(Err(err)) => Incoming::Closed(format!("connection error: {err}")),
        Some(Ok(Message::Binary(bytes))) => decode(&bytes),
        Some(Ok(Message::Text(_))) => {
            tracing::warn!("ignoring a text frame from the server (workers speak binary protobuf)");
            Incoming::Skipped
        }
        Some(Ok(Message::Close(frame))) => Incoming::Closed(match frame {
            Some(f) => format!(
                "the server closed the connection ({}: {})",
                f.code, f.reason
            ),
            None => "the server closed the connection".into(),
        }),
        Some(Ok(_)) => Incoming::Alive,
    }
}

/// Decodes a binary frame; bad or unknown messages are logged and skipped.
fn decode(bytes: &[u8]) -> Incoming {
    match decode_server_frame(bytes) {
        Some(message) => Incoming::Message(Box::new(message)),
        None => Incoming::Skipped,
    }
}

/// Decodes one binary frame from the server the way the worker does:
/// `Some` for a server message of a kind this worker knows, `None` (after
/// a log line) for bytes that do not decode or a kind it does not know.
/// Never panics, whatever the bytes; public for fuzzing and tools.
pub fn decode_server_frame(bytes: &[u8]) -> Option<proto::server_message::Message> {
    match proto::ServerMessage::decode(bytes) {
        Ok(proto::ServerMessage {
            message: Some(message),
        }) => Some(message),
        Ok(_) => {
            tracing::debug!("ignoring a server message of a kind this worker does not know");
            None
        }
        Err(err) => {
            tracing::warn!(error = %err, len = bytes.len(), "ignoring a server message that does not decode");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Whatever bytes a server sends, decoding answers without panicking.
        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = decode(&bytes);
        }

        /// Every server message this worker can be sent survives the wire.
        #[test]
        fn server_messages_round_trip(job_id in "[A-Za-z0-9_]{0,24}", worker_id in "[A-Za-z0-9_]{0,24}") {
            for message in [
                proto::server_message::Message::Termination(proto::JobTermination { job_id: job_id.clone() }),
                proto::server_message::Message::Register(proto::RegisterWorkerResponse { worker_id: worker_id.clone(), ..Default::default() }),
            ] {
                let bytes = proto::ServerMessage { message: Some(message.clone()) }.encode_to_vec();
                match decode(&bytes) {
                    Incoming::Message(decoded) => proptest::prop_assert_eq!(*decoded, message),
                    _ => proptest::prop_assert!(false, "did not decode"),
                }
            }
        }
    }

    #[test]
    fn frames_stay_under_the_cap() {
        use proto::worker_message::Message as M;
        let status = |error: String| {
            M::UpdateJob(proto::UpdateJobStatus {
                job_id: "AJ_1".into(),
                status: proto::JobStatus::JsFailed as i32,
                error,
            })
        };
        // Small messages go out as they are.
        let small = frame(status("boom".into())).unwrap();
        assert_eq!(
            small,
            proto::WorkerMessage {
                message: Some(status("boom".into()))
            }
            .encode_to_vec()
        );
        // A status over the cap goes out with a short error.
        let big = frame(status("x".repeat(MAX_FRAME))).unwrap();
        assert!(big.len() < 1024, "{}", big.len());
        let M::UpdateJob(sent) = proto::WorkerMessage::decode(big.as_slice())
            .unwrap()
            .message
            .unwrap()
        else {
            panic!("not a status");
        };
        assert_eq!(sent.job_id, "AJ_1");
        assert_eq!(sent.status, proto::JobStatus::JsFailed as i32);
        assert_eq!(
            sent.error,
            format!("{STATUS_TOO_LARGE} ({MAX_FRAME} bytes)")
        );
        // Anything else over the cap is not sent.
        let accept = M::Availability(proto::AvailabilityResponse {
            participant_metadata: "m".repeat(MAX_SEND_FRAME),
            ..Default::default()
        });
        assert!(frame(accept).is_none());
    }

    #[test]
    fn garbage_and_unknown_messages_are_skipped() {
        assert!(matches!(decode(b"\xff\xff\xff"), Incoming::Skipped));
        // Field 99 is no ServerMessage kind.
        assert!(matches!(decode(&[0xfa, 0x06, 0x00]), Incoming::Skipped));
    }
}
