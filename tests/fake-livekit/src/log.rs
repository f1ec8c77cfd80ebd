//! The message log: every connection event and every protobuf message in
//! both directions, in the order the fake server saw or queued them.
//!
//! WebSocket control frames (ping/pong) are not logged.

use std::time::Instant;

use livekit_protocol::{ServerMessage, WorkerMessage};

/// One entry of [`crate::FakeLiveKit::messages`].
#[derive(Debug, Clone)]
pub struct LoggedMessage {
    /// When the server received (inbound) or queued (outbound) it.
    pub at: Instant,
    /// Connection number, starting at 1, unique for the server's life.
    pub connection: u64,
    /// The worker id once the connection has registered.
    pub worker_id: Option<String>,
    /// What happened.
    pub dir: Direction,
}

/// Who closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closer {
    /// The worker sent a close frame, or its socket ended.
    Worker,
    /// The fake server closed it (register deadline, protocol violation,
    /// oversized message, [`crate::FakeLiveKit::kill_connections`], shutdown).
    Server,
}

/// Kind of a [`LoggedMessage`].
// Unboxed on purpose: tests match on `Direction::Inbound(msg)` directly.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Direction {
    /// The WebSocket upgrade succeeded.
    Connected {
        /// The `protocol` query parameter (default 1, like the OSS server).
        protocol: i32,
        /// The `worker_token` query parameter, if any (ignored otherwise).
        worker_token: Option<String>,
        /// The request's `User-Agent` header, if any.
        user_agent: Option<String>,
    },
    /// Worker → server message (binary protobuf, or protojson text).
    Inbound(WorkerMessage),
    /// Server → worker message.
    Outbound(ServerMessage),
    /// The connection ended.
    Closed {
        /// Close code of the close frame, if one was sent or received.
        code: Option<u16>,
        /// Close reason, or a description of why the socket ended.
        reason: String,
        /// Who ended it.
        by: Closer,
    },
    /// The HTTP request was refused before upgrading.
    Rejected {
        /// HTTP status sent (401, 404, or the `set_reject_all` status).
        status: u16,
        /// Path of the request.
        path: String,
        /// Why.
        reason: String,
    },
}

impl LoggedMessage {
    /// The worker message, if this is an inbound entry.
    pub fn inbound(&self) -> Option<&livekit_protocol::worker_message::Message> {
        match &self.dir {
            Direction::Inbound(m) => m.message.as_ref(),
            _ => None,
        }
    }

    /// The server message, if this is an outbound entry.
    pub fn outbound(&self) -> Option<&livekit_protocol::server_message::Message> {
        match &self.dir {
            Direction::Outbound(m) => m.message.as_ref(),
            _ => None,
        }
    }
}
