//! What the two test servers share, `fake-livekit` (the agent service) and
//! `webrtc-double` (the SFU): both parse the HTTP request themselves rather
//! than through tungstenite's handshake, so that they can answer 401, 404
//! or 200 the way LiveKit's server does before (or instead of) an upgrade.
//!
//! - [`Request::parse`] / [`read_head`]: one request head, with its path,
//!   percent-decoded query and headers; a head larger than the caller's
//!   limit, or not HTTP, is refused (`None`): the caller drops the
//!   connection without an answer;
//! - [`respond`]: a complete plain-text answer, then the connection closes;
//! - [`token_from_request`]: where LiveKit's `auth` middleware finds the
//!   token (`Authorization: Bearer`, else `access_token`).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The path, without the query.
    pub path: String,
    /// The query parameters, percent-decoded, in order.
    pub query: Vec<(String, String)>,
    /// The headers, in order (values lossily UTF-8).
    pub headers: Vec<(String, String)>,
}

/// What `+` means in a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plus {
    /// A space, as in form encoding (Go's `url.ParseQuery`, which LiveKit's
    /// server uses for `/agent`).
    Space,
    /// Itself: the LiveKit client sends base64 with `+` in `/rtc` queries.
    Literal,
}

/// What the bytes read so far hold.
#[derive(Debug, PartialEq, Eq)]
pub enum Head {
    /// A complete head and its length.
    Complete(Request, usize),
    /// Not complete yet.
    Partial,
    /// Not HTTP.
    Invalid,
}

impl Request {
    /// Parses a request head, decoding `+` in the query as `plus` says.
    pub fn parse(buf: &[u8], plus: Plus) -> Head {
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
                (percent_decode(k, plus), percent_decode(v, plus))
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

/// Decodes `%XX` escapes (a bad escape is kept as it is) and `+` as `plus`
/// says.
fn percent_decode(s: &str, plus: Plus) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus == Plus::Space => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads a request head of at most `max_head` bytes; returns it and the
/// bytes read past it, or `None` on EOF, oversize or a head that is not
/// HTTP. The caller bounds the time it may take.
pub async fn read_head(
    stream: &mut TcpStream,
    max_head: usize,
    plus: Plus,
) -> std::io::Result<Option<(Request, Vec<u8>)>> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        match Request::parse(&buf, plus) {
            Head::Complete(req, len) => return Ok(Some((req, buf[len..].to_vec()))),
            Head::Partial if buf.len() < max_head => {}
            Head::Partial | Head::Invalid => return Ok(None),
        }
    }
}

/// Writes a complete plain-text response and closes the connection.
pub async fn respond(stream: &mut TcpStream, status: u16, reason: &str, body: &str) {
    let resp = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(resp.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Why a request carries no usable token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Neither an `Authorization` header nor an `access_token` parameter.
    #[error("missing token")]
    Missing,
    /// The `Authorization` header is not `Bearer <token>`.
    #[error("authorization header is not a bearer token")]
    NotBearer,
}

/// Picks the token from a request as LiveKit's `auth` middleware does: the
/// `Authorization: Bearer` header first (what follows `Bearer ` is the
/// token, untrimmed), else the `access_token` query parameter.
pub fn token_from_request<'a>(
    authorization: Option<&'a str>,
    access_token_param: Option<&'a str>,
) -> Result<&'a str, TokenError> {
    match authorization {
        Some(h) if !h.is_empty() => h.strip_prefix("Bearer ").ok_or(TokenError::NotBearer),
        _ => access_token_param
            .filter(|t| !t.is_empty())
            .ok_or(TokenError::Missing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_path_query_and_headers() {
        let raw = b"GET /rtc/v1?join_request=ab%2Bc-_&access_token=t HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\nrest";
        let Head::Complete(req, len) = Request::parse(raw, Plus::Literal) else {
            panic!("not parsed")
        };
        assert_eq!(&raw[len..], b"rest");
        assert_eq!(req.path, "/rtc/v1");
        assert_eq!(req.param("join_request"), Some("ab+c-_"));
        assert_eq!(req.param("access_token"), Some("t"));
        assert_eq!(req.header("HOST"), Some("x"));
        assert!(req.is_upgrade());
        assert_eq!(
            Request::parse(b"GET / HTTP/1.1\r\n", Plus::Literal),
            Head::Partial
        );
        assert_eq!(
            Request::parse(b"\x00\x01garbage\r\n\r\n", Plus::Literal),
            Head::Invalid
        );
    }

    #[test]
    fn percent_decoding_is_total() {
        for plus in [Plus::Space, Plus::Literal] {
            assert_eq!(percent_decode("a%20b", plus), "a b");
            assert_eq!(percent_decode("%", plus), "%");
            assert_eq!(percent_decode("%4", plus), "%4");
            assert_eq!(percent_decode("%zz", plus), "%zz");
            assert_eq!(percent_decode("%ff", plus), "\u{fffd}");
        }
        assert_eq!(percent_decode("a+b", Plus::Literal), "a+b");
        assert_eq!(percent_decode("a+b", Plus::Space), "a b");
        // fake-livekit's `/agent` query, as Go's `url.ParseQuery` reads it.
        assert_eq!(percent_decode("a%20b+c", Plus::Space), "a b c");
        assert_eq!(percent_decode("100%", Plus::Space), "100%");
    }

    #[test]
    fn the_bearer_header_wins_over_the_query() {
        assert_eq!(token_from_request(Some("Bearer abc"), None), Ok("abc"));
        assert_eq!(token_from_request(Some("Bearer abc"), Some("q")), Ok("abc"));
        assert_eq!(token_from_request(None, Some("q")), Ok("q"));
        assert_eq!(token_from_request(Some(""), Some("q")), Ok("q"));
        assert_eq!(
            token_from_request(Some("Basic x"), None),
            Err(TokenError::NotBearer)
        );
        assert_eq!(token_from_request(None, Some("")), Err(TokenError::Missing));
        assert_eq!(token_from_request(None, None), Err(TokenError::Missing));
    }
}
