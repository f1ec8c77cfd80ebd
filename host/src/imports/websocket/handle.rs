//! The guest's handles of its sockets: the types the `websocket` bindings
//! name for the WIT resources (`with:` in `bindings.rs`).
//!
//! A handle is a number into the job's [`WebSockets`](super::WebSockets),
//! which holds each socket's state; so these types need nothing from the
//! rest of the crate, and what the bindings name never leads back to
//! them. Dropping a handle does nothing by itself: the import's `drop`
//! (the guest let go of the future before taking the connection, or of
//! the connection) and the job's end tell `WebSockets`, which closes the
//! socket.

/// Which socket of the job a handle is for; never reused within a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SocketId(pub(super) u64);

/// A handshake in progress, as the guest holds it.
pub struct FutureConnection {
    pub(super) id: SocketId,
    /// `get` handed the result over: the socket is the connection's now.
    pub(super) taken: bool,
}

/// An open socket, as the guest holds it.
pub struct Connection {
    pub(super) id: SocketId,
    /// The subprotocol the server chose.
    pub(super) protocol: Option<String>,
}
