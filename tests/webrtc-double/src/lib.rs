//! A LiveKit SFU **test double**: a signal server plus WebRTC endpoint that
//! LiveKit's real client library (`liblivekit_ffi`, the Python and Node
//! SDKs) connects to as if it were a LiveKit server, so room I/O can be
//! tested end to end without one.
//!
//! It speaks the single-PeerConnection signal protocol (`/rtc/v1`,
//! protocol 18, `livekit-protocol` 0.8.2 types) and uses webrtc-rs 0.17 for
//! ICE, DTLS, SCTP data channels and RTP. Each connecting client is an
//! **agent**; the other participants of a room are **remotes** that the
//! double plays itself, scripted by the test ([`Room::join`],
//! [`Remote::send_text`], [`Remote::send_bytes`], [`Remote::speak`],
//! [`Remote::perform_rpc`], [`Remote::serve_rpc`], [`Remote::leave`]).
//! Everything agents do is recorded per room as [`Observation`]s (text
//! streams with their sender, attributes, chunks and trailer), plus RTP
//! counters.
//!
//! ```no_run
//! # async fn demo() -> Result<(), webrtc_double::Error> {
//! use std::time::Duration;
//! let double = webrtc_double::Double::start("10.77.0.1:0".parse().unwrap(), "key", "secret").await?;
//! // hand double.url() and a token for room "r" to the client under test, then:
//! let room = double.room("r");
//! let agent = room.wait_for_agent(Duration::from_secs(10)).await?;
//! let alice = room.join("alice")?;
//! alice.send_text("lk.chat", "hello")?;
//! # let _ = agent; Ok(()) }
//! ```
//!
//! # Policy and limits
//! * Binds only the address it is given (TCP for signalling, UDP for ICE on
//!   the same IP); an unspecified address (`0.0.0.0`) is refused. Note that
//!   libwebrtc ignores loopback interfaces, so a real client needs a
//!   non-loopback address: run inside a private network namespace.
//! * Tokens: see [`auth`]. Join requests: see [`join`]. Everything a client
//!   sends is bounded (connections, head size and time, message size, idle
//!   time, queue lengths, log sizes) and bad input is logged and refused,
//!   never a panic.
//! * Every agent leaving a room is recorded ([`Observation::AgentLeft`])
//!   and reported to [`Double::departures`] subscribers.
//! * When the last remote leaves, the room closes after
//!   [`Config::close_delay`] (default: at once) and agents get
//!   `Leave{ROOM_CLOSED}`.
//! * Agents' metadata/attribute updates are applied, answered with
//!   `RequestResponse{OK}` (clients wait for it) after
//!   [`REQUEST_RESPONSE_DELAY`], a network round trip, and recorded.
//! * Remotes advertise client protocol 0, so agents send them chunked
//!   (legacy) text streams; into an empty room clients send one-packet v2
//!   streams. Both are reassembled ([`text`]). As LiveKit's server does,
//!   the double keeps the identity an agent puts on a text stream's header
//!   (a stream sent on behalf of another participant) and marks it
//!   generated; every other packet gets the agent's own identity.
//! * RPC both ways over data packets ([`rpc`]): remotes answer agents'
//!   calls with the handlers the test gives, and call agents.
//!
//! # Not implemented
//! Dual-PC mode (`/rtc`), reconnection/resume, video, simulcast, forwarding
//! audio between agents (data is forwarded), compressed RPC payloads, the
//! server API's PerformRpc, byte streams agents send (only logged), E2EE,
//! data tracks, mute,
//! subscription changes, JSON signalling, TURN.

#![warn(missing_docs)]
// Clients still send and read protocol fields marked deprecated (`kind`,
// `UserPacket.destination_identities`, …), so the double handles them.
#![allow(deprecated)]

pub mod auth;
mod http;
mod ids;
pub mod join;
mod observe;
mod peer;
mod remote;
mod room;
pub mod rpc;
mod session;
pub mod text;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

pub use livekit_protocol;
pub use observe::{Arrival, MAX_ARRIVALS, MAX_OBSERVATIONS, Observation, RtpStats};
pub use remote::{FRAME, MAX_SPEECH, OPUS_SILENCE, Remote, SPEECH, SUBSCRIBE_WAIT, Voice};
pub use room::{Departure, Room};
pub use session::{IDLE_TIMEOUT, PROTOCOL, REQUEST_RESPONSE_DELAY};

/// Connections served at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 1024;

/// Errors of the double's API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Binding or another socket operation failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The address is not one the double may bind.
    #[error("refusing to listen on {0}: give a specific address")]
    Address(SocketAddr),
    /// A wait ran out of time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The timeout.
        after: Duration,
    },
    /// The room has closed.
    #[error("room {0} is closed")]
    RoomClosed(String),
    /// Someone with this identity is already in the room.
    #[error("identity {0} is already in the room")]
    DuplicateIdentity(String),
    /// The remote is not (or no longer) in the room.
    #[error("{0} is not in the room")]
    NotInRoom(String),
    /// webrtc-rs failed.
    #[error("webrtc: {0}")]
    WebRtc(String),
    /// An RPC could not be made.
    #[error("rpc: {0}")]
    Rpc(String),
}

impl Error {
    pub(crate) fn webrtc(e: impl std::fmt::Display) -> Error {
        Error::WebRtc(e.to_string())
    }
}

/// Settings of a [`Double`].
#[derive(Debug, Clone)]
pub struct Config {
    /// API key tokens must be issued by.
    pub api_key: String,
    /// API secret tokens must be signed with.
    pub api_secret: String,
    /// Delay between the last remote leaving and the room closing.
    pub close_delay: Duration,
}

impl Config {
    /// Settings with these credentials and the defaults otherwise.
    pub fn new(api_key: &str, api_secret: &str) -> Config {
        Config {
            api_key: api_key.to_string(),
            api_secret: api_secret.to_string(),
            close_delay: Duration::ZERO,
        }
    }
}

pub(crate) struct Inner {
    config: Config,
    api: webrtc::api::API,
    registry: Arc<room::Registry>,
    shutdown: watch::Sender<bool>,
}

/// Stops the double when the last handle goes.
struct Guard(Arc<Inner>);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.shutdown.send(true);
        self.0.registry.close_all();
    }
}

/// A running double. Cheap to clone; it stops (sessions end with
/// `Leave{SERVER_SHUTDOWN}`, the listener closes) when the last clone is
/// dropped or [`Double::shutdown`] is called.
#[derive(Clone)]
pub struct Double {
    inner: Arc<Inner>,
    addr: SocketAddr,
    _guard: Arc<Guard>,
}

impl std::fmt::Debug for Double {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Double").field("addr", &self.addr).finish()
    }
}

impl Double {
    /// Listens on `addr` (port 0 picks one) with default settings.
    pub async fn start(addr: SocketAddr, api_key: &str, api_secret: &str) -> Result<Double, Error> {
        Double::start_with(addr, Config::new(api_key, api_secret)).await
    }

    /// Listens on `addr` with `config`.
    pub async fn start_with(addr: SocketAddr, config: Config) -> Result<Double, Error> {
        if addr.ip().is_unspecified() {
            return Err(Error::Address(addr));
        }
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (shutdown, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            api: peer::api(addr.ip())?,
            registry: room::Registry::new(config.close_delay),
            config,
            shutdown,
        });
        let mut stop = inner.shutdown.subscribe();
        let accept = inner.clone();
        let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, peer)) => match permits.clone().try_acquire_owned() {
                            Ok(permit) => {
                                let inner = accept.clone();
                                tokio::spawn(async move {
                                    session::serve(inner, stream).await;
                                    drop(permit);
                                });
                            }
                            Err(_) => tracing::warn!(%peer, "too many connections; refused"),
                        },
                        Err(e) => {
                            tracing::warn!("accept: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    },
                }
            }
        });
        tracing::info!(%addr, "webrtc double listening");
        Ok(Double {
            _guard: Arc::new(Guard(inner.clone())),
            inner,
            addr,
        })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://ip:port`, the URL clients connect to.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// The settings in use.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The open room called `name` (created if needed; agents joining a
    /// name create it too).
    pub fn room(&self, name: &str) -> Room {
        self.inner.registry.get_or_create(name)
    }

    /// Every agent departure (from any room) from now on: tests hand them
    /// to their stand-in agent service (`fake-livekit`'s `agent_left`),
    /// which ends a live job as LiveKit's server does.
    pub fn departures(&self) -> tokio::sync::mpsc::UnboundedReceiver<Departure> {
        self.inner.registry.departures()
    }

    /// Stops accepting, closes every room and ends every session.
    pub fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
        self.inner.registry.close_all();
    }
}
