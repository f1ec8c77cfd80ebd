//! Deepgram-compatible streaming speech over WebSockets: speech-to-text
//! on `/v1/listen` ([`DeepgramStt`]) and text-to-speech on `/v1/speak`
//! ([`DeepgramTts`]), as Deepgram's API speaks them.
//!
//! Each takes the API's base URL, `wss://api.deepgram.com` or a
//! compatible server's `ws://HOST:PORT`. No key: the host adds the
//! operator's (`--credential 'api.deepgram.com=Authorization: Token
//! ...'`).
//!
//! Speech-to-text: one socket per utterance (opened when speech starts,
//! closed after its final transcript), so an idle conversation holds no
//! socket and needs no keep-alives. Audio goes as binary frames of s16le;
//! `{"type":"Finalize"}` at the end of the turn asks for the final
//! transcript. `Results` with `is_final` accumulate; the utterance is
//! final with `speech_final` or `from_finalize`.
//!
//! Text-to-speech: one socket for the session, opened at the first
//! sentence. Each sentence is `{"type":"Speak"}` then `{"type":"Flush"}`;
//! its audio is the binary frames up to the matching `Flushed`. A
//! sentence whose stream is dropped before that (barge-in) leaves the
//! socket dirty: the next one sends `{"type":"Clear"}` first and skips
//! everything up to `Cleared`.

use std::cell::{Cell, RefCell};

use serde::Deserialize;
use serde_json::json;

use super::pcm::S16Decoder;
use super::provider::{
    AudioStream, ChunkStream, LocalBoxFuture, Stt, SttEvent, SttStream, Tts, VoiceError,
};
use crate::websocket::{Message, WebSocket};

/// Speech-to-text on `{base}/v1/listen`.
#[derive(Debug, Clone)]
pub struct DeepgramStt {
    base_url: String,
    model: String,
}

impl DeepgramStt {
    /// Recognize with `model` (for example `nova-3`) at `base_url`.
    pub fn new(base_url: &str, model: &str) -> Self {
        DeepgramStt {
            base_url: base_url.to_owned(),
            model: model.to_owned(),
        }
    }

    /// The listen URL for mono s16le at `sample_rate`, with interim
    /// results.
    fn url(&self, sample_rate: u32) -> String {
        format!(
            "{}/v1/listen?model={}&encoding=linear16&sample_rate={sample_rate}&channels=1&interim_results=true",
            self.base_url.trim_end_matches('/'),
            self.model
        )
    }

    async fn open(&self, sample_rate: u32) -> Result<Listen, VoiceError> {
        Ok(Listen {
            socket: WebSocket::connect(&self.url(sample_rate)).await?,
            transcripts: RefCell::new(Transcripts::default()),
        })
    }

    async fn transcribe_once(
        &self,
        samples: &[i16],
        sample_rate: u32,
    ) -> Result<String, VoiceError> {
        let listen = self.open(sample_rate).await?;
        // 100 ms frames, as a live stream would send them.
        for chunk in samples.chunks(sample_rate as usize / 10) {
            listen.send_samples(chunk).await?;
        }
        listen.send_control("Finalize").await?;
        while let Some(event) = listen.next_event().await {
            if let SttEvent::Final(text) = event? {
                let _ = listen.send_control("CloseStream").await;
                return Ok(text);
            }
        }
        Err(VoiceError::Protocol(
            "the socket closed before the final transcript".into(),
        ))
    }
}

impl Stt for DeepgramStt {
    fn transcribe<'a>(
        &'a self,
        samples: &'a [i16],
        sample_rate: u32,
    ) -> LocalBoxFuture<'a, Result<String, VoiceError>> {
        Box::pin(self.transcribe_once(samples, sample_rate))
    }

    fn stream(
        &self,
        sample_rate: u32,
    ) -> Option<LocalBoxFuture<'_, Result<Box<dyn SttStream>, VoiceError>>> {
        Some(Box::pin(async move {
            let stream: Box<dyn SttStream> = Box::new(self.open(sample_rate).await?);
            Ok(stream)
        }))
    }
}

/// One utterance's recognition socket.
struct Listen {
    socket: WebSocket,
    transcripts: RefCell<Transcripts>,
}

/// The utterance's transcript from Deepgram's `Results`: final segments
/// accumulate, an interim one is shown after them.
#[derive(Debug, Default)]
struct Transcripts {
    /// The utterance's final segments so far.
    finals: String,
}

/// A `Results` message, the fields the client reads.
#[derive(Deserialize)]
struct Results {
    #[serde(default)]
    is_final: bool,
    #[serde(default)]
    speech_final: bool,
    #[serde(default)]
    from_finalize: bool,
    channel: Channel,
}

#[derive(Deserialize)]
struct Channel {
    alternatives: Vec<Alternative>,
}

#[derive(Deserialize)]
struct Alternative {
    transcript: String,
}

/// `a` and `b` joined by a space, either may be empty.
fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_owned(),
        (_, true) => a.to_owned(),
        _ => format!("{a} {b}"),
    }
}

impl Listen {
    async fn send_samples(&self, samples: &[i16]) -> Result<(), VoiceError> {
        let bytes = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        Ok(self.socket.send(Message::Binary(bytes)).await?)
    }

    async fn send_control(&self, kind: &str) -> Result<(), VoiceError> {
        Ok(self
            .socket
            .send_text(&json!({ "type": kind }).to_string())
            .await?)
    }

    async fn next_event(&self) -> Option<Result<SttEvent, VoiceError>> {
        loop {
            let text = match self.socket.recv().await? {
                Ok(Message::Text(text)) => text,
                Ok(Message::Binary(_)) => continue,
                Err(err) => return Some(Err(err.into())),
            };
            if let Some(event) = self.transcripts.borrow_mut().message(&text) {
                return Some(event);
            }
        }
    }
}

impl Transcripts {
    /// What a text message says, if it is a transcript.
    fn message(&mut self, text: &str) -> Option<Result<SttEvent, VoiceError>> {
        let value: serde_json::Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(err) => return Some(Err(VoiceError::Protocol(format!("not JSON: {err}")))),
        };
        if value["type"] != "Results" {
            return None; // Metadata, SpeechStarted, UtteranceEnd
        }
        let results: Results = match serde_json::from_value(value) {
            Ok(results) => results,
            Err(err) => return Some(Err(VoiceError::Protocol(format!("Results: {err}")))),
        };
        let transcript = results
            .channel
            .alternatives
            .first()
            .map(|a| a.transcript.trim())
            .unwrap_or_default();
        let finals = &mut self.finals;
        if results.is_final {
            *finals = join(finals, transcript);
            if results.speech_final || results.from_finalize {
                return Some(Ok(SttEvent::Final(std::mem::take(finals))));
            }
            return (!finals.is_empty()).then(|| Ok(SttEvent::Interim(finals.clone())));
        }
        let interim = join(finals, transcript);
        (!interim.is_empty()).then_some(Ok(SttEvent::Interim(interim)))
    }
}

impl SttStream for Listen {
    fn send<'a>(&'a self, samples: &'a [i16]) -> LocalBoxFuture<'a, Result<(), VoiceError>> {
        Box::pin(self.send_samples(samples))
    }

    fn finalize(&self) -> LocalBoxFuture<'_, Result<(), VoiceError>> {
        Box::pin(self.send_control("Finalize"))
    }

    fn recv(&self) -> LocalBoxFuture<'_, Option<Result<SttEvent, VoiceError>>> {
        Box::pin(self.next_event())
    }
}

/// Text-to-speech on `{base}/v1/speak`, one socket per session.
#[derive(Debug)]
pub struct DeepgramTts {
    base_url: String,
    model: String,
    sample_rate: u32,
    socket: RefCell<Option<std::rc::Rc<WebSocket>>>,
    /// A sentence's audio was not read to its `Flushed`: clear first.
    dirty: Cell<bool>,
}

impl DeepgramTts {
    /// Speak with `model` (a voice, for example `aura-2-thalia-en`) at
    /// `base_url`, as 24 kHz mono (what the session publishes).
    pub fn new(base_url: &str, model: &str) -> Self {
        DeepgramTts {
            base_url: base_url.to_owned(),
            model: model.to_owned(),
            sample_rate: super::openai::SPEECH_SAMPLE_RATE,
            socket: RefCell::new(None),
            dirty: Cell::new(false),
        }
    }

    fn url(&self) -> String {
        format!(
            "{}/v1/speak?model={}&encoding=linear16&sample_rate={}",
            self.base_url.trim_end_matches('/'),
            self.model,
            self.sample_rate
        )
    }

    /// The session's socket, opened (again, after it closed) as needed.
    async fn socket(&self) -> Result<std::rc::Rc<WebSocket>, VoiceError> {
        if let Some(socket) = self.socket.borrow().as_ref() {
            return Ok(socket.clone());
        }
        let socket = std::rc::Rc::new(WebSocket::connect(&self.url()).await?);
        self.dirty.set(false);
        *self.socket.borrow_mut() = Some(socket.clone());
        Ok(socket)
    }

    async fn speak(&self, text: &str) -> Result<Speech<'_>, VoiceError> {
        let socket = self.socket().await?;
        let result = async {
            if self.dirty.get() {
                socket
                    .send_text(&json!({ "type": "Clear" }).to_string())
                    .await?;
                loop {
                    match socket.recv().await {
                        Some(Ok(Message::Text(text))) if text.contains("\"Cleared\"") => break,
                        Some(Ok(_)) => {}
                        Some(Err(err)) => return Err(err.into()),
                        None => return Err(VoiceError::Protocol("closed before Cleared".into())),
                    }
                }
                self.dirty.set(false);
            }
            socket
                .send_text(&json!({ "type": "Speak", "text": text }).to_string())
                .await?;
            socket
                .send_text(&json!({ "type": "Flush" }).to_string())
                .await?;
            Ok::<_, VoiceError>(())
        }
        .await;
        if let Err(err) = result {
            // A broken socket is opened again for the next sentence.
            self.socket.borrow_mut().take();
            return Err(err);
        }
        self.dirty.set(true);
        Ok(Speech {
            tts: self,
            socket,
            decoder: S16Decoder::new(),
            done: false,
        })
    }
}

impl Tts for DeepgramTts {
    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn synthesize<'a>(
        &'a self,
        text: &str,
    ) -> LocalBoxFuture<'a, Result<AudioStream<'a>, VoiceError>> {
        let text = text.to_owned();
        Box::pin(async move {
            let speech: AudioStream<'a> = Box::new(self.speak(&text).await?);
            Ok(speech)
        })
    }
}

/// One sentence's audio, up to its `Flushed`.
struct Speech<'a> {
    tts: &'a DeepgramTts,
    socket: std::rc::Rc<WebSocket>,
    decoder: S16Decoder,
    done: bool,
}

impl ChunkStream<Vec<i16>> for Speech<'_> {
    fn next(&mut self) -> LocalBoxFuture<'_, Option<Result<Vec<i16>, VoiceError>>> {
        Box::pin(async move {
            while !self.done {
                match self.socket.recv().await {
                    Some(Ok(Message::Binary(bytes))) => {
                        let samples = self.decoder.feed(&bytes);
                        if !samples.is_empty() {
                            return Some(Ok(samples));
                        }
                    }
                    Some(Ok(Message::Text(text))) => {
                        if text.contains("\"Flushed\"") {
                            self.done = true;
                            self.tts.dirty.set(false);
                        } else if text.contains("\"Warning\"") {
                            crate::warn!("speech provider: {text}");
                        }
                    }
                    Some(Err(err)) => {
                        self.done = true;
                        self.tts.socket.borrow_mut().take();
                        return Some(Err(err.into()));
                    }
                    None => {
                        self.done = true;
                        self.tts.socket.borrow_mut().take();
                        return Some(Err(VoiceError::Protocol(
                            "the speech socket closed mid-sentence".into(),
                        )));
                    }
                }
            }
            None
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_carry_the_audio_format() {
        let stt = DeepgramStt::new("ws://127.0.0.1:9/", "nova-3");
        assert_eq!(
            stt.url(16_000),
            "ws://127.0.0.1:9/v1/listen?model=nova-3&encoding=linear16&sample_rate=16000&channels=1&interim_results=true"
        );
        let tts = DeepgramTts::new("wss://api.deepgram.com", "aura-2-thalia-en");
        assert_eq!(
            tts.url(),
            "wss://api.deepgram.com/v1/speak?model=aura-2-thalia-en&encoding=linear16&sample_rate=24000"
        );
    }

    fn results(transcript: &str, is_final: bool, speech_final: bool) -> String {
        json!({
            "type": "Results", "channel_index": [0, 1], "duration": 0.3, "start": 0.0,
            "is_final": is_final, "speech_final": speech_final, "from_finalize": false,
            "channel": { "alternatives": [{ "transcript": transcript, "confidence": 0.99 }] },
        })
        .to_string()
    }

    #[test]
    fn interims_then_finals_make_the_utterance() {
        let mut t = Transcripts::default();
        let event = |t: &mut Transcripts, m: &str| t.message(m).map(Result::unwrap);
        assert_eq!(
            event(&mut t, r#"{"type":"Metadata","request_id":"x"}"#),
            None
        );
        assert_eq!(
            event(&mut t, &results("hello", false, false)),
            Some(SttEvent::Interim("hello".into()))
        );
        assert_eq!(
            event(&mut t, &results("hello there", true, false)),
            Some(SttEvent::Interim("hello there".into()))
        );
        assert_eq!(
            event(&mut t, &results("how", false, false)),
            Some(SttEvent::Interim("hello there how".into()))
        );
        assert_eq!(
            event(&mut t, &results("", false, false)),
            Some(SttEvent::Interim("hello there".into()))
        );
        assert_eq!(
            event(&mut t, &results("how are you", true, true)),
            Some(SttEvent::Final("hello there how are you".into()))
        );
        // The next utterance starts empty.
        assert_eq!(
            event(&mut t, &results("bye", true, true)),
            Some(SttEvent::Final("bye".into()))
        );
        assert!(matches!(
            t.message("not json"),
            Some(Err(VoiceError::Protocol(_)))
        ));
    }

    #[test]
    fn joins() {
        assert_eq!(join("", "b"), "b");
        assert_eq!(join("a", ""), "a");
        assert_eq!(join("a", "b"), "a b");
    }
}
