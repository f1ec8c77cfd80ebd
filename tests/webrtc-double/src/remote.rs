//! Remotes: synthetic participants that the double plays.
//!
//! A remote sends data packets and text streams to the agents of its room
//! over their data channels (as if an SFU forwarded them), and speaks by
//! publishing a microphone track and sending one Opus frame every 20 ms:
//! silence (`f8 ff fe`); pseudo-random CELT frames, which decode to loud
//! noise that energy-based voice-activity checks take for speech; or a
//! recorded spoken phrase, which neural detectors (Silero) take for speech
//! too, where they reject noise ([`Voice`]). Speaking is bounded by [`MAX_SPEECH`]; before
//! the first frame it waits (at most [`SUBSCRIBE_WAIT`]) until every agent
//! of the room has the track negotiated.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use livekit_protocol::{DataPacket, RpcRequest, UserPacket, data_packet};
use webrtc::media::Sample;

use crate::room::Room;
use crate::{Error, ids, rpc, text};

/// Longest [`Remote::speak`].
pub const MAX_SPEECH: Duration = Duration::from_secs(300);
/// How long [`Remote::speak`] waits for agents to be able to receive.
pub const SUBSCRIBE_WAIT: Duration = Duration::from_secs(10);
/// One Opus frame.
pub const FRAME: Duration = Duration::from_millis(20);
/// A 20 ms Opus silence frame (TOC 0xf8: CELT FB 20 ms, mono).
pub const OPUS_SILENCE: [u8; 3] = [0xf8, 0xff, 0xfe];

/// What a remote's audio frames contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Voice {
    /// [`OPUS_SILENCE`]: decodes to zeros.
    Silence,
    /// Pseudo-random CELT frames (TOC `f8` + 79 bytes): decode to loud
    /// noise.
    Noise,
    /// A spoken phrase ("What is the weather like today", espeak-ng, 1.9 s:
    /// [`SPEECH`] frames), repeated while the speech lasts; made by
    /// `fixtures/make_speech.sh`.
    Speech,
}

/// The recorded phrase of [`Voice::Speech`]: 20 ms Opus frames (48 kHz
/// mono), each prefixed by its length as a little-endian `u16`.
const SPEECH_FRAMES: &[u8] = include_bytes!("../fixtures/speech.frames");

/// Frames in the phrase of [`Voice::Speech`].
pub const SPEECH: usize = 95;

/// Frame `n` of the recorded phrase (repeating).
fn speech_frame(n: u64) -> Bytes {
    let frames = SPEECH_FRAMES;
    let (mut at, mut i) = (0, 0);
    let wanted = (n % SPEECH as u64) as usize;
    loop {
        let len = usize::from(u16::from_le_bytes([frames[at], frames[at + 1]]));
        if i == wanted {
            return Bytes::from_static(&frames[at + 2..at + 2 + len]);
        }
        (at, i) = (at + 2 + len, i + 1);
    }
}

impl Voice {
    /// Frame `n` of this voice.
    fn frame(self, n: u64) -> Bytes {
        match self {
            Voice::Silence => Bytes::from_static(&OPUS_SILENCE),
            Voice::Noise => {
                let mut x = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
                let mut f = Vec::with_capacity(80);
                f.push(0xf8);
                for _ in 0..79 {
                    // xorshift64
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    f.push(x as u8);
                }
                Bytes::from(f)
            }
            Voice::Speech => speech_frame(n),
        }
    }
}

/// Unix time in ms.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// A synthetic participant in a [`Room`]. It stays until [`Remote::leave`]
/// (dropping the handle does not leave).
#[derive(Debug, Clone)]
pub struct Remote {
    room: Room,
    identity: String,
    sid: String,
}

impl Remote {
    pub(crate) fn new(room: Room, identity: String, sid: String) -> Remote {
        Remote {
            room,
            identity,
            sid,
        }
    }

    /// Identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Participant sid (`PA_…`).
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// The room.
    pub fn room(&self) -> &Room {
        &self.room
    }

    /// Sends a reliable user data packet to every agent.
    pub fn send_data(&self, topic: &str, payload: &[u8]) -> Result<(), Error> {
        self.send_data_to(topic, payload, &[])
    }

    /// Sends a reliable user data packet to the agents in `destinations`
    /// (all when empty).
    pub fn send_data_to(
        &self,
        topic: &str,
        payload: &[u8],
        destinations: &[&str],
    ) -> Result<(), Error> {
        let dest: Vec<String> = destinations.iter().map(|d| d.to_string()).collect();
        let packet = DataPacket {
            kind: data_packet::Kind::Reliable as i32,
            participant_identity: self.identity.clone(),
            participant_sid: self.sid.clone(),
            destination_identities: dest.clone(),
            value: Some(data_packet::Value::User(UserPacket {
                participant_sid: self.sid.clone(),
                participant_identity: self.identity.clone(),
                payload: payload.to_vec(),
                destination_identities: dest.clone(),
                topic: (!topic.is_empty()).then(|| topic.to_string()),
                ..Default::default()
            })),
            ..Default::default()
        };
        self.room.send_from_remote(&self.identity, &[packet], &dest)
    }

    /// Sends `text` as a text stream on `topic` (`lk.chat` for chat) to
    /// every agent.
    pub fn send_text(&self, topic: &str, text: &str) -> Result<(), Error> {
        self.send_text_to(topic, text, &[])
    }

    /// Sends a text stream to the agents in `destinations` (all when empty).
    pub fn send_text_to(
        &self,
        topic: &str,
        text: &str,
        destinations: &[&str],
    ) -> Result<(), Error> {
        let dest: Vec<String> = destinations.iter().map(|d| d.to_string()).collect();
        let stream_id = ids::guid("ST_");
        let timestamp_ms = now_ms();
        let packets = text::packets(&text::OutgoingText {
            sender: &self.identity,
            sender_sid: &self.sid,
            stream_id: &stream_id,
            topic,
            text,
            timestamp_ms,
            destinations: &dest,
        });
        self.room.send_from_remote(&self.identity, &packets, &dest)
    }

    /// Sends `bytes` as a byte stream on `topic` with header `attributes`
    /// to every agent.
    pub fn send_bytes(
        &self,
        topic: &str,
        attributes: &[(String, String)],
        bytes: &[u8],
    ) -> Result<(), Error> {
        let stream_id = ids::guid("BS_");
        let packets = text::byte_packets(&text::OutgoingBytes {
            sender: &self.identity,
            sender_sid: &self.sid,
            stream_id: &stream_id,
            topic,
            attributes,
            bytes,
            timestamp_ms: now_ms(),
            destinations: &[],
        });
        self.room.send_from_remote(&self.identity, &packets, &[])
    }

    /// Calls `method` on `agent`, waiting at most `timeout` for its answer:
    /// the payload, or the error's code and message (1502 when the agent
    /// did not answer in time, as LiveKit's clients say).
    pub async fn perform_rpc(
        &self,
        agent: &str,
        method: &str,
        payload: &str,
        timeout: Duration,
    ) -> Result<rpc::Answer, Error> {
        let request = RpcRequest {
            id: ids::guid("RPC_"),
            method: method.to_string(),
            payload: payload.to_string(),
            response_timeout_ms: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX),
            version: 1,
            ..Default::default()
        };
        let answer = self.room.call_agent(&self.identity, agent, request)?;
        Ok(match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err((1503, "the agent left".into())),
            Err(_) => Err((1502, "Response timeout".into())),
        })
    }

    /// Answers agents' calls to `method` with `handler` (given the
    /// caller's identity and the payload) from now on; calls to methods
    /// without one are answered 1400.
    pub fn serve_rpc(
        &self,
        method: &str,
        handler: impl Fn(&str, &str) -> rpc::Answer + Send + Sync + 'static,
    ) {
        self.room
            .serve_rpc(&self.identity, method, std::sync::Arc::new(handler));
    }

    /// Speaks (loud [`Voice::Noise`]) for `duration`; see
    /// [`Remote::speak_with`].
    pub async fn speak(&self, duration: Duration) -> Result<u64, Error> {
        self.speak_with(duration, Voice::Noise).await
    }

    /// Sends `voice` for `duration` (capped at [`MAX_SPEECH`]): publishes
    /// the microphone track if needed, waits until the agents can receive
    /// it, then sends one Opus frame every 20 ms. Returns the frames sent.
    pub async fn speak_with(&self, duration: Duration, voice: Voice) -> Result<u64, Error> {
        let (track, sid) = self.room.publish_audio(&self.identity)?;
        let agents = self.room.wait_subscribed(&sid, SUBSCRIBE_WAIT).await;
        let frames = (duration.min(MAX_SPEECH).as_millis() / FRAME.as_millis()) as u64;
        tracing::info!(
            identity = self.identity,
            track = sid,
            agents,
            frames,
            "speaking"
        );
        let mut tick = tokio::time::interval(FRAME);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sent = 0;
        for n in 0..frames {
            let sample = Sample {
                data: voice.frame(n),
                duration: FRAME,
                ..Sample::default()
            };
            tick.tick().await;
            if self.room.is_closed() {
                break;
            }
            track
                .write_sample(&sample)
                .await
                .map_err(|e| Error::WebRtc(e.to_string()))?;
            sent += 1;
        }
        Ok(sent)
    }

    /// Leaves the room (it closes if this was the last remote).
    pub fn leave(&self) -> Result<(), Error> {
        self.room.leave(&self.identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorded_phrase_is_speech_frames_of_opus_and_repeats() {
        let (mut at, mut frames) = (0, 0);
        while at < SPEECH_FRAMES.len() {
            let len = usize::from(u16::from_le_bytes([
                SPEECH_FRAMES[at],
                SPEECH_FRAMES[at + 1],
            ]));
            assert!(len > 3, "frame {frames} is silence-sized");
            at += 2 + len;
            frames += 1;
        }
        assert_eq!((at, frames), (SPEECH_FRAMES.len(), SPEECH));
        assert_eq!(Voice::Speech.frame(SPEECH as u64), Voice::Speech.frame(0));
        assert_ne!(Voice::Speech.frame(1), Voice::Speech.frame(0));
    }
}
