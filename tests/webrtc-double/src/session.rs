//! One agent connection: the HTTP request, the `/rtc/v1` upgrade and the
//! signal session that drives its PeerConnection.
//!
//! Endpoints: `GET /rtc/v1?join_request=…` (WebSocket; token in
//! `Authorization: Bearer` or `access_token`), `GET /rtc/v1/validate` and
//! `/rtc/validate` (200 `success` for a valid token, else 401). Legacy
//! `/rtc` and everything else: 404. A bad token is 401, a bad join request
//! 400, both before any upgrade.
//!
//! Session order: register in the room, apply the publisher offer, send
//! `JoinResponse` then `Answer` (with `mid_to_track_id`), then serve
//! signal requests, room commands and WebRTC events until the client
//! leaves, the socket closes, nothing arrives for [`IDLE_TIMEOUT`], the
//! peer connection fails, the room closes or the double shuts down. The
//! agent is always removed from its room at the end. Data for the agent
//! that arrives before its data channel is open waits in a queue of at most
//! [`PENDING_DATA`] messages.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use livekit_protocol::{
    self as proto, DataPacket, DisconnectReason, JoinResponse, LeaveRequest,
    MediaSectionsRequirement, ParticipantInfo, ServerInfo, SessionDescription, SignalRequest,
    SignalResponse, TrackInfo, TrackPublishedResponse, TrickleRequest, data_packet, data_stream,
    leave_request, participant_info, signal_request, signal_response,
};
use prost::Message as _;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::track::track_remote::TrackRemote;

use crate::auth::{self, Grant};
use crate::observe::{Arrival, Observation};
use crate::peer::{AUDIO_LEVEL_URI, EVENT_QUEUE, Peer, PeerEvent, audio_level};
use crate::room::{AgentCommand, COMMAND_QUEUE, Room};
use crate::text::Reassembler;
use crate::{Inner, http, ids, join};

/// Signal protocol version the double speaks (lower if the client is older).
pub const PROTOCOL: i32 = 18;
/// The session ends when the client sends nothing for this long (it pings
/// every `PING_INTERVAL_S` seconds).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// `JoinResponse.ping_interval`, seconds.
pub const PING_INTERVAL_S: i32 = 5;
/// `JoinResponse.ping_timeout`, seconds.
pub const PING_TIMEOUT_S: i32 = 15;
/// Data messages held while the agent's data channel is not open yet.
pub const PENDING_DATA: usize = 1024;
/// Deadline for one WebSocket write.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// A session step slower than this is logged.
const SLOW_STEP: Duration = Duration::from_millis(500);
/// Most `MediaSectionsRequirement`s sent in one session.
const MAX_SECTION_REQUESTS: u32 = 64;
/// How long after applying a metadata/attribute update the double sends its
/// `RequestResponse`: a round trip to a nearby server. LiveKit's Rust SDK
/// (inside `liblivekit_ffi`) registers its wait for the response only after
/// the request is written, so a response that comes back at once, before
/// that thread runs again on a busy machine, is dropped and the call fails
/// after the SDK's 5 s `request timeout` (a voice agent then misses a turn).
/// No real server answers faster than the network.
pub const REQUEST_RESPONSE_DELAY: Duration = Duration::from_millis(20);

type Ws = WebSocketStream<TcpStream>;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Serves one accepted TCP connection.
pub(crate) async fn serve(inner: Arc<Inner>, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Some((req, tail)) = http::read_head(&mut stream).await else {
        return;
    };
    let path = req.path.trim_end_matches('/');
    let validate = matches!(path, "/rtc/v1/validate" | "/rtc/validate");
    if path != "/rtc/v1" && !validate {
        tracing::debug!(path, "404");
        http::respond(&mut stream, 404, "Not Found", "404 page not found\n").await;
        return;
    }
    let grant = test_server_support::token_from_request(
        req.header("authorization"),
        req.param("access_token"),
    )
    .map_err(auth::AuthError::from)
    .and_then(|jwt| auth::verify(&inner.config.api_key, &inner.config.api_secret, jwt));
    let grant = match grant {
        Ok(g) => g,
        Err(e) => {
            tracing::info!(path, "401: {e}");
            http::respond(&mut stream, 401, "Unauthorized", &format!("{e}\n")).await;
            return;
        }
    };
    if validate {
        http::respond(&mut stream, 200, "OK", "success\n").await;
        return;
    }
    let join = match join::decode(req.param("join_request").unwrap_or_default()) {
        Ok(j) => j,
        Err(e) => {
            tracing::info!("400: {e}");
            http::respond(&mut stream, 400, "Bad Request", &format!("{e}\n")).await;
            return;
        }
    };
    if !req.is_upgrade() {
        http::respond(
            &mut stream,
            400,
            "Bad Request",
            "expected a websocket upgrade\n",
        )
        .await;
        return;
    }
    let Some(ws) = http::upgrade(stream, &req, tail).await else {
        return;
    };
    let room = inner.registry.get_or_create(&grant.room);
    let identity = grant.identity.clone();
    let reason = run(inner, room.clone(), ws, grant, join).await;
    tracing::info!(room = room.name(), identity, reason, "agent session ended");
}

/// Logs a step of the session loop that held it up (the client times out
/// some requests after 5 s).
fn slow(started: tokio::time::Instant, what: &str) {
    let took = started.elapsed();
    if took > SLOW_STEP {
        tracing::warn!(?took, what, "slow signal session step");
    }
}

/// The variant name of a signal request, for logs.
fn signal_name(m: &signal_request::Message) -> &'static str {
    use signal_request::Message as R;
    match m {
        R::Offer(_) => "offer",
        R::Trickle(_) => "trickle",
        R::AddTrack(_) => "add_track",
        R::UpdateMetadata(_) => "update_metadata",
        R::Leave(_) => "leave",
        R::Ping(_) | R::PingReq(_) => "ping",
        _ => "other signal request",
    }
}

fn msg(m: signal_response::Message) -> SignalResponse {
    SignalResponse { message: Some(m) }
}

async fn send(ws: &mut Ws, m: signal_response::Message) -> bool {
    let bytes = msg(m).encode_to_vec();
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, ws.send(Message::Binary(bytes.into()))).await,
        Ok(Ok(()))
    )
}

fn leave(reason: DisconnectReason) -> signal_response::Message {
    signal_response::Message::Leave(LeaveRequest {
        can_reconnect: false,
        reason: reason as i32,
        action: leave_request::Action::Disconnect as i32,
        regions: None,
    })
}

/// State of one session besides the socket.
struct Session {
    room: Room,
    identity: String,
    sid: String,
    peer: Peer,
    cmd_tx: mpsc::Sender<AgentCommand>,
    ready: bool,
    pending: VecDeque<(Bytes, bool)>,
    reassembler: Reassembler,
    /// Track cid → sid of tracks this agent published.
    published: HashMap<String, String>,
    section_requests: u32,
    stop: watch::Sender<bool>,
}

async fn run(
    inner: Arc<Inner>,
    room: Room,
    mut ws: Ws,
    grant: Grant,
    join: proto::JoinRequest,
) -> &'static str {
    let (cmd_tx, mut cmd_rx) = mpsc::channel(COMMAND_QUEUE);
    let (peer_tx, mut peer_rx) = mpsc::channel(EVENT_QUEUE);
    let sid = ids::guid("PA_");
    let now = now_ms();
    let client_protocol = join.client_info.as_ref().map_or(0, |c| c.protocol);
    let info = ParticipantInfo {
        sid: sid.clone(),
        identity: grant.identity.clone(),
        name: grant.name.clone(),
        state: participant_info::State::Joined as i32,
        metadata: if join.metadata.is_empty() {
            grant.metadata.clone()
        } else {
            join.metadata.clone()
        },
        attributes: grant.attributes.clone(),
        joined_at: now / 1000,
        joined_at_ms: now,
        version: 1,
        kind: if grant.kind == "agent" {
            participant_info::Kind::Agent
        } else {
            participant_info::Kind::Standard
        } as i32,
        permission: Some(proto::ParticipantPermission {
            can_subscribe: true,
            can_publish: true,
            can_publish_data: true,
            can_update_metadata: true,
            ..Default::default()
        }),
        client_protocol,
        ..Default::default()
    };
    let peer = match Peer::new(&inner.api, peer_tx).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("creating the peer connection: {e}");
            send(&mut ws, leave(DisconnectReason::JoinFailure)).await;
            return "peer connection failed";
        }
    };
    let (others, tracks) = match room.add_agent(info.clone(), cmd_tx.clone()) {
        Ok(v) => v,
        Err(e) => {
            tracing::info!(identity = grant.identity, "join refused: {e}");
            send(&mut ws, leave(DisconnectReason::JoinFailure)).await;
            peer.close().await;
            return "join refused";
        }
    };
    let (stop, _) = watch::channel(false);
    let mut s = Session {
        room,
        identity: grant.identity,
        sid,
        peer,
        cmd_tx,
        ready: false,
        pending: VecDeque::new(),
        reassembler: Reassembler::default(),
        published: HashMap::new(),
        section_requests: 0,
        stop,
    };
    let reason = s
        .serve(
            &mut ws,
            &mut cmd_rx,
            &mut peer_rx,
            inner,
            info,
            others,
            tracks,
            join,
        )
        .await;
    let _ = s.stop.send(true);
    s.room.remove_agent(&s.identity, &s.cmd_tx, reason);
    s.peer.close().await;
    let _ = tokio::time::timeout(WRITE_TIMEOUT, ws.close(None)).await;
    reason
}

impl Session {
    #[allow(clippy::too_many_arguments)]
    async fn serve(
        &mut self,
        ws: &mut Ws,
        cmd_rx: &mut mpsc::Receiver<AgentCommand>,
        peer_rx: &mut mpsc::Receiver<PeerEvent>,
        inner: Arc<Inner>,
        info: ParticipantInfo,
        others: Vec<ParticipantInfo>,
        tracks: Vec<crate::room::AudioTrack>,
        join: proto::JoinRequest,
    ) -> &'static str {
        for t in tracks {
            if let Err(e) = self.peer.add_track(t).await {
                tracing::warn!("adding a remote track: {e}");
            }
        }
        let protocol = match join.client_info.as_ref().map_or(0, |c| c.protocol) {
            p if p > 0 => p.min(PROTOCOL),
            _ => PROTOCOL,
        };
        let join_response = JoinResponse {
            room: Some(proto::Room {
                sid: self.room.sid().to_string(),
                name: self.room.name().to_string(),
                empty_timeout: 300,
                departure_timeout: 20,
                creation_time: now_ms() / 1000,
                creation_time_ms: now_ms(),
                num_participants: others.len() as u32 + 1,
                ..Default::default()
            }),
            participant: Some(info),
            other_participants: others,
            server_version: "1.9.0".into(),
            ping_timeout: PING_TIMEOUT_S,
            ping_interval: PING_INTERVAL_S,
            server_info: Some(ServerInfo {
                edition: proto::server_info::Edition::Standard as i32,
                version: "1.9.0".into(),
                protocol,
                region: "double".into(),
                node_id: "ND_webrtcdouble".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let answer = match join.publisher_offer {
            Some(offer) => match self.peer.answer(offer.sdp, true).await {
                Ok((sdp, mids)) => Some((sdp, mids, offer.id)),
                Err(e) => {
                    tracing::warn!(identity = self.identity, "answering the join offer: {e}");
                    send(ws, leave(DisconnectReason::JoinFailure)).await;
                    return "bad publisher offer";
                }
            },
            None => None,
        };
        if !send(ws, signal_response::Message::Join(join_response)).await {
            return "signal write failed";
        }
        if let Some((sdp, mids, id)) = answer
            && !self.send_answer(ws, sdp, mids, id).await
        {
            return "signal write failed";
        }
        self.request_sections(ws).await;
        let mut shutdown = inner.shutdown.subscribe();
        drop(inner);
        let mut last_seen = tokio::time::Instant::now();
        loop {
            let idle = tokio::time::sleep_until(last_seen + IDLE_TIMEOUT);
            tokio::select! {
                m = ws.next() => {
                    last_seen = tokio::time::Instant::now();
                    let bytes = match m {
                        Some(Ok(Message::Binary(b))) => b,
                        Some(Ok(Message::Close(_))) | None => return "signal closed",
                        Some(Ok(Message::Text(_))) => {
                            tracing::warn!("JSON signal messages are not supported; ignored");
                            continue;
                        }
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => {
                            tracing::info!("signal read: {e}");
                            return "signal error";
                        }
                    };
                    match SignalRequest::decode(bytes.as_ref()) {
                        Ok(SignalRequest { message: Some(m) }) => {
                            let what = signal_name(&m);
                            let started = tokio::time::Instant::now();
                            let end = self.on_signal(ws, m).await;
                            slow(started, what);
                            if let Some(end) = end {
                                return end;
                            }
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!("undecodable signal request: {e}"),
                    }
                }
                Some(cmd) = cmd_rx.recv() => {
                    let started = tokio::time::Instant::now();
                    let end = self.on_command(ws, cmd).await;
                    slow(started, "room command");
                    if let Some(end) = end {
                        return end;
                    }
                }
                Some(ev) = peer_rx.recv() => {
                    let started = tokio::time::Instant::now();
                    let end = self.on_peer(ws, ev).await;
                    slow(started, "peer event");
                    if let Some(end) = end {
                        return end;
                    }
                }
                _ = idle => return "signal idle timeout",
                _ = shutdown.changed() => {
                    send(ws, leave(DisconnectReason::ServerShutdown)).await;
                    return "double shut down";
                }
            }
        }
    }

    async fn send_answer(
        &mut self,
        ws: &mut Ws,
        sdp: String,
        mids: HashMap<String, String>,
        id: u32,
    ) -> bool {
        self.room
            .mark_subscribed(&self.identity, mids.values().cloned());
        send(
            ws,
            signal_response::Message::Answer(SessionDescription {
                r#type: "answer".into(),
                sdp,
                id,
                mid_to_track_id: mids,
            }),
        )
        .await
    }

    /// Asks the client for receive m-lines for tracks not bound yet.
    async fn request_sections(&mut self, ws: &mut Ws) {
        let (_, unbound) = self.peer.bound_tracks().await;
        if unbound == 0 || self.section_requests >= MAX_SECTION_REQUESTS {
            return;
        }
        self.section_requests += 1;
        tracing::debug!(
            identity = self.identity,
            unbound,
            "requesting media sections"
        );
        send(
            ws,
            signal_response::Message::MediaSectionsRequirement(MediaSectionsRequirement {
                num_audios: unbound as u32,
                num_videos: 0,
            }),
        )
        .await;
    }

    async fn on_signal(&mut self, ws: &mut Ws, m: signal_request::Message) -> Option<&'static str> {
        use signal_request::Message as R;
        match m {
            R::Offer(offer) => match self.peer.answer(offer.sdp, false).await {
                Ok((sdp, mids)) => {
                    tracing::debug!(
                        identity = self.identity,
                        bound = mids.len(),
                        "answering an offer"
                    );
                    if !self.send_answer(ws, sdp, mids, offer.id).await {
                        return Some("signal write failed");
                    }
                    // An offer the client made for its own reasons (its
                    // publication) can cross our request for sections and
                    // leave tracks unbound: ask again.
                    self.request_sections(ws).await;
                }
                Err(e) => tracing::warn!(identity = self.identity, "answering an offer: {e}"),
            },
            R::Answer(_) => tracing::debug!("unexpected answer from a single-PC client"),
            R::Trickle(t) => self.peer.add_candidate(&t.candidate_init).await,
            R::AddTrack(req) => {
                let sid = ids::guid("TR_");
                let track = TrackInfo {
                    sid: sid.clone(),
                    r#type: req.r#type,
                    name: req.name.clone(),
                    source: req.source,
                    muted: req.muted,
                    stereo: req.stereo,
                    disable_dtx: req.disable_dtx,
                    stream: req.stream.clone(),
                    mime_type: "audio/opus".into(),
                    ..Default::default()
                };
                self.published.insert(req.cid.clone(), sid.clone());
                let resp = TrackPublishedResponse {
                    cid: req.cid,
                    track: Some(track),
                };
                if !send(ws, signal_response::Message::TrackPublished(resp)).await {
                    return Some("signal write failed");
                }
                // After the answer, so `TrackSubscribed` follows it.
                let audio = req.r#type == proto::TrackType::Audio as i32;
                self.room
                    .track_published(&self.identity, &sid, req.name, audio);
            }
            R::UpdateMetadata(req) => {
                // Like the server: empty strings leave metadata and name as
                // they are.
                let metadata = Some(req.metadata.clone()).filter(|m| !m.is_empty());
                let name = Some(req.name.clone()).filter(|n| !n.is_empty());
                self.room
                    .update_agent(&self.identity, metadata, name, &req.attributes);
                tokio::time::sleep(REQUEST_RESPONSE_DELAY).await;
                let resp = proto::RequestResponse {
                    request_id: req.request_id,
                    reason: proto::request_response::Reason::Ok as i32,
                    message: String::new(),
                    request: Some(proto::request_response::Request::UpdateMetadata(req)),
                };
                if !send(ws, signal_response::Message::RequestResponse(resp)).await {
                    return Some("signal write failed");
                }
            }
            R::Leave(_) => return Some("agent left"),
            R::Ping(ts) => {
                if !send(ws, signal_response::Message::Pong(ts)).await {
                    return Some("signal write failed");
                }
            }
            R::PingReq(p) => {
                let pong = proto::Pong {
                    last_ping_timestamp: p.timestamp,
                    timestamp: now_ms(),
                };
                if !send(ws, signal_response::Message::PongResp(pong)).await {
                    return Some("signal write failed");
                }
            }
            other => tracing::trace!("ignored signal request {other:?}"),
        }
        None
    }

    async fn on_command(&mut self, ws: &mut Ws, cmd: AgentCommand) -> Option<&'static str> {
        match cmd {
            AgentCommand::Signal(m) => {
                if let Some(m) = m.message
                    && !send(ws, m).await
                {
                    return Some("signal write failed");
                }
            }
            AgentCommand::Data { bytes, reliable } => {
                if self.ready && self.pending.is_empty() {
                    self.peer.send(&bytes, reliable).await;
                } else if self.pending.len() < PENDING_DATA {
                    self.pending.push_back((bytes, reliable));
                } else {
                    tracing::warn!(identity = self.identity, "pending data full; dropped");
                }
            }
            AgentCommand::AddTrack(track) => {
                if let Err(e) = self.peer.add_track(track).await {
                    tracing::warn!("adding a remote track: {e}");
                }
                self.request_sections(ws).await;
            }
            AgentCommand::Close(reason) => {
                send(ws, leave(reason)).await;
                return Some(match reason {
                    DisconnectReason::RoomClosed => "room closed",
                    DisconnectReason::DuplicateIdentity => "duplicate identity",
                    _ => "closed by the double",
                });
            }
        }
        None
    }

    async fn on_peer(&mut self, ws: &mut Ws, ev: PeerEvent) -> Option<&'static str> {
        match ev {
            PeerEvent::Candidate(json) => {
                let t = TrickleRequest {
                    candidate_init: json,
                    target: proto::SignalTarget::Publisher as i32,
                    r#final: false,
                };
                if !send(ws, signal_response::Message::Trickle(t)).await {
                    return Some("signal write failed");
                }
            }
            PeerEvent::ChannelOpen(label) => {
                tracing::debug!(identity = self.identity, label, "data channel open");
                if !self.ready && self.peer.can_send() {
                    self.ready = true;
                    self.room.record(Observation::AgentReady {
                        identity: self.identity.clone(),
                    });
                }
                if self.ready {
                    while let Some((bytes, reliable)) = self.pending.pop_front() {
                        self.peer.send(&bytes, reliable).await;
                    }
                }
            }
            PeerEvent::Data { bytes, reliable } => self.on_data(&bytes, reliable),
            PeerEvent::State(state) => {
                tracing::debug!(identity = self.identity, ?state, "peer connection state");
                if matches!(
                    state,
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
                ) {
                    return Some("peer connection failed");
                }
            }
            PeerEvent::Track(track) => self.count_rtp(track),
        }
        None
    }

    /// Records (and forwards) a data packet from the agent.
    fn on_data(&mut self, bytes: &[u8], reliable: bool) {
        let mut packet = match DataPacket::decode(bytes) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(identity = self.identity, "undecodable data packet: {e}");
                return;
            }
        };
        // The server, not the client, says who sent a packet, except that
        // an agent may send a text stream's header on behalf of another
        // participant (LiveKit's server leaves its identity then, and
        // marks the stream generated).
        let on_behalf = match &mut packet.value {
            Some(data_packet::Value::StreamHeader(header))
                if !packet.participant_identity.is_empty()
                    && packet.participant_identity != self.identity =>
            {
                match &mut header.content_header {
                    Some(data_stream::header::ContentHeader::TextHeader(text)) => {
                        text.generated = true;
                        true
                    }
                    _ => false,
                }
            }
            _ => false,
        };
        if !on_behalf {
            packet.participant_identity = self.identity.clone();
            packet.participant_sid = self.sid.clone();
        }
        if self.room.rpc_from_agent(&self.identity, &packet) {
            return;
        }
        match &packet.value {
            Some(data_packet::Value::User(u)) => {
                let destinations = if packet.destination_identities.is_empty() {
                    u.destination_identities.clone()
                } else {
                    packet.destination_identities.clone()
                };
                self.room.record(Observation::Data {
                    sender: self.identity.clone(),
                    topic: u.topic.clone().unwrap_or_default(),
                    payload: u.payload.clone(),
                    destinations,
                    reliable,
                });
            }
            Some(
                data_packet::Value::StreamHeader(_)
                | data_packet::Value::StreamChunk(_)
                | data_packet::Value::StreamTrailer(_),
            ) => {
                if let Some(done) = self.reassembler.push(&packet) {
                    match done.text {
                        Some(text) => self.room.record(Observation::Text {
                            sender: done.sender,
                            topic: done.topic,
                            text,
                            destinations: done.destinations,
                            stream_id: done.stream_id,
                            agent: self.identity.clone(),
                            attributes: done.attributes,
                            chunks: done.chunks,
                            trailer: done.trailer,
                        }),
                        None => tracing::debug!(len = done.len, "byte stream from agent"),
                    }
                }
            }
            other => tracing::trace!("data packet from agent: {other:?}"),
        }
        self.room
            .forward_from_agent(&self.identity, &packet, reliable);
    }

    /// Counts RTP packets of a track the agent sends, and keeps when each
    /// arrived, until the session ends.
    fn count_rtp(&self, track: Arc<TrackRemote>) {
        let id = track.id();
        let sid = self.published.get(&id).cloned().unwrap_or_else(|| {
            // libwebrtc's msid track id is the cid; fall back to the only
            // published track, else the raw id.
            let mut sids = self.published.values();
            match (sids.next(), sids.next()) {
                (Some(only), None) => only.clone(),
                _ => id.clone(),
            }
        });
        tracing::info!(
            identity = self.identity,
            track = sid,
            "receiving the agent's track"
        );
        let room = self.room.clone();
        let identity = self.identity.clone();
        let mut stop = self.stop.subscribe();
        let level_id = track
            .params()
            .header_extensions
            .iter()
            .find(|e| e.uri == AUDIO_LEVEL_URI)
            .and_then(|e| u8::try_from(e.id).ok());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = track.read_rtp() => match r {
                        Ok((packet, _)) => room.count_rtp(&identity, &sid, Arrival {
                            at: std::time::Instant::now(),
                            timestamp: packet.header.timestamp,
                            payload: packet.payload.len(),
                            level: audio_level(&packet, level_id),
                        }),
                        Err(_) => break,
                    },
                    _ = stop.changed() => break,
                }
            }
        });
    }
}
