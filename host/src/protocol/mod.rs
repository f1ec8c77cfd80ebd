//! The wire to LiveKit's agent service: connecting to `<url>/agent`, the
//! worker token, registering, the protobuf codec, keepalive and reconnect
//! backoff. It knows nothing of offers, jobs or wasm: it hands the worker
//! typed server messages (`Link::next`) and sends what the worker gives
//! it (`Link::send`); the worker decides what they mean.
//!
//! Rules (from LiveKit's server and its official workers):
//! - the URL keeps any path prefix and gains `/agent`; `http(s)` becomes
//!   `ws(s)`; a LiveKit Cloud worker token goes in the `worker_token` query
//!   parameter, as the official workers send it (`dial`);
//! - every connection attempt carries a fresh JWT with the `video.agent`
//!   grant, signed with the API secret (`auth`);
//! - the connection goes through the worker's [`Network`](crate::net::Network):
//!   a `CONNECT` proxy when one applies, TLS with the built-in roots plus
//!   private CAs; opening it (TCP, proxy, TLS, upgrade) takes at most
//!   [`CONNECT_TIMEOUT`];
//! - the first *message* after `register` must be the register response;
//!   control frames (pings and pongs, which proxies and load balancers send
//!   whenever they like) are answered or ignored, never taken for it
//!   (`register`);
//! - one protobuf message per binary frame: `WorkerMessage` out,
//!   `ServerMessage` in; text frames are ignored with a warning (as the
//!   Python worker does); a frame of 2 MiB or more ends the connection, so
//!   this worker never sends one over [`MAX_SEND_FRAME`], whatever a guest
//!   does (`codec`);
//! - a server message that does not decode, or whose kind this worker does
//!   not know, is logged and skipped: it never ends the connection;
//! - settings the server would refuse (a deployment breaking its rule) and
//!   refused credentials (401) end the worker at once, with the reason;
//! - a lost connection is re-opened with the Python worker's backoff, and
//!   a silent one counts as lost after the keepalive's timeout (`link`,
//!   `backoff`).
//!
//! `convert` gives the guest's (WIT) view of what the server sends.

mod auth;
mod backoff;
mod codec;
pub(crate) mod convert;
mod dial;
mod link;
mod register;

pub use self::auth::worker_token;
pub use self::codec::{MAX_FRAME, MAX_SEND_FRAME, decode_server_frame};
pub(crate) use self::dial::Dial;
pub use self::dial::{CONNECT_TIMEOUT, agent_url};
pub(crate) use self::link::{Attempt, GiveUp, Link, LinkSettings, Wire};
pub use self::register::{MAX_DEPLOYMENT_BYTES, validate_deployment};

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
