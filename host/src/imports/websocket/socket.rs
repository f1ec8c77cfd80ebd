//! One socket's state, shared by the guest's resources and the socket's
//! task, and the pollables that wait on it.
//!
//! The state sits in a `tokio::sync::watch` channel: every change (a
//! message in, a message read, one queued or sent, a close, the guest
//! letting go) wakes whoever waits on it, and each waiter re-checks the
//! one condition it waits for. Nothing in here does I/O.
//!
//! Invariants:
//! - each buffer takes messages while it holds less than its cap, so it
//!   holds at most the cap plus one message;
//! - the socket's [`Charge`] always holds what the state holds: the
//!   connection's fixed overhead while the task runs, plus the bytes of
//!   every buffered message (resized on each change);
//! - the reading side's end (`end`) is set once, after the last message,
//!   and never cleared; `receive` returns it only once the inbox is empty.

use std::collections::VecDeque;

use tokio::sync::watch;
use wasmtime_wasi::p2::Pollable;

use super::OpenSlot;
use crate::bindings::agent_host::agent::websocket::{CloseFrame, Message, WebsocketError};
use crate::host_memory::{Charge, HostMemoryExceeded};

/// The caps of one socket, from the job's limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caps {
    /// Largest message either way.
    pub(crate) message: u64,
    /// Most bytes buffered in each direction (plus one message).
    pub(crate) buffer: u64,
    /// The fixed overhead of an open connection.
    pub(crate) overhead: u64,
}

/// Where the guest's side of the closing handshake is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Closing {
    /// The guest has not closed.
    Open,
    /// The guest called `close` (or dropped the socket): the task sends
    /// this frame after the messages queued before it.
    Wanted(CloseFrame),
    /// The close frame is on the wire.
    Sent,
}

/// What one socket holds.
pub(crate) struct Socket {
    /// `None` while the handshake runs; then the chosen subprotocol, or why
    /// it failed.
    pub(crate) handshake: Option<Result<Option<String>, WebsocketError>>,
    /// Messages received and not yet read, oldest first.
    pub(crate) inbox: VecDeque<Message>,
    pub(crate) in_bytes: u64,
    /// Messages queued and not yet sent (the one being written included).
    pub(crate) outbox: VecDeque<Message>,
    pub(crate) out_bytes: u64,
    pub(crate) closing: Closing,
    /// Why the reading side is over, once it is.
    pub(crate) end: Option<WebsocketError>,
    /// The guest has dropped its last handle: nothing more will be read.
    pub(crate) guest_gone: bool,
    /// Whether the connection (and its overhead) is still held.
    connected: bool,
    /// The request headers held until the handshake is over.
    request_bytes: u64,
    charge: Charge,
    /// Counts the socket as open until its task ends.
    slot: Option<OpenSlot>,
    caps: Caps,
}

impl Socket {
    /// A socket about to connect, holding `charge` (its overhead and the
    /// request's `request_bytes`, already charged) and `slot`.
    pub(crate) fn connecting(
        caps: Caps,
        request_bytes: u64,
        charge: Charge,
        slot: OpenSlot,
    ) -> Self {
        Self {
            handshake: None,
            inbox: VecDeque::new(),
            in_bytes: 0,
            outbox: VecDeque::new(),
            out_bytes: 0,
            closing: Closing::Open,
            end: None,
            guest_gone: false,
            connected: true,
            request_bytes,
            charge,
            slot: Some(slot),
            caps,
        }
    }

    /// The socket's caps.
    pub(crate) fn caps(&self) -> Caps {
        self.caps
    }

    /// Makes the charge match what is held.
    fn recharge(&mut self) -> Result<(), HostMemoryExceeded> {
        let connection = if self.connected {
            self.caps.overhead + self.request_bytes
        } else {
            0
        };
        self.charge
            .resize(connection + self.in_bytes + self.out_bytes)
    }

    /// The handshake is over, with `outcome`; the request is no longer held.
    pub(crate) fn handshaken(&mut self, outcome: Result<Option<String>, WebsocketError>) {
        self.request_bytes = 0;
        if outcome.is_err() {
            self.connected = false;
            self.slot = None;
        }
        self.handshake = Some(outcome);
        let _ = self.recharge();
    }

    /// A message came in: buffered for the guest (dropped if the guest is
    /// gone). Refused when the budget cannot take it.
    pub(crate) fn received(&mut self, message: Message) -> Result<(), HostMemoryExceeded> {
        if self.guest_gone {
            return Ok(());
        }
        let bytes = size(&message);
        self.in_bytes += bytes;
        if let Err(over) = self.recharge() {
            self.in_bytes -= bytes;
            return Err(over);
        }
        self.inbox.push_back(message);
        Ok(())
    }

    /// Whether the task may read another message from the socket.
    pub(crate) fn may_read(&self) -> bool {
        self.guest_gone || self.in_bytes < self.caps.buffer
    }

    /// The next message to read, or the end once every message is read.
    pub(crate) fn take(&mut self) -> Result<Option<Message>, WebsocketError> {
        match self.inbox.pop_front() {
            Some(message) => {
                self.in_bytes -= size(&message);
                let _ = self.recharge();
                Ok(Some(message))
            }
            None => self.end.clone().map_or(Ok(None), Err),
        }
    }

    /// Whether `receive` has something: a message or the end.
    pub(crate) fn readable(&self) -> bool {
        !self.inbox.is_empty() || self.end.is_some()
    }

    /// Why `send` cannot queue anything now, if it cannot.
    fn send_refused(&self) -> Option<WebsocketError> {
        if let Some(end) = &self.end {
            return Some(end.clone());
        }
        if self.closing != Closing::Open {
            return Some(WebsocketError::Closed(None));
        }
        None
    }

    /// Queues `message` for sending.
    pub(crate) fn queue(&mut self, message: Message) -> Result<(), WebsocketError> {
        if let Some(refused) = self.send_refused() {
            return Err(refused);
        }
        let bytes = size(&message);
        if bytes > self.caps.message {
            return Err(too_large(self.caps.message));
        }
        if self.out_bytes >= self.caps.buffer {
            return Err(WebsocketError::WouldBlock);
        }
        self.out_bytes += bytes;
        if let Err(over) = self.recharge() {
            self.out_bytes -= bytes;
            return Err(WebsocketError::Failed(over.to_string()));
        }
        self.outbox.push_back(message);
        Ok(())
    }

    /// Whether `send` can queue again (or fails at once).
    pub(crate) fn writable(&self) -> bool {
        self.send_refused().is_some() || self.out_bytes < self.caps.buffer
    }

    /// A queued message is on the wire: its bytes are no longer held.
    pub(crate) fn sent(&mut self, bytes: u64) {
        self.out_bytes -= bytes;
        let _ = self.recharge();
    }

    /// The guest's `close`.
    pub(crate) fn close(&mut self, frame: CloseFrame) -> Result<(), WebsocketError> {
        if let Some(refused) = self.send_refused() {
            return Err(refused);
        }
        self.closing = Closing::Wanted(frame);
        Ok(())
    }

    /// The guest let go of the socket: it closes with 1000 unless the guest
    /// closed it already, and nothing more is kept for reading.
    pub(crate) fn let_go(&mut self) {
        self.guest_gone = true;
        if self.closing == Closing::Open {
            self.closing = Closing::Wanted(CloseFrame {
                code: 1000,
                reason: String::new(),
            });
        }
        self.inbox.clear();
        self.in_bytes = 0;
        let _ = self.recharge();
    }

    /// The task is over: the reading side ends with `end` (unless it ended
    /// already), unsent messages are dropped, and the connection's overhead
    /// and open slot are given back. Unread messages stay for the guest.
    pub(crate) fn finish(&mut self, end: WebsocketError) {
        self.end.get_or_insert(end);
        if self.handshake.is_none() {
            self.handshake = Some(Err(self.end.clone().unwrap_or(WebsocketError::Timeout)));
        }
        self.outbox.clear();
        self.out_bytes = 0;
        self.connected = false;
        self.request_bytes = 0;
        self.slot = None;
        let _ = self.recharge();
    }
}

/// Bytes a message holds.
pub(crate) fn size(message: &Message) -> u64 {
    match message {
        Message::Text(text) => text.len() as u64,
        Message::Binary(bytes) => bytes.len() as u64,
    }
}

/// `too-large` with `limit`.
pub(crate) fn too_large(limit: u64) -> WebsocketError {
    WebsocketError::TooLarge(u32::try_from(limit).unwrap_or(u32::MAX))
}

/// What a socket's pollable waits for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wait {
    /// The handshake's outcome (`future-connection.subscribe`).
    Handshake,
    /// Something to `receive` (`connection.subscribe`).
    Readable,
    /// Room to `send` (`connection.subscribe-send`).
    Writable,
}

/// A pollable over one socket's state.
pub(crate) struct Ready {
    state: watch::Receiver<Socket>,
    wait: Wait,
}

impl Ready {
    pub(crate) fn new(state: watch::Receiver<Socket>, wait: Wait) -> Self {
        Self { state, wait }
    }
}

#[async_trait::async_trait]
impl Pollable for Ready {
    async fn ready(&mut self) {
        let wait = self.wait;
        // An error means every handle and the task are gone: nothing more
        // will change, so there is nothing to wait for.
        let _ = self
            .state
            .wait_for(|s| match wait {
                Wait::Handshake => s.handshake.is_some(),
                Wait::Readable => s.readable(),
                Wait::Writable => s.writable(),
            })
            .await;
    }
}
