//! Fake streaming speech providers over WebSocket, speaking Deepgram's API
//! (the real one, so a client works against both unchanged), from a
//! [`SpeechScript`]. One listener serves both paths; any other path is
//! closed with `1008`.
//!
//! - `GET /v1/listen?encoding=linear16&sample_rate=R&...` (speech to
//!   text): binary frames are PCM s16le mono at `R`. Every 300 ms of
//!   audio with energy ([`has_energy`]) it sends an interim `Results`
//!   (`is_final: false`) with one more word of the next scripted
//!   transcript; `{"type":"Finalize"}` answers the whole transcript
//!   (`is_final`, `speech_final`, `from_finalize`) and moves on to the next
//!   (after silence only, an empty final that moves nowhere, as Deepgram
//!   answers); `{"type":"CloseStream"}` finalizes what is pending, answers
//!   `Metadata` and closes `1000`; `{"type":"KeepAlive"}` is accepted.
//! - `GET /v1/speak?encoding=linear16&sample_rate=R&...` (text to speech):
//!   `Metadata` on connect; `Speak` texts accumulate; `Flush` synthesizes
//!   them: after the script's `first_byte_delay` the tone in 100 ms binary
//!   frames, one every [`FRAME_EVERY`], then `Flushed` with the flush's
//!   0-based `sequence_id`; `Clear` drops the buffered text and any audio
//!   not yet sent and answers `Cleared` (0-based count of clears);
//!   `Close` closes `1000`.
//!
//! A text message that is not one of these closes the socket with `1008`
//! and a reason naming it, as Deepgram refuses what it cannot decode: a
//! client bug shows at its cause. Each connection is recorded
//! ([`Connection`]): its path, `authorization` header, audio bytes each way
//! and the client's text messages.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures::{SinkExt as _, StreamExt as _};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Bytes;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::speech_script::{SpeechScript, Transcripts, chunk_bytes, has_energy, pcm_ms, tone};
use crate::websocket::{self, Peer, Server, Upgrade};

/// Audio between two interim results.
const INTERIM_EVERY_MS: u64 = 300;

/// How often text to speech sends a 100 ms frame: five times real time, as
/// a streaming synthesizer runs ahead of playback but not instantly, so a
/// `Clear` has audio left to stop.
pub const FRAME_EVERY: std::time::Duration = std::time::Duration::from_millis(20);

/// One connection the fake accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Connection {
    /// The upgrade's path and query.
    pub path: String,
    /// Its `authorization` header.
    pub authorization: Option<String>,
    /// Audio bytes the client sent (speech to text).
    pub audio_in: u64,
    /// Audio bytes the fake sent (text to speech).
    pub audio_out: u64,
    /// The client's text messages, in order.
    pub messages: Vec<String>,
}

struct State {
    script: SpeechScript,
    transcripts: Transcripts,
    connections: Mutex<Vec<Connection>>,
}

impl State {
    fn record(&self, index: usize, update: impl FnOnce(&mut Connection)) {
        update(&mut self.connections.lock().expect("not poisoned")[index]);
    }
}

/// The running fake; dropping it stops it and every connection.
pub struct FakeSpeech {
    server: Server,
    state: Arc<State>,
}

impl FakeSpeech {
    /// Starts the fake on `127.0.0.1` answering from `script`.
    pub async fn start(script: SpeechScript) -> Self {
        Self::start_on("127.0.0.1:0".parse().expect("a loopback address"), script).await
    }

    /// Starts the fake on `addr` (a network namespace's, for a benchmark).
    pub async fn start_on(addr: SocketAddr, script: SpeechScript) -> Self {
        let state = Arc::new(State {
            transcripts: Transcripts::new(&script),
            script,
            connections: Mutex::default(),
        });
        let served = state.clone();
        let server = websocket::listen_on(addr, move |peer, _, upgrade| {
            serve(peer, served.clone(), upgrade)
        })
        .await;
        Self { server, state }
    }

    /// `ws://<ip>:<port>`: the base URL a client appends `/v1/listen` or
    /// `/v1/speak` to.
    pub fn url(&self) -> String {
        self.server.url("")
    }

    /// The port, for the allow-list rule and the credential.
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// The connections so far, in the order they were accepted.
    pub fn connections(&self) -> Vec<Connection> {
        self.state.connections.lock().expect("not poisoned").clone()
    }
}

async fn serve(peer: Peer, state: Arc<State>, upgrade: Upgrade) {
    let index = {
        let mut connections = state.connections.lock().expect("not poisoned");
        connections.push(Connection {
            path: upgrade.path.clone(),
            authorization: upgrade.authorization,
            ..Connection::default()
        });
        connections.len() - 1
    };
    let (path, query) = upgrade
        .path
        .split_once('?')
        .unwrap_or((upgrade.path.as_str(), ""));
    let rate = |default| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("sample_rate="))
            .and_then(|rate| rate.parse().ok())
            .filter(|rate| *rate > 0)
            .unwrap_or(default)
    };
    match path {
        // Deepgram's defaults for linear16: 16 kHz in, 24 kHz out.
        "/v1/listen" => transcribe(peer, &state, index, rate(16_000)).await,
        "/v1/speak" => synthesize(peer, &state, index, rate(24_000)).await,
        other => refuse(peer, &format!("no such endpoint {other:?}")).await,
    }
}

/// Closes `peer` with `1008` (policy: the request cannot be served).
async fn refuse(mut peer: impl futures::Sink<Message> + Unpin, reason: &str) {
    let frame = CloseFrame {
        code: CloseCode::Policy,
        reason: reason.to_owned().into(),
    };
    let _ = peer.send(Message::Close(Some(frame))).await;
}

/// Closes `peer` with `1000`.
async fn close(mut peer: impl futures::Sink<Message> + Unpin) {
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    let _ = peer.send(Message::Close(Some(frame))).await;
}

/// The `type` of a client's JSON text message, if it has one.
fn message_type(text: &str) -> Option<(String, serde_json::Value)> {
    let json: serde_json::Value = serde_json::from_str(text).ok()?;
    Some((json["type"].as_str()?.to_owned(), json))
}

/// Speech to text: what one connection heard since its last final.
struct Heard {
    /// The transcript the interims are a prefix of, once picked.
    transcript: Option<String>,
    /// Words of it sent so far.
    words: usize,
    /// Audio with energy since the last final, and since the last interim.
    voiced_ms: u64,
    since_interim_ms: u64,
    /// Audio received in all, and when the current segment started.
    total_ms: u64,
    segment_ms: u64,
}

impl Heard {
    fn results(&self, transcript: &str, is_final: bool, from_finalize: bool) -> Message {
        let seconds = |ms: u64| ms as f64 / 1000.0;
        let json = serde_json::json!({
            "type": "Results",
            "channel_index": [0, 1],
            "duration": seconds(self.total_ms - self.segment_ms),
            "start": seconds(self.segment_ms),
            "is_final": is_final,
            "speech_final": is_final,
            "from_finalize": from_finalize,
            "channel": { "alternatives": [{ "transcript": transcript, "confidence": 0.99 }] },
        });
        Message::text(json.to_string())
    }

    /// The interim after one more word.
    fn interim(&mut self, transcripts: &Transcripts) -> Message {
        let transcript = self.transcript.get_or_insert_with(|| transcripts.next());
        let words: Vec<&str> = transcript.split_whitespace().collect();
        self.words = (self.words + 1).min(words.len());
        let prefix = words[..self.words].join(" ");
        self.results(&prefix, false, false)
    }

    /// The final for what was heard, starting a new segment.
    fn finalize(&mut self, transcripts: &Transcripts, from_finalize: bool) -> Message {
        let transcript = match self.voiced_ms {
            0 => String::new(),
            _ => self.transcript.take().unwrap_or_else(|| transcripts.next()),
        };
        let message = self.results(&transcript, true, from_finalize);
        (
            self.transcript,
            self.words,
            self.voiced_ms,
            self.since_interim_ms,
        ) = (None, 0, 0, 0);
        self.segment_ms = self.total_ms;
        message
    }
}

async fn transcribe(mut peer: Peer, state: &State, index: usize, rate: u32) {
    let mut heard = Heard {
        transcript: None,
        words: 0,
        voiced_ms: 0,
        since_interim_ms: 0,
        total_ms: 0,
        segment_ms: 0,
    };
    while let Some(Ok(message)) = peer.next().await {
        let reply = match message {
            Message::Binary(pcm) => {
                state.record(index, |c| c.audio_in += pcm.len() as u64);
                let ms = pcm_ms(pcm.len(), rate, 1);
                heard.total_ms += ms;
                if !has_energy(&pcm) {
                    continue;
                }
                heard.voiced_ms += ms;
                heard.since_interim_ms += ms;
                if heard.since_interim_ms < INTERIM_EVERY_MS {
                    continue;
                }
                heard.since_interim_ms -= INTERIM_EVERY_MS;
                heard.interim(&state.transcripts)
            }
            Message::Text(text) => {
                state.record(index, |c| c.messages.push(text.to_string()));
                match message_type(&text).as_ref().map(|(t, _)| t.as_str()) {
                    Some("KeepAlive") => continue,
                    Some("Finalize") => heard.finalize(&state.transcripts, true),
                    Some("CloseStream") => {
                        if heard.voiced_ms > 0 {
                            let last = heard.finalize(&state.transcripts, false);
                            if peer.send(last).await.is_err() {
                                return;
                            }
                        }
                        let metadata = serde_json::json!({
                            "type": "Metadata",
                            "request_id": format!("fake-{index}"),
                            "duration": heard.total_ms as f64 / 1000.0,
                            "channels": 1,
                        });
                        if peer.send(Message::text(metadata.to_string())).await.is_ok() {
                            close(peer).await;
                        }
                        return;
                    }
                    _ => return refuse(peer, &format!("unknown message {text:?}")).await,
                }
            }
            Message::Close(_) => return,
            _ => continue,
        };
        if peer.send(reply).await.is_err() {
            return;
        }
    }
}

/// Text to speech: one flush's audio, waiting or being sent.
struct Synthesis {
    sequence_id: u64,
    pcm: Bytes,
    sent: usize,
    /// When its next frame may go (the first: the flush plus the scripted
    /// delay).
    start_at: Instant,
}

async fn synthesize(peer: Peer, state: &State, index: usize, rate: u32) {
    let (mut sink, mut stream) = peer.split();
    let metadata = serde_json::json!({
        "type": "Metadata",
        "request_id": format!("fake-{index}"),
        "model_name": "fake-tone",
        "model_version": "1",
    });
    if sink
        .send(Message::text(metadata.to_string()))
        .await
        .is_err()
    {
        return;
    }
    let (mut text, mut queue) = (String::new(), VecDeque::<Synthesis>::new());
    let (mut flushes, mut clears) = (0u64, 0u64);
    let step = chunk_bytes(rate);
    loop {
        let next_frame = queue.front().map(|s| s.start_at);
        let wait = async move {
            match next_frame {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let reply = tokio::select! {
            biased;
            message = stream.next() => {
                let Some(Ok(message)) = message else { return };
                let Message::Text(message) = message else { continue };
                state.record(index, |c| c.messages.push(message.to_string()));
                match message_type(&message) {
                    Some((kind, json)) if kind == "Speak" => {
                        text.push_str(json["text"].as_str().unwrap_or_default());
                        continue;
                    }
                    Some((kind, _)) if kind == "Flush" => {
                        queue.push_back(Synthesis {
                            sequence_id: flushes,
                            pcm: tone(rate, state.script.tone_length(&text)).into(),
                            sent: 0,
                            start_at: Instant::now() + state.script.first_byte_delay,
                        });
                        text.clear();
                        flushes += 1;
                        continue;
                    }
                    Some((kind, _)) if kind == "Clear" => {
                        queue.clear();
                        text.clear();
                        clears += 1;
                        serde_json::json!({ "type": "Cleared", "sequence_id": clears - 1 })
                    }
                    Some((kind, _)) if kind == "Close" => return close(sink).await,
                    _ => return refuse(sink, &format!("unknown message {message:?}")).await,
                }
            }
            () = wait => {
                let synthesis = queue.front_mut().expect("a synthesis is waiting");
                if synthesis.sent < synthesis.pcm.len() {
                    let end = (synthesis.sent + step).min(synthesis.pcm.len());
                    let frame = synthesis.pcm.slice(synthesis.sent..end);
                    let bytes = frame.len() as u64;
                    synthesis.sent = end;
                    synthesis.start_at = Instant::now() + FRAME_EVERY;
                    if sink.send(Message::Binary(frame)).await.is_err() {
                        return;
                    }
                    state.record(index, |c| c.audio_out += bytes);
                    continue;
                }
                let sequence_id = synthesis.sequence_id;
                queue.pop_front();
                serde_json::json!({ "type": "Flushed", "sequence_id": sequence_id })
            }
        };
        if sink.send(Message::text(reply.to_string())).await.is_err() {
            return;
        }
    }
}
