//! A voice agent end to end: `examples/voice` (the SDK's `VoiceSession`)
//! in a sim room against the fake providers on loopback
//! (`agent_host_tests::fake_openai`, `agent_host_tests::fake_speech`).
//!
//! What is proven: the participant's speech becomes the scripted reply as
//! audio (the fake's tone for each sentence, sentence by sentence);
//! transcriptions arrive on `lk.transcription` with the attributes and
//! final flags livekit-agents gives them (the user's sent as the user and
//! naming its microphone track, the agent's naming the agent's track);
//! `lk.agent.state` walks `initializing`, `listening`, `thinking`,
//! `speaking`, `listening`; speech while the agent speaks clears its audio
//! and closes its transcription as final (barge-in); typed chat is a turn;
//! audio a client recorded before the agent joined is heard; and the
//! Deepgram-compatible WebSocket path streams interim transcripts, then
//! the final one, and speaks over `/v1/speak`.

use std::collections::HashMap;
use std::time::Duration;

use agent_host::Outcome;
use agent_host::room::sim::{SimByteStream, SimOutput, SimRoom, tone};
use agent_host::wit::audio::AudioFormat;
use agent_host_tests::fake_openai::{FakeOpenAi, Recorded, Script};
use agent_host_tests::fake_speech::FakeSpeech;
use agent_host_tests::guests;
use agent_host_tests::sim::{WAIT, next, start_with};
use agent_host_tests::speech_script::SpeechScript;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

const MONO_16K: AudioFormat = AudioFormat {
    sample_rate: 16_000,
    channels: 1,
};

const MONO_24K: AudioFormat = AudioFormat {
    sample_rate: 24_000,
    channels: 1,
};

/// The scripted answer: two sentences, streamed in pieces that do not
/// end where the sentences do.
const DELTAS: &[&str] = &["The weather is sun", "ny today. Bring", " a hat, please!"];
const SENTENCES: [&str; 2] = ["The weather is sunny today.", "Bring a hat, please!"];

/// What the user says, as the fake speech-to-text hears it.
const HEARD: &str = "what is the weather";

/// One utterance: a quiet lead-in, `ms` of tone, and a second of silence
/// (more than the 500 ms that end a turn).
fn utterance(ms: u32) -> Vec<i16> {
    let mut samples = vec![0; 3_200];
    samples.extend(tone(MONO_16K, 440, ms));
    samples.extend(vec![0; 16_000]);
    samples
}

/// `alice` says `samples` at five times real time, in 100 ms pieces: a
/// session holds at most a second of unread audio (`AUDIO_QUEUE`) and a
/// real microphone never sends faster than real time, so the whole
/// utterance at once would lose its end.
async fn speak(room: &SimRoom, samples: &[i16]) {
    for piece in samples.chunks(1_600) {
        room.speak("alice", MONO_16K, piece);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A text stream the agent wrote, put together from its outputs.
#[derive(Debug, Clone, Default)]
struct Stream {
    topic: String,
    sender: Option<String>,
    attributes: HashMap<String, String>,
    text: String,
    trailer: Option<HashMap<String, String>>,
}

impl Stream {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }

    /// The final flag as receivers see it: the trailer's merged over the
    /// header's.
    fn is_final(&self) -> bool {
        let trailer = self.trailer.as_ref().expect("the stream was closed");
        trailer
            .get("lk.transcription_final")
            .or(self.attributes.get("lk.transcription_final"))
            .map(String::as_str)
            == Some("true")
    }
}

/// Everything the agent did up to a point, in order.
#[derive(Debug, Default)]
struct Seen {
    states: Vec<String>,
    streams: Vec<Stream>,
    ids: HashMap<String, usize>,
    /// Samples written since the last clear, and in all.
    audio: Vec<i16>,
    audio_total: usize,
    cleared: usize,
}

impl Seen {
    /// Take one output; returns the state it set, if it set one.
    fn take(&mut self, output: SimOutput) -> Option<String> {
        match output {
            SimOutput::Attributes { attributes, .. } => {
                let state = attributes
                    .into_iter()
                    .find(|(k, _)| k == "lk.agent.state")
                    .map(|(_, v)| v)?;
                self.states.push(state.clone());
                return Some(state);
            }
            SimOutput::TextStreamOpened { id, options, .. } => {
                self.ids.insert(id, self.streams.len());
                self.streams.push(Stream {
                    topic: options.topic,
                    sender: options.sender,
                    attributes: options.attributes.into_iter().collect(),
                    ..Stream::default()
                });
            }
            SimOutput::TextStreamChunk { id, text, .. } => {
                self.streams[self.ids[&id]].text.push_str(&text);
            }
            SimOutput::TextStreamClosed { id, attributes, .. } => {
                self.streams[self.ids[&id]].trailer = Some(attributes.into_iter().collect());
            }
            SimOutput::Audio { samples, .. } => {
                self.audio_total += samples.len();
                self.audio.extend(samples);
            }
            SimOutput::AudioCleared { .. } => {
                self.cleared += 1;
                self.audio.clear();
            }
            _ => {}
        }
        None
    }

    /// Read outputs until `done` says so.
    async fn until(
        &mut self,
        outputs: &mut UnboundedReceiver<SimOutput>,
        mut done: impl FnMut(&Seen, Option<&str>) -> bool,
    ) {
        next(outputs, |output| {
            let state = self.take(output);
            done(self, state.as_deref()).then_some(())
        })
        .await;
    }

    /// Read outputs until the agent is back to `listening` after
    /// `speaking`.
    async fn reply(&mut self, outputs: &mut UnboundedReceiver<SimOutput>) {
        let mut spoke = false;
        self.until(outputs, |_, state| {
            spoke |= state == Some("speaking");
            spoke && state == Some("listening")
        })
        .await;
    }

    fn transcriptions(&self) -> Vec<&Stream> {
        self.streams
            .iter()
            .filter(|s| s.topic == "lk.transcription")
            .collect()
    }
}

/// `examples/voice` in a sim room (where `alice` is) with `metadata`,
/// under limits reaching `fake` and the ports in `also`, once it listens.
async fn start_voice(
    fake: &FakeOpenAi,
    id: &str,
    metadata: serde_json::Value,
    also: &[u16],
) -> (
    SimRoom,
    UnboundedReceiver<SimOutput>,
    JoinHandle<Outcome>,
    Seen,
) {
    let (room, mut outputs, job) =
        start_with(guests::VOICE, id, &metadata.to_string(), fake.limits(also)).await;
    let mut seen = Seen::default();
    let format = next(&mut outputs, |o| match o {
        SimOutput::AudioPublished { name, format, .. } => Some((name, format)),
        other => {
            seen.take(other);
            None
        }
    })
    .await;
    assert_eq!(format, ("agent-voice".to_owned(), MONO_24K));
    seen.until(&mut outputs, |_, state| state == Some("listening"))
        .await;
    assert_eq!(seen.states, ["initializing", "listening"]);
    (room, outputs, job, seen)
}

/// The metadata pointing `examples/voice`'s OpenAI side at `fake`.
fn openai_metadata(fake: &FakeOpenAi) -> serde_json::Value {
    serde_json::json!({
        "base_url": format!("{}/v1", fake.url()),
        "llm_model": "test-llm",
        "stt_model": "test-stt",
        "tts_model": "test-tts",
        "voice": "test-voice",
        "instructions": "Be brief.",
    })
}

/// The chat completion requests `fake` received, in order.
fn chat_requests(fake: &FakeOpenAi) -> Vec<Recorded> {
    fake.requests()
        .into_iter()
        .filter(|r| r.path == "/v1/chat/completions")
        .collect()
}

async fn ends_well(room: SimRoom, job: JoinHandle<Outcome>) {
    room.close();
    let outcome = tokio::time::timeout(WAIT, job).await.unwrap().unwrap();
    assert_eq!(outcome, Outcome::Success);
}

/// The agent's reply transcription: one stream, sent as the agent, written
/// sentence by sentence and closed final.
fn assert_agent_transcription(stream: &Stream) {
    assert_eq!(stream.sender, None, "the agent's own");
    assert!(stream.attribute("lk.segment_id").is_some());
    assert_eq!(stream.attribute("lk.transcription_final"), Some("false"));
    assert_eq!(stream.text, SENTENCES.join(" "));
    assert!(stream.is_final(), "closed with lk.transcription_final=true");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speech_is_answered_aloud_with_transcriptions_and_states() {
    let speech = SpeechScript::hearing(&[HEARD]);
    let fake = FakeOpenAi::start_voice(Script::stream(DELTAS), speech.clone()).await;
    let (room, mut outputs, job, mut seen) =
        start_voice(&fake, "AJ_voice_openai", openai_metadata(&fake), &[]).await;

    speak(&room, &utterance(800)).await;
    seen.reply(&mut outputs).await;

    assert_eq!(
        seen.states,
        [
            "initializing",
            "listening",
            "thinking",
            "speaking",
            "listening"
        ]
    );
    let transcriptions = seen.transcriptions();
    assert_eq!(transcriptions.len(), 2, "{transcriptions:#?}");
    let user = transcriptions[0];
    assert_eq!(user.sender.as_deref(), Some("alice"), "sent as the user");
    assert_eq!(user.text, HEARD);
    assert!(user.attribute("lk.segment_id").unwrap().starts_with("SG_"));
    assert_eq!(user.attribute("lk.transcription_final"), Some("true"));
    assert!(user.is_final());
    // The microphone track the sim published when alice first spoke.
    assert_eq!(
        user.attribute("lk.transcribed_track_id"),
        Some("TR_alice_microphone")
    );
    assert_agent_transcription(transcriptions[1]);
    assert_eq!(
        transcriptions[1].attribute("lk.transcribed_track_id"),
        Some("TR_agent-AJ_voice_openai_agent-voice"),
        "the agent's own track"
    );
    assert_ne!(
        user.attribute("lk.segment_id"),
        transcriptions[1].attribute("lk.segment_id")
    );

    // One transcription of the utterance: 16 kHz WAV, the tone and the
    // pre-roll before it, not the second of silence after the turn ended.
    let heard = fake.transcriptions();
    assert_eq!(heard.len(), 1);
    assert_eq!(heard[0].model, "test-stt");
    assert_eq!(heard[0].sample_rate, 16_000);
    assert!(
        (800..=1_600).contains(&heard[0].audio_ms),
        "{} ms sent",
        heard[0].audio_ms
    );
    // Speech sentence by sentence, as 24 kHz PCM: the fake's tone for each.
    let speeches = fake.speeches();
    let inputs: Vec<&str> = speeches.iter().map(|s| s.input.as_str()).collect();
    assert_eq!(inputs, SENTENCES);
    assert!(
        speeches.iter().all(|s| s.response_format == "pcm"
            && s.model == "test-tts"
            && s.voice == "test-voice")
    );
    let expected: usize = SENTENCES
        .iter()
        .map(|s| (speech.tone_length(s).as_millis() as usize) * 24)
        .sum();
    assert_eq!(seen.audio_total, expected, "every sample of both sentences");
    assert_eq!(seen.cleared, 0);
    assert!(
        seen.audio.iter().any(|&s| s.abs() > 4_000),
        "a tone, not silence"
    );

    // The chat request: instructions first, then what the user said.
    let chat = chat_requests(&fake);
    assert_eq!(chat.len(), 1);
    assert_eq!(chat[0].body["model"], "test-llm");
    assert_eq!(chat[0].body["stream"], true);
    assert_eq!(
        chat[0].body["messages"],
        serde_json::json!([
            { "role": "system", "content": "Be brief." },
            { "role": "user", "content": HEARD },
        ])
    );
    ends_well(room, job).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speech_while_the_agent_speaks_clears_its_audio() {
    // A long answer: seconds of audio, so the barge-in comes mid-way.
    let long = "This answer goes on for quite a while, so that there is time to interrupt it.";
    let fake = FakeOpenAi::start_voice(
        Script::stream(&[long]),
        SpeechScript::hearing(&[HEARD, "stop"]),
    )
    .await;
    let (room, mut outputs, job, mut seen) =
        start_voice(&fake, "AJ_voice_barge", openai_metadata(&fake), &[]).await;

    speak(&room, &utterance(800)).await;
    seen.until(&mut outputs, |seen, _| seen.audio_total > 0)
        .await;
    // Interrupt: the agent clears its audio and listens; the interruption
    // is the next turn.
    let mut barge = tone(MONO_16K, 440, 400);
    barge.extend(vec![0; 16_000]);
    speak(&room, &barge).await;
    seen.until(&mut outputs, |seen, _| seen.cleared > 0).await;
    let interrupted = seen.audio_total;
    let whole = SpeechScript::default().tone_length(long).as_millis() as usize * 24;
    assert!(
        interrupted < whole,
        "the agent did not play the whole answer: {interrupted} of {whole} samples"
    );
    seen.reply(&mut outputs).await;
    let transcriptions = seen.transcriptions();
    let agent: Vec<&&Stream> = transcriptions
        .iter()
        .filter(|s| s.sender.is_none())
        .collect();
    assert!(
        agent[0].is_final(),
        "the interrupted reply's transcription is closed final"
    );
    assert!(
        long.starts_with(&agent[0].text),
        "it holds what was spoken: {:?}",
        agent[0].text
    );
    let users: Vec<&str> = transcriptions
        .iter()
        .filter(|s| s.sender.is_some())
        .map(|s| s.text.as_str())
        .collect();
    assert_eq!(users, [HEARD, "stop"]);
    assert_eq!(
        seen.states,
        [
            "initializing",
            "listening",
            "thinking",
            "speaking",
            "listening",
            "thinking",
            "speaking",
            "listening"
        ]
    );
    // The second request has the interrupted reply in its history.
    let chat = chat_requests(&fake);
    assert_eq!(chat.len(), 2);
    let messages = chat[1].body["messages"].as_array().unwrap().clone();
    assert_eq!(messages.len(), 4, "{messages:#?}");
    assert_eq!(messages[2]["role"], "assistant");
    assert_eq!(messages[3]["content"], "stop");
    ends_well(room, job).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_chat_is_a_turn() {
    let fake = FakeOpenAi::start_voice(Script::stream(DELTAS), SpeechScript::default()).await;
    let (room, mut outputs, job, mut seen) =
        start_voice(&fake, "AJ_voice_chat", openai_metadata(&fake), &[]).await;

    room.send_text("alice", "lk.chat", "what should I wear?", &[]);
    seen.reply(&mut outputs).await;

    assert!(fake.transcriptions().is_empty(), "nothing to transcribe");
    let transcriptions = seen.transcriptions();
    assert_eq!(transcriptions.len(), 1, "the agent's only");
    assert_agent_transcription(transcriptions[0]);
    let chat = fake.requests();
    let chat = chat
        .iter()
        .find(|r| r.path == "/v1/chat/completions")
        .unwrap();
    assert_eq!(chat.body["messages"][1]["content"], "what should I wear?");
    assert!(seen.audio_total > 0);
    ends_well(room, job).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_recorded_before_the_agent_joined_is_heard() {
    let fake =
        FakeOpenAi::start_voice(Script::stream(DELTAS), SpeechScript::hearing(&[HEARD])).await;
    let (room, mut outputs, job, mut seen) =
        start_voice(&fake, "AJ_voice_preconnect", openai_metadata(&fake), &[]).await;

    // What a client sends on `lk.agent.pre-connect-audio-buffer`: raw
    // s16le at its own rate (24 kHz here), then the live audio goes on.
    let recorded = tone(MONO_24K, 440, 800);
    room.send_bytes(
        "alice",
        SimByteStream {
            topic: "lk.agent.pre-connect-audio-buffer".into(),
            attributes: vec![
                ("sampleRate".into(), "24000".into()),
                ("channels".into(), "1".into()),
            ],
            bytes: recorded.iter().flat_map(|s| s.to_le_bytes()).collect(),
            ..SimByteStream::default()
        },
        &[],
    );
    speak(&room, &vec![0; 16_000]).await;
    seen.reply(&mut outputs).await;

    let heard = fake.transcriptions();
    assert_eq!(heard.len(), 1);
    assert!(heard[0].audio_ms >= 800, "{} ms", heard[0].audio_ms);
    assert_eq!(seen.transcriptions()[0].text, HEARD);
    ends_well(room, job).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deepgram_path_streams_interims_then_the_final() {
    let speech = FakeSpeech::start(SpeechScript::hearing(&[HEARD])).await;
    let fake = FakeOpenAi::start(Script::stream(DELTAS)).await;
    let mut metadata = openai_metadata(&fake);
    metadata["provider"] = "deepgram".into();
    metadata["speech_url"] = speech.url().into();
    metadata["stt_model"] = "nova-3".into();
    metadata["tts_model"] = "aura-2-thalia-en".into();
    let (room, mut outputs, job, mut seen) =
        start_voice(&fake, "AJ_voice_deepgram", metadata, &[speech.port()]).await;

    speak(&room, &utterance(1_500)).await;
    seen.reply(&mut outputs).await;

    let transcriptions = seen.transcriptions();
    let (user, agent): (Vec<&Stream>, Vec<&Stream>) =
        transcriptions.iter().partition(|s| s.sender.is_some());
    let (finals, interims): (Vec<&Stream>, Vec<&Stream>) = user.iter().partition(|s| s.is_final());
    assert!(!interims.is_empty(), "interim transcripts while speaking");
    assert_eq!(finals.len(), 1);
    assert_eq!(finals[0].text, HEARD);
    assert_eq!(finals[0].attribute("lk.transcription_final"), Some("true"));
    for interim in &interims {
        assert_eq!(interim.attribute("lk.transcription_final"), Some("false"));
        assert!(
            HEARD.starts_with(&interim.text),
            "a prefix: {:?}",
            interim.text
        );
    }
    let segment = finals[0].attribute("lk.segment_id");
    assert!(
        user.iter().all(|s| s.attribute("lk.segment_id") == segment),
        "one segment per utterance"
    );
    assert_eq!(agent.len(), 1);
    assert_agent_transcription(agent[0]);
    assert!(seen.audio_total > 0);

    let connections = speech.connections();
    let listen = connections
        .iter()
        .find(|c| c.path.starts_with("/v1/listen"))
        .expect("a listen socket");
    assert!(listen.path.contains("sample_rate=16000") && listen.path.contains("model=nova-3"));
    assert!(listen.audio_in > 0);
    assert!(listen.messages.iter().any(|m| m.contains("Finalize")));
    let speak = connections
        .iter()
        .find(|c| c.path.starts_with("/v1/speak"))
        .expect("a speak socket");
    assert!(speak.path.contains("sample_rate=24000"));
    let spoken: Vec<&String> = speak
        .messages
        .iter()
        .filter(|m| m.contains("\"Speak\""))
        .collect();
    assert_eq!(spoken.len(), 2, "sentence by sentence: {spoken:?}");
    assert!(
        speak
            .messages
            .iter()
            .filter(|m| m.contains("Flush"))
            .count()
            == 2
    );
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.path == "/v1/chat/completions"),
        "speech went to the speech provider"
    );
    ends_well(room, job).await;
}
