//! The wire: WebSocket to `<url>/agent`, JWT auth, protobuf frames.
//!
//! Rules (from LiveKit's server and its official workers):
//! - the URL keeps any path prefix and gains `/agent`; `http(s)` becomes
//!   `ws(s)`;
//! - every connection attempt carries a fresh JWT with the `video.agent`
//!   grant, signed with the API secret;
//! - one protobuf message per binary frame: `WorkerMessage` out,
//!   `ServerMessage` in; text frames are ignored with a warning (as the
//!   Python worker does); a frame of 2 MiB or more ends the connection, so
//!   this worker never sends one over [`MAX_SEND_FRAME`], whatever a guest
//!   does (see [`send`]);
//! - a server message that does not decode, or whose kind this worker does
//!   not know, is logged and skipped: it never ends the connection.

use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use livekit_api::access_token::{AccessToken, VideoGrants};
use livekit_protocol as proto;
use prost::Message as _;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Largest frame either side may send (the server's default limit).
pub const MAX_FRAME: usize = 2 << 20;

/// Largest frame this worker sends: half the server's limit, so a server
/// configured tighter than its default still takes every frame, and three
/// orders of magnitude above the largest legitimate message (an accept at
/// LiveKit's join limits is under 600 KiB; statuses are a few KiB).
pub const MAX_SEND_FRAME: usize = 1 << 20;

/// What replaces the error text of a job status that would not fit in a
/// frame (it cannot happen with the host's own bounds; this is the last
/// line of defence).
const STATUS_TOO_LARGE: &str = "failure reason too large to report";

/// tungstenite's read buffer. Its default (128 KiB) is zero-filled before
/// every socket read, which a profile of a burst of 1,000 assignments
/// showed as up to half of the host's instructions; server messages are a
/// few hundred bytes, and larger frames still arrive over several reads.
const READ_BUFFER: usize = 8 << 10;

/// Why a connection attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The server refused the credentials (HTTP 401); retrying cannot help.
    #[error("the LiveKit server refused the credentials (HTTP 401): check the API key and secret")]
    Unauthorized,
    /// The URL cannot be used.
    #[error("invalid LiveKit URL `{0}`: {1}")]
    BadUrl(String, String),
    /// Anything else; worth retrying.
    #[error("{0}")]
    Other(String),
}

/// An open connection to the agent service.
pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// `<url>/agent` with a WebSocket scheme, keeping any path prefix.
pub fn agent_url(url: &str) -> Result<String, ConnectError> {
    let bad = |why: &str| ConnectError::BadUrl(url.to_string(), why.to_string());
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => return Err(bad(&format!("unsupported scheme `{other}`"))),
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    if rest.is_empty() || rest.starts_with('/') {
        return Err(bad("no host"));
    }
    Ok(format!("{scheme}://{}/agent", rest.trim_end_matches('/')))
}

/// A worker token: the `video.agent` grant, signed with the secret, valid
/// for `ttl`. No identity, as the official workers send it.
pub fn worker_token(
    api_key: &str,
    api_secret: &str,
    ttl: Duration,
) -> Result<String, ConnectError> {
    AccessToken::with_api_key(api_key, api_secret)
        .with_ttl(ttl)
        .with_grants(VideoGrants {
            agent: true,
            ..VideoGrants::default()
        })
        .to_jwt()
        .map_err(|e| ConnectError::Other(format!("could not sign the worker token: {e}")))
}

/// Opens the WebSocket with a fresh token.
pub(crate) async fn connect(
    url: &str,
    api_key: &str,
    api_secret: &str,
) -> Result<Socket, ConnectError> {
    install_crypto();
    let target = agent_url(url)?;
    let token = worker_token(api_key, api_secret, Duration::from_secs(600))?;
    let mut request = target
        .as_str()
        .into_client_request()
        .map_err(|e| ConnectError::BadUrl(url.to_string(), e.to_string()))?;
    let auth = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|e| ConnectError::Other(e.to_string()))?;
    request.headers_mut().insert("Authorization", auth);
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME));
    match tokio_tungstenite::connect_async_with_config(request, Some(config), true).await {
        Ok((socket, _response)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) if response.status() == 401 => {
            Err(ConnectError::Unauthorized)
        }
        Err(tungstenite::Error::Http(response)) => Err(ConnectError::Other(format!(
            "the server answered HTTP {} instead of upgrading to a WebSocket",
            response.status()
        ))),
        Err(err) => Err(ConnectError::Other(format!(
            "connecting to {target}: {err}"
        ))),
    }
}

/// `wss://` goes through rustls with the webpki roots (no system OpenSSL
/// needed). rustls needs a process-wide crypto provider: ring, installed
/// once; an embedder that installed another one first keeps it.
fn install_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

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
pub(crate) fn decode(bytes: &[u8]) -> Incoming {
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

    #[test]
    fn agent_urls() {
        assert_eq!(
            agent_url("http://localhost:7880").unwrap(),
            "ws://localhost:7880/agent"
        );
        assert_eq!(
            agent_url("https://x.livekit.cloud/").unwrap(),
            "wss://x.livekit.cloud/agent"
        );
        assert_eq!(agent_url("wss://h/prefix").unwrap(), "wss://h/prefix/agent");
        assert_eq!(
            agent_url("ws://h/prefix/?a=b").unwrap(),
            "ws://h/prefix/agent"
        );
        assert!(agent_url("localhost:7880").is_err());
        assert!(agent_url("ftp://h").is_err());
        assert!(agent_url("ws://").is_err());
    }

    #[test]
    fn token_has_the_agent_grant() {
        let token = worker_token("key", "secret", Duration::from_secs(60)).unwrap();
        let claims = livekit_api::access_token::Claims::from_unverified(&token).unwrap();
        assert!(claims.video.agent);
        assert_eq!(claims.iss, "key");
    }

    #[tokio::test]
    async fn a_tls_url_fails_cleanly_against_a_plain_socket() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            // Accept and hang up: no TLS here.
            let _ = listener.accept().await;
        });
        let err = connect(&format!("wss://127.0.0.1:{port}"), "k", "s")
            .await
            .err()
            .unwrap();
        assert!(matches!(err, ConnectError::Other(_)), "{err}");
    }

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

        /// Any URL either maps to a `/agent` WebSocket URL or is refused, never a panic.
        #[test]
        fn agent_url_never_panics(url in "\\PC{0,64}") {
            if let Ok(agent) = agent_url(&url) {
                proptest::prop_assert!(agent.starts_with("ws://") || agent.starts_with("wss://"));
                proptest::prop_assert!(agent.ends_with("/agent"));
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
