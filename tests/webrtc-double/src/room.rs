//! Rooms: who is in them, what goes to whom, and when they close.
//!
//! A room holds agents (real clients connected over the signal protocol,
//! each represented by the command channel of its session) and remotes
//! (synthetic participants the double plays itself). All state sits behind
//! one mutex that is never held across an await; sessions are told what to
//! do through bounded channels ([`COMMAND_QUEUE`]) with `try_send`, so a
//! slow or stuck agent loses messages (logged) but never blocks the room.
//!
//! Invariants:
//! * every participant change is sent to every agent as a
//!   `ParticipantUpdate` whose `version` grows per participant;
//! * when the last remote leaves, the room closes after the configured
//!   delay unless a remote joins meanwhile; closing sends every agent a
//!   `Leave{ROOM_CLOSED, DISCONNECT}`, records [`Observation::RoomClosed`]
//!   and removes the room from the registry (a later join of the same
//!   name gets a fresh room); a closed room refuses joins.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use livekit_protocol::{
    self as proto, DataPacket, DisconnectReason, ParticipantInfo, ParticipantUpdate,
    SignalResponse, TrackInfo, TrackSource, TrackType, participant_info, signal_response,
};
use prost::Message as _;
use tokio::sync::{Notify, mpsc};
use webrtc::api::media_engine::MIME_TYPE_OPUS;
use webrtc::rtp_transceiver::rtp_codec::RTCRtpCodecCapability;
use webrtc::track::track_local::TrackLocal as _;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;

use crate::observe::{Arrival, MAX_ARRIVALS, MAX_OBSERVATIONS, Observation, RtpStats};
use crate::remote::Remote;
use crate::rpc::{Answer, Handler, Rpc};
use crate::{Error, ids};

/// Capacity of each agent session's command queue.
pub(crate) const COMMAND_QUEUE: usize = 4096;

/// What a room asks an agent session to do.
pub(crate) enum AgentCommand {
    /// Send this signal message.
    Signal(Box<SignalResponse>),
    /// Send this encoded `DataPacket` on the data channel.
    Data { bytes: Bytes, reliable: bool },
    /// Start forwarding this remote audio track to the agent.
    AddTrack(Arc<TrackLocalStaticSample>),
    /// Leave with this reason and end the session.
    Close(DisconnectReason),
}

/// A remote audio track: what agents receive.
pub(crate) type AudioTrack = Arc<TrackLocalStaticSample>;

struct AgentEntry {
    info: ParticipantInfo,
    tx: mpsc::Sender<AgentCommand>,
    /// Sids of remote tracks negotiated to this agent.
    subscribed: HashSet<String>,
}

struct RemoteEntry {
    info: ParticipantInfo,
    track: Option<AudioTrack>,
}

#[derive(Default)]
struct State {
    closed: bool,
    agents: BTreeMap<String, AgentEntry>,
    remotes: BTreeMap<String, RemoteEntry>,
    log: Vec<Observation>,
    rtp: BTreeMap<(String, String), RtpStats>,
    /// Packet arrivals per (agent, track sid), at most [`MAX_ARRIVALS`] each.
    arrivals: BTreeMap<(String, String), Vec<Arrival>>,
    /// Bumped by every remote join, so a pending delayed close can tell it is stale.
    generation: u64,
    /// Remotes' RPC handlers and calls.
    rpc: Rpc,
}

impl State {
    fn record(&mut self, o: Observation) {
        if self.log.len() < MAX_OBSERVATIONS {
            self.log.push(o);
        } else {
            tracing::warn!("observation log full; dropped {o:?}");
        }
    }

    /// Sends `cmd` to one agent without blocking.
    fn send(agent: &AgentEntry, cmd: AgentCommand) {
        if let Err(e) = agent.tx.try_send(cmd) {
            tracing::warn!(identity = agent.info.identity, "agent command dropped: {e}");
        }
    }

    /// Sends a participant update to every agent except `except`.
    fn broadcast_update(&self, info: &ParticipantInfo, except: Option<&str>) {
        let msg = SignalResponse {
            message: Some(signal_response::Message::Update(ParticipantUpdate {
                participants: vec![info.clone()],
            })),
        };
        for a in self.agents.values() {
            if Some(a.info.identity.as_str()) != except {
                Self::send(a, AgentCommand::Signal(Box::new(msg.clone())));
            }
        }
    }

    /// Tells agents that their published tracks (only `only`'s, when
    /// given) have a subscriber, as the server's `TrackSubscribed` does:
    /// clients hold back a track's media until then.
    fn tell_subscribed(&self, only: Option<(&str, &str)>) {
        let published = self.log.iter().filter_map(|o| match o {
            Observation::TrackPublished { agent, sid, .. } => Some((agent.as_str(), sid.as_str())),
            _ => None,
        });
        for (agent, sid) in published.filter(|p| only.is_none_or(|o| o == *p)) {
            let Some(entry) = self.agents.get(agent) else {
                continue;
            };
            let msg = SignalResponse {
                message: Some(signal_response::Message::TrackSubscribed(
                    proto::TrackSubscribed {
                        track_sid: sid.to_owned(),
                    },
                )),
            };
            Self::send(entry, AgentCommand::Signal(Box::new(msg)));
        }
    }

    fn rtp_of(&self, agent: &str) -> RtpStats {
        let mut total = RtpStats::default();
        for ((a, _), r) in &self.rtp {
            if a == agent {
                total.packets += r.packets;
                total.bytes += r.bytes;
            }
        }
        total
    }

    fn participants_except(&self, identity: &str) -> Vec<ParticipantInfo> {
        let agents = self.agents.values().map(|a| &a.info);
        let remotes = self.remotes.values().map(|r| &r.info);
        agents
            .chain(remotes)
            .filter(|p| p.identity != identity)
            .cloned()
            .collect()
    }
}

/// An agent participant leaving a room, as [`crate::Double::departures`]
/// reports it: what LiveKit's server reacts to by ending the agent's job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departure {
    /// Room name.
    pub room: String,
    /// The agent's identity.
    pub identity: String,
    /// Why, in words (as in [`Observation::AgentLeft`]).
    pub reason: String,
    /// When the double saw it.
    pub at: Instant,
}

/// All rooms of one double, by name.
pub(crate) struct Registry {
    rooms: Mutex<HashMap<String, Room>>,
    close_delay: Duration,
    departures: Mutex<Vec<mpsc::UnboundedSender<Departure>>>,
}

impl Registry {
    pub fn new(close_delay: Duration) -> Arc<Registry> {
        Arc::new(Registry {
            rooms: Mutex::new(HashMap::new()),
            close_delay,
            departures: Mutex::new(Vec::new()),
        })
    }

    /// Every agent departure from now on.
    pub fn departures(&self) -> mpsc::UnboundedReceiver<Departure> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.departures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tx);
        rx
    }

    fn depart(&self, departure: Departure) {
        self.departures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|tx| tx.send(departure.clone()).is_ok());
    }

    /// The open room called `name`, created if needed.
    pub fn get_or_create(self: &Arc<Self>, name: &str) -> Room {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms
            .entry(name.to_string())
            .or_insert_with(|| Room {
                shared: Arc::new(Shared {
                    name: name.to_string(),
                    sid: ids::guid("RM_"),
                    registry: Arc::downgrade(self),
                    close_delay: self.close_delay,
                    state: Mutex::new(State::default()),
                    changed: Notify::new(),
                }),
            })
            .clone()
    }

    /// Closes every room.
    pub fn close_all(&self) {
        let rooms: Vec<Room> = self
            .rooms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for r in rooms {
            r.close();
        }
    }

    fn remove(&self, room: &Room) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if rooms
            .get(&room.shared.name)
            .is_some_and(|r| Arc::ptr_eq(&r.shared, &room.shared))
        {
            rooms.remove(&room.shared.name);
        }
    }
}

struct Shared {
    name: String,
    sid: String,
    registry: Weak<Registry>,
    close_delay: Duration,
    state: Mutex<State>,
    changed: Notify,
}

/// A room of the double. Cheap to clone.
#[derive(Clone)]
pub struct Room {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room")
            .field("name", &self.shared.name)
            .field("sid", &self.shared.sid)
            .finish()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl Room {
    fn update<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let r = {
            let mut s = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut s)
        };
        self.shared.changed.notify_waiters();
        r
    }

    fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        let s = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&s)
    }

    /// Room name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Room sid (`RM_…`).
    pub fn sid(&self) -> &str {
        &self.shared.sid
    }

    /// Whether the room has closed.
    pub fn is_closed(&self) -> bool {
        self.read(|s| s.closed)
    }

    /// A synthetic participant joins; agents in the room see it connect.
    pub fn join(&self, identity: &str) -> Result<Remote, Error> {
        let sid = ids::guid("PA_");
        self.update(|s| {
            if s.closed {
                return Err(Error::RoomClosed(self.shared.name.clone()));
            }
            if s.remotes.contains_key(identity) || s.agents.contains_key(identity) {
                return Err(Error::DuplicateIdentity(identity.to_string()));
            }
            let now = now_ms();
            let info = ParticipantInfo {
                sid: sid.clone(),
                identity: identity.to_string(),
                name: identity.to_string(),
                state: participant_info::State::Active as i32,
                joined_at: now / 1000,
                joined_at_ms: now,
                version: 1,
                kind: participant_info::Kind::Standard as i32,
                permission: Some(proto::ParticipantPermission {
                    can_subscribe: true,
                    can_publish: true,
                    can_publish_data: true,
                    ..Default::default()
                }),
                ..Default::default()
            };
            s.broadcast_update(&info, None);
            // The first subscriber: remotes take every track, as clients
            // auto-subscribe.
            if s.remotes.is_empty() {
                s.tell_subscribed(None);
            }
            s.remotes
                .insert(identity.to_string(), RemoteEntry { info, track: None });
            s.generation += 1;
            Ok(())
        })?;
        tracing::info!(room = self.shared.name, identity, "remote joined");
        Ok(Remote::new(self.clone(), identity.to_string(), sid))
    }

    /// Closes the room now: agents get `Leave{ROOM_CLOSED}`.
    pub fn close(&self) {
        let first = self.update(|s| {
            if s.closed {
                return false;
            }
            s.closed = true;
            s.record(Observation::RoomClosed);
            for a in s.agents.values() {
                State::send(a, AgentCommand::Close(DisconnectReason::RoomClosed));
            }
            true
        });
        if first {
            tracing::info!(room = self.shared.name, "room closed");
            if let Some(reg) = self.shared.registry.upgrade() {
                reg.remove(self);
            }
        }
    }

    /// Every observation so far, in order.
    pub fn observations(&self) -> Vec<Observation> {
        self.read(|s| s.log.clone())
    }

    /// Identities of the agents in the room now.
    pub fn agents(&self) -> Vec<String> {
        self.read(|s| s.agents.keys().cloned().collect())
    }

    /// Identities of the remotes in the room now.
    pub fn remotes(&self) -> Vec<String> {
        self.read(|s| s.remotes.keys().cloned().collect())
    }

    /// RTP received so far on all tracks `agent` published.
    pub fn rtp(&self, agent: &str) -> RtpStats {
        self.read(|s| s.rtp_of(agent))
    }

    /// Waits until `f` returns `Some` for an observation (earlier ones
    /// included) and returns that value.
    pub async fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        f: impl Fn(&Observation) -> Option<T>,
    ) -> Result<T, Error> {
        self.wait_until(timeout, what, |s| s.log.iter().find_map(&f))
            .await
    }

    /// Waits for the first agent to be ready (data channel open) and
    /// returns its identity.
    pub async fn wait_for_agent(&self, timeout: Duration) -> Result<String, Error> {
        self.wait_for(timeout, "an agent ready", |o| match o {
            Observation::AgentReady { identity } => Some(identity.clone()),
            _ => None,
        })
        .await
    }

    /// Waits until `f` holds for the RTP received from `agent`.
    pub async fn wait_for_rtp(
        &self,
        agent: &str,
        timeout: Duration,
        what: &str,
        f: impl Fn(&RtpStats) -> bool,
    ) -> Result<RtpStats, Error> {
        let what = format!("RTP from {agent}: {what}");
        self.wait_until(timeout, &what, |s| Some(s.rtp_of(agent)).filter(&f))
            .await
    }

    /// The packet arrivals of each track `agent` published, by track sid.
    pub fn arrivals(&self, agent: &str) -> Vec<(String, Vec<Arrival>)> {
        self.read(|s| {
            s.arrivals
                .iter()
                .filter(|((a, _), _)| a == agent)
                .map(|((_, sid), arrivals)| (sid.clone(), arrivals.clone()))
                .collect()
        })
    }

    /// Waits for the first packet from `agent` (any track) that arrived
    /// after `after` and for which `f` holds.
    pub async fn wait_for_arrival(
        &self,
        agent: &str,
        after: std::time::Instant,
        timeout: Duration,
        f: impl Fn(&Arrival) -> bool,
    ) -> Result<Arrival, Error> {
        let what = format!("a matching packet from {agent}");
        self.wait_until(timeout, &what, |s| {
            s.arrivals
                .iter()
                .filter(|((a, _), _)| a == agent)
                .filter_map(|(_, arrivals)| {
                    // Newest first, stopping at `after`: a short scan.
                    let recent = arrivals.iter().rev().take_while(|a| a.at > after);
                    recent.filter(|a| f(a)).last().copied()
                })
                .min_by_key(|a| a.at)
        })
        .await
    }

    async fn wait_until<T>(
        &self,
        timeout: Duration,
        what: &str,
        f: impl Fn(&State) -> Option<T>,
    ) -> Result<T, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(v) = self.read(&f) {
                return Ok(v);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(Error::Timeout {
                    what: format!("{what} in room {}", self.shared.name),
                    after: timeout,
                });
            }
        }
    }

    // ----- used by agent sessions -----

    /// Adds an agent; returns everyone else in the room and the remote
    /// tracks to forward. A previous session with the same identity is
    /// closed (`DUPLICATE_IDENTITY`).
    pub(crate) fn add_agent(
        &self,
        info: ParticipantInfo,
        tx: mpsc::Sender<AgentCommand>,
    ) -> Result<(Vec<ParticipantInfo>, Vec<AudioTrack>), Error> {
        let identity = info.identity.clone();
        self.update(|s| {
            if s.closed {
                return Err(Error::RoomClosed(self.shared.name.clone()));
            }
            if s.remotes.contains_key(&identity) {
                return Err(Error::DuplicateIdentity(identity.clone()));
            }
            if let Some(old) = s.agents.remove(&identity) {
                State::send(
                    &old,
                    AgentCommand::Close(DisconnectReason::DuplicateIdentity),
                );
            }
            let others = s.participants_except(&identity);
            let tracks = s.remotes.values().filter_map(|r| r.track.clone()).collect();
            s.broadcast_update(&info, Some(&identity));
            s.agents.insert(
                identity.clone(),
                AgentEntry {
                    info,
                    tx,
                    subscribed: HashSet::new(),
                },
            );
            s.record(Observation::AgentJoined { identity });
            Ok((others, tracks))
        })
    }

    /// Removes the agent if `tx` is still its session; others see it leave.
    pub(crate) fn remove_agent(
        &self,
        identity: &str,
        tx: &mpsc::Sender<AgentCommand>,
        reason: &str,
    ) {
        let left = self.update(|s| {
            if !s
                .agents
                .get(identity)
                .is_some_and(|a| a.tx.same_channel(tx))
            {
                return false;
            }
            if let Some(mut a) = s.agents.remove(identity) {
                a.info.state = participant_info::State::Disconnected as i32;
                a.info.version += 1;
                s.broadcast_update(&a.info, None);
            }
            s.record(Observation::AgentLeft {
                identity: identity.to_string(),
                reason: reason.to_string(),
            });
            true
        });
        if let (true, Some(registry)) = (left, self.shared.registry.upgrade()) {
            registry.depart(Departure {
                room: self.shared.name.clone(),
                identity: identity.to_string(),
                reason: reason.to_string(),
                at: Instant::now(),
            });
        }
    }

    /// Records an observation.
    pub(crate) fn record(&self, o: Observation) {
        self.update(|s| s.record(o));
    }

    /// Records that `agent` published track `sid`, and tells it the track
    /// has a subscriber if a remote is in the room.
    pub(crate) fn track_published(&self, agent: &str, sid: &str, name: String, audio: bool) {
        self.update(|s| {
            s.record(Observation::TrackPublished {
                agent: agent.to_owned(),
                sid: sid.to_owned(),
                name,
                audio,
            });
            if !s.remotes.is_empty() {
                s.tell_subscribed(Some((agent, sid)));
            }
        });
    }

    /// Counts an RTP packet received on an agent's track and keeps its
    /// arrival.
    pub(crate) fn count_rtp(&self, agent: &str, track_sid: &str, arrival: Arrival) {
        let key = (agent.to_string(), track_sid.to_string());
        self.update(|s| {
            let r = s.rtp.entry(key.clone()).or_default();
            r.packets += 1;
            r.bytes += arrival.payload as u64;
            let arrivals = s.arrivals.entry(key).or_default();
            if arrivals.len() < MAX_ARRIVALS {
                arrivals.push(arrival);
            }
        });
    }

    /// Applies an agent's metadata/attribute update (an empty attribute
    /// value removes it); everyone, the agent included, gets the new info.
    pub(crate) fn update_agent(
        &self,
        identity: &str,
        metadata: Option<String>,
        name: Option<String>,
        attributes: &HashMap<String, String>,
    ) {
        self.update(|s| {
            let Some(a) = s.agents.get_mut(identity) else {
                return;
            };
            if let Some(m) = metadata {
                a.info.metadata = m;
            }
            if let Some(n) = name {
                a.info.name = n;
            }
            for (k, v) in attributes {
                if v.is_empty() {
                    a.info.attributes.remove(k);
                } else {
                    a.info.attributes.insert(k.clone(), v.clone());
                }
            }
            a.info.version += 1;
            let info = a.info.clone();
            s.broadcast_update(&info, None);
            s.record(Observation::AgentUpdated {
                identity: identity.to_string(),
                metadata: info.metadata.clone(),
                attributes: info.attributes.into_iter().collect(),
            });
        });
    }

    /// Notes that these remote tracks are negotiated to the agent.
    pub(crate) fn mark_subscribed(&self, agent: &str, sids: impl IntoIterator<Item = String>) {
        self.update(|s| {
            if let Some(a) = s.agents.get_mut(agent) {
                a.subscribed.extend(sids);
            }
        });
    }

    /// Forwards an agent's packet to the other agents it is meant for.
    pub(crate) fn forward_from_agent(&self, sender: &str, packet: &DataPacket, reliable: bool) {
        let bytes = Bytes::from(packet.encode_to_vec());
        self.read(|s| {
            for a in s.agents.values() {
                let wanted = packet.destination_identities.is_empty()
                    || packet.destination_identities.contains(&a.info.identity);
                if a.info.identity != sender && wanted {
                    State::send(
                        a,
                        AgentCommand::Data {
                            bytes: bytes.clone(),
                            reliable,
                        },
                    );
                }
            }
        });
    }

    /// Handles an agent's RPC packet meant for a remote (see [`crate::rpc`]);
    /// false when the packet is not one, and is forwarded as usual.
    pub(crate) fn rpc_from_agent(&self, agent: &str, packet: &DataPacket) -> bool {
        use livekit_protocol::data_packet::Value;
        self.update(|s| match &packet.value {
            Some(Value::RpcRequest(request)) => {
                let Some(remote) = packet
                    .destination_identities
                    .iter()
                    .find(|d| s.remotes.contains_key(*d))
                else {
                    return false;
                };
                let replies = s.rpc.answer(remote, agent, request);
                if let Some(a) = s.agents.get(agent) {
                    for p in replies {
                        let bytes = Bytes::from(p.encode_to_vec());
                        State::send(
                            a,
                            AgentCommand::Data {
                                bytes,
                                reliable: true,
                            },
                        );
                    }
                }
                true
            }
            Some(Value::RpcResponse(response)) => s.rpc.response(response),
            Some(Value::RpcAck(ack)) => s.rpc.waits(&ack.request_id),
            _ => false,
        })
    }

    // ----- used by remotes -----

    /// Sets how `remote` answers calls to `method`.
    pub(crate) fn serve_rpc(&self, remote: &str, method: &str, handler: Handler) {
        self.update(|s| s.rpc.serve(remote, method, handler));
    }

    /// Sends `remote`'s call `request` to `agent`; where its answer comes.
    pub(crate) fn call_agent(
        &self,
        remote: &str,
        agent: &str,
        request: livekit_protocol::RpcRequest,
    ) -> Result<tokio::sync::oneshot::Receiver<Answer>, Error> {
        self.update(|s| {
            if !s.remotes.contains_key(remote) {
                return Err(Error::NotInRoom(remote.to_string()));
            }
            let a = s
                .agents
                .get(agent)
                .ok_or_else(|| Error::NotInRoom(agent.to_string()))?;
            let Some((packet, answer)) = s.rpc.call(remote, agent, request) else {
                return Err(Error::Rpc("too many calls wait".into()));
            };
            let bytes = Bytes::from(packet.encode_to_vec());
            State::send(
                a,
                AgentCommand::Data {
                    bytes,
                    reliable: true,
                },
            );
            Ok(answer)
        })
    }

    /// Delivers packets from a remote to the agents in `destinations` (all
    /// when empty).
    pub(crate) fn send_from_remote(
        &self,
        identity: &str,
        packets: &[DataPacket],
        destinations: &[String],
    ) -> Result<(), Error> {
        self.read(|s| {
            if s.closed {
                return Err(Error::RoomClosed(self.shared.name.clone()));
            }
            if !s.remotes.contains_key(identity) {
                return Err(Error::NotInRoom(identity.to_string()));
            }
            for a in s.agents.values() {
                if destinations.is_empty() || destinations.contains(&a.info.identity) {
                    for p in packets {
                        State::send(
                            a,
                            AgentCommand::Data {
                                bytes: Bytes::from(p.encode_to_vec()),
                                reliable: true,
                            },
                        );
                    }
                }
            }
            Ok(())
        })
    }

    /// Publishes the remote's microphone track (once) and returns it with
    /// its sid.
    pub(crate) fn publish_audio(&self, identity: &str) -> Result<(AudioTrack, String), Error> {
        self.update(|s| {
            if s.closed {
                return Err(Error::RoomClosed(self.shared.name.clone()));
            }
            let r = s
                .remotes
                .get_mut(identity)
                .ok_or_else(|| Error::NotInRoom(identity.to_string()))?;
            if let Some(t) = &r.track {
                return Ok((t.clone(), t.id().to_string()));
            }
            let track_sid = ids::guid("TR_");
            let track = Arc::new(TrackLocalStaticSample::new(
                RTCRtpCodecCapability {
                    mime_type: MIME_TYPE_OPUS.to_owned(),
                    clock_rate: 48_000,
                    channels: 2,
                    sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                    rtcp_feedback: vec![],
                },
                track_sid.clone(),
                format!("{}|{track_sid}", r.info.sid),
            ));
            r.track = Some(track.clone());
            r.info.tracks.push(TrackInfo {
                sid: track_sid.clone(),
                r#type: TrackType::Audio as i32,
                name: "microphone".into(),
                source: TrackSource::Microphone as i32,
                mime_type: MIME_TYPE_OPUS.to_lowercase(),
                ..Default::default()
            });
            r.info.is_publisher = true;
            r.info.version += 1;
            let info = r.info.clone();
            s.broadcast_update(&info, None);
            for a in s.agents.values() {
                State::send(a, AgentCommand::AddTrack(track.clone()));
            }
            Ok((track, track_sid))
        })
    }

    /// Waits (bounded) until every agent in the room has the track
    /// negotiated; returns how many agents that is.
    pub(crate) async fn wait_subscribed(&self, track_sid: &str, timeout: Duration) -> usize {
        let waited = self
            .wait_until(timeout, "track negotiated to every agent", |s| {
                s.agents
                    .values()
                    .all(|a| a.subscribed.contains(track_sid))
                    .then_some(s.agents.len())
            })
            .await;
        waited.unwrap_or_else(|e| {
            tracing::warn!("{e}; sending anyway");
            self.read(|s| s.agents.len())
        })
    }

    /// A remote leaves; the room closes when it was the last one.
    pub(crate) fn leave(&self, identity: &str) -> Result<(), Error> {
        let (last, generation) = self.update(|s| {
            let mut r = s
                .remotes
                .remove(identity)
                .ok_or_else(|| Error::NotInRoom(identity.to_string()))?;
            s.rpc.forget(identity);
            r.info.state = participant_info::State::Disconnected as i32;
            r.info.disconnect_reason = DisconnectReason::ClientInitiated as i32;
            r.info.version += 1;
            s.broadcast_update(&r.info, None);
            Ok::<_, Error>((s.remotes.is_empty() && !s.closed, s.generation))
        })?;
        tracing::info!(room = self.shared.name, identity, "remote left");
        if last {
            let delay = self.shared.close_delay;
            if delay.is_zero() {
                self.close();
            } else {
                let room = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if room.read(|s| s.remotes.is_empty() && s.generation == generation) {
                        room.close();
                    }
                });
            }
        }
        Ok(())
    }
}
