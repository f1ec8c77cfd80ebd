//! The one FFI client of the process: requests, the event pump, routing.
//!
//! ```text
//! library threads ──on_event──▶ std channel (unbounded) ──▶ pump thread
//!   (copy bytes, never block)                                 decode FfiEvent, then route by
//!                                                             - room handle   → that room's state
//!                                                             - stream handle → its room (audio)
//!                                                             - reader handle → its room (byte streams)
//!                                                             - local participant → its room (RPC calls)
//!                                                             - async id      → the waiting call
//! ```
//!
//! Invariants:
//! - one [`Client`] per process: `livekit_ffi_initialize` is called once,
//!   the client is never dropped;
//! - all routing state is behind one mutex ([`PumpState`]); it is never held
//!   across an `.await`, and nothing it guards waits on a guest;
//! - an async callback that arrives before its caller registered for it is
//!   kept in `early` until the caller looks; a callback nobody will read
//!   (the caller gave up) is discarded, releasing any handle it carries;
//! - events for a room or stream that is gone are discarded the same way,
//!   so every owned handle the library sends is dropped exactly once;
//! - bytes that do not decode are logged and dropped, never a panic;
//! - an `FfiEvent.panic` fails every room (their sessions end and report
//!   the panic through `failure()`), fails every pending call, and makes
//!   later connects fail: the library is unusable after a panic.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use prost::Message as _;
use tokio::sync::oneshot;

use super::connected::ConnectedRoom;
use super::handle::OwnedHandle;
use super::library::FfiError;
use super::proto::{self, ffi_event, ffi_request, ffi_response};
use super::routes::{Pending, Routes};
use super::sys::{Library, request_sync};
use crate::bindings::types::RoomError;

use crate::config::rooms::EARLY_CALLBACKS;

/// The process-wide client, set by the first successful load.
static CLIENT: Mutex<Option<&'static Client>> = Mutex::new(None);

/// The process-wide FFI client.
pub(super) struct Client {
    pub(super) lib: &'static Library,
    path: PathBuf,
    state: Mutex<PumpState>,
}

/// Everything the pump and the sessions share.
#[derive(Default)]
pub(super) struct PumpState {
    /// Connected rooms by room handle.
    pub(super) rooms: HashMap<u64, ConnectedRoom>,
    /// Where events go that are not room events.
    pub(super) routes: Routes,
    /// The library's panic message, once it panicked.
    pub(super) panicked: Option<String>,
}

impl Client {
    /// The process's client, loading and initialising the library at
    /// `path` the first time.
    pub(super) fn get_or_load(path: &Path) -> Result<&'static Client, FfiError> {
        let mut slot = CLIENT.lock().unwrap_or_else(|e| e.into_inner());
        let requested = std::fs::canonicalize(path).map_err(|_| FfiError::Missing {
            path: path.to_path_buf(),
        })?;
        if let Some(client) = *slot {
            return if client.path == requested {
                Ok(client)
            } else {
                Err(FfiError::OtherLibrary {
                    loaded: client.path.clone(),
                    requested,
                })
            };
        }
        let lib = Library::load(&requested).map_err(|reason| FfiError::Load {
            path: requested.clone(),
            reason,
        })?;
        let client: &'static Client = Box::leak(Box::new(Client {
            lib,
            path: requested,
            state: Mutex::new(PumpState::default()),
        }));
        let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
        std::thread::Builder::new()
            .name("livekit-ffi-pump".into())
            .spawn(move || {
                while let Ok(bytes) = rx.recv() {
                    client.on_bytes(&bytes);
                }
            })
            .map_err(|e| FfiError::Load {
                path: client.path.clone(),
                reason: format!("starting the event pump: {e}"),
            })?;
        lib.initialize(tx, env!("CARGO_PKG_VERSION"));
        *slot = Some(client);
        Ok(client)
    }

    /// A client of its own on the process's library, for tests that must
    /// not disturb the process-wide one (it has no pump: tests feed it
    /// events with [`Client::on_bytes`]).
    #[cfg(test)]
    pub(super) fn isolated(lib: &'static Library) -> &'static Client {
        Box::leak(Box::new(Client {
            lib,
            path: PathBuf::from("isolated"),
            state: Mutex::new(PumpState::default()),
        }))
    }

    /// The library in use.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The shared state.
    pub(super) fn lock(&self) -> MutexGuard<'_, PumpState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An error when the library has panicked.
    pub(super) fn check_usable(&self) -> Result<(), RoomError> {
        match &self.lock().panicked {
            Some(message) => Err(panicked_error(message)),
            None => Ok(()),
        }
    }

    /// A request answered synchronously.
    pub(super) fn request(
        &self,
        request: ffi_request::Message,
    ) -> Result<ffi_response::Message, String> {
        request_sync(self.lib, request)
    }

    /// A request answered by a callback: waits at most `timeout` for it.
    pub(super) async fn call(
        &'static self,
        request: ffi_request::Message,
        timeout: Duration,
    ) -> Result<ffi_event::Message, RoomError> {
        self.start(request, timeout)?.await
    }

    /// Sends a request answered by a callback now and returns the wait for
    /// that callback (at most `timeout` once polled), for answers a job
    /// holds while it does other things (an RPC it performs).
    pub(super) fn start(
        &'static self,
        request: ffi_request::Message,
        timeout: Duration,
    ) -> Result<BoxFuture<'static, Result<ffi_event::Message, RoomError>>, RoomError> {
        self.check_usable()?;
        let response = self.request(request).map_err(RoomError::Transport)?;
        let id = response_async_id(&response).ok_or_else(|| {
            RoomError::Transport("the LiveKit client library answered without an async id".into())
        })?;
        let mut claim = {
            let mut shared = self.lock();
            if let Some(event) = shared.routes.early.remove(&id) {
                return Ok(async move { Ok(event) }.boxed());
            }
            if let Some(message) = &shared.panicked {
                return Err(panicked_error(message));
            }
            let (tx, rx) = oneshot::channel();
            shared.routes.pending.insert(id, Pending::Waiter(tx));
            Claim { client: self, rx }
        };
        // If this future is dropped while waiting, the pump finds the
        // receiver gone and discards the callback, or `claim` discards a
        // callback that arrived just before.
        Ok(async move {
            match tokio::time::timeout(timeout, &mut claim.rx).await {
                Ok(Ok(event)) => Ok(event),
                Ok(Err(_)) => Err(match &self.lock().panicked {
                    Some(message) => panicked_error(message),
                    None => {
                        RoomError::Transport("the LiveKit client library dropped a request".into())
                    }
                }),
                Err(_) => {
                    let mut shared = self.lock();
                    if let Some(Pending::Waiter(_)) = shared.routes.pending.remove(&id) {
                        shared.routes.pending.insert(id, Pending::Discard);
                    }
                    Err(RoomError::Transport(format!(
                        "the LiveKit client library did not answer within {}",
                        humantime::format_duration(timeout)
                    )))
                }
            }
        }
        .boxed())
    }

    /// Sends a request whose callback nobody reads (its handles are
    /// released when it arrives).
    pub(super) fn detach(&self, request: ffi_request::Message) {
        self.detach_holding(request, None);
    }

    /// As [`detach`](Self::detach), keeping `keep` (a handle the request
    /// names) alive until the callback arrives: the library may still need
    /// it while it works on the request.
    pub(super) fn detach_holding(&self, request: ffi_request::Message, keep: Option<OwnedHandle>) {
        match self.request(request) {
            Ok(response) => {
                if let Some(id) = response_async_id(&response) {
                    let early = {
                        let mut shared = self.lock();
                        let early = shared.routes.early.remove(&id);
                        if early.is_none() {
                            let pending = match keep {
                                Some(handle) => Pending::Holding(handle),
                                None => Pending::Discard,
                            };
                            shared.routes.pending.insert(id, pending);
                        }
                        early
                    };
                    if let Some(event) = early {
                        self.discard(event);
                    }
                }
            }
            Err(err) => tracing::debug!(error = %err, "a detached LiveKit request failed"),
        }
    }

    /// One serialized event from the library.
    pub(super) fn on_bytes(&'static self, bytes: &[u8]) {
        let event = match proto::FfiEvent::decode(bytes) {
            Ok(proto::FfiEvent { message: Some(m) }) => m,
            Ok(_) => return, // a variant outside the subset
            Err(err) => {
                tracing::warn!(error = %err, len = bytes.len(), "undecodable event from the LiveKit client library; dropped");
                return;
            }
        };
        // Handles released because nobody wants them are dropped after the
        // lock is released.
        let mut garbage = Vec::new();
        {
            let mut shared = self.lock();
            self.route(&mut shared, event, &mut garbage);
        }
        for event in garbage {
            self.discard(event);
        }
    }

    fn route(
        &'static self,
        shared: &mut PumpState,
        event: ffi_event::Message,
        garbage: &mut Vec<ffi_event::Message>,
    ) {
        match event {
            ffi_event::Message::Logs(batch) => log_batch(batch),
            ffi_event::Message::Panic(panic) => {
                tracing::error!(message = %panic.message, "LiveKit's client library panicked; every room session fails");
                let reason = format!("LiveKit's client library panicked: {}", panic.message);
                for room in shared.rooms.values_mut() {
                    room.fail(reason.clone());
                }
                shared.panicked = Some(panic.message);
                // Waiters see their channel close and report the panic.
                shared.routes.pending.clear();
                shared.routes.streams.clear();
            }
            ffi_event::Message::RoomEvent(event) => {
                let PumpState { rooms, routes, .. } = shared;
                match rooms.get_mut(&event.room_handle) {
                    Some(room) => room.on_room_event(self.lib, event, routes),
                    None => garbage.push(ffi_event::Message::RoomEvent(event)),
                }
            }
            ffi_event::Message::ByteStreamReaderEvent(event) => {
                let PumpState { rooms, routes, .. } = shared;
                let room = routes.readers.get(&event.reader_handle).copied();
                // A reader event carries no handle: one for a room that is
                // gone has nothing to release.
                if let Some(room) = room.and_then(|room| rooms.get_mut(&room)) {
                    room.on_bytes_event(event, routes);
                }
            }
            ffi_event::Message::RpcMethodInvocation(event) => {
                let room = shared
                    .rooms
                    .values_mut()
                    .find(|r| r.local_id() == Some(event.local_participant_handle));
                match room {
                    Some(room) => room.on_invocation(self, event),
                    None => super::rpc_answer::answer_gone(self.lib, &event),
                }
            }
            ffi_event::Message::AudioStreamEvent(event) => {
                let target = shared.routes.streams.get(&event.stream_handle).cloned();
                match target
                    .and_then(|(room, identity)| shared.rooms.get_mut(&room).map(|r| (r, identity)))
                {
                    Some((room, identity)) => room.on_audio(self.lib, &identity, event),
                    None => garbage.push(ffi_event::Message::AudioStreamEvent(event)),
                }
            }
            event => {
                let Some(id) = event_async_id(&event) else {
                    garbage.push(event);
                    return;
                };
                match shared.routes.pending.remove(&id) {
                    Some(Pending::Waiter(tx)) => {
                        if let Err(event) = tx.send(event) {
                            garbage.push(event);
                        }
                    }
                    Some(Pending::TextRead {
                        room,
                        sender,
                        topic,
                        reader,
                    }) => {
                        match shared.rooms.get_mut(&room) {
                            Some(room) => room.on_text_read(sender, topic, event),
                            None => garbage.push(event),
                        }
                        drop(reader);
                    }
                    Some(Pending::Discard) => garbage.push(event),
                    Some(Pending::Holding(handle)) => {
                        garbage.push(event);
                        drop(handle);
                    }
                    None => {
                        if shared.routes.early.len() >= EARLY_CALLBACKS {
                            tracing::warn!("too many unclaimed LiveKit callbacks; dropping them");
                            garbage.extend(shared.routes.early.drain().map(|(_, e)| e));
                        }
                        shared.routes.early.insert(id, event);
                    }
                }
            }
        }
    }
}

/// A pending call's receiver: a callback delivered but never read (the
/// call gave up or was dropped) is discarded with it.
struct Claim<'a> {
    client: &'a Client,
    rx: oneshot::Receiver<ffi_event::Message>,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if let Ok(event) = self.rx.try_recv() {
            self.client.discard(event);
        }
    }
}

/// The error for every use of a library that panicked.
fn panicked_error(message: &str) -> RoomError {
    RoomError::Transport(format!(
        "LiveKit's client library panicked ({message}); restart agent-host to use rooms again"
    ))
}

fn response_async_id(response: &ffi_response::Message) -> Option<u64> {
    use ffi_response::Message as M;
    Some(match response {
        M::Connect(r) => r.async_id,
        M::Disconnect(r) => r.async_id,
        M::PublishTrack(r) => r.async_id,
        M::PublishData(r) => r.async_id,
        M::SetLocalMetadata(r) => r.async_id,
        M::SetLocalAttributes(r) => r.async_id,
        M::CaptureAudioFrame(r) => r.async_id,
        M::TextReadAll(r) => r.async_id,
        M::SendText(r) => r.async_id,
        M::PerformRpc(r) => r.async_id,
        M::TextStreamOpen(r) => r.async_id,
        M::TextStreamWrite(r) => r.async_id,
        M::TextStreamClose(r) => r.async_id,
        M::RegisterRpcMethod(_)
        | M::UnregisterRpcMethod(_)
        | M::RpcMethodInvocationResponse(_)
        | M::ByteReadIncremental(_)
        | M::CreateAudioTrack(_)
        | M::NewAudioStream(_)
        | M::NewAudioSource(_)
        | M::ClearAudioBuffer(_)
        | M::ReadyForRoomEvent(_) => return None,
    })
}

fn event_async_id(event: &ffi_event::Message) -> Option<u64> {
    use ffi_event::Message as M;
    Some(match event {
        M::Connect(e) => e.async_id,
        M::Disconnect(e) => e.async_id,
        M::PublishTrack(e) => e.async_id,
        M::PublishData(e) => e.async_id,
        M::CaptureAudioFrame(e) => e.async_id,
        M::SetLocalMetadata(e) => e.async_id,
        M::SetLocalAttributes(e) => e.async_id,
        M::TextStreamReaderReadAll(e) => e.async_id,
        M::SendText(e) => e.async_id,
        M::PerformRpc(e) => e.async_id,
        M::TextStreamOpen(e) => e.async_id,
        M::TextStreamWriterWrite(e) => e.async_id,
        M::TextStreamWriterClose(e) => e.async_id,
        M::RoomEvent(_)
        | M::AudioStreamEvent(_)
        | M::ByteStreamReaderEvent(_)
        | M::RpcMethodInvocation(_)
        | M::Logs(_)
        | M::Panic(_) => return None,
    })
}

impl Client {
    /// Releases every handle an unwanted event carries; a room that connected
    /// for nobody is left.
    fn discard(&self, event: ffi_event::Message) {
        use proto::room_event::Message as R;
        let take = |h| OwnedHandle::take(self.lib, h);
        match event {
            ffi_event::Message::Connect(proto::ConnectCallback {
                message: Some(proto::connect_callback::Message::Result(result)),
                ..
            }) => {
                let room = take(result.room.handle);
                let _local = take(result.local_participant.handle);
                let _remotes: Vec<_> = result
                    .participants
                    .into_iter()
                    .flat_map(|p| {
                        let participant = take(p.participant.handle);
                        p.publications
                            .into_iter()
                            .filter_map(move |publication| take(publication.handle))
                            .chain(participant)
                    })
                    .collect();
                if let Some(room) = &room {
                    self.detach(ffi_request::Message::Disconnect(proto::DisconnectRequest {
                        room_handle: room.id(),
                    }));
                }
            }
            ffi_event::Message::PublishTrack(proto::PublishTrackCallback {
                message: Some(proto::publish_track_callback::Message::Publication(p)),
                ..
            }) => drop(take(p.handle)),
            ffi_event::Message::TextStreamOpen(proto::TextStreamOpenCallback {
                result: Some(proto::text_stream_open_callback::Result::Writer(w)),
                ..
            }) => drop(take(w.handle)),
            ffi_event::Message::RoomEvent(proto::RoomEvent {
                message: Some(event),
                ..
            }) => match event {
                R::ParticipantConnected(e) => drop(take(e.info.handle)),
                R::TrackPublished(e) => drop(take(e.publication.handle)),
                R::TrackSubscribed(e) => drop(take(e.track.handle)),
                R::DataPacketReceived(proto::DataPacketReceived {
                    value: Some(proto::data_packet_received::Value::User(user)),
                    ..
                }) => drop(take(user.data.handle)),
                R::TextStreamOpened(e) => drop(take(e.reader.handle)),
                R::ByteStreamOpened(e) => drop(take(e.reader.handle)),
                _ => {}
            },
            ffi_event::Message::AudioStreamEvent(proto::AudioStreamEvent {
                message: Some(proto::audio_stream_event::Message::FrameReceived(f)),
                ..
            }) => drop(take(f.frame.handle)),
            _ => {}
        }
    }
}

/// Forwards the library's log records to the host's log.
fn log_batch(batch: proto::LogBatch) {
    for record in batch.records {
        let target = record.target.as_str();
        let message = record.message.as_str();
        match record.level() {
            proto::LogLevel::LogError => {
                tracing::warn!(target: "livekit_ffi", %target, "{message}")
            }
            proto::LogLevel::LogWarn => tracing::info!(target: "livekit_ffi", %target, "{message}"),
            proto::LogLevel::LogInfo => {
                tracing::debug!(target: "livekit_ffi", %target, "{message}")
            }
            proto::LogLevel::LogDebug | proto::LogLevel::LogTrace => {
                tracing::trace!(target: "livekit_ffi", %target, "{message}")
            }
        }
    }
}
