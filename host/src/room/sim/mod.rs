//! An in-memory room: participants, data, text and metadata, no network.
//!
//! Used by `agent-host console` (the terminal user is a participant) and by
//! tests, which script other participants and read what agents send.
//!
//! Semantics follow a LiveKit room: an agent that connects joins as a
//! participant of kind `agent` and every other session sees it join; a
//! message with destinations reaches only those identities; a message
//! reaches every session except its sender's; closing the room ends every
//! session once it has read the events queued before the close
//! (`next_event` then returns `None`); until it has, a session may still
//! answer them, so nothing said just before a close goes unanswered. Everything agents send is also
//! copied to [`SimRoom::subscribe`] receivers, which is how tests and the
//! console observe them. Each agent session queues at most 1,024 events; when
//! an agent does not read them the next ones are dropped for that session,
//! with a warning. Queued events are charged to the job's host-memory
//! budget ([`super::queue`]): audio the budget cannot take is dropped, any
//! other event fails the job.
//!
//! Text streams, byte streams and RPC: see [`streams`] and [`rpc`].
//!
//! Audio: [`SimRoom::speak`] delivers a participant's samples, cut into
//! 10 ms frames and converted to each subscriber's format, to the agent
//! sessions subscribed to that participant. What agents write to their
//! published track is reported as [`SimOutput::Audio`] at once: the sim
//! plays nothing out, so writes never wait.

mod rpc;
mod streams;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::FutureExt as _;
use futures::future::BoxFuture;
use tokio::sync::{mpsc, watch};

pub use self::streams::SimByteStream;
use super::queue::Queued;
use super::{
    CallAnswer, ConnectRequest, OutgoingCall, OutgoingData, OutgoingText, RoomSession,
    RoomTransport, RpcError, TextStreamOptions, TextStreamWriter, pcm,
};
use crate::bindings::audio::{AudioFormat, AudioFrame, TrackInfo, TrackKind};
use crate::bindings::events::Event;
use crate::bindings::types::{
    DataPacket, Participant, ParticipantKind, RoomError, RoomEvent, TextMessage,
};
use crate::host_memory::HostMemory;

use crate::config::rooms::SIM_SESSION_QUEUE as SESSION_QUEUE;

/// A [`RoomTransport`] that creates sim rooms by name on first use.
#[derive(Default, Clone)]
pub struct SimRooms {
    rooms: Arc<Mutex<HashMap<String, SimRoom>>>,
}

impl SimRooms {
    /// The room called `name`, created empty if it does not exist yet.
    pub fn room(&self, name: &str) -> SimRoom {
        lock(&self.rooms)
            .entry(name.to_string())
            .or_insert_with(|| SimRoom::new(name))
            .clone()
    }
}

impl RoomTransport for SimRooms {
    fn connect(
        &self,
        request: ConnectRequest,
    ) -> BoxFuture<'_, Result<Box<dyn RoomSession>, RoomError>> {
        let room = self.room(&request.job.room.name);
        async move {
            let agent = Participant {
                sid: format!("PA_{}", request.job.id),
                identity: request.job.identity.clone(),
                name: request.job.identity.clone(),
                metadata: String::new(),
                attributes: Vec::new(),
                kind: ParticipantKind::Agent,
            };
            room.connect_agent(agent, request.host_memory)
                .map(|s| Box::new(s) as Box<dyn RoomSession>)
        }
        .boxed()
    }
}

/// Something an agent did in a sim room, as seen by [`SimRoom::subscribe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimOutput {
    /// The agent sent a text message.
    Text {
        /// The agent's identity.
        from: String,
        /// The message.
        text: OutgoingText,
    },
    /// The agent sent a data packet.
    Data {
        /// The agent's identity.
        from: String,
        /// The packet.
        data: OutgoingData,
    },
    /// The agent changed its metadata.
    Metadata {
        /// The agent's identity.
        from: String,
        /// The new metadata.
        metadata: String,
    },
    /// The agent changed its attributes.
    Attributes {
        /// The agent's identity.
        from: String,
        /// The changed attributes.
        attributes: Vec<(String, String)>,
    },
    /// The agent published its audio track.
    AudioPublished {
        /// The agent's identity.
        from: String,
        /// The track name.
        name: String,
        /// The track's format.
        format: AudioFormat,
    },
    /// The agent wrote audio to its track.
    Audio {
        /// The agent's identity.
        from: String,
        /// Interleaved samples in the published format.
        samples: Vec<i16>,
    },
    /// The agent dropped its queued audio.
    AudioCleared {
        /// The agent's identity.
        from: String,
    },
    /// The agent opened a text stream.
    TextStreamOpened {
        /// The agent's identity.
        from: String,
        /// The stream id.
        id: String,
        /// How it was opened (topic, attributes, destinations, sender).
        options: TextStreamOptions,
    },
    /// The agent wrote a chunk to a text stream.
    TextStreamChunk {
        /// The agent's identity.
        from: String,
        /// The stream id.
        id: String,
        /// The chunk.
        text: String,
    },
    /// The agent closed a text stream (or dropped its writer).
    TextStreamClosed {
        /// The agent's identity.
        from: String,
        /// The stream id.
        id: String,
        /// The trailer's attributes.
        attributes: Vec<(String, String)>,
    },
    /// The agent called a method on a scripted participant; answer it with
    /// [`SimRoom::answer_rpc`].
    RpcRequest {
        /// The agent's identity.
        from: String,
        /// The call's id.
        id: String,
        /// The call.
        call: OutgoingCall,
    },
    /// An agent joined the room.
    AgentJoined(String),
    /// An agent left the room.
    AgentLeft(String),
}

/// `ms` milliseconds of a sine tone at `hz` in `format`, at a third of full
/// scale: what a scripted participant "says".
pub fn tone(format: AudioFormat, hz: u32, ms: u32) -> Vec<i16> {
    let frames = (u64::from(format.sample_rate) * u64::from(ms) / 1_000) as usize;
    let channels = format.channels.max(1) as usize;
    let mut samples = Vec::with_capacity(frames * channels);
    for i in 0..frames {
        let t = i as f64 / f64::from(format.sample_rate);
        let value =
            (f64::from(i16::MAX) / 3.0 * (std::f64::consts::TAU * f64::from(hz) * t).sin()) as i16;
        samples.extend(std::iter::repeat_n(value, channels));
    }
    samples
}

/// The microphone track a scripted participant publishes when it first
/// speaks: sid `TR_<identity>_microphone`.
pub fn microphone(identity: &str) -> TrackInfo {
    TrackInfo {
        sid: format!("TR_{identity}_microphone"),
        participant: identity.to_string(),
        name: "microphone".to_string(),
        kind: TrackKind::Audio,
    }
}

/// A shared handle on one sim room.
#[derive(Clone)]
pub struct SimRoom {
    state: Arc<Mutex<RoomState>>,
    closed: watch::Sender<bool>,
}

struct RoomState {
    name: String,
    sid: String,
    metadata: String,
    participants: BTreeMap<String, Participant>,
    sessions: Vec<SessionLink>,
    observers: Vec<mpsc::UnboundedSender<SimOutput>>,
    next_session: u64,
    /// Ids of calls and streams, unique in the room.
    next_call: u64,
    next_stream: u64,
    /// Calls agents made on scripted participants, by id, until answered.
    outgoing_calls: HashMap<String, rpc::Answer>,
    /// Scripted participants that have published a microphone track (on
    /// their first [`SimRoom::speak`]).
    microphones: HashSet<String>,
}

struct SessionLink {
    id: u64,
    identity: String,
    events: mpsc::Sender<Queued>,
    /// The job's budget, which queued events are charged to.
    memory: HostMemory,
    /// Participants whose audio this session receives, and in which format.
    audio: HashMap<String, AudioFormat>,
    /// RPC methods the agent registered.
    methods: HashSet<String>,
    /// Byte-stream topics the agent accepts.
    topics: HashSet<String>,
    /// Calls delivered to the agent, by id, until answered.
    calls: HashMap<String, rpc::Answer>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the room state half
    // updated in a way that matters more than losing the room; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SimRoom {
    /// A new, empty room.
    pub fn new(name: &str) -> Self {
        Self {
            state: Arc::new(Mutex::new(RoomState {
                name: name.to_string(),
                sid: format!("RM_{name}"),
                metadata: String::new(),
                participants: BTreeMap::new(),
                sessions: Vec::new(),
                observers: Vec::new(),
                next_session: 0,
                next_call: 0,
                next_stream: 0,
                outgoing_calls: HashMap::new(),
                microphones: HashSet::new(),
            })),
            closed: watch::channel(false).0,
        }
    }

    /// Room name.
    pub fn name(&self) -> String {
        lock(&self.state).name.clone()
    }

    /// Room sid.
    pub fn sid(&self) -> String {
        lock(&self.state).sid.clone()
    }

    /// Everything agents do from now on.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<SimOutput> {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.state).observers.push(tx);
        rx
    }

    /// A (non-agent) participant joins. Replaces one with the same identity.
    pub fn join(&self, participant: Participant) {
        let mut state = lock(&self.state);
        state
            .participants
            .insert(participant.identity.clone(), participant.clone());
        state.broadcast(None, &[], RoomEvent::ParticipantJoined(participant));
    }

    /// A participant with a default sid and kind `standard` joins.
    pub fn join_identity(&self, identity: &str) {
        self.join(Participant {
            sid: format!("PA_{identity}"),
            identity: identity.to_string(),
            name: identity.to_string(),
            metadata: String::new(),
            attributes: Vec::new(),
            kind: ParticipantKind::Standard,
        });
    }

    /// A participant leaves; returns whether it was there.
    pub fn leave(&self, identity: &str) -> bool {
        let mut state = lock(&self.state);
        if state.microphones.remove(identity) {
            let track = Event::TrackUnpublished(microphone(identity));
            state.broadcast_event(None, &[], track);
        }
        match state.participants.remove(identity) {
            Some(p) => {
                state.broadcast(None, &[], RoomEvent::ParticipantLeft(p));
                true
            }
            None => false,
        }
    }

    /// A participant sends a text message to the agents (`destinations` empty = all).
    pub fn send_text(&self, from: &str, topic: &str, text: &str, destinations: &[String]) {
        let event = RoomEvent::TextReceived(TextMessage {
            sender: from.to_string(),
            topic: topic.to_string(),
            text: text.to_string(),
        });
        lock(&self.state).broadcast(Some(from), destinations, event);
    }

    /// A participant sends a data packet to the agents (`destinations` empty = all).
    pub fn send_data(
        &self,
        from: &str,
        topic: Option<&str>,
        payload: &[u8],
        destinations: &[String],
    ) {
        let event = RoomEvent::DataReceived(DataPacket {
            sender: Some(from.to_string()),
            topic: topic.map(str::to_string),
            payload: payload.to_vec(),
        });
        lock(&self.state).broadcast(Some(from), destinations, event);
    }

    /// A participant speaks: `samples` (interleaved, in `format`) reach every
    /// agent session subscribed to `from`, as 10 ms frames in the format
    /// each asked for. Frames a full queue cannot take are dropped. The
    /// first time, the participant publishes its microphone track
    /// ([`microphone`]): agents see `track-published` before its audio.
    pub fn speak(&self, from: &str, format: AudioFormat, samples: &[i16]) {
        let mut state = lock(&self.state);
        if state.microphones.insert(from.to_string()) {
            state.broadcast_event(None, &[], Event::TrackPublished(microphone(from)));
        }
        let chunk = pcm::samples_per_10ms(format) * format.channels.max(1) as usize;
        for session in &state.sessions {
            let Some(&wanted) = session.audio.get(from) else {
                continue;
            };
            for frame in samples.chunks(chunk.max(1)) {
                let event = Event::Audio(AudioFrame {
                    participant: from.to_string(),
                    format: wanted,
                    samples: pcm::convert(frame, format, wanted),
                });
                let Some(queued) = Queued::audio(&session.memory, event) else {
                    tracing::debug!(agent = %session.identity, "host memory budget full, dropping audio");
                    continue;
                };
                if session.events.try_send(queued).is_err() {
                    tracing::debug!(agent = %session.identity, "event queue full, dropping audio");
                }
            }
        }
    }

    /// Replaces the room's metadata.
    pub fn set_metadata(&self, metadata: &str) {
        let mut state = lock(&self.state);
        state.metadata = metadata.to_string();
        state.broadcast(
            None,
            &[],
            RoomEvent::RoomMetadataChanged(metadata.to_string()),
        );
    }

    /// Closes the room: every agent session ends once it has read the events
    /// queued before this call.
    pub fn close(&self) {
        let sessions = std::mem::take(&mut lock(&self.state).sessions);
        // Dropping the senders ends each session's queue after its backlog.
        drop(sessions);
        self.closed.send_replace(true);
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    fn connect_agent(
        &self,
        agent: Participant,
        memory: HostMemory,
    ) -> Result<SimSession, RoomError> {
        if self.is_closed() {
            return Err(RoomError::Closed);
        }
        let (tx, rx) = mpsc::channel(SESSION_QUEUE);
        let mut state = lock(&self.state);
        let id = state.next_session;
        state.next_session += 1;
        state.broadcast(None, &[], RoomEvent::ParticipantJoined(agent.clone()));
        state.notify(SimOutput::AgentJoined(agent.identity.clone()));
        state
            .participants
            .insert(agent.identity.clone(), agent.clone());
        state.sessions.push(SessionLink {
            id,
            identity: agent.identity.clone(),
            events: tx,
            memory,
            audio: HashMap::new(),
            methods: HashSet::new(),
            topics: HashSet::new(),
            calls: HashMap::new(),
        });
        Ok(SimSession {
            room: self.clone(),
            id,
            identity: agent.identity,
            events: rx,
            ended: false,
        })
    }

    fn disconnect(&self, id: u64, identity: &str) {
        let mut state = lock(&self.state);
        let before = state.sessions.len();
        state.sessions.retain(|s| s.id != id);
        if state.sessions.len() != before {
            if let Some(p) = state.participants.remove(identity) {
                state.broadcast(None, &[], RoomEvent::ParticipantLeft(p));
            }
            state.notify(SimOutput::AgentLeft(identity.to_string()));
        }
    }
}

impl RoomState {
    /// Queues `event` for every agent session except `from`'s, limited to
    /// `destinations` when not empty.
    fn broadcast(&mut self, from: Option<&str>, destinations: &[String], event: RoomEvent) {
        self.broadcast_event(from, destinations, Event::Room(event));
    }

    /// [`broadcast`](Self::broadcast) for any non-audio event.
    fn broadcast_event(&mut self, from: Option<&str>, destinations: &[String], event: Event) {
        for session in &self.sessions {
            if Some(session.identity.as_str()) == from
                || (!destinations.is_empty() && !destinations.contains(&session.identity))
            {
                continue;
            }
            let Ok(queued) = Queued::event(&session.memory, event.clone()) else {
                // Recorded in the budget: the job fails with its reason.
                tracing::warn!(
                    room = %self.name,
                    agent = %session.identity,
                    "host memory budget full, dropping a room event; the job fails"
                );
                continue;
            };
            if session.events.try_send(queued).is_err() {
                tracing::warn!(
                    room = %self.name,
                    agent = %session.identity,
                    "event queue full, dropping a room event"
                );
            }
        }
    }

    fn notify(&mut self, output: SimOutput) {
        self.observers.retain(|o| o.send(output.clone()).is_ok());
    }
}

/// An agent's session in a [`SimRoom`].
struct SimSession {
    room: SimRoom,
    id: u64,
    identity: String,
    events: mpsc::Receiver<Queued>,
    /// Set once `next_event` has returned `None`.
    ended: bool,
}

impl SimSession {
    fn act(
        &self,
        deliver: Option<(&[String], RoomEvent)>,
        output: SimOutput,
    ) -> Result<(), RoomError> {
        if self.ended {
            return Err(RoomError::Closed);
        }
        let mut state = lock(&self.room.state);
        if let Some((destinations, event)) = deliver {
            state.broadcast(Some(&self.identity), destinations, event);
        }
        state.notify(output);
        Ok(())
    }
}

impl RoomSession for SimSession {
    fn participants(&self) -> Vec<Participant> {
        lock(&self.room.state)
            .participants
            .values()
            .filter(|p| p.identity != self.identity)
            .cloned()
            .collect()
    }

    fn ended(&self) -> BoxFuture<'static, ()> {
        let mut closed = self.room.closed.subscribe();
        async move {
            // The session holds the room, so the sender outlives this wait.
            let _ = closed.wait_for(|closed| *closed).await;
        }
        .boxed()
    }

    fn next_incoming(&mut self) -> BoxFuture<'_, Option<Queued>> {
        async move {
            let item = self.events.recv().await;
            self.ended |= item.is_none();
            item
        }
        .boxed()
    }

    fn publish_data(&mut self, data: OutgoingData) -> BoxFuture<'_, Result<(), RoomError>> {
        let event = RoomEvent::DataReceived(DataPacket {
            sender: Some(self.identity.clone()),
            topic: data.topic.clone(),
            payload: data.payload.clone(),
        });
        let destinations = data.destinations.clone();
        let output = SimOutput::Data {
            from: self.identity.clone(),
            data,
        };
        let result = self.act(Some((&destinations, event)), output);
        async move { result }.boxed()
    }

    fn send_text(&mut self, text: OutgoingText) -> BoxFuture<'_, Result<(), RoomError>> {
        let event = RoomEvent::TextReceived(TextMessage {
            sender: self.identity.clone(),
            topic: text.topic.clone(),
            text: text.text.clone(),
        });
        let destinations = text.destinations.clone();
        let output = SimOutput::Text {
            from: self.identity.clone(),
            text,
        };
        let result = self.act(Some((&destinations, event)), output);
        async move { result }.boxed()
    }

    fn set_metadata(&mut self, metadata: String) -> BoxFuture<'_, Result<(), RoomError>> {
        let updated = self.update_self(|p| p.metadata = metadata.clone());
        let output = SimOutput::Metadata {
            from: self.identity.clone(),
            metadata,
        };
        let result = self.act(
            updated.map(|p| (&[][..], RoomEvent::ParticipantUpdated(p))),
            output,
        );
        async move { result }.boxed()
    }

    fn set_attributes(
        &mut self,
        attributes: Vec<(String, String)>,
    ) -> BoxFuture<'_, Result<(), RoomError>> {
        let updated = self.update_self(|p| {
            for (key, value) in &attributes {
                p.attributes.retain(|(k, _)| k != key);
                if !value.is_empty() {
                    p.attributes.push((key.clone(), value.clone()));
                }
            }
        });
        let output = SimOutput::Attributes {
            from: self.identity.clone(),
            attributes,
        };
        let result = self.act(
            updated.map(|p| (&[][..], RoomEvent::ParticipantUpdated(p))),
            output,
        );
        async move { result }.boxed()
    }

    fn subscribe_audio(
        &mut self,
        identity: String,
        format: AudioFormat,
    ) -> BoxFuture<'_, Result<(), RoomError>> {
        let result = self.with_link(|link| {
            link.audio.insert(identity, format);
        });
        async move { result }.boxed()
    }

    fn unsubscribe_audio(&mut self, identity: String) -> BoxFuture<'_, ()> {
        let _ = self.with_link(|link| {
            link.audio.remove(&identity);
        });
        async {}.boxed()
    }

    fn publish_audio(
        &mut self,
        name: String,
        format: AudioFormat,
    ) -> BoxFuture<'_, Result<String, RoomError>> {
        let sid = format!("TR_{}_{name}", self.identity);
        let output = SimOutput::AudioPublished {
            from: self.identity.clone(),
            name,
            format,
        };
        let result = self.act(None, output).map(|()| sid);
        async move { result }.boxed()
    }

    fn write_audio(&mut self, samples: Vec<i16>) -> BoxFuture<'_, Result<(), RoomError>> {
        let output = SimOutput::Audio {
            from: self.identity.clone(),
            samples,
        };
        let result = self.act(None, output);
        async move { result }.boxed()
    }

    fn clear_audio(&mut self) -> BoxFuture<'_, Result<(), RoomError>> {
        let output = SimOutput::AudioCleared {
            from: self.identity.clone(),
        };
        let result = self.act(None, output);
        async move { result }.boxed()
    }

    fn open_text_stream(
        &mut self,
        options: TextStreamOptions,
    ) -> BoxFuture<'_, Result<Box<dyn TextStreamWriter>, RoomError>> {
        let result = if self.ended || self.room.is_closed() {
            Err(RoomError::Closed)
        } else {
            let mut state = lock(&self.room.state);
            state.next_stream += 1;
            let id = format!("sim-stream-{}", state.next_stream);
            state.notify(SimOutput::TextStreamOpened {
                from: self.identity.clone(),
                id: id.clone(),
                options: options.clone(),
            });
            Ok(Box::new(streams::SimTextWriter {
                room: self.room.clone(),
                from: self.identity.clone(),
                id,
                options,
                text: String::new(),
                closed: false,
            }) as Box<dyn TextStreamWriter>)
        };
        async move { result }.boxed()
    }

    fn accept_byte_streams(&mut self, topic: String) -> BoxFuture<'_, Result<(), RoomError>> {
        let result = self.with_link(|link| {
            link.topics.insert(topic);
        });
        async move { result }.boxed()
    }

    fn register_rpc(&mut self, method: String) -> BoxFuture<'_, Result<(), RoomError>> {
        let result = self.with_link(|link| {
            link.methods.insert(method);
        });
        async move { result }.boxed()
    }

    fn unregister_rpc(&mut self, method: String) -> BoxFuture<'_, ()> {
        let _ = self.with_link(|link| {
            link.methods.remove(&method);
        });
        async {}.boxed()
    }

    fn respond_rpc(
        &mut self,
        id: String,
        response: Result<String, RpcError>,
    ) -> BoxFuture<'_, Result<(), RoomError>> {
        let result = self.respond(&id, response);
        async move { result }.boxed()
    }

    fn perform_rpc(&mut self, call: OutgoingCall) -> BoxFuture<'_, Result<CallAnswer, RoomError>> {
        let result = if self.ended || self.room.is_closed() {
            Err(RoomError::Closed)
        } else {
            Ok(self.perform(call))
        };
        async move { result }.boxed()
    }

    fn close(&mut self) -> BoxFuture<'_, ()> {
        self.room.disconnect(self.id, &self.identity);
        self.events.close();
        async {}.boxed()
    }
}

impl SimSession {
    /// Applies `change` to this session's link in the room; `Closed` once the
    /// session has left or the room closed.
    fn with_link(&self, change: impl FnOnce(&mut SessionLink)) -> Result<(), RoomError> {
        let mut state = lock(&self.room.state);
        match state.sessions.iter_mut().find(|l| l.id == self.id) {
            Some(link) => {
                change(link);
                Ok(())
            }
            None => Err(RoomError::Closed),
        }
    }

    /// Applies `change` to the agent's own participant record and returns the
    /// updated record.
    fn update_self(&self, change: impl FnOnce(&mut Participant)) -> Option<Participant> {
        let mut state = lock(&self.room.state);
        let p = state.participants.get_mut(&self.identity)?;
        change(p);
        Some(p.clone())
    }
}

impl Drop for SimSession {
    fn drop(&mut self) {
        self.room.disconnect(self.id, &self.identity);
    }
}
