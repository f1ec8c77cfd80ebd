//! One job's room: connecting, and the job's [`RoomSession`] on the
//! [`ConnectedRoom`] the pump keeps (see `connected` for how events reach
//! it).
//!
//! Policy:
//! - a job that lets its event queue fill fails: its session ends and
//!   [`RoomSession::failure`] says why;
//! - the session owns every handle of its room (room, participants,
//!   publications, tracks, streams, the agent's source, track and
//!   publication); leaving the room (close, drop or the room ending and the
//!   job closing) releases all of them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::FutureExt as _;
use futures::future::BoxFuture;
use tokio::sync::{mpsc, watch};

use super::client::{Client, PumpState};
use super::connected::{
    AUDIO_QUEUE, ConnectedRoom, EVENT_QUEUE, Publication, Published, Remote, participant,
    publication,
};
use super::handle::OwnedHandle;
use super::proto::{self, ffi_event, ffi_request, ffi_response};
use super::routes::{Pending, Routes};
use super::{rpc, rpc_answer, streams};

use crate::bindings::audio::AudioFormat;
use crate::bindings::events::Event;
use crate::bindings::types::{Participant, RoomError};
use crate::host_memory::HostMemory;
use crate::room::queue::{Incoming, Queued};
use crate::room::{
    CallAnswer, ConnectRequest, OutgoingCall, OutgoingData, OutgoingText, RoomSession, RpcError,
    TextStreamOptions, TextStreamWriter,
};

use crate::config::rooms::{
    PUBLISH_QUEUE_MS, ROOM_CALL_TIMEOUT, ROOM_CONNECT_TIMEOUT, ROOM_DISCONNECT_TIMEOUT,
};

/// Joins a room for one job.
pub(super) async fn connect(
    client: &'static Client,
    request: ConnectRequest,
) -> Result<FfiSession, RoomError> {
    if request.url.is_empty() {
        return Err(RoomError::Transport(
            "no LiveKit URL to connect the job's room to".into(),
        ));
    }
    let connect = ffi_request::Message::Connect(proto::ConnectRequest {
        url: request.url.clone(),
        token: request.token,
        options: proto::RoomOptions {
            auto_subscribe: Some(true),
            adaptive_stream: Some(false),
            dynacast: Some(false),
            join_retries: None,
            connect_timeout_ms: None,
        },
    });
    let event = client.call(connect, ROOM_CONNECT_TIMEOUT).await?;
    let ffi_event::Message::Connect(callback) = event else {
        return Err(RoomError::Transport(
            "unexpected answer to connecting".into(),
        ));
    };
    let result = match callback.message {
        Some(proto::connect_callback::Message::Result(result)) => result,
        Some(proto::connect_callback::Message::Error(err)) => {
            return Err(RoomError::Transport(format!(
                "could not connect to {}: {err}",
                request.url
            )));
        }
        None => {
            return Err(RoomError::Transport(
                "the connect callback carried no result".into(),
            ));
        }
    };
    let lib = client.lib;
    let room = OwnedHandle::take(lib, result.room.handle).ok_or_else(|| {
        RoomError::Transport("the library connected without a room handle".into())
    })?;
    let local = OwnedHandle::take(lib, result.local_participant.handle);
    let mut participants = BTreeMap::new();
    let mut publications = HashMap::new();
    for remote in result.participants {
        let handle = OwnedHandle::take(lib, remote.participant.handle);
        let info = participant(remote.participant.info);
        for p in remote.publications {
            let p = publication(lib, &info.identity, p);
            publications.insert(p.info.sid.clone(), p);
        }
        participants.insert(
            info.identity.clone(),
            Remote {
                info,
                _handle: handle,
            },
        );
    }
    let room_id = room.id();
    let session = register(
        client,
        room,
        local,
        publications,
        participants,
        request.host_memory,
    )?;
    // The library holds the room's events back until it hears this (and
    // closes the room after 15 s without it).
    let ready = ffi_request::Message::ReadyForRoomEvent(proto::ReadyForRoomEventRequest {
        room_handle: room_id,
    });
    client
        .request(ready)
        .map_err(|e| RoomError::Transport(format!("could not start the room's events: {e}")))?;
    tracing::debug!(url = %request.url, room = %request.job.room.name, "joined the room through LiveKit's client library");
    Ok(session)
}

/// One job's session in a room reached through the FFI library.
pub(super) struct FfiSession {
    client: &'static Client,
    room: u64,
    events: mpsc::Receiver<Queued>,
    audio_pending: Arc<AtomicUsize>,
    ended: watch::Receiver<bool>,
    left: bool,
}

impl FfiSession {
    /// Runs `f` on the room's state, or fails when the session is over.
    fn with_room<T>(
        &self,
        f: impl FnOnce(&mut ConnectedRoom, &mut Routes) -> Result<T, RoomError>,
    ) -> Result<T, RoomError> {
        let mut shared = self.client.lock();
        let PumpState { rooms, routes, .. } = &mut *shared;
        match rooms.get_mut(&self.room) {
            Some(room) if !room.ended => f(room, routes),
            _ => Err(RoomError::Closed),
        }
    }

    fn local(&self) -> Result<u64, RoomError> {
        self.with_room(|room, _| {
            room.local
                .as_ref()
                .map(OwnedHandle::id)
                .ok_or_else(|| RoomError::Transport("no local participant".into()))
        })
    }

    /// A call whose callback has an optional `error`.
    async fn call(
        &self,
        request: ffi_request::Message,
        what: &str,
    ) -> Result<ffi_event::Message, RoomError> {
        self.client
            .call(request, ROOM_CALL_TIMEOUT)
            .await
            .map_err(|e| match e {
                RoomError::Transport(reason) => RoomError::Transport(format!("{what}: {reason}")),
                other => other,
            })
    }

    /// Takes the room out of the shared tables (with its stream and reader
    /// routes and pending text reads), so the pump no longer touches it; dropping the
    /// result releases every handle of the room.
    fn take_room(&mut self) -> Option<ConnectedRoom> {
        let mut shared = self.client.lock();
        let room = shared.rooms.remove(&self.room)?;
        let id = self.room;
        shared.routes.streams.retain(|_, (r, _)| *r != id);
        shared.routes.readers.retain(|_, r| *r != id);
        shared
            .routes
            .pending
            .retain(|_, p| !matches!(p, Pending::TextRead { room, .. } if *room == id));
        Some(room)
    }
}

fn callback_error(event: ffi_event::Message, what: &str) -> Result<(), RoomError> {
    let error = match event {
        ffi_event::Message::PublishData(c) => c.error,
        ffi_event::Message::SetLocalMetadata(c) => c.error,
        ffi_event::Message::SetLocalAttributes(c) => c.error,
        ffi_event::Message::CaptureAudioFrame(c) => c.error,
        ffi_event::Message::SendText(c) => match c.result {
            Some(proto::stream_send_text_callback::Result::Error(e)) => Some(e.description),
            _ => None,
        },
        _ => Some("unexpected callback".into()),
    };
    match error {
        Some(error) if !error.is_empty() => Err(RoomError::Transport(format!("{what}: {error}"))),
        _ => Ok(()),
    }
}

impl RoomSession for FfiSession {
    fn participants(&self) -> Vec<Participant> {
        self.with_room(|room, _| Ok(room.participants.values().map(|r| r.info.clone()).collect()))
            .unwrap_or_default()
    }

    fn ended(&self) -> BoxFuture<'static, ()> {
        let mut ended = self.ended.clone();
        async move {
            // An error means the room's state is gone: ended as well.
            let _ = ended.wait_for(|ended| *ended).await;
        }
        .boxed()
    }

    fn next_incoming(&mut self) -> BoxFuture<'_, Option<Queued>> {
        async move {
            loop {
                let item = self.events.recv().await?;
                if let Incoming::Event(Event::Audio(frame)) = item.get() {
                    self.audio_pending.fetch_sub(1, Ordering::AcqRel);
                    // Frames queued before an unsubscribe are dropped.
                    let wanted = self
                        .with_room(|room, _| Ok(room.audio_subs.contains_key(&frame.participant)))
                        .unwrap_or(true);
                    if !wanted {
                        continue;
                    }
                }
                return Some(item);
            }
        }
        .boxed()
    }

    fn publish_data(&mut self, data: OutgoingData) -> BoxFuture<'_, Result<(), RoomError>> {
        async move {
            let local_participant_handle = self.local()?;
            let request = ffi_request::Message::PublishData(proto::PublishDataRequest {
                local_participant_handle,
                // The library copies the bytes before the request returns.
                data_ptr: data.payload.as_ptr() as u64,
                data_len: data.payload.len() as u64,
                reliable: data.reliable,
                topic: data.topic,
                destination_identities: data.destinations,
            });
            let event = self.call(request, "publishing data").await?;
            drop(data.payload);
            callback_error(event, "publishing data")
        }
        .boxed()
    }

    fn send_text(&mut self, text: OutgoingText) -> BoxFuture<'_, Result<(), RoomError>> {
        async move {
            let local_participant_handle = self.local()?;
            let request = ffi_request::Message::SendText(proto::StreamSendTextRequest {
                local_participant_handle,
                options: proto::StreamTextOptions {
                    topic: text.topic,
                    attributes: HashMap::new(),
                    destination_identities: text.destinations,
                    sender_identity: None,
                },
                text: text.text,
            });
            let event = self.call(request, "sending text").await?;
            callback_error(event, "sending text")
        }
        .boxed()
    }

    fn set_metadata(&mut self, metadata: String) -> BoxFuture<'_, Result<(), RoomError>> {
        async move {
            let local_participant_handle = self.local()?;
            let request = ffi_request::Message::SetLocalMetadata(proto::SetLocalMetadataRequest {
                local_participant_handle,
                metadata,
            });
            let event = self.call(request, "setting metadata").await?;
            callback_error(event, "setting metadata")
        }
        .boxed()
    }

    fn set_attributes(
        &mut self,
        attributes: Vec<(String, String)>,
    ) -> BoxFuture<'_, Result<(), RoomError>> {
        async move {
            let local_participant_handle = self.local()?;
            let request =
                ffi_request::Message::SetLocalAttributes(proto::SetLocalAttributesRequest {
                    local_participant_handle,
                    attributes: attributes
                        .into_iter()
                        .map(|(key, value)| proto::AttributesEntry { key, value })
                        .collect(),
                });
            let event = self.call(request, "setting attributes").await?;
            callback_error(event, "setting attributes")
        }
        .boxed()
    }

    fn subscribe_audio(
        &mut self,
        identity: String,
        format: AudioFormat,
    ) -> BoxFuture<'_, Result<(), RoomError>> {
        let lib = self.client.lib;
        let result = self.with_room(|room, routes| {
            room.audio_subs.insert(identity.clone(), format);
            room.refresh_stream(lib, &identity, routes)
                .map_err(|e| RoomError::Transport(format!("receiving {identity}'s audio: {e}")))
        });
        async move { result }.boxed()
    }

    fn unsubscribe_audio(&mut self, identity: String) -> BoxFuture<'_, ()> {
        let _ = self.with_room(|room, routes| {
            room.audio_subs.remove(&identity);
            room.drop_stream(&identity, routes);
            Ok(())
        });
        async {}.boxed()
    }

    fn publish_audio(
        &mut self,
        name: String,
        format: AudioFormat,
    ) -> BoxFuture<'_, Result<String, RoomError>> {
        async move {
            let local_participant_handle = self.local()?;
            let lib = self.client.lib;
            let transport = |what: &str, e: String| RoomError::Transport(format!("{what}: {e}"));
            let source = ffi_request::Message::NewAudioSource(proto::NewAudioSourceRequest {
                r#type: proto::AudioSourceType::AudioSourceNative as i32,
                options: Some(proto::AudioSourceOptions {
                    echo_cancellation: false,
                    noise_suppression: false,
                    auto_gain_control: false,
                }),
                sample_rate: Some(format.sample_rate),
                num_channels: Some(format.channels),
                queue_size_ms: Some(PUBLISH_QUEUE_MS),
            });
            let source = match self
                .client
                .request(source)
                .map_err(|e| transport("creating an audio source", e))?
            {
                ffi_response::Message::NewAudioSource(r) => OwnedHandle::take(lib, r.source.handle),
                _ => None,
            }
            .ok_or_else(|| RoomError::Transport("the library created no audio source".into()))?;
            let track = ffi_request::Message::CreateAudioTrack(proto::CreateAudioTrackRequest {
                name,
                source_handle: source.id(),
            });
            let track = match self
                .client
                .request(track)
                .map_err(|e| transport("creating an audio track", e))?
            {
                ffi_response::Message::CreateAudioTrack(r) => {
                    OwnedHandle::take(lib, r.track.handle)
                }
                _ => None,
            }
            .ok_or_else(|| RoomError::Transport("the library created no audio track".into()))?;
            let publish = ffi_request::Message::PublishTrack(proto::PublishTrackRequest {
                local_participant_handle,
                track_handle: track.id(),
                options: proto::TrackPublishOptions {
                    source: Some(proto::TrackSource::SourceMicrophone as i32),
                },
            });
            let event = self.call(publish, "publishing the audio track").await?;
            let mut sid = String::new();
            let publication = match event {
                ffi_event::Message::PublishTrack(c) => match c.message {
                    Some(proto::publish_track_callback::Message::Publication(p)) => {
                        sid = p.info.sid;
                        OwnedHandle::take(lib, p.handle)
                    }
                    Some(proto::publish_track_callback::Message::Error(e)) => {
                        return Err(RoomError::Transport(format!(
                            "publishing the audio track: {e}"
                        )));
                    }
                    None => None,
                },
                _ => None,
            };
            self.with_room(|room, _| {
                room.published = Some(Published {
                    format,
                    _publication: publication,
                    _track: track,
                    source,
                });
                Ok(())
            })?;
            Ok(sid)
        }
        .boxed()
    }

    fn write_audio(&mut self, samples: Vec<i16>) -> BoxFuture<'_, Result<(), RoomError>> {
        async move {
            let (source_handle, format) = self.with_room(|room, _| {
                room.published
                    .as_ref()
                    .map(|p| (p.source.id(), p.format))
                    .ok_or_else(|| {
                        RoomError::Denied("publish the audio track before writing to it".into())
                    })
            })?;
            if samples.is_empty() {
                return Ok(());
            }
            let channels = format.channels.max(1);
            let request =
                ffi_request::Message::CaptureAudioFrame(proto::CaptureAudioFrameRequest {
                    source_handle,
                    buffer: proto::AudioFrameBufferInfo {
                        // The library copies the samples before the request returns.
                        data_ptr: samples.as_ptr() as u64,
                        num_channels: channels,
                        sample_rate: format.sample_rate,
                        samples_per_channel: u32::try_from(samples.len()).unwrap_or(u32::MAX)
                            / channels,
                    },
                });
            // Completes once the frame fits in the source's queue: this is
            // the guest's backpressure.
            let event = self.call(request, "writing audio").await?;
            drop(samples);
            callback_error(event, "writing audio")
        }
        .boxed()
    }

    fn clear_audio(&mut self) -> BoxFuture<'_, Result<(), RoomError>> {
        async move {
            let source_handle =
                self.with_room(|room, _| Ok(room.published.as_ref().map(|p| p.source.id())))?;
            let Some(source_handle) = source_handle else {
                return Ok(());
            };
            self.client
                .request(ffi_request::Message::ClearAudioBuffer(
                    proto::ClearAudioBufferRequest { source_handle },
                ))
                .map(drop)
                .map_err(|e| RoomError::Transport(format!("clearing audio: {e}")))
        }
        .boxed()
    }

    fn failure(&self) -> Option<String> {
        let shared = self.client.lock();
        shared
            .rooms
            .get(&self.room)
            .and_then(|room| room.failure.clone())
            .or_else(|| {
                shared
                    .panicked
                    .as_ref()
                    .map(|m| format!("LiveKit's client library panicked: {m}"))
            })
    }

    fn open_text_stream(
        &mut self,
        options: TextStreamOptions,
    ) -> BoxFuture<'_, Result<Box<dyn TextStreamWriter>, RoomError>> {
        async move {
            let local = self.local()?;
            let writer = streams::open_text(self.client, local, options).await?;
            Ok(Box::new(writer) as Box<dyn TextStreamWriter>)
        }
        .boxed()
    }

    fn accept_byte_streams(&mut self, topic: String) -> BoxFuture<'_, Result<(), RoomError>> {
        let result = self.with_room(|room, _| {
            room.topics.insert(topic);
            Ok(())
        });
        async move { result }.boxed()
    }

    fn register_rpc(&mut self, method: String) -> BoxFuture<'_, Result<(), RoomError>> {
        let result = self.local().and_then(|local_participant_handle| {
            let request =
                ffi_request::Message::RegisterRpcMethod(proto::RegisterRpcMethodRequest {
                    local_participant_handle,
                    method: method.clone(),
                });
            self.client.request(request).map_err(|e| {
                RoomError::Transport(format!("registering the RPC method {method}: {e}"))
            })?;
            self.with_room(|room, _| {
                room.methods.insert(method);
                Ok(())
            })
        });
        async move { result }.boxed()
    }

    fn unregister_rpc(&mut self, method: String) -> BoxFuture<'_, ()> {
        if let Ok(local_participant_handle) = self.local() {
            let _ = self.with_room(|room, _| {
                room.methods.remove(&method);
                Ok(())
            });
            let request =
                ffi_request::Message::UnregisterRpcMethod(proto::UnregisterRpcMethodRequest {
                    local_participant_handle,
                    method,
                });
            if let Err(err) = self.client.request(request) {
                tracing::debug!(error = %err, "unregistering an RPC method");
            }
        }
        async {}.boxed()
    }

    fn respond_rpc(
        &mut self,
        id: String,
        response: Result<String, RpcError>,
    ) -> BoxFuture<'_, Result<(), RoomError>> {
        // Ids the session gave out are invocation ids; others wait for nothing.
        let result = id
            .parse::<u64>()
            .map_err(|_| RoomError::Closed)
            .and_then(|id| {
                let local = self.with_room(|room, _| {
                    let local = room.local_id().ok_or(RoomError::Closed)?;
                    room.calls
                        .remove(&id)
                        .map(|_| local)
                        .ok_or(RoomError::Closed)
                })?;
                rpc_answer::respond(self.client.lib, local, id, response)
            });
        async move { result }.boxed()
    }

    fn perform_rpc(&mut self, call: OutgoingCall) -> BoxFuture<'_, Result<CallAnswer, RoomError>> {
        let result = self
            .local()
            .and_then(|local| rpc::perform(self.client, local, call));
        async move { result }.boxed()
    }

    fn close(&mut self) -> BoxFuture<'_, ()> {
        async move {
            if self.left {
                return;
            }
            let usable = self.client.check_usable().is_ok();
            if usable && self.client.lock().rooms.contains_key(&self.room) {
                let disconnect = ffi_request::Message::Disconnect(proto::DisconnectRequest {
                    room_handle: self.room,
                });
                if let Err(err) = self.client.call(disconnect, ROOM_DISCONNECT_TIMEOUT).await {
                    tracing::debug!(error = ?err, "leaving the room");
                }
            }
            self.left = true;
            drop(self.take_room());
        }
        .boxed()
    }
}

impl Drop for FfiSession {
    fn drop(&mut self) {
        // Dropped without (or in the middle of) close: leave without
        // waiting, then release everything.
        let Some(room) = self.take_room() else { return };
        if !self.left && self.client.check_usable().is_ok() {
            self.client
                .detach(ffi_request::Message::Disconnect(proto::DisconnectRequest {
                    room_handle: self.room,
                }));
        }
        drop(room);
    }
}

/// Registers a connected room with the client, so the pump routes its
/// events, and returns the job's session on it. Refused once the library
/// has panicked (the room's handles are then released here).
fn register(
    client: &'static Client,
    room: OwnedHandle,
    local: Option<OwnedHandle>,
    publications: HashMap<String, Publication>,
    participants: BTreeMap<String, Remote>,
    memory: HostMemory,
) -> Result<FfiSession, RoomError> {
    let room_id = room.id();
    let (tx, rx) = mpsc::channel(EVENT_QUEUE + AUDIO_QUEUE);
    let audio_pending = Arc::new(AtomicUsize::new(0));
    let (ended_signal, ended) = watch::channel(false);
    let state = ConnectedRoom {
        handle_id: room_id,
        events: Some(tx),
        memory,
        audio_pending: audio_pending.clone(),
        dropped_audio: 0,
        failure: None,
        ended: false,
        ended_signal,
        audio_subs: HashMap::new(),
        published: None,
        streams: HashMap::new(),
        tracks: HashMap::new(),
        publications,
        participants,
        topics: HashSet::new(),
        byte_streams: HashMap::new(),
        methods: HashSet::new(),
        calls: HashMap::new(),
        runtime: tokio::runtime::Handle::try_current().ok(),
        local,
        _room: room,
    };
    {
        let mut shared = client.lock();
        if shared.panicked.is_some() {
            drop(shared);
            drop(state);
            return Err(client.check_usable().err().unwrap_or(RoomError::Closed));
        }
        shared.rooms.insert(room_id, state);
    }
    Ok(FfiSession {
        client,
        room: room_id,
        events: rx,
        audio_pending,
        ended,
        left: false,
    })
}

/// A session on a room that exists only in `client`'s tables, with made-up
/// handle ids the library does not know (releasing them is a no-op): for
/// testing what the pump does with events. Use ids far from the
/// library's own (which count up from 1).
#[cfg(test)]
pub(super) fn fake_session(
    client: &'static Client,
    room_id: u64,
    memory: HostMemory,
) -> FfiSession {
    let lib = client.lib;
    let handle = |id| OwnedHandle::take(lib, proto::FfiOwnedHandle { id }).expect("a nonzero id");
    register(
        client,
        handle(room_id),
        Some(handle(room_id - 1)),
        HashMap::new(),
        BTreeMap::new(),
        memory,
    )
    .expect("a fresh client is usable")
}
