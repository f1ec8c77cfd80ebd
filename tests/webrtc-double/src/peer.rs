//! The double's side of one agent's PeerConnection (webrtc-rs).
//!
//! Policy:
//! * ICE uses only the double's own listening address (an IP filter, UDP
//!   over that address family, no mDNS), so nothing binds elsewhere.
//! * Data: negotiated channels `_reliable` (id 100, ordered), `_lossy`
//!   (id 101, unordered, no retransmits) and `_data_track` (id 102), as
//!   single-PC clients of protocol ≥ 18 expect; channels a client opens
//!   in-band are accepted too, and when it opened its own `_reliable` the
//!   double sends on that one.
//! * Media: the client is always the offerer. A remote track is attached by
//!   adding a send-only transceiver *before* applying an offer, so it binds
//!   to a free receive-only audio m-line of that offer (webrtc-rs matches
//!   mid-less transceivers by kind and direction). Tracks still without a
//!   mid afterwards need the client to add m-lines
//!   (`MediaSectionsRequirement`).
//! * Audio carries the `ssrc-audio-level` header extension (RFC 6464), as
//!   LiveKit's SFU negotiates it for active speakers: each packet's level
//!   tells speech from silence whatever the codec makes of it.
//! * Callbacks never block: they `try_send` into a bounded queue
//!   ([`EVENT_QUEUE`]); overflow is logged and dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::MediaEngine;
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::{API, APIBuilder};
use webrtc::data_channel::RTCDataChannel;
use webrtc::data_channel::data_channel_init::RTCDataChannelInit;
use webrtc::data_channel::data_channel_state::RTCDataChannelState;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::network_type::NetworkType;
use webrtc::ice_transport::ice_candidate::RTCIceCandidateInit;
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtp_transceiver::RTCRtpTransceiverInit;
use webrtc::rtp_transceiver::rtp_codec::{RTCRtpHeaderExtensionCapability, RTPCodecType};
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
use webrtc::track::track_local::TrackLocal;
use webrtc::track::track_remote::TrackRemote;

use crate::Error;

/// The RTP header extension carrying each audio packet's level (RFC 6464).
pub(crate) const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// The audio level of `packet` in -dBov (0 loudest, 127 silence), if it
/// carries one under extension `id`.
pub(crate) fn audio_level(packet: &webrtc::rtp::packet::Packet, id: Option<u8>) -> Option<u8> {
    let level = packet.header.get_extension(id?)?;
    // The first byte: a voice-activity flag, then the 7-bit level.
    level.first().map(|b| b & 0x7f)
}

/// Capacity of the queue of events from WebRTC callbacks.
pub(crate) const EVENT_QUEUE: usize = 4096;
/// How long an answer waits for ICE gathering (one host address: fast).
const GATHER_WAIT: Duration = Duration::from_secs(3);

/// Negotiated data channels: label, id, ordered, max retransmits.
const CHANNELS: [(&str, u16, bool, Option<u16>); 3] = [
    ("_reliable", 100, true, None),
    ("_lossy", 101, false, Some(0)),
    ("_data_track", 102, false, Some(0)),
];

/// Something WebRTC reported.
pub(crate) enum PeerEvent {
    /// A local ICE candidate, as trickle JSON.
    Candidate(String),
    /// A message on a data channel.
    Data { bytes: Bytes, reliable: bool },
    /// A data channel opened.
    ChannelOpen(&'static str),
    /// The connection state changed.
    State(RTCPeerConnectionState),
    /// The client started sending a track.
    Track(Arc<TrackRemote>),
}

/// Builds the WebRTC API for a double listening on `ip`.
pub(crate) fn api(ip: IpAddr) -> Result<API, Error> {
    let mut media = MediaEngine::default();
    media.register_default_codecs().map_err(Error::webrtc)?;
    media
        .register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: AUDIO_LEVEL_URI.to_owned(),
            },
            RTPCodecType::Audio,
            None,
        )
        .map_err(Error::webrtc)?;
    let registry =
        register_default_interceptors(Registry::new(), &mut media).map_err(Error::webrtc)?;
    let mut settings = SettingEngine::default();
    settings.set_ip_filter(Box::new(move |a: IpAddr| a == ip));
    settings.set_network_types(vec![if ip.is_ipv4() {
        NetworkType::Udp4
    } else {
        NetworkType::Udp6
    }]);
    settings.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    settings.set_include_loopback_candidate(ip.is_loopback());
    Ok(APIBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings)
        .build())
}

/// One agent's PeerConnection and its data channels.
pub(crate) struct Peer {
    pub pc: Arc<RTCPeerConnection>,
    negotiated_reliable: Arc<RTCDataChannel>,
    negotiated_lossy: Arc<RTCDataChannel>,
    /// Channels the client opened in-band, by label.
    client_channels: Arc<Mutex<HashMap<String, Arc<RTCDataChannel>>>>,
    /// The first m-line mid of the last offer (for trickle JSON).
    first_mid: Arc<Mutex<String>>,
}

fn push(tx: &mpsc::Sender<PeerEvent>, e: PeerEvent) {
    if tx.try_send(e).is_err() {
        tracing::warn!("peer event queue full or closed; event dropped");
    }
}

fn watch_channel(dc: &Arc<RTCDataChannel>, label: &'static str, tx: &mpsc::Sender<PeerEvent>) {
    let reliable = label == "_reliable";
    let t = tx.clone();
    dc.on_message(Box::new(move |m| {
        push(
            &t,
            PeerEvent::Data {
                bytes: m.data,
                reliable,
            },
        );
        Box::pin(async {})
    }));
    let t = tx.clone();
    dc.on_open(Box::new(move || {
        push(&t, PeerEvent::ChannelOpen(label));
        Box::pin(async {})
    }));
}

fn static_label(label: &str) -> Option<&'static str> {
    CHANNELS.iter().map(|c| c.0).find(|l| *l == label)
}

impl Peer {
    /// Creates the connection; events go to `tx`.
    pub async fn new(api: &API, tx: mpsc::Sender<PeerEvent>) -> Result<Peer, Error> {
        let pc = Arc::new(
            api.new_peer_connection(RTCConfiguration::default())
                .await
                .map_err(Error::webrtc)?,
        );
        let mut negotiated = Vec::new();
        for (label, id, ordered, max_retransmits) in CHANNELS {
            let dc = pc
                .create_data_channel(
                    label,
                    Some(RTCDataChannelInit {
                        ordered: Some(ordered),
                        max_retransmits,
                        negotiated: Some(id),
                        ..Default::default()
                    }),
                )
                .await
                .map_err(Error::webrtc)?;
            watch_channel(&dc, label, &tx);
            negotiated.push(dc);
        }
        let client_channels: Arc<Mutex<HashMap<String, Arc<RTCDataChannel>>>> = Arc::default();
        let (t, channels) = (tx.clone(), client_channels.clone());
        pc.on_data_channel(Box::new(move |dc| {
            let label = dc.label().to_string();
            match static_label(&label) {
                Some(l) => {
                    tracing::debug!(label, id = dc.id(), "client opened a data channel");
                    watch_channel(&dc, l, &t);
                    push(&t, PeerEvent::ChannelOpen(l));
                    channels
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(label, dc);
                }
                None => tracing::debug!(label, "ignoring unknown data channel"),
            }
            Box::pin(async {})
        }));
        let first_mid: Arc<Mutex<String>> = Arc::new(Mutex::new("0".into()));
        let (t, mid) = (tx.clone(), first_mid.clone());
        pc.on_ice_candidate(Box::new(move |c| {
            if let Some(c) = c {
                match c.to_json() {
                    Ok(init) => {
                        let json = serde_json::json!({
                            "candidate": init.candidate,
                            "sdpMid": init.sdp_mid.unwrap_or_else(|| mid.lock().unwrap_or_else(|e| e.into_inner()).clone()),
                            "sdpMLineIndex": init.sdp_mline_index.unwrap_or(0),
                        });
                        push(&t, PeerEvent::Candidate(json.to_string()));
                    }
                    Err(e) => tracing::debug!("candidate to json: {e}"),
                }
            }
            Box::pin(async {})
        }));
        let t = tx.clone();
        pc.on_peer_connection_state_change(Box::new(move |s| {
            push(&t, PeerEvent::State(s));
            Box::pin(async {})
        }));
        let t = tx;
        pc.on_track(Box::new(move |track, _, _| {
            push(&t, PeerEvent::Track(track));
            Box::pin(async {})
        }));
        let mut negotiated = negotiated.into_iter();
        let (Some(reliable), Some(lossy)) = (negotiated.next(), negotiated.next()) else {
            return Err(Error::WebRtc("data channels missing".into()));
        };
        Ok(Peer {
            pc,
            negotiated_reliable: reliable,
            negotiated_lossy: lossy,
            client_channels,
            first_mid,
        })
    }

    /// Adds a send-only transceiver for a remote track (bound to an m-line
    /// by the next offer).
    pub async fn add_track(&self, track: Arc<dyn TrackLocal + Send + Sync>) -> Result<(), Error> {
        self.pc
            .add_transceiver_from_track(
                track,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Sendonly,
                    send_encodings: vec![],
                }),
            )
            .await
            .map(|_| ())
            .map_err(Error::webrtc)
    }

    /// Applies a client offer and returns the answer SDP and the mapping
    /// mid → track sid of the remote tracks bound so far. The first answer
    /// waits (bounded) for ICE gathering so it carries the candidates.
    pub async fn answer(
        &self,
        offer_sdp: String,
        wait_gathering: bool,
    ) -> Result<(String, HashMap<String, String>), Error> {
        let offer = RTCSessionDescription::offer(offer_sdp).map_err(Error::webrtc)?;
        if let Some(mid) = offer
            .sdp
            .lines()
            .find_map(|l| l.strip_prefix("a=mid:"))
            .map(|m| m.trim().to_string())
        {
            *self.first_mid.lock().unwrap_or_else(|e| e.into_inner()) = mid;
        }
        self.pc
            .set_remote_description(offer)
            .await
            .map_err(Error::webrtc)?;
        let answer = self.pc.create_answer(None).await.map_err(Error::webrtc)?;
        let mut gathered = self.pc.gathering_complete_promise().await;
        self.pc
            .set_local_description(answer)
            .await
            .map_err(Error::webrtc)?;
        if wait_gathering {
            let _ = tokio::time::timeout(GATHER_WAIT, gathered.recv()).await;
        }
        let sdp = self
            .pc
            .local_description()
            .await
            .map(|d| d.sdp)
            .ok_or_else(|| Error::WebRtc("no local description".into()))?;
        Ok((sdp, self.bound_tracks().await.0))
    }

    /// Remote tracks by binding state: (mid → track sid, count without mid).
    pub async fn bound_tracks(&self) -> (HashMap<String, String>, usize) {
        let mut bound = HashMap::new();
        let mut unbound = 0;
        for t in self.pc.get_transceivers().await {
            let Some(track) = t.sender().await.track().await else {
                continue;
            };
            match t.mid() {
                Some(mid) => {
                    bound.insert(mid.to_string(), track.id().to_string());
                }
                None => unbound += 1,
            }
        }
        (bound, unbound)
    }

    /// Adds a client ICE candidate (trickle JSON); bad ones are logged.
    pub async fn add_candidate(&self, json: &str) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
            tracing::debug!("bad trickle candidate {json:?}");
            return;
        };
        let candidate = v["candidate"].as_str().unwrap_or_default().to_string();
        if candidate.is_empty() {
            return;
        }
        let c = RTCIceCandidateInit {
            candidate,
            sdp_mid: v["sdpMid"].as_str().map(str::to_string),
            sdp_mline_index: v["sdpMLineIndex"]
                .as_u64()
                .and_then(|i| u16::try_from(i).ok()),
            username_fragment: None,
        };
        if let Err(e) = self.pc.add_ice_candidate(c).await {
            tracing::debug!("add_ice_candidate: {e}");
        }
    }

    /// The channel to send on: the client's in-band one if it opened one,
    /// else the negotiated one. `None` when it is not open.
    fn channel(&self, reliable: bool) -> Option<Arc<RTCDataChannel>> {
        let label = if reliable { "_reliable" } else { "_lossy" };
        let client = self
            .client_channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(label)
            .cloned();
        let dc = client.unwrap_or_else(|| {
            if reliable {
                self.negotiated_reliable.clone()
            } else {
                self.negotiated_lossy.clone()
            }
        });
        (dc.ready_state() == RTCDataChannelState::Open).then_some(dc)
    }

    /// Whether a data channel to send on is open.
    pub fn can_send(&self) -> bool {
        self.channel(true).is_some()
    }

    /// Sends one message; `false` if no channel is open or sending failed.
    pub async fn send(&self, bytes: &Bytes, reliable: bool) -> bool {
        let Some(dc) = self.channel(reliable).or_else(|| self.channel(true)) else {
            return false;
        };
        match dc.send(bytes).await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!("data channel send: {e}");
                false
            }
        }
    }

    /// Closes the connection.
    pub async fn close(&self) {
        if let Err(e) = self.pc.close().await {
            tracing::debug!("closing peer connection: {e}");
        }
    }
}
