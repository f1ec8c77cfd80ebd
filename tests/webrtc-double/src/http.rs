//! The HTTP side of the signal endpoint: reading one request head,
//! plain responses, and switching the connection to a WebSocket.
//!
//! Policy: the head must arrive within [`HEAD_TIMEOUT`] and fit in
//! [`MAX_HEAD`] bytes, else the connection is dropped without an answer.
//! Parsing is done here rather than by tungstenite's handshake so that the
//! double can answer 401/404/200 before (or instead of) an upgrade; the
//! parser and the plain answers are shared with fake-livekit
//! (`test_server_support`).

use std::time::Duration;

use test_server_support::Plus;
pub(crate) use test_server_support::{Request, respond};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// Largest accepted request head (the join request travels in the query and
/// is about 5 kB gzipped and base64-encoded).
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Time a client has to send its request head.
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest WebSocket message accepted from a client.
pub(crate) const MAX_MESSAGE: usize = 1 << 20;

/// Reads a request head (`+` in the query is itself: the join request is
/// base64); returns it and the bytes read past it, or `None` on EOF, an
/// I/O error, timeout, oversize or a malformed head (dropped at once).
pub(crate) async fn read_head(stream: &mut TcpStream) -> Option<(Request, Vec<u8>)> {
    let read = test_server_support::read_head(stream, MAX_HEAD, Plus::Literal);
    tokio::time::timeout(HEAD_TIMEOUT, read)
        .await
        .ok()
        .and_then(Result::ok)
        .flatten()
}

/// Answers `101 Switching Protocols` and wraps the connection.
pub(crate) async fn upgrade(
    mut stream: TcpStream,
    req: &Request,
    tail: Vec<u8>,
) -> Option<WebSocketStream<TcpStream>> {
    let key = req.header("sec-websocket-key")?;
    let accept = derive_accept_key(key.as_bytes());
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(resp.as_bytes()).await.ok()?;
    let cfg = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    Some(WebSocketStream::from_partially_read(stream, tail, Role::Server, Some(cfg)).await)
}
