//! What the pump and a job's session know about one connected room: its
//! remote participants, publications, tracks and audio streams, and the
//! queue of events waiting for the job.
//!
//! Policy:
//! - the pump turns room events into WIT events in the order they arrive
//!   and keeps the participant table `participants()` reads; events about
//!   the agent itself are not delivered;
//! - each session's queue holds [`EVENT_QUEUE`] events plus room for
//!   [`AUDIO_QUEUE`] audio frames; unread audio frames beyond
//!   [`AUDIO_QUEUE`] are dropped (audio is real time), and a job that lets
//!   the queue fill fails (its session ends and its failure says why): the
//!   pump never waits and never drops other events;
//! - queued events are charged to the job's host-memory budget
//!   ([`crate::room::queue`]): an audio frame the budget cannot take is
//!   dropped, any other event ends the session, and the job fails with
//!   the budget's reason;
//! - byte streams and RPC calls are queued like events (see `streams`
//!   and `rpc`);
//! - audio: a subscription follows the participant's microphone track (a
//!   current one at once, later ones when they are subscribed); the library
//!   decodes and resamples to the format asked for.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{mpsc, watch};

use super::handle::OwnedHandle;
use super::proto::{self, ffi_event, ffi_request, ffi_response, room_event};
use super::routes::{Pending, Routes};
use super::sys::{self, Library, request_sync};
use crate::bindings::audio::{AudioFormat, AudioFrame, TrackInfo, TrackKind};
use crate::bindings::events::Event;
use crate::bindings::types::{DataPacket, Participant, ParticipantKind, RoomEvent, TextMessage};
use crate::bounded;
use crate::host_memory::HostMemory;
use crate::room::queue::{Incoming, Queued};

use super::in_flight::{Arriving, Waiting};

pub use crate::config::rooms::{AUDIO_QUEUE, EVENT_QUEUE};

/// A remote participant and its handle.
pub(super) struct Remote {
    pub(super) info: Participant,
    pub(super) _handle: Option<OwnedHandle>,
}

/// A remote track publication.
pub(super) struct Publication {
    pub(super) identity: String,
    pub(super) info: TrackInfo,
    pub(super) source: proto::TrackSource,
    pub(super) _handle: Option<OwnedHandle>,
}

/// A subscribed remote track.
pub(super) struct Subscribed {
    pub(super) identity: String,
    pub(super) sid: String,
    pub(super) microphone: bool,
    pub(super) handle: OwnedHandle,
}

/// An audio stream delivering a participant's track to the job.
pub(super) struct AudioStream {
    pub(super) track_sid: String,
    pub(super) format: AudioFormat,
    pub(super) handle: OwnedHandle,
}

/// The agent's published audio.
pub(super) struct Published {
    pub(super) format: AudioFormat,
    pub(super) _publication: Option<OwnedHandle>,
    pub(super) _track: OwnedHandle,
    pub(super) source: OwnedHandle,
}

/// What the pump and the session know about one connected room. Fields
/// holding handles are dropped in declaration order: the room's own
/// handle last.
pub(super) struct ConnectedRoom {
    pub(super) handle_id: u64,
    pub(super) events: Option<mpsc::Sender<Queued>>,
    /// The job's budget, which queued events are charged to.
    pub(super) memory: HostMemory,
    pub(super) audio_pending: Arc<AtomicUsize>,
    pub(super) dropped_audio: u64,
    pub(super) failure: Option<String>,
    pub(super) ended: bool,
    /// Tells [`RoomSession::ended`] waiters when `ended` is set.
    pub(super) ended_signal: watch::Sender<bool>,
    pub(super) audio_subs: HashMap<String, AudioFormat>,
    pub(super) published: Option<Published>,
    pub(super) streams: HashMap<String, AudioStream>,
    pub(super) tracks: HashMap<String, Subscribed>,
    pub(super) publications: HashMap<String, Publication>,
    pub(super) participants: BTreeMap<String, Remote>,
    /// Byte-stream topics the job accepts.
    pub(super) topics: HashSet<String>,
    /// Byte streams arriving on accepted topics, by reader handle.
    pub(super) byte_streams: HashMap<u64, Arriving>,
    /// RPC methods the job registered.
    pub(super) methods: HashSet<String>,
    /// Calls delivered to the job and not answered yet, by invocation id.
    pub(super) calls: HashMap<u64, Waiting>,
    /// The runtime the job joined on, where the timers run that answer
    /// calls the job leaves unanswered; none (outside a runtime): those
    /// calls are released when the job leaves the room.
    pub(super) runtime: Option<tokio::runtime::Handle>,
    pub(super) local: Option<OwnedHandle>,
    pub(super) _room: OwnedHandle,
}

pub(super) fn participant(info: proto::ParticipantInfo) -> Participant {
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

pub(super) fn publication(
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

impl ConnectedRoom {
    /// Pushes a non-audio event; a full queue fails the session.
    fn push(&mut self, event: Event) {
        self.queue(Incoming::Event(event));
    }

    /// Queues a non-audio item (an event, a call, a byte stream); a full
    /// queue or budget fails the session. False when the item was not
    /// queued (the session failed or is gone).
    pub(super) fn queue(&mut self, item: Incoming) -> bool {
        let Some(events) = &self.events else {
            return false;
        };
        let item = match Queued::charged(&self.memory, item) {
            Ok(item) => item,
            Err(over) => {
                self.fail(over.to_string());
                return false;
            }
        };
        match events.try_send(item) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.fail(format!(
                    "the job did not read its room events: more than {EVENT_QUEUE} were waiting"
                ));
                false
            }
            // The session is gone; close() will clean up.
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.events = None;
                false
            }
        }
    }

    /// The agent's own participant handle.
    pub(super) fn local_id(&self) -> Option<u64> {
        self.local.as_ref().map(OwnedHandle::id)
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
            M::ByteStreamOpened(e) => self.on_byte_stream_opened(lib, e, routes),
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

    pub(super) fn drop_stream(&mut self, identity: &str, routes: &mut Routes) {
        if let Some(stream) = self.streams.remove(identity) {
            routes.streams.remove(&stream.handle.id());
        }
    }

    /// Makes the stream of `identity`'s microphone match its subscription.
    pub(super) fn refresh_stream(
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
            AudioStream {
                track_sid,
                format,
                handle,
            },
        );
        Ok(())
    }
}
