//! The worker's link to the agent service: one connection at a time,
//! opened, registered, kept alive and re-opened after a loss.
//!
//! Policy:
//! - the link owns the socket; the worker asks it to [`connect`](Link::connect)
//!   when [`attempt_due`](Link::attempt_due) says so, reads typed server
//!   messages with [`next`](Link::next) and writes with [`send`](Link::send);
//! - a failed attempt is retried with the Python worker's backoff
//!   (`backoff`); refused credentials, an unusable URL or setting, and
//!   running out of retries are final ([`GiveUp`]);
//! - keepalive: a WebSocket ping every `ping_interval`; a connection that
//!   has been silent (no frame of any kind) for `ping_interval +
//!   ping_timeout` counts as lost, as the Python worker does;
//! - a loss (closed, failed read or write, silence) drops the socket at
//!   once; the next attempt is due at once (the backoff only counts
//!   attempts that fail);
//! - [`next`](Link::next) is cancel-safe, so the worker can wait for it
//!   beside its own events; connecting, pinging and closing are not, and
//!   are awaited on their own.

use std::time::{Duration, Instant};

use futures::SinkExt as _;
use livekit_protocol as proto;
use livekit_protocol::server_message::Message as ServerMsg;
use livekit_protocol::worker_message::Message as WorkerMsg;
use tokio::time::{Interval, MissedTickBehavior, interval, sleep_until};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::ConnectError;
use super::backoff::{Backoff, Next};
use super::codec::{self, Incoming, Socket};
use super::dial::{self, Dial};
use super::register;

/// How a link connects, registers and keeps its connection alive.
pub(crate) struct LinkSettings {
    /// Where and as whom to connect.
    pub dial: Dial,
    /// What to register as; sent on every connection.
    pub register: proto::RegisterWorkerRequest,
    /// How long the server may take to answer `register`.
    pub register_timeout: Duration,
    /// Failed attempts in a row before giving up.
    pub max_retries: u32,
    /// Period of WebSocket pings.
    pub ping_interval: Duration,
    /// Silence after a ping after which the connection counts as lost.
    pub ping_timeout: Duration,
}

/// What [`Link::next`] saw.
pub(crate) enum Wire {
    /// A server message of a kind this worker knows.
    Message(Box<ServerMsg>),
    /// The connection ended, with the reason; the socket is gone.
    Lost(String),
    /// Time for a keepalive ping: call [`Link::keepalive`].
    PingDue,
    /// Disconnected, and the next attempt is due: call [`Link::connect`].
    AttemptDue,
}

/// Why the link stopped trying.
#[derive(Debug)]
pub(crate) enum GiveUp {
    /// The server refused the credentials, or the URL or a setting cannot
    /// be used: retrying cannot help.
    Refused(ConnectError),
    /// `attempts` attempts in a row failed; the last one with `last_error`.
    Exhausted {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        last_error: String,
    },
}

/// How a connection attempt ended.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// Connected and registered.
    Registered {
        /// The worker id the server gave.
        worker_id: String,
        /// Whether this connection follows an earlier one or failed attempts.
        reconnected: bool,
    },
    /// Failed; the next attempt is due after `delay`.
    Retrying {
        /// Failed attempts in a row, this one included.
        attempt: u32,
        /// What went wrong.
        error: String,
        /// How long until the next attempt.
        delay: Duration,
    },
    /// Failed, and no attempt follows.
    GaveUp(GiveUp),
}

/// The connection to the agent service, and the state to keep one up.
pub(crate) struct Link {
    settings: LinkSettings,
    socket: Option<Socket>,
    backoff: Backoff,
    next_attempt: Instant,
    /// Connections registered so far.
    generation: u64,
    ping_tick: Interval,
    last_heard: Instant,
}

impl Link {
    /// A link that has not connected yet; the first attempt is due at once.
    pub(crate) fn new(settings: LinkSettings) -> Self {
        let mut ping_tick = interval(settings.ping_interval);
        ping_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            backoff: Backoff::new(settings.max_retries),
            settings,
            socket: None,
            next_attempt: Instant::now(),
            generation: 0,
            ping_tick,
            last_heard: Instant::now(),
        }
    }

    /// Whether a connection is open and registered.
    pub(crate) fn is_connected(&self) -> bool {
        self.socket.is_some()
    }

    /// Bumped on every new registration: what was said on an older
    /// connection (an offer, say) is void on this one.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether the worker should call [`connect`](Self::connect) now.
    pub(crate) fn attempt_due(&self) -> bool {
        self.socket.is_none() && Instant::now() >= self.next_attempt
    }

    /// Opens a connection and registers. A failure worth retrying schedules
    /// the next attempt.
    pub(crate) async fn connect(&mut self) -> Attempt {
        match self.open().await {
            Ok((socket, worker_id)) => {
                self.generation += 1;
                let reconnected = self.backoff.failed_before() || self.generation > 1;
                self.backoff.connected();
                self.socket = Some(socket);
                self.last_heard = Instant::now();
                self.ping_tick.reset();
                Attempt::Registered {
                    worker_id,
                    reconnected,
                }
            }
            Err(
                err @ (ConnectError::Unauthorized { .. }
                | ConnectError::BadUrl(..)
                | ConnectError::BadSetting(_)),
            ) => Attempt::GaveUp(GiveUp::Refused(err)),
            Err(ConnectError::Other(error)) => match self.backoff.failed() {
                Next::GiveUp { attempts } => Attempt::GaveUp(GiveUp::Exhausted {
                    attempts,
                    last_error: error,
                }),
                Next::Retry { attempt, delay } => {
                    self.next_attempt = Instant::now() + delay;
                    Attempt::Retrying {
                        attempt,
                        error,
                        delay,
                    }
                }
            },
        }
    }

    async fn open(&self) -> Result<(Socket, String), ConnectError> {
        let s = &self.settings;
        let mut socket = dial::connect(&s.dial).await?;
        let worker_id =
            register::register(&mut socket, s.register.clone(), s.register_timeout).await?;
        Ok((socket, worker_id))
    }

    /// Waits for what comes next: a server message, the end of the
    /// connection, a keepalive due, or (while disconnected) the next
    /// attempt due. Control frames and skipped messages count as signs of
    /// life and are not returned. Cancel-safe.
    pub(crate) async fn next(&mut self) -> Wire {
        loop {
            let Some(socket) = self.socket.as_mut() else {
                sleep_until(self.next_attempt.into()).await;
                return Wire::AttemptDue;
            };
            tokio::select! {
                incoming = codec::receive(socket) => {
                    self.last_heard = Instant::now();
                    match incoming {
                        Incoming::Message(message) => return Wire::Message(message),
                        Incoming::Skipped | Incoming::Alive => {}
                        Incoming::Closed(reason) => {
                            self.socket = None;
                            return Wire::Lost(reason);
                        }
                    }
                }
                _ = self.ping_tick.tick() => return Wire::PingDue,
            }
        }
    }

    /// Sends a keepalive ping, or declares a silent connection lost.
    /// Returns the reason when the connection is lost.
    pub(crate) async fn keepalive(&mut self) -> Result<(), String> {
        let s = &self.settings;
        if self.last_heard.elapsed() > s.ping_interval + s.ping_timeout {
            self.socket = None;
            return Err("no answer to keepalive pings".into());
        }
        let Some(socket) = self.socket.as_mut() else {
            return Ok(());
        };
        match socket.send(Message::Ping(Default::default())).await {
            Ok(()) => Ok(()),
            Err(err) => {
                self.socket = None;
                Err(format!("ping failed: {err}"))
            }
        }
    }

    /// Sends a worker message. `Ok(false)` when there is no connection;
    /// `Err(reason)` when sending failed, which loses the connection.
    pub(crate) async fn send(&mut self, message: WorkerMsg) -> Result<bool, String> {
        let Some(socket) = self.socket.as_mut() else {
            return Ok(false);
        };
        match codec::send(socket, message).await {
            Ok(()) => Ok(true),
            Err(err) => {
                self.socket = None;
                Err(format!("send failed: {err}"))
            }
        }
    }

    /// Drops the connection as lost (when the server asks the worker to go
    /// away, for one). Returns whether there was one.
    pub(crate) fn abandon(&mut self) -> bool {
        self.socket.take().is_some()
    }

    /// Closes the connection cleanly, if there is one.
    pub(crate) async fn close(&mut self) {
        if let Some(mut socket) = self.socket.take() {
            // A normal close frame (1000), as the Python worker sends, so
            // the server knows this was on purpose.
            let frame = CloseFrame {
                code: CloseCode::Normal,
                reason: "worker shutting down".into(),
            };
            let _ = socket.close(Some(frame)).await;
        }
    }
}
