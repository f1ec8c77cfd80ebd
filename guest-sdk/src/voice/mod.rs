//! A voice pipeline: a participant speaks, the agent transcribes, thinks
//! and answers aloud, stops when interrupted, and publishes what
//! LiveKit's frontends show (its state, both sides' transcriptions).
//!
//! [`VoiceSession`] composes it in a few lines from three providers
//! behind traits ([`Stt`], [`Llm`], [`Tts`]):
//! - OpenAI-compatible ones ([`openai`]): `/v1/audio/transcriptions`,
//!   `/v1/chat/completions` streamed, `/v1/audio/speech` streamed PCM;
//! - Deepgram-compatible streaming speech over WebSockets ([`deepgram`]):
//!   `/v1/listen` (interim transcripts while the user speaks) and
//!   `/v1/speak`.
//!
//! The parts, each its own module and usable alone: [`vad`] (energy
//! voice-activity detection), [`turn`] (end of turn), [`sentences`] (an
//! LLM's stream cut into sentences for speech), [`history`] (the bounded
//! conversation), [`pcm`] (WAV, s16le, resampling).
//!
//! Keys are never in the guest: the operator gives the host one per
//! provider (`--credential 'api.openai.com=Authorization: Bearer sk-...'`)
//! and allows the destination (`--allow-http`); the host adds the key to
//! each request and WebSocket upgrade.

pub mod deepgram;
pub mod history;
pub mod openai;
pub mod pcm;
mod player;
mod provider;
mod reply;
pub mod sentences;
mod session;
pub mod turn;
pub mod vad;

pub use deepgram::{DeepgramStt, DeepgramTts};
pub use history::{ChatMessage, History, Role};
pub use openai::{OpenAiLlm, OpenAiStt, OpenAiTts};
pub use player::LEAD as PLAYBACK_LEAD;
pub use provider::{
    AudioStream, ChunkStream, Llm, LocalBoxFuture, Stt, SttEvent, SttStream, TextDeltas, Tts,
    VoiceError,
};
pub use session::{
    AgentState, INPUT_RATE, MAX_UTTERANCE, SEGMENT_ID, STATE_ATTRIBUTE, TRACK_NAME,
    TRANSCRIBED_TRACK_ID, TRANSCRIPTION_FINAL, VoiceSession, VoiceSessionBuilder,
};
pub use turn::{TurnConfig, TurnDetector};
pub use vad::{Vad, VadConfig, VadEvent};
