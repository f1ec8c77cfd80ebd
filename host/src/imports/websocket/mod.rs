//! `agent-host:agent/websocket`: outbound WebSockets.
//!
//! Policy:
//! - **Where**: the same as `wasi:http` ([`crate::net::policy`]): an empty
//!   allow-list denies all, a socket opens when an `--allow-http` rule names
//!   its host and port, then every address the host resolves to is checked
//!   (non-public ones need an IP or CIDR rule or `--allow-http-private`).
//!   The connection is opened by [`crate::net`], resolved once, only to
//!   checked addresses, through a proxy when one applies, with TLS on the
//!   network's roots (built-in plus private CAs) for `wss`. A denial is
//!   `denied`, naming the rule, and a warning in the job's log.
//! - **Caps**, from [`JobLimits`]: at most `max_websockets` sockets open
//!   at once (`too-many-sockets`); messages of at most
//!   `websocket_message_bytes` either way (`too-large`: refused on `send`,
//!   and a larger one from the server ends that socket with a close 1009);
//!   at most `websocket_buffer_bytes` buffered each way, plus one message
//!   (`would-block` on `send`; a full inbox stops the socket being read:
//!   backpressure, never a loss); one deadline, the guest's `timeout-ms` or
//!   [`JobLimits::http_timeout`] whichever is shorter, for resolving,
//!   connecting, TLS and the upgrade.
//! - **Memory**: each socket's overhead and every message it buffers are
//!   charged to the job's host-memory budget ([`MemoryKind::WebSockets`]);
//!   a charge the budget refuses fails the job, as for HTTP.
//! - **Headers**: the guest's are added to the upgrade request; the ones
//!   the host writes (`host`, `connection`, `upgrade`, `sec-websocket-*`,
//!   and body framing) and invalid names or values are `invalid`.
//! - **Life**: each socket is one tokio task in the job's [`JoinSet`].
//!   Dropping a `connection` closes it (1000), and so does the job's end
//!   for every socket its guest still held (the store drops them): the
//!   peer gets its close frame, as the WIT promises. Each task then ends
//!   within [`WEBSOCKET_CLOSE_WAIT`](crate::config::net::WEBSOCKET_CLOSE_WAIT)
//!   (see `task.rs`), so no socket outlives its job by more than that.
//! - **Credentials**: the operator's headers for the destination
//!   ([`crate::net::credential`]) are added to the upgrade request only
//!   once the name and every address were checked, for the host and port
//!   connected to (a plain `ws` socket to port 443 gets none, as for
//!   HTTP); the guest's own header of that name is replaced. No header
//!   value is logged or reaches the guest.
//!
//! [`WebSocketView`] is what the import reaches: the job's resource table
//! (its sockets and pollables, under the resource cap) and the job's
//! [`WebSockets`] (policy, caps, memory budget, tasks).

mod connect;
pub(crate) mod handle;
mod socket;
mod task;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument as _;
use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime_wasi::p2::DynPollable;

use self::handle::SocketId;
use self::handle::{Connection, FutureConnection};
use self::socket::{Caps, Ready, Socket, Wait};
use crate::bindings::agent_host::agent::websocket::{
    CloseFrame, ConnectOptions, Host, HostConnection, HostFutureConnection, Message, WebsocketError,
};
use crate::config::net::{WEBSOCKET_CLOSE_REASON_BYTES, WEBSOCKET_OVERHEAD_BYTES};
use crate::host_memory::{HostMemory, MemoryKind};
use crate::net::Network;
use crate::net::credential::Credentials;
use crate::net::policy::HttpAllowList;
use crate::runtime::limits::JobLimits;

/// Where a job's sockets may go and their caps.
#[derive(Clone)]
pub(crate) struct WebSocketPolicy {
    allow: Arc<HttpAllowList>,
    network: Network,
    /// The operator's headers per destination, added after every check.
    credentials: Credentials,
    /// The longest handshake.
    wait: Duration,
    max_sockets: u32,
    message_bytes: u64,
    buffer_bytes: u64,
}

impl WebSocketPolicy {
    fn caps(&self) -> Caps {
        Caps {
            message: self.message_bytes,
            buffer: self.buffer_bytes,
            overhead: WEBSOCKET_OVERHEAD_BYTES,
        }
    }
}

/// A job's WebSockets: their policy, its memory budget, and their tasks,
/// which finish their close, bounded, once this is dropped with the job's
/// store.
pub(crate) struct WebSockets {
    policy: WebSocketPolicy,
    memory: HostMemory,
    open: Arc<AtomicU32>,
    tasks: JoinSet<()>,
    /// The state of every socket the guest holds: through its handshake's
    /// future until `get` hands the connection over, then through that.
    held: HashMap<SocketId, watch::Sender<Socket>>,
    /// The id of the next socket.
    next: u64,
}

impl WebSockets {
    /// No sockets yet, under `limits`, charging `memory`.
    pub(crate) fn new(limits: &JobLimits, memory: HostMemory) -> Self {
        Self {
            policy: WebSocketPolicy {
                allow: Arc::new(limits.http_allow.clone()),
                network: limits.network.clone(),
                credentials: limits.credentials.clone(),
                wait: limits.http_timeout,
                max_sockets: limits.max_websockets,
                message_bytes: limits.websocket_message_bytes,
                buffer_bytes: limits.websocket_buffer_bytes,
            },
            memory,
            open: Arc::new(AtomicU32::new(0)),
            tasks: JoinSet::new(),
            held: HashMap::new(),
            next: 0,
        }
    }

    /// The state of socket `id`, which a handle of the guest names.
    fn state(&self, id: SocketId) -> wasmtime::Result<&watch::Sender<Socket>> {
        self.held
            .get(&id)
            .ok_or_else(|| wasmtime::format_err!("a WebSocket handle outlived its socket"))
    }

    /// The guest has let go of socket `id`, which closes it (1000, unless
    /// it closed first).
    fn release(&mut self, id: SocketId) {
        if let Some(state) = self.held.remove(&id) {
            state.send_modify(Socket::let_go);
        }
    }

    /// Sockets counted as open: connecting, open or closing.
    #[cfg(test)]
    pub(crate) fn open(&self) -> u32 {
        self.open.load(Ordering::Acquire)
    }

    /// Takes a slot, unless `max_sockets` are open.
    fn slot(&self) -> Result<OpenSlot, WebsocketError> {
        let max = self.policy.max_sockets;
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| WebsocketError::TooManySockets(max))?;
        Ok(OpenSlot(Arc::clone(&self.open)))
    }
}

/// One socket counted as open; dropping it gives the slot back.
pub(crate) struct OpenSlot(Arc<AtomicU32>);

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for WebSockets {
    /// The job has ended: every socket its guest still held is let go of,
    /// which asks its task to close (1000). Aborting the tasks here would
    /// cut the connections without that close frame; each task ends by
    /// itself within the close wait instead.
    fn drop(&mut self) {
        for state in self.held.values() {
            state.send_modify(Socket::let_go);
        }
        self.tasks.detach_all();
    }
}

/// What the `websocket` import reaches: the job's table and sockets.
pub(crate) struct WebSocketView<'a> {
    /// Where the guest's sockets and their pollables live.
    pub(crate) table: &'a mut ResourceTable,
    /// The job's policy, budget and socket tasks.
    pub(crate) sockets: &'a mut WebSockets,
}

/// [`HasData`] for the `websocket` import.
pub(crate) struct WebSocketData;

impl HasData for WebSocketData {
    type Data<'a> = WebSocketView<'a>;
}

impl WebSocketView<'_> {
    /// The state of the socket `this` names.
    fn state(&self, this: &Resource<Connection>) -> wasmtime::Result<&watch::Sender<Socket>> {
        self.sockets.state(self.table.get(this)?.id)
    }

    fn pollable(
        &mut self,
        state: &watch::Sender<Socket>,
        wait: Wait,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let ready = self.table.push(Ready::new(state.subscribe(), wait))?;
        wasmtime_wasi::p2::subscribe(self.table, ready)
    }
}

impl Host for WebSocketView<'_> {
    async fn connect(
        &mut self,
        url: String,
        options: ConnectOptions,
    ) -> wasmtime::Result<Result<Resource<FutureConnection>, WebsocketError>> {
        let sockets = &mut *self.sockets;
        let dial = match connect::check(&sockets.policy, &url, options) {
            Ok(dial) => dial,
            Err(err) => return Ok(Err(err)),
        };
        let slot = match sockets.slot() {
            Ok(slot) => slot,
            Err(err) => return Ok(Err(err)),
        };
        let caps = sockets.policy.caps();
        let request_bytes = dial.request_bytes();
        let charge = match sockets
            .memory
            .charge(MemoryKind::WebSockets, caps.overhead + request_bytes)
        {
            Ok(charge) => charge,
            Err(over) => return Ok(Err(WebsocketError::Failed(over.to_string()))),
        };
        let (state, _) = watch::channel(Socket::connecting(caps, request_bytes, charge, slot));
        let id = SocketId(sockets.next);
        sockets.next += 1;
        let future = self.table.push(FutureConnection { id, taken: false })?;
        sockets.held.insert(id, state.clone());
        // Reaps the tasks that are done, so the set holds live ones only.
        while sockets.tasks.try_join_next().is_some() {}
        let task = task::run(sockets.policy.clone(), dial, state);
        sockets
            .tasks
            .spawn(task.instrument(tracing::Span::current()));
        Ok(Ok(future))
    }
}

impl HostFutureConnection for WebSocketView<'_> {
    async fn subscribe(
        &mut self,
        this: Resource<FutureConnection>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let id = self.table.get(&this)?.id;
        let state = self.sockets.state(id)?.clone();
        self.pollable(&state, Wait::Handshake)
    }

    async fn get(
        &mut self,
        this: Resource<FutureConnection>,
    ) -> wasmtime::Result<Option<Result<Resource<Connection>, WebsocketError>>> {
        let future = self.table.get_mut(&this)?;
        if future.taken {
            return Ok(Some(Err(WebsocketError::Invalid(
                "the handshake's result was already taken".into(),
            ))));
        }
        let id = future.id;
        let outcome = self.sockets.state(id)?.borrow().handshake.clone();
        let Some(outcome) = outcome else {
            return Ok(None);
        };
        self.table.get_mut(&this)?.taken = true;
        Ok(Some(match outcome {
            Ok(protocol) => Ok(self.table.push(Connection { id, protocol })?),
            Err(err) => Err(err),
        }))
    }

    async fn drop(&mut self, this: Resource<FutureConnection>) -> wasmtime::Result<()> {
        let future = self.table.delete(this)?;
        // Once taken, the socket is the connection's to let go of.
        if !future.taken {
            self.sockets.release(future.id);
        }
        Ok(())
    }
}

impl HostConnection for WebSocketView<'_> {
    async fn protocol(&mut self, this: Resource<Connection>) -> wasmtime::Result<Option<String>> {
        Ok(self.table.get(&this)?.protocol.clone())
    }

    async fn send(
        &mut self,
        this: Resource<Connection>,
        message: Message,
    ) -> wasmtime::Result<Result<(), WebsocketError>> {
        let mut queued = Ok(());
        self.state(&this)?.send_if_modified(|s| {
            queued = s.queue(message);
            queued.is_ok()
        });
        Ok(queued)
    }

    async fn subscribe_send(
        &mut self,
        this: Resource<Connection>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let state = self.state(&this)?.clone();
        self.pollable(&state, Wait::Writable)
    }

    async fn subscribe(
        &mut self,
        this: Resource<Connection>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let state = self.state(&this)?.clone();
        self.pollable(&state, Wait::Readable)
    }

    async fn receive(
        &mut self,
        this: Resource<Connection>,
    ) -> wasmtime::Result<Result<Option<Message>, WebsocketError>> {
        let mut taken = Ok(None);
        self.state(&this)?.send_if_modified(|s| {
            taken = s.take();
            matches!(taken, Ok(Some(_)))
        });
        Ok(taken)
    }

    async fn close(
        &mut self,
        this: Resource<Connection>,
        code: u16,
        reason: String,
    ) -> wasmtime::Result<Result<(), WebsocketError>> {
        if let Err(err) = close_frame_check(code, &reason) {
            return Ok(Err(err));
        }
        let mut closed = Ok(());
        self.state(&this)?.send_if_modified(|s| {
            closed = s.close(CloseFrame { code, reason });
            closed.is_ok()
        });
        Ok(closed)
    }

    async fn drop(&mut self, this: Resource<Connection>) -> wasmtime::Result<()> {
        let connection = self.table.delete(this)?;
        self.sockets.release(connection.id);
        Ok(())
    }
}

/// A guest may close with 1000 (normal) or an application code
/// (3000-4999), and a reason of at most 123 bytes (RFC 6455 section 7.4).
fn close_frame_check(code: u16, reason: &str) -> Result<(), WebsocketError> {
    if code != 1000 && !(3000..=4999).contains(&code) {
        return Err(WebsocketError::Invalid(format!(
            "close code {code}: a guest may use 1000 or 3000 to 4999"
        )));
    }
    if reason.len() > WEBSOCKET_CLOSE_REASON_BYTES {
        return Err(WebsocketError::Invalid(format!(
            "a close reason of {} bytes: at most {WEBSOCKET_CLOSE_REASON_BYTES}",
            reason.len()
        )));
    }
    Ok(())
}
