//! The wire: WebSocket to `<url>/agent`, JWT auth, protobuf frames.
//!
//! Rules (from LiveKit's server and its official workers):
//! - the URL keeps any path prefix and gains `/agent`; `http(s)` becomes
//!   `ws(s)`; a LiveKit Cloud worker token goes in the `worker_token` query
//!   parameter, as the official workers send it;
//! - every connection attempt carries a fresh JWT with the `video.agent`
//!   grant, signed with the API secret;
//! - the connection goes through the worker's [`Network`]: a `CONNECT`
//!   proxy when one applies, TLS with the built-in roots plus private CAs;
//!   opening it (TCP, proxy, TLS, upgrade) takes at most [`CONNECT_TIMEOUT`];
//! - the first *message* after `register` must be the register response;
//!   control frames (pings and pongs, which proxies and load balancers send
//!   whenever they like) are answered or ignored, never taken for it;
//! - one protobuf message per binary frame: `WorkerMessage` out,
//!   `ServerMessage` in; text frames are ignored with a warning (as the
//!   Python worker does); a frame of 2 MiB or more ends the connection, so
//!   this worker never sends one over [`MAX_SEND_FRAME`], whatever a guest
//!   does (see [`send`]);
//! - a server message that does not decode, or whose kind this worker does
//!   not know, is logged and skipped: it never ends the connection;
//! - settings the server would refuse (a deployment breaking its rule) and
//!   refused credentials (401) end the worker at once, with the reason.

use std::time::{Duration, SystemTime};

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

use crate::net::Network;

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

/// Longest the opening of a connection (TCP, proxy, TLS, upgrade) may take:
/// a black-holed address or proxy must not hold an attempt forever. 10 s,
/// the server's own deadline for `register`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest deployment name the server accepts (`MaxDeploymentLength`).
pub const MAX_DEPLOYMENT_BYTES: usize = 64;

/// tungstenite's read buffer. Its default (128 KiB) is zero-filled before
/// every socket read, which a profile of a burst of 1,000 assignments
/// showed as up to half of the host's instructions; server messages are a
/// few hundred bytes, and larger frames still arrive over several reads.
const READ_BUFFER: usize = 8 << 10;

/// Why a connection attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The server refused the credentials (HTTP 401); retrying cannot help.
    #[error(
        "the LiveKit server refused the credentials (HTTP 401). It answers so when the API key or secret is wrong, \
         when this machine's clock is more than 60 s off the server's (the worker's time now is {now}), \
         or when the server does not know the API key yet (a key just created, or one of another project)"
    )]
    Unauthorized {
        /// The worker's clock when the answer came, UTC, RFC 3339.
        now: String,
    },
    /// The URL cannot be used.
    #[error("invalid LiveKit URL `{0}`: {1}")]
    BadUrl(String, String),
    /// A setting the server would refuse; retrying cannot help.
    #[error("{0}")]
    BadSetting(String),
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

/// The open-source server's `ValidateDeployment` (livekit/protocol
/// `agent/environment.go`): empty, or at most 64 bytes with no `_` (kept
/// for the server's own use), no space, control byte or DEL. The error
/// says which rule, as the server's does (the server then closes the
/// connection without a reason).
pub fn validate_deployment(deployment: &str) -> Result<(), String> {
    let refused = |why: String| {
        Err(format!(
            "the deployment name {deployment:?} would be refused by the LiveKit server: {why}"
        ))
    };
    if deployment.len() > MAX_DEPLOYMENT_BYTES {
        return refused(format!(
            "it is {} bytes long, the most is {MAX_DEPLOYMENT_BYTES}",
            deployment.len()
        ));
    }
    for (i, b) in deployment.bytes().enumerate() {
        if b == b'_' {
            return refused(format!(
                "`_` (at byte {i}) is reserved; use `-` or `.` instead"
            ));
        }
        if b <= b' ' || b == 0x7f {
            return refused(format!(
                "it contains whitespace or a control byte at byte {i}"
            ));
        }
    }
    Ok(())
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

/// Percent-encodes a query value (everything but RFC 3986's unreserved
/// characters).
fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where and as whom a worker connects: the parts of its options the wire
/// needs, so that the wire knows nothing of dispatch.
pub(crate) struct Dial<'a> {
    /// LiveKit server URL, as configured.
    pub url: &'a str,
    /// API key (the JWT's issuer).
    pub api_key: &'a str,
    /// API secret (signs the JWT).
    pub api_secret: &'a str,
    /// Deployment name, checked before connecting.
    pub deployment: &'a str,
    /// LiveKit Cloud's worker token, sent as a query parameter.
    pub worker_token: Option<&'a str>,
    /// Proxy and TLS roots.
    pub network: &'a Network,
}

/// Opens the WebSocket with a fresh token, through the worker's network.
pub(crate) async fn connect(o: &Dial<'_>) -> Result<Socket, ConnectError> {
    validate_deployment(o.deployment).map_err(ConnectError::BadSetting)?;
    let target = agent_url(o.url)?;
    let token = worker_token(o.api_key, o.api_secret, Duration::from_secs(600))?;
    let with_query = match o.worker_token {
        Some(worker_token) => format!("{target}?worker_token={}", encode_query_value(worker_token)),
        None => target.clone(),
    };
    let mut request = with_query
        .as_str()
        .into_client_request()
        .map_err(|e| ConnectError::BadUrl(o.url.to_string(), e.to_string()))?;
    let auth = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|e| ConnectError::Other(e.to_string()))?;
    request.headers_mut().insert("Authorization", auth);
    let uri = request.uri().clone();
    let tls = uri.scheme_str() == Some("wss");
    // An IPv6 address without its brackets, as the network takes hosts.
    let host = uri
        .host()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
        .ok_or_else(|| ConnectError::BadUrl(o.url.to_string(), "no host".into()))?;
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME));
    // The target in errors carries no query: the worker token stays out of logs.
    let open = async {
        let stream = open_stream(o.network, tls, host, port)
            .await
            .map_err(|e| ConnectError::Other(format!("connecting to {target}: {e}")))?;
        tokio_tungstenite::client_async_with_config(request, stream, Some(config))
            .await
            .map_err(|err| upgrade_error(err, &target))
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, open).await {
        Ok(result) => result.map(|(socket, _response)| socket),
        Err(_) => Err(ConnectError::Other(format!(
            "connecting to {target}: no WebSocket within {} s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// TCP (direct or through the proxy), then TLS for `wss://`.
async fn open_stream(
    network: &Network,
    tls: bool,
    host: &str,
    port: u16,
) -> Result<MaybeTlsStream<TcpStream>, crate::net::NetError> {
    let tcp = network.tcp(tls, host, port).await?;
    Ok(if tls {
        MaybeTlsStream::Rustls(network.tls(tcp, host).await?)
    } else {
        MaybeTlsStream::Plain(tcp)
    })
}

fn upgrade_error(err: tungstenite::Error, target: &str) -> ConnectError {
    match err {
        tungstenite::Error::Http(response) if response.status() == 401 => {
            ConnectError::Unauthorized {
                now: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            }
        }
        tungstenite::Error::Http(response) => ConnectError::Other(format!(
            "the server answered HTTP {} instead of upgrading to a WebSocket",
            response.status()
        )),
        err => ConnectError::Other(format!("connecting to {target}: {err}")),
    }
}

/// Sends `register` and waits up to `wait` for its answer, the first
/// message after it; control frames in between are not messages. Returns
/// the worker id.
pub(crate) async fn register(
    socket: &mut Socket,
    request: proto::RegisterWorkerRequest,
    wait: Duration,
) -> Result<String, ConnectError> {
    send(socket, proto::worker_message::Message::Register(request))
        .await
        .map_err(|e| ConnectError::Other(format!("sending register: {e}")))?;
    // As the Python worker: the first message must be the answer.
    let not_first =
        || ConnectError::Other("expected the register response as the first message".into());
    let answer = async {
        loop {
            match receive(socket).await {
                // A ping (answered by tungstenite) or a pong.
                Incoming::Alive => continue,
                Incoming::Message(message) => {
                    return match *message {
                        proto::server_message::Message::Register(response) => {
                            Ok(response.worker_id)
                        }
                        _ => Err(not_first()),
                    };
                }
                Incoming::Skipped => return Err(not_first()),
                Incoming::Closed(reason) => return Err(ConnectError::Other(reason)),
            }
        }
    };
    tokio::time::timeout(wait, answer)
        .await
        .unwrap_or_else(|_| Err(ConnectError::Other("no register response in time".into())))
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
    fn deployments_follow_the_servers_rule() {
        for good in [
            "",
            "prod-eu",
            "prod.v2",
            "prod:us",
            "a/b",
            "prodüction",
            &"a".repeat(64),
        ] {
            assert!(validate_deployment(good).is_ok(), "{good:?}");
        }
        for (bad, says) in [
            ("prod_eu", "`_` (at byte 4) is reserved"),
            ("prod eu", "whitespace or a control byte at byte 4"),
            ("prod\teu", "control byte"),
            ("prod\x7f", "control byte"),
            (&"a".repeat(65) as &str, "65 bytes long, the most is 64"),
        ] {
            let err = validate_deployment(bad).unwrap_err();
            assert!(err.contains(says), "{bad:?}: {err}");
            assert!(
                err.contains("would be refused by the LiveKit server"),
                "{err}"
            );
        }
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode_query_value("a+b/c=d e"), "a%2Bb%2Fc%3Dd%20e");
        assert_eq!(encode_query_value("tok-1._~"), "tok-1._~");
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
        let url = format!("wss://127.0.0.1:{port}");
        let dial = Dial {
            url: &url,
            api_key: "k",
            api_secret: "s",
            deployment: "",
            worker_token: None,
            network: &Network::default(),
        };
        let err = connect(&dial).await.err().unwrap();
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
