//! One job's room: its state as the pump keeps it, and the job's
//! [`RoomSession`].
//!
//! Policy:
//! - the pump turns room events into WIT events in the order they arrive
//!   and keeps the participant table `participants()` reads; events about
//!   the agent itself are not delivered;
//! - each session's queue holds [`EVENT_QUEUE`] events plus room for
//!   [`AUDIO_QUEUE`] audio frames; unread audio frames beyond
//!   [`AUDIO_QUEUE`] are dropped (audio is real time), and a job that lets
//!   the queue fill fails (its session ends and [`RoomSession::failure`]
//!   says why): the pump never waits and never drops other events;
//! - queued events are charged to the job's host-memory budget
//!   ([`crate::room::queue`]): an audio frame the budget cannot take is
//!   dropped, any other event ends the session, and the job fails with
//!   the budget's reason;
//! - audio: a subscription follows the participant's microphone track (a
//!   current one at once, later ones when they are subscribed); the library
//!   decodes and resamples to the format asked for;
//! - the session owns every handle of its room (room, participants,
//!   publications, tracks, streams, the agent's source, track and
//!   publication); leaving the room (close, drop or the room ending and the
//!   job closing) releases all of them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::FutureExt as _;
use futures::future::BoxFuture;
use tokio::sync::{mpsc, watch};

use super::client::{Client, Pending, Routes, Shared, request_sync};
use super::handle::OwnedHandle;
use super::proto::{self, ffi_event, ffi_request, ffi_response, room_event};
use super::sys::{self, Library};
use crate::bindings::audio::{AudioFormat, AudioFrame, TrackInfo, TrackKind};
use crate::bindings::events::Event;
use crate::bindings::types::{
    DataPacket, Participant, ParticipantKind, RoomError, RoomEvent, TextMessage,
};
use crate::bounded;
use crate::host_memory::HostMemory;
use crate::room::queue::Queued;
use crate::room::{ConnectRequest, OutgoingData, OutgoingText, RoomSession};

pub use crate::config::rooms::{AUDIO_QUEUE, EVENT_QUEUE};
use crate::config::rooms::{
    PUBLISH_QUEUE_MS, ROOM_CALL_TIMEOUT as CALL_TIMEOUT, ROOM_CONNECT_TIMEOUT as CONNECT_TIMEOUT,
    ROOM_DISCONNECT_TIMEOUT as DISCONNECT_TIMEOUT,
};

/// A remote participant and its handle.
struct Remote {
    info: Participant,
    _handle: Option<OwnedHandle>,
}

/// A remote track publication.
struct Publication {
    identity: String,
    info: TrackInfo,
    source: proto::TrackSource,
    _handle: Option<OwnedHandle>,
}

/// A subscribed remote track.
struct Subscribed {
    identity: String,
    sid: String,
    microphone: bool,
    handle: OwnedHandle,
}

/// An audio stream delivering a participant's track to the job.
struct Stream {
    track_sid: String,
    format: AudioFormat,
    handle: OwnedHandle,
}

/// The agent's published audio.
struct Published {
    format: AudioFormat,
    _publication: Option<OwnedHandle>,
    _track: OwnedHandle,
    source: OwnedHandle,
}

/// What the pump and the session know about one connected room. Fields
/// holding handles are dropped in declaration order: the room's own
/// handle last.
pub(super) struct RoomState {
    handle_id: u64,
    events: Option<mpsc::Sender<Queued>>,
    /// The job's budget, which queued events are charged to.
    memory: HostMemory,
    audio_pending: Arc<AtomicUsize>,
    dropped_audio: u64,
    failure: Option<String>,
    ended: bool,
    /// Tells [`RoomSession::ended`] waiters when `ended` is set.
    ended_signal: watch::Sender<bool>,
    audio_subs: HashMap<String, AudioFormat>,
    published: Option<Published>,
    streams: HashMap<String, Stream>,
    tracks: HashMap<String, Subscribed>,
    publications: HashMap<String, Publication>,
    participants: BTreeMap<String, Remote>,
    local: Option<OwnedHandle>,
    _room: OwnedHandle,
}

fn participant(info: proto::ParticipantInfo) -> Participant {
    let kind = match info.kind() {
        proto::ParticipantKind::Standard => ParticipantKind::Standard,
        proto::ParticipantKind::Ingress => ParticipantKind::Ingress,
        proto::ParticipantKind::Egress => ParticipantKind::Egress,
        proto::ParticipantKind::Sip => ParticipantKind::Sip,
        proto::ParticipantKind::Agent => ParticipantKind::Agent,
        proto::ParticipantKind::Connector => ParticipantKind::Connector,
    };
    let mut attributes: Vec<(String, String)> = info.attributes.into_iter().collect();
    attributes.sort();
    Participant {
        sid: info.sid,
        identity: info.identity,
        name: info.name,
        metadata: info.metadata,
        attributes,
        kind,
    }
}

fn publication(
    lib: &'static Library,
    identity: &str,
    owned: proto::OwnedTrackPublication,
) -> Publication {
    let handle = OwnedHandle::take(lib, owned.handle);
    let info = owned.info;
    let source = info.source();
    let kind = match info.kind() {
        proto::TrackKind::KindVideo => TrackKind::Video,
        proto::TrackKind::KindAudio | proto::TrackKind::KindUnknown => TrackKind::Audio,
    };
    Publication {
        identity: identity.to_string(),
        info: TrackInfo {
            sid: info.sid,
            participant: identity.to_string(),
            name: info.name,
            kind,
        },
        source,
        _handle: handle,
    }
}

impl RoomState {
    /// Pushes a non-audio event; a full queue fails the session.
    fn push(&mut self, event: Event) {
        let Some(events) = &self.events else { return };
        let event = match Queued::event(&self.memory, event) {
            Ok(event) => event,
            Err(over) => return self.fail(over.to_string()),
        };
        if let Err(err) = events.try_send(event) {
            match err {
                mpsc::error::TrySendError::Full(_) => self.fail(format!(
                    "the job did not read its room events: more than {EVENT_QUEUE} were waiting"
                )),
                // The session is gone; close() will clean up.
                mpsc::error::TrySendError::Closed(_) => self.events = None,
            }
        }
    }

    /// Ends the session with a failure: the job reads what is queued, then
    /// the room is over for it.
    pub(super) fn fail(&mut self, reason: String) {
        if self.failure.is_none() {
            tracing::warn!(%reason, "room session failed");
            self.failure = Some(reason);
        }
        self.end();
    }

    fn end(&mut self) {
        self.ended = true;
        self.ended_signal.send_replace(true);
        self.events = None;
    }

    /// One room event, from the pump.
    pub(super) fn on_room_event(
        &mut self,
        lib: &'static Library,
        event: proto::RoomEvent,
        routes: &mut Routes,
    ) {
        use room_event::Message as M;
        let Some(event) = event.message else { return };
        match event {
            M::ParticipantConnected(e) => {
                let handle = OwnedHandle::take(lib, e.info.handle);
                let info = participant(e.info.info);
                self.participants.insert(
                    info.identity.clone(),
                    Remote {
                        info: info.clone(),
                        _handle: handle,
                    },
                );
                self.push(Event::Room(RoomEvent::ParticipantJoined(info)));
            }
            M::ParticipantDisconnected(e) => {
                let identity = e.participant_identity;
                let gone: Vec<String> = self
                    .tracks
                    .iter()
                    .filter(|(_, t)| t.identity == identity)
                    .map(|(sid, _)| sid.clone())
                    .collect();
                for sid in gone {
                    self.tracks.remove(&sid);
                }
                self.publications.retain(|_, p| p.identity != identity);
                self.drop_stream(&identity, routes);
                self.audio_subs.remove(&identity);
                if let Some(remote) = self.participants.remove(&identity) {
                    self.push(Event::Room(RoomEvent::ParticipantLeft(remote.info)));
                }
            }
            M::ParticipantMetadataChanged(e) => {
                self.update(&e.participant_identity, |p| p.metadata = e.metadata);
            }
            M::ParticipantNameChanged(e) => {
                self.update(&e.participant_identity, |p| p.name = e.name);
            }
            M::ParticipantAttributesChanged(e) => {
                let mut attributes: Vec<(String, String)> =
                    e.attributes.into_iter().map(|a| (a.key, a.value)).collect();
                attributes.sort();
                self.update(&e.participant_identity, |p| p.attributes = attributes);
            }
            M::TrackPublished(e) => {
                let publication = publication(lib, &e.participant_identity, e.publication);
                let info = publication.info.clone();
                self.publications.insert(info.sid.clone(), publication);
                self.push(Event::TrackPublished(info));
            }
            M::TrackUnpublished(e) => {
                if let Some(publication) = self.publications.remove(&e.publication_sid) {
                    self.push(Event::TrackUnpublished(publication.info));
                }
            }
            M::TrackSubscribed(e) => {
                let Some(handle) = OwnedHandle::take(lib, e.track.handle) else {
                    return;
                };
                let info = e.track.info;
                let source = self.publications.get(&info.sid).map(|p| p.source);
                let microphone = info.kind() == proto::TrackKind::KindAudio
                    && matches!(
                        source,
                        None | Some(
                            proto::TrackSource::SourceMicrophone
                                | proto::TrackSource::SourceUnknown
                        )
                    );
                let identity = e.participant_identity;
                self.tracks.insert(
                    info.sid.clone(),
                    Subscribed {
                        identity: identity.clone(),
                        sid: info.sid,
                        microphone,
                        handle,
                    },
                );
                if microphone && let Err(err) = self.refresh_stream(lib, &identity, routes) {
                    tracing::warn!(participant = %bounded::log_field(&identity), error = %err, "could not receive a participant's audio");
                }
            }
            M::TrackUnsubscribed(e) => {
                if self
                    .streams
                    .get(&e.participant_identity)
                    .is_some_and(|s| s.track_sid == e.track_sid)
                {
                    self.drop_stream(&e.participant_identity, routes);
                }
                self.tracks.remove(&e.track_sid);
            }
            M::RoomMetadataChanged(e) => {
                self.push(Event::Room(RoomEvent::RoomMetadataChanged(e.metadata)));
            }
            M::DataPacketReceived(e) => {
                let Some(proto::data_packet_received::Value::User(user)) = e.value else {
                    return;
                };
                let buffer = user.data;
                let payload = sys::take_buffer(OwnedHandle::take(lib, buffer.handle), &buffer.data);
                let sender = Some(e.participant_identity).filter(|s| !s.is_empty());
                self.push(Event::Room(RoomEvent::DataReceived(DataPacket {
                    sender,
                    topic: user.topic.filter(|t| !t.is_empty()),
                    payload,
                })));
            }
            M::TextStreamOpened(e) => {
                let Some(reader) = OwnedHandle::take(lib, e.reader.handle) else {
                    return;
                };
                let topic = e.reader.info.topic;
                let request =
                    ffi_request::Message::TextReadAll(proto::TextStreamReaderReadAllRequest {
                        reader_handle: reader.id(),
                    });
                match request_sync(lib, request) {
                    Ok(ffi_response::Message::TextReadAll(r)) => {
                        routes.pending.insert(
                            r.async_id,
                            Pending::TextRead {
                                room: self.handle_id,
                                sender: e.participant_identity,
                                topic,
                                reader,
                            },
                        );
                    }
                    Ok(_) => tracing::warn!("unexpected answer to reading a text stream"),
                    Err(err) => tracing::warn!(error = %err, "could not read a text stream"),
                }
            }
            M::Disconnected(_) | M::Eos(_) => self.end(),
        }
    }

    /// The result of reading a text stream, from the pump.
    pub(super) fn on_text_read(
        &mut self,
        sender: String,
        topic: String,
        event: ffi_event::Message,
    ) {
        let ffi_event::Message::TextStreamReaderReadAll(callback) = event else {
            return;
        };
        match callback.result {
            Some(proto::text_stream_reader_read_all_callback::Result::Content(text)) => {
                self.push(Event::Room(RoomEvent::TextReceived(TextMessage {
                    sender,
                    topic,
                    text,
                })));
            }
            Some(proto::text_stream_reader_read_all_callback::Result::Error(err)) => {
                tracing::warn!(%sender, %topic, error = %err.description, "reading a text stream failed");
            }
            None => {}
        }
    }

    /// One audio stream event, from the pump.
    pub(super) fn on_audio(
        &mut self,
        lib: &'static Library,
        identity: &str,
        event: proto::AudioStreamEvent,
    ) {
        let Some(proto::audio_stream_event::Message::FrameReceived(received)) = event.message
        else {
            return;
        };
        let frame = received.frame;
        let info = frame.info;
        let samples = sys::take_frame(OwnedHandle::take(lib, frame.handle), &info);
        let Some(events) = &self.events else { return };
        if self.audio_pending.load(Ordering::Acquire) >= AUDIO_QUEUE {
            self.dropped_audio += 1;
            if self.dropped_audio.is_power_of_two() {
                tracing::debug!(
                    dropped = self.dropped_audio,
                    "the job does not read its audio fast enough; frames dropped"
                );
            }
            return;
        }
        let frame = AudioFrame {
            participant: identity.to_string(),
            format: AudioFormat {
                sample_rate: info.sample_rate,
                channels: info.num_channels,
            },
            samples,
        };
        let Some(frame) = Queued::audio(&self.memory, Event::Audio(frame)) else {
            self.dropped_audio += 1;
            return;
        };
        // The queue has room for every allowed audio frame on top of the
        // other events, so only a closed session refuses it.
        if events.try_send(frame).is_ok() {
            self.audio_pending.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn update(&mut self, identity: &str, change: impl FnOnce(&mut Participant)) {
        if let Some(remote) = self.participants.get_mut(identity) {
            change(&mut remote.info);
            let info = remote.info.clone();
            self.push(Event::Room(RoomEvent::ParticipantUpdated(info)));
        }
    }

    fn drop_stream(&mut self, identity: &str, routes: &mut Routes) {
        if let Some(stream) = self.streams.remove(identity) {
            routes.streams.remove(&stream.handle.id());
        }
    }

    /// Makes the stream of `identity`'s microphone match its subscription.
    fn refresh_stream(
        &mut self,
        lib: &'static Library,
        identity: &str,
        routes: &mut Routes,
    ) -> Result<(), String> {
        let Some(&format) = self.audio_subs.get(identity) else {
            self.drop_stream(identity, routes);
            return Ok(());
        };
        let Some(track) = self
            .tracks
            .values()
            .find(|t| t.identity == identity && t.microphone)
        else {
            return Ok(());
        };
        if self
            .streams
            .get(identity)
            .is_some_and(|s| s.format == format && s.track_sid == track.sid)
        {
            return Ok(());
        }
        let (track_sid, track_handle) = (track.sid.clone(), track.handle.id());
        self.drop_stream(identity, routes);
        let request = ffi_request::Message::NewAudioStream(proto::NewAudioStreamRequest {
            track_handle,
            r#type: proto::AudioStreamType::AudioStreamNative as i32,
            sample_rate: Some(format.sample_rate),
            num_channels: Some(format.channels),
        });
        let ffi_response::Message::NewAudioStream(response) = request_sync(lib, request)? else {
            return Err("unexpected answer to creating an audio stream".into());
        };
        let handle = OwnedHandle::take(lib, response.stream.handle)
            .ok_or("the library created no audio stream")?;
        routes
            .streams
            .insert(handle.id(), (self.handle_id, identity.to_string()));
        self.streams.insert(
            identity.to_string(),
            Stream {
                track_sid,
                format,
                handle,
            },
        );
        Ok(())
    }
}

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
    let event = client.call(connect, CONNECT_TIMEOUT).await?;
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
        f: impl FnOnce(&mut RoomState, &mut Routes) -> Result<T, RoomError>,
    ) -> Result<T, RoomError> {
        let mut shared = self.client.lock();
        let Shared { rooms, routes, .. } = &mut *shared;
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
            .call(request, CALL_TIMEOUT)
            .await
            .map_err(|e| match e {
                RoomError::Transport(reason) => RoomError::Transport(format!("{what}: {reason}")),
                other => other,
            })
    }

    /// Takes the room out of the shared tables (with its stream routes and
    /// pending text reads), so the pump no longer touches it; dropping the
    /// result releases every handle of the room.
    fn take_room(&mut self) -> Option<RoomState> {
        let mut shared = self.client.lock();
        let room = shared.rooms.remove(&self.room)?;
        let id = self.room;
        shared.routes.streams.retain(|_, (r, _)| *r != id);
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

    fn next_event(&mut self) -> BoxFuture<'_, Option<Event>> {
        async move {
            loop {
                let event = self.events.recv().await?.into_event();
                if let Event::Audio(frame) = &event {
                    self.audio_pending.fetch_sub(1, Ordering::AcqRel);
                    // Frames queued before an unsubscribe are dropped.
                    let wanted = self
                        .with_room(|room, _| Ok(room.audio_subs.contains_key(&frame.participant)))
                        .unwrap_or(true);
                    if !wanted {
                        continue;
                    }
                }
                return Some(event);
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
                    destination_identities: text.destinations,
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
    ) -> BoxFuture<'_, Result<(), RoomError>> {
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
            let publication = match event {
                ffi_event::Message::PublishTrack(c) => match c.message {
                    Some(proto::publish_track_callback::Message::Publication(p)) => {
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
            })
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
                if let Err(err) = self.client.call(disconnect, DISCONNECT_TIMEOUT).await {
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
    let state = RoomState {
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
