//! Outbound WebSockets on the async runtime, over the host's `websocket`
//! import.
//!
//! ```no_run
//! # async fn example() -> Result<(), agent_host_sdk::websocket::Error> {
//! use agent_host_sdk::websocket::{Message, WebSocket};
//!
//! let socket = WebSocket::builder("wss://speech.example.com/v1/listen")
//!     .subprotocol("v1.json")
//!     .connect()
//!     .await?;
//! socket.send(Message::Text("hello".into())).await?;
//! while let Some(message) = socket.recv().await {
//!     if let Message::Text(text) = message? {
//!         agent_host_sdk::info!("{text}");
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Policy: where a socket may go, the TLS roots, the credentials added to
//! the upgrade request and the caps (message size, bytes buffered, open
//! sockets) are the host's, as for HTTP; see the `websocket` interface of
//! `wit/agent.wit`. Here every wait is a pollable awaited in the job's
//! executor: [`WebSocketBuilder::connect`] on the handshake,
//! [`WebSocket::send`] on room in the send buffer when the host says
//! `would-block`, [`WebSocket::recv`] on the next message.
//!
//! Invariants: a message is taken from the host only in the poll that
//! returns it, so a `recv` dropped mid-wait loses nothing; after the close
//! or an error `recv` returns `None`, so a loop over it ends.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::time::Duration;

use crate::__bindings::agent_host::agent::websocket::{self as wit, WebsocketError};
use crate::task::ready;

pub use crate::__bindings::agent_host::agent::websocket::{CloseFrame, Message};

/// Why a WebSocket operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The host does not let the job reach the destination; says why.
    Denied(String),
    /// Not a `ws://` or `wss://` URL, or a header, subprotocol or close
    /// code the host refuses; says which.
    Invalid(String),
    /// Resolving, connecting, the proxy or TLS failed; says how.
    ConnectFailed(String),
    /// The server answered the upgrade with this HTTP status, not 101.
    Rejected(u16),
    /// The handshake took longer than allowed.
    Timeout,
    /// A message is larger than the host allows; the limit in bytes.
    TooLarge(u32),
    /// The job has as many sockets open as the host allows; the limit.
    TooManySockets(u32),
    /// The connection is closed, with the peer's close frame if it sent
    /// one.
    Closed(Option<CloseFrame>),
    /// The connection broke mid-way; says how.
    Failed(String),
}

impl From<WebsocketError> for Error {
    fn from(error: WebsocketError) -> Self {
        match error {
            WebsocketError::Denied(why) => Error::Denied(why),
            WebsocketError::Invalid(why) => Error::Invalid(why),
            WebsocketError::ConnectFailed(why) => Error::ConnectFailed(why),
            WebsocketError::Rejected(status) => Error::Rejected(status),
            WebsocketError::Timeout => Error::Timeout,
            WebsocketError::TooLarge(limit) => Error::TooLarge(limit),
            // `send` waits and retries; anything else never gets it.
            WebsocketError::WouldBlock => Error::Failed("the send buffer is full".into()),
            WebsocketError::TooManySockets(limit) => Error::TooManySockets(limit),
            WebsocketError::Closed(frame) => Error::Closed(frame),
            WebsocketError::Failed(why) => Error::Failed(why),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Denied(why) => write!(f, "WebSocket denied by the host: {why}"),
            Error::Invalid(why) => write!(f, "invalid WebSocket request: {why}"),
            Error::ConnectFailed(why) => write!(f, "WebSocket connect failed: {why}"),
            Error::Rejected(status) => {
                write!(f, "the server refused the WebSocket upgrade with {status}")
            }
            Error::Timeout => f.write_str("the WebSocket handshake timed out"),
            Error::TooLarge(limit) => write!(
                f,
                "WebSocket message too large: the host allows {limit} bytes"
            ),
            Error::TooManySockets(limit) => {
                write!(f, "too many WebSockets: the host allows {limit} per job")
            }
            Error::Closed(None) => f.write_str("the WebSocket is closed"),
            Error::Closed(Some(frame)) => write!(
                f,
                "the WebSocket is closed ({} {:?})",
                frame.code, frame.reason
            ),
            Error::Failed(why) => write!(f, "the WebSocket failed: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// Lets `?` turn an [`Error`] into the `Err(String)` of a job's `run`.
impl From<Error> for String {
    fn from(error: Error) -> Self {
        error.to_string()
    }
}

/// How to open a socket, from [`WebSocket::builder`].
#[derive(Debug, Clone)]
#[must_use = "a socket is opened by `connect`"]
pub struct WebSocketBuilder {
    url: String,
    options: wit::ConnectOptions,
}

impl WebSocketBuilder {
    /// Add a header to the upgrade request (the host sets RFC 6455's own
    /// and refuses a guest's copy of them).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.options.headers.push((name.into(), value.into()));
        self
    }

    /// Offer a subprotocol; offered in the order given. A server that
    /// picks none of those offered fails the handshake (as browsers do).
    pub fn subprotocol(mut self, protocol: &str) -> Self {
        self.options.subprotocols.push(protocol.into());
        self
    }

    /// Most time for resolving, connecting, TLS and the handshake (rounded
    /// up to whole milliseconds). Default: the host's cap, which a guest
    /// cannot exceed.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        let ms = timeout.as_nanos().div_ceil(1_000_000);
        self.options.timeout_ms = Some(u32::try_from(ms).unwrap_or(u32::MAX));
        self
    }

    /// Open the socket: wait for the handshake to finish.
    pub async fn connect(self) -> Result<WebSocket, Error> {
        let pending = wit::connect(&self.url, &self.options)?;
        loop {
            if let Some(result) = pending.get() {
                return Ok(WebSocket {
                    connection: result?,
                    done: Cell::new(false),
                    close_frame: RefCell::new(None),
                });
            }
            ready(pending.subscribe()).await;
        }
    }
}

/// An open WebSocket. Dropping it closes the connection (code 1000 unless
/// [`close`](Self::close) was called first).
#[derive(Debug)]
pub struct WebSocket {
    connection: wit::Connection,
    done: Cell<bool>,
    close_frame: RefCell<Option<CloseFrame>>,
}

impl WebSocket {
    /// How to open a socket to `url` (`ws://` or `wss://`): headers,
    /// subprotocols, a timeout.
    pub fn builder(url: &str) -> WebSocketBuilder {
        WebSocketBuilder {
            url: url.to_owned(),
            options: wit::ConnectOptions {
                headers: Vec::new(),
                subprotocols: Vec::new(),
                timeout_ms: None,
            },
        }
    }

    /// Open a socket to `url` with no extra headers or subprotocols.
    pub async fn connect(url: &str) -> Result<WebSocket, Error> {
        Self::builder(url).connect().await
    }

    /// The subprotocol the server chose, if any.
    pub fn protocol(&self) -> Option<String> {
        self.connection.protocol()
    }

    /// Send one message, waiting while the host's send buffer for this
    /// socket is full.
    pub async fn send(&self, message: Message) -> Result<(), Error> {
        loop {
            match self.connection.send(&message) {
                Err(WebsocketError::WouldBlock) => ready(self.connection.subscribe_send()).await,
                result => return Ok(result?),
            }
        }
    }

    /// Send a text message.
    pub async fn send_text(&self, text: &str) -> Result<(), Error> {
        self.send(Message::Text(text.to_owned())).await
    }

    /// The next message received; `None` once the connection is closed
    /// (see [`close_frame`](Self::close_frame)) and after an error was
    /// returned.
    pub async fn recv(&self) -> Option<Result<Message, Error>> {
        while !self.done.get() {
            match self.connection.receive() {
                Ok(Some(message)) => return Some(Ok(message)),
                Ok(None) => ready(self.connection.subscribe()).await,
                Err(WebsocketError::Closed(frame)) => {
                    self.done.set(true);
                    *self.close_frame.borrow_mut() = frame;
                }
                Err(error) => {
                    self.done.set(true);
                    return Some(Err(error.into()));
                }
            }
        }
        None
    }

    /// The peer's close frame, once [`recv`](Self::recv) has seen the close
    /// and the peer sent one.
    pub fn close_frame(&self) -> Option<CloseFrame> {
        self.close_frame.borrow().clone()
    }

    /// Start the closing handshake with `code` (1000, or 3000 to 4999) and
    /// `reason` (at most 123 bytes). Messages already received can still be
    /// read with [`recv`](Self::recv), which returns `None` once the peer
    /// answered.
    pub fn close(&self, code: u16, reason: &str) -> Result<(), Error> {
        Ok(self.connection.close(code, reason)?)
    }
}
