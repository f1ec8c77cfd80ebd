//! The providers behind the pipeline: speech-to-text ([`Stt`]), the
//! language model ([`Llm`]) and text-to-speech ([`Tts`]), as traits, so
//! that a session runs on any of them ([`super::openai`] and
//! [`super::deepgram`] implement them).
//!
//! The traits are object-safe (their futures are boxed), so a session
//! holds `Rc<dyn Stt>` and an agent picks providers at run time from its
//! configuration. A boxed future per request or chunk costs nothing next
//! to the network round trip it waits for.
//!
//! Keys: none of them takes an API key. The operator gives the host one
//! per destination (`--credential 'api.openai.com=Authorization: Bearer
//! sk-...'`), and the host adds it to each request; the guest never holds
//! it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use super::history::ChatMessage;
use crate::{RoomError, http, websocket};

/// A boxed future that need not be `Send` (a guest has one thread).
pub type LocalBoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Why a provider or the pipeline failed.
#[derive(Debug, Clone)]
pub enum VoiceError {
    /// The HTTP request failed (denied by the host, connection, timeout).
    Http(http::Error),
    /// The provider answered with an error status; the start of its body.
    Status {
        /// The HTTP status.
        status: u16,
        /// Up to 200 characters of the body (providers explain there).
        body: String,
    },
    /// The provider's WebSocket failed.
    WebSocket(websocket::Error),
    /// The provider sent something that is not what its protocol says.
    Protocol(String),
    /// A room action failed.
    Room(RoomError),
}

impl fmt::Display for VoiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VoiceError::Http(err) => err.fmt(f),
            VoiceError::Status { status, body } => write!(f, "{status} {body}"),
            VoiceError::WebSocket(err) => err.fmt(f),
            VoiceError::Protocol(why) => write!(f, "provider protocol: {why}"),
            VoiceError::Room(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for VoiceError {}

impl From<http::Error> for VoiceError {
    fn from(error: http::Error) -> Self {
        VoiceError::Http(error)
    }
}

impl From<websocket::Error> for VoiceError {
    fn from(error: websocket::Error) -> Self {
        VoiceError::WebSocket(error)
    }
}

impl From<RoomError> for VoiceError {
    fn from(error: RoomError) -> Self {
        VoiceError::Room(error)
    }
}

/// Lets `?` turn a [`VoiceError`] into the `Err(String)` of a job's `run`.
impl From<VoiceError> for String {
    fn from(error: VoiceError) -> Self {
        error.to_string()
    }
}

/// Results arriving one after another: an LLM's text deltas, a TTS
/// provider's PCM chunks, a streaming recognizer's transcripts.
pub trait ChunkStream<T> {
    /// The next chunk; `None` at the end (after an error, too).
    fn next(&mut self) -> LocalBoxFuture<'_, Option<Result<T, VoiceError>>>;
}

/// An LLM's answer, delta by delta, from [`Llm::chat`].
pub type TextDeltas<'a> = Box<dyn ChunkStream<String> + 'a>;

/// Synthesized speech, chunk by chunk, from [`Tts::synthesize`].
pub type AudioStream<'a> = Box<dyn ChunkStream<Vec<i16>> + 'a>;

/// What a streaming recognizer heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SttEvent {
    /// The utterance so far, not final: it may still change.
    Interim(String),
    /// The whole utterance, final (after [`SttStream::finalize`]).
    Final(String),
}

/// Speech-to-text.
pub trait Stt {
    /// Transcribe one utterance: mono samples at `sample_rate`.
    fn transcribe<'a>(
        &'a self,
        samples: &'a [i16],
        sample_rate: u32,
    ) -> LocalBoxFuture<'a, Result<String, VoiceError>>;

    /// Open a streaming recognition of mono audio at `sample_rate`, if the
    /// provider streams (default: it does not, and the session sends
    /// each utterance to [`transcribe`](Self::transcribe)).
    fn stream(
        &self,
        sample_rate: u32,
    ) -> Option<LocalBoxFuture<'_, Result<Box<dyn SttStream>, VoiceError>>> {
        let _ = sample_rate;
        None
    }
}

/// A streaming recognition in progress, from [`Stt::stream`].
pub trait SttStream {
    /// Send the next samples of the utterance.
    fn send<'a>(&'a self, samples: &'a [i16]) -> LocalBoxFuture<'a, Result<(), VoiceError>>;

    /// The utterance ended: ask for its final transcript.
    fn finalize(&self) -> LocalBoxFuture<'_, Result<(), VoiceError>>;

    /// The next transcript; `None` once the stream has ended.
    fn recv(&self) -> LocalBoxFuture<'_, Option<Result<SttEvent, VoiceError>>>;
}

/// A language model that streams its answer.
pub trait Llm {
    /// The answer to `messages` (instructions first), as text deltas.
    fn chat<'a>(
        &'a self,
        messages: &'a [ChatMessage],
    ) -> LocalBoxFuture<'a, Result<TextDeltas<'a>, VoiceError>>;
}

/// Text-to-speech that streams PCM as it is synthesized.
pub trait Tts {
    /// The rate of the mono samples it produces (what the session
    /// publishes the agent's track in).
    fn sample_rate(&self) -> u32;

    /// Speak `text`: mono samples at [`sample_rate`](Self::sample_rate),
    /// chunk by chunk as they arrive. Dropping the stream stops the
    /// synthesis (barge-in).
    fn synthesize<'a>(
        &'a self,
        text: &str,
    ) -> LocalBoxFuture<'a, Result<AudioStream<'a>, VoiceError>>;
}

/// Up to 200 characters of an error body, as [`VoiceError::Status`] keeps
/// it.
pub(crate) fn status_error(status: u16, body: &str) -> VoiceError {
    VoiceError::Status {
        status,
        body: body.chars().take(200).collect(),
    }
}

/// The body of a response that is not `200`, as a [`VoiceError`].
pub(crate) async fn check_status(response: http::Response) -> Result<http::Response, VoiceError> {
    if response.status() == 200 {
        return Ok(response);
    }
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    Err(status_error(status, &body))
}
