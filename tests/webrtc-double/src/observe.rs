//! What the double saw agents do in a room, for tests to assert on.
//!
//! Every room keeps an append-only log of [`Observation`]s (at most
//! [`MAX_OBSERVATIONS`]; later ones are dropped with a warning, so indexes
//! stay stable), RTP counters per agent track ([`RtpStats`]) and each
//! packet's arrival ([`Arrival`], at most [`MAX_ARRIVALS`] per track), for a
//! benchmark's pacing and reply latency. Tests read snapshots or wait for a
//! matching entry with a timeout.

use std::collections::BTreeMap;

/// Largest number of observations one room keeps.
pub const MAX_OBSERVATIONS: usize = 100_000;

/// Largest number of packet arrivals one agent track keeps: over an hour
/// of audio at 50 packets a second (about 5 MiB); later ones are counted
/// in [`RtpStats`] only.
pub const MAX_ARRIVALS: usize = 200_000;

/// One thing that happened in a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// An agent's signal connection was accepted (JoinResponse sent).
    AgentJoined {
        /// Its identity.
        identity: String,
    },
    /// An agent's data channel opened: it can now receive data and text.
    AgentReady {
        /// Its identity.
        identity: String,
    },
    /// An agent left (its `Leave`, a closed signal connection, or the room
    /// closing).
    AgentLeft {
        /// Its identity.
        identity: String,
        /// Why, in words.
        reason: String,
    },
    /// A user data packet from an agent.
    Data {
        /// The agent.
        sender: String,
        /// Topic (empty when none).
        topic: String,
        /// Payload.
        payload: Vec<u8>,
        /// Destination identities (empty: everyone).
        destinations: Vec<String>,
        /// Sent on the reliable channel.
        reliable: bool,
    },
    /// A complete text stream from an agent.
    Text {
        /// The stream's sender: the agent, or the participant it sent the
        /// stream on behalf of.
        sender: String,
        /// Topic (`lk.chat` for chat).
        topic: String,
        /// The text.
        text: String,
        /// Destination identities (empty: everyone).
        destinations: Vec<String>,
        /// The stream id.
        stream_id: String,
        /// The agent that sent it.
        agent: String,
        /// The header's attributes.
        attributes: BTreeMap<String, String>,
        /// The chunks as they came (the agent's writes).
        chunks: Vec<String>,
        /// The trailer's attributes.
        trailer: BTreeMap<String, String>,
    },
    /// An agent published a track.
    TrackPublished {
        /// The agent.
        agent: String,
        /// Track sid the double gave it.
        sid: String,
        /// Track name.
        name: String,
        /// `true` for audio.
        audio: bool,
    },
    /// An agent changed its metadata or attributes.
    AgentUpdated {
        /// The agent.
        identity: String,
        /// Its metadata now.
        metadata: String,
        /// All its attributes now.
        attributes: BTreeMap<String, String>,
    },
    /// The room closed (last remote left, or [`crate::Room::close`]).
    RoomClosed,
}

impl Observation {
    /// The agent this observation is about, if any.
    pub fn agent(&self) -> Option<&str> {
        match self {
            Observation::AgentJoined { identity }
            | Observation::AgentReady { identity }
            | Observation::AgentLeft { identity, .. }
            | Observation::AgentUpdated { identity, .. } => Some(identity),
            Observation::Data { sender, .. } => Some(sender),
            Observation::Text { agent, .. } => Some(agent),
            Observation::TrackPublished { agent, .. } => Some(agent),
            Observation::RoomClosed => None,
        }
    }
}

/// RTP received from one agent (all its tracks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtpStats {
    /// Packets.
    pub packets: u64,
    /// Payload bytes (Opus, usually wrapped in RED, so even silence is
    /// tens of bytes per packet).
    pub bytes: u64,
}

/// One RTP packet from an agent's track, as it arrived at the double.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    /// When it was read off the track.
    pub at: std::time::Instant,
    /// Its RTP timestamp (48 kHz for Opus).
    pub timestamp: u32,
    /// Its payload size in bytes.
    pub payload: usize,
    /// Its audio level in -dBov (0 loudest, 127 digital silence), from
    /// the `ssrc-audio-level` extension, when the client sent one.
    pub level: Option<u8>,
}
