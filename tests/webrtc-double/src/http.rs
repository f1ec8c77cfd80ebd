//! The HTTP side of the signal endpoint: reading one request head,
//! plain responses, and switching the connection to a WebSocket.
//!
//! Policy: the head must arrive within [`HEAD_TIMEOUT`] and fit in
//! [`MAX_HEAD`] bytes, else the connection is dropped without an answer.
//! Parsing is done here rather than by tungstenite's handshake so that the
//! double can answer 401/404/200 before (or instead of) an upgrade.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

/// One parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
}

/// What the bytes read so far hold.
#[derive(Debug)]
pub(crate) enum Head {
    /// A complete head and its length.
    Complete(Request, usize),
    /// Not complete yet.
    Partial,
    /// Not HTTP.
    Invalid,
}

impl Request {
    /// Parses a request head.
    pub fn parse(buf: &[u8]) -> Head {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        let len = match req.parse(buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Head::Partial,
            Err(_) => return Head::Invalid,
        };
        let target = req.path.unwrap_or("/");
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let query = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        let headers = req
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        Head::Complete(
            Request {
                path: path.to_string(),
                query,
                headers,
            },
            len,
        )
    }

    /// A header value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter (first occurrence).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether this is a WebSocket upgrade request.
    pub fn is_upgrade(&self) -> bool {
        let has_token = |h: &str, t: &str| {
            self.header(h)
                .is_some_and(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case(t)))
        };
        has_token("connection", "upgrade")
            && has_token("upgrade", "websocket")
            && self.header("sec-websocket-key").is_some()
    }
}

/// Decodes `%XX` escapes (`+` is kept: base64 payloads may contain it).
fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads a request head; returns it and the bytes read past it, or `None`
/// on EOF, timeout, oversize or a malformed head (dropped at once).
pub(crate) async fn read_head(stream: &mut TcpStream) -> Option<(Request, Vec<u8>)> {
    let read = async {
        let mut buf = Vec::with_capacity(4096);
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            match Request::parse(&buf) {
                Head::Complete(req, len) => return Some((req, buf[len..].to_vec())),
                Head::Partial if buf.len() <= MAX_HEAD => {}
                Head::Partial | Head::Invalid => return None,
            }
        }
    };
    tokio::time::timeout(HEAD_TIMEOUT, read)
        .await
        .ok()
        .flatten()
}

/// Writes a complete plain-text response and closes the connection.
pub(crate) async fn respond(stream: &mut TcpStream, status: u16, reason: &str, body: &str) {
    let resp = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(resp.as_bytes()).await;
    let _ = stream.shutdown().await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_path_query_and_headers() {
        let raw = b"GET /rtc/v1?join_request=ab%2Bc-_&access_token=t HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\nrest";
        let Head::Complete(req, len) = Request::parse(raw) else {
            panic!("not parsed")
        };
        assert_eq!(&raw[len..], b"rest");
        assert_eq!(req.path, "/rtc/v1");
        assert_eq!(req.param("join_request"), Some("ab+c-_"));
        assert_eq!(req.param("access_token"), Some("t"));
        assert_eq!(req.header("host"), Some("x"));
        assert!(req.is_upgrade());
        assert!(matches!(
            Request::parse(b"GET / HTTP/1.1\r\n"),
            Head::Partial
        ));
        assert!(matches!(
            Request::parse(b"\x00\x01garbage\r\n\r\n"),
            Head::Invalid
        ));
    }

    #[test]
    fn percent_decoding_is_total() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("a+b"), "a+b");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
    }
}
