//! Outbound HTTP on the async runtime: a request builder, JSON bodies,
//! streamed responses, server-sent events.
//!
//! Built on wstd's `wasi:http` client, so a response body is read in the
//! same `poll` as room events and timers: a job can stream a completion
//! and answer its room at once.
//!
//! ```no_run
//! # async fn example() -> Result<(), agent_host_sdk::http::Error> {
//! use std::time::Duration;
//! use agent_host_sdk::http;
//!
//! let mut response = http::post("https://api.example.com/v1/chat/completions")
//!     .json(&serde_json::json!({ "model": "m", "stream": true }))
//!     .first_byte_timeout(Duration::from_secs(10))
//!     .timeout(Duration::from_secs(120))
//!     .send()
//!     .await?;
//! while let Some(chunk) = response.chunk().await? {
//!     agent_host_sdk::info!("{} bytes", chunk.len());
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Policy:
//! - The host decides where a request may go (`--allow-http`, empty by
//!   default, which denies all) and adds the operator's credentials for a
//!   destination itself; a guest never needs an API key. [`Error::Denied`]
//!   says when the host refused.
//! - Timeouts: `connect`, `first_byte` and `between_bytes` are `wasi:http`
//!   request options, which the host caps at its own `--http-timeout` (a
//!   guest may ask for less, never more); unset, the host's cap applies.
//!   [`RequestBuilder::timeout`] is an overall deadline kept in the guest,
//!   for the head and every body chunk. None is set by default: the host's
//!   caps are the defaults.
//! - Body size: the host caps every response (`--http-response-bytes`);
//!   [`RequestBuilder::max_body`] sets a lower cap for [`Response::bytes`],
//!   [`text`](Response::text) and [`json`](Response::json) (none by
//!   default). Streamed reads ([`Response::chunk`], [`Response::sse`]) are
//!   bounded by the host's cap only.
//! - A status is not an error: a `404` is a [`Response`] with
//!   [`status`](Response::status) 404.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use wstd::http::body::util::BodyExt as _;
use wstd::http::body::util::combinators::UnsyncBoxBody;
use wstd::http::{Body, Client, HeaderMap, Method};
use wstd::time::{Instant, Timer};

pub use wstd::http::body::Bytes;

mod error;
pub use error::{Error, ErrorCode};

use crate::sse;

/// A `GET` of `url`.
pub fn get(url: &str) -> RequestBuilder {
    request(Method::GET, url)
}

/// A `POST` to `url`.
pub fn post(url: &str) -> RequestBuilder {
    request(Method::POST, url)
}

/// A request with `method` to `url` (`http://` or `https://`).
pub fn request(method: Method, url: &str) -> RequestBuilder {
    let mut builder = RequestBuilder {
        request: wstd::http::Request::builder().method(method),
        body: Vec::new(),
        client: Client::new(),
        timeout: None,
        max_body: None,
        error: None,
    };
    match parse_url(url) {
        Ok(uri) => builder.request = builder.request.uri(uri),
        Err(why) => builder.error = Some(Error::Invalid(why)),
    }
    builder
}

/// `url` as a URI the host takes: `http` or `https`, with a host, and a
/// path that starts with `/` (`https://a?q` asks for `/?q`).
fn parse_url(url: &str) -> Result<wstd::http::Uri, String> {
    let uri: wstd::http::Uri = url
        .trim()
        .parse()
        .map_err(|err| format!("{url:?} is not a URL: {err}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(format!("{url:?} is not an http:// or https:// URL"));
    }
    let mut parts = uri.into_parts();
    if let Some(query) = parts
        .path_and_query
        .as_ref()
        .filter(|p| !p.as_str().starts_with('/'))
    {
        parts.path_and_query = Some(
            format!("/{}", query.as_str())
                .parse()
                .map_err(|err| format!("{url:?}: {err}"))?,
        );
    }
    wstd::http::Uri::from_parts(parts).map_err(|err| format!("{url:?}: {err}"))
}

/// A request being put together; [`send`](Self::send) sends it. Errors in
/// the parts (a bad header, a value that is not JSON) surface from `send`.
#[derive(Debug)]
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder {
    request: wstd::http::request::Builder,
    body: Vec<u8>,
    client: Client,
    timeout: Option<Duration>,
    max_body: Option<usize>,
    error: Option<Error>,
}

impl RequestBuilder {
    /// Add a header (names are case-insensitive; a name given twice is sent
    /// twice).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if self.error.is_none() {
            match (
                wstd::http::HeaderName::try_from(name),
                wstd::http::HeaderValue::try_from(value),
            ) {
                (Ok(name), Ok(value)) => self.request = self.request.header(name, value),
                _ => self.error = Some(Error::Invalid(format!("bad header {name:?}"))),
            }
        }
        self
    }

    /// `Authorization: Bearer <token>`, for a guest that does bring a key.
    /// Keys the operator configured on the host for the destination are
    /// added by the host; the guest needs none.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// The body, as bytes.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The body, as `value` in JSON, with `content-type: application/json`.
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => self.body(body).header("content-type", "application/json"),
            Err(err) => {
                self.error.get_or_insert(Error::Json(err.to_string()));
                self
            }
        }
    }

    /// Most time for resolving, connecting and TLS (capped by the host).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.client.set_connect_timeout(timeout);
        self
    }

    /// Most time from the request sent to the response's first byte
    /// (capped by the host).
    pub fn first_byte_timeout(mut self, timeout: Duration) -> Self {
        self.client.set_first_byte_timeout(timeout);
        self
    }

    /// Most time between two chunks of the response body (capped by the
    /// host).
    pub fn between_bytes_timeout(mut self, timeout: Duration) -> Self {
        self.client.set_between_bytes_timeout(timeout);
        self
    }

    /// A deadline for the whole exchange, from [`send`](Self::send) to the
    /// body's last byte: past it, the wait in progress fails with
    /// [`Error::Timeout`]`(None)`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Most body bytes [`Response::bytes`], [`text`](Response::text) and
    /// [`json`](Response::json) read before failing with
    /// [`Error::TooLarge`].
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = Some(bytes);
        self
    }

    /// Send the request and wait for the response's head.
    pub async fn send(self) -> Result<Response, Error> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let deadline = self.timeout.map(|t| Instant::now() + t.into());
        let request = self
            .request
            .body(Body::from(self.body))
            .map_err(|err| Error::Invalid(err.to_string()))?;
        let client = self.client;
        let response = within(deadline, async {
            client
                .send(request)
                .await
                .map_err(|err| Error::from_wstd(err, Error::Other))
        })
        .await?;
        let (head, body) = response.into_parts();
        Ok(Response {
            status: head.status.as_u16(),
            headers: head.headers,
            body: body.into_boxed_body(),
            deadline,
            max_body: self.max_body,
        })
    }
}

/// `future`, or [`Error::Timeout`]`(None)` once `deadline` has passed.
async fn within<T>(
    deadline: Option<Instant>,
    future: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match deadline {
        None => future.await,
        Some(deadline) => {
            futures_lite::future::or(future, async {
                Timer::at(deadline).wait().await;
                Err(Error::Timeout(None))
            })
            .await
        }
    }
}

/// A response: its head, and its body to read as it arrives.
#[derive(Debug)]
pub struct Response {
    status: u16,
    headers: HeaderMap,
    body: UnsyncBoxBody<Bytes, wstd::http::Error>,
    deadline: Option<Instant>,
    max_body: Option<usize>,
}

impl Response {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The value of header `name`, if it is there and is text (the first
    /// one of several).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// All headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The next chunk of the body as it arrives; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        let body = &mut self.body;
        within(self.deadline, async {
            loop {
                match body.frame().await {
                    None => return Ok(None),
                    Some(Err(err)) => return Err(Error::from_wstd(err, Error::Body)),
                    Some(Ok(frame)) => {
                        // Trailers carry no body bytes.
                        if let Ok(data) = frame.into_data() {
                            return Ok(Some(data));
                        }
                    }
                }
            }
        })
        .await
    }

    /// The whole body.
    pub async fn bytes(mut self) -> Result<Vec<u8>, Error> {
        let mut bytes = Vec::new();
        while let Some(chunk) = self.chunk().await? {
            bytes.extend_from_slice(&chunk);
            if let Some(limit) = self.max_body.filter(|&limit| bytes.len() > limit) {
                return Err(Error::TooLarge(limit));
            }
        }
        Ok(bytes)
    }

    /// The whole body as text (invalid UTF-8 replaced).
    pub async fn text(self) -> Result<String, Error> {
        let bytes = self.bytes().await?;
        Ok(String::from_utf8(bytes)
            .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned()))
    }

    /// The whole body, read as JSON into a `T`.
    pub async fn json<T: DeserializeOwned>(self) -> Result<T, Error> {
        let bytes = self.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|err| Error::Json(err.to_string()))
    }

    /// The body as server-sent events (`text/event-stream`), parsed as they
    /// arrive.
    pub fn sse(self) -> SseStream {
        SseStream {
            response: self,
            parser: sse::Parser::new(),
            ready: std::collections::VecDeque::new(),
            done: false,
        }
    }
}

/// A response body read as server-sent events, from [`Response::sse`].
///
/// ```no_run
/// # async fn example(response: agent_host_sdk::http::Response) -> Result<(), agent_host_sdk::http::Error> {
/// let mut events = response.sse();
/// while let Some(event) = events.next().await {
///     let event = event?;
///     if event.data == "[DONE]" {
///         break;
///     }
///     agent_host_sdk::info!("{}: {}", event.event, event.data);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct SseStream {
    response: Response,
    parser: sse::Parser,
    ready: std::collections::VecDeque<sse::Event>,
    done: bool,
}

impl SseStream {
    /// The next event; `None` once the body has ended (an event the body
    /// did not finish is dropped) or after an error.
    pub async fn next(&mut self) -> Option<Result<sse::Event, Error>> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.ready.extend(self.parser.feed(&chunk)),
                Ok(None) => self.done = true,
                Err(err) => {
                    self.done = true;
                    return Some(Err(err));
                }
            }
        }
    }

    /// The parser's state: the last event id and the `retry` the stream
    /// asked for.
    pub fn parser(&self) -> &sse::Parser {
        &self.parser
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_a_bare_query_gets_a_slash() {
        assert_eq!(
            parse_url("http://127.0.0.1:8080/hello")
                .unwrap()
                .to_string(),
            "http://127.0.0.1:8080/hello"
        );
        assert_eq!(
            parse_url(" https://a.example?q=1 ").unwrap().to_string(),
            "https://a.example/?q=1"
        );
        for bad in ["ftp://a.example/", "/just/a/path", "not a url", "http://"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn builder_errors_wait_for_send() {
        let builder = get("http://a.example/").header("bad name", "x");
        assert!(matches!(builder.error, Some(Error::Invalid(_))));
        let builder = get("mailto:x");
        assert!(matches!(builder.error, Some(Error::Invalid(_))));
    }
}
