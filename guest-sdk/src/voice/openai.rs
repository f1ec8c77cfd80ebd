//! OpenAI-compatible providers: `/audio/transcriptions` ([`OpenAiStt`]),
//! `/chat/completions` streamed as server-sent events ([`OpenAiLlm`]) and
//! `/audio/speech` streamed as raw PCM ([`OpenAiTts`]).
//!
//! Each takes the API's base URL as OpenAI's own SDKs and
//! livekit-plugins-openai do, `/v1` included (`https://api.openai.com/v1`,
//! or a compatible server's). No key: the host adds the operator's
//! (`--credential 'api.openai.com=Authorization: Bearer sk-...'`).
//!
//! Wire details (of OpenAI's API, which compatible servers follow):
//! - transcriptions: `multipart/form-data` with the utterance as a WAV
//!   file (`file`, `audio.wav`), `model` and `response_format=json`;
//!   the answer is `{"text": ...}`;
//! - chat: `{"model", "messages", "stream": true}`; each `data:` event
//!   is a chunk whose `choices[0].delta.content` is the next text, until
//!   `data: [DONE]`;
//! - speech: `{"model", "input", "voice", "response_format": "pcm"}`;
//!   the body is 24 kHz mono s16le, read as it arrives (any content type
//!   is accepted: OpenAI says `application/octet-stream`).

use serde::Deserialize;
use serde_json::json;

use super::history::ChatMessage;
use super::pcm::{S16Decoder, wav};
use super::provider::{
    AudioStream, ChunkStream, Llm, LocalBoxFuture, Stt, TextDeltas, Tts, VoiceError, check_status,
};
use crate::http;

/// The rate of OpenAI's `pcm` speech: 24 kHz.
pub const SPEECH_SAMPLE_RATE: u32 = 24_000;

/// `base` and `path` joined with one slash.
fn endpoint(base: &str, path: &str) -> String {
    format!("{}/{path}", base.trim_end_matches('/'))
}

/// Speech-to-text by `POST {base}/audio/transcriptions`.
#[derive(Debug, Clone)]
pub struct OpenAiStt {
    base_url: String,
    model: String,
    language: Option<String>,
}

impl OpenAiStt {
    /// Transcribe with `model` (for example `whisper-1`) at `base_url`.
    pub fn new(base_url: &str, model: &str) -> Self {
        OpenAiStt {
            base_url: base_url.to_owned(),
            model: model.to_owned(),
            language: None,
        }
    }

    /// Tell the provider the language (ISO-639-1, `en`); by default it
    /// detects it.
    pub fn language(mut self, language: &str) -> Self {
        self.language = Some(language.to_owned());
        self
    }

    async fn request(&self, samples: &[i16], sample_rate: u32) -> Result<String, VoiceError> {
        #[derive(Deserialize)]
        struct Transcription {
            text: String,
        }
        let boundary = format!(
            "agent-host-{:016x}",
            wasip2::random::random::get_random_u64()
        );
        let mut fields = vec![("model", self.model.as_str()), ("response_format", "json")];
        if let Some(language) = &self.language {
            fields.push(("language", language));
        }
        let body = multipart(&boundary, &fields, &wav(samples, sample_rate));
        let response = http::post(&endpoint(&self.base_url, "audio/transcriptions"))
            .header(
                "content-type",
                &format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await?;
        let transcription: Transcription = check_status(response).await?.json().await?;
        Ok(transcription.text.trim().to_owned())
    }
}

impl Stt for OpenAiStt {
    fn transcribe<'a>(
        &'a self,
        samples: &'a [i16],
        sample_rate: u32,
    ) -> LocalBoxFuture<'a, Result<String, VoiceError>> {
        Box::pin(self.request(samples, sample_rate))
    }
}

/// A `multipart/form-data` body: text `fields`, then `wav` as the `file`
/// part.
fn multipart(boundary: &str, fields: &[(&str, &str)], wav: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(wav.len() + 512);
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\ncontent-disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"audio.wav\"\r\ncontent-type: audio/wav\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(wav);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

/// A streamed chat completion by `POST {base}/chat/completions`.
#[derive(Debug, Clone)]
pub struct OpenAiLlm {
    base_url: String,
    model: String,
}

impl OpenAiLlm {
    /// Complete with `model` (for example `gpt-4o-mini`) at `base_url`.
    pub fn new(base_url: &str, model: &str) -> Self {
        OpenAiLlm {
            base_url: base_url.to_owned(),
            model: model.to_owned(),
        }
    }

    /// The streamed answer to `messages`, delta by delta.
    pub async fn stream(&self, messages: &[ChatMessage]) -> Result<ChatDeltas, VoiceError> {
        let response = http::post(&endpoint(&self.base_url, "chat/completions"))
            .json(&json!({
                "model": self.model,
                "messages": messages,
                "stream": true,
            }))
            .send()
            .await?;
        Ok(ChatDeltas {
            events: check_status(response).await?.sse(),
            done: false,
        })
    }
}

impl Llm for OpenAiLlm {
    fn chat<'a>(
        &'a self,
        messages: &'a [ChatMessage],
    ) -> LocalBoxFuture<'a, Result<TextDeltas<'a>, VoiceError>> {
        Box::pin(async move {
            let deltas: TextDeltas<'a> = Box::new(self.stream(messages).await?);
            Ok(deltas)
        })
    }
}

/// The text deltas of a streamed completion, from [`OpenAiLlm::stream`].
#[derive(Debug)]
pub struct ChatDeltas {
    events: http::SseStream,
    done: bool,
}

impl ChatDeltas {
    /// The next non-empty delta; `None` after `[DONE]`, the body's end or
    /// an error. A `data:` event that is not a completion chunk is logged
    /// and skipped.
    pub async fn next_delta(&mut self) -> Option<Result<String, VoiceError>> {
        #[derive(Deserialize)]
        struct Chunk {
            choices: Vec<Choice>,
        }
        #[derive(Deserialize)]
        struct Choice {
            delta: Delta,
        }
        #[derive(Deserialize)]
        struct Delta {
            content: Option<String>,
        }
        while !self.done {
            let data = match self.events.next().await {
                None => break,
                Some(Err(err)) => {
                    self.done = true;
                    return Some(Err(err.into()));
                }
                Some(Ok(event)) => event.data,
            };
            if data == "[DONE]" {
                break;
            }
            match serde_json::from_str::<Chunk>(&data) {
                Ok(chunk) => {
                    let delta = chunk.choices.into_iter().find_map(|c| c.delta.content);
                    if let Some(text) = delta.filter(|t| !t.is_empty()) {
                        return Some(Ok(text));
                    }
                }
                Err(err) => crate::warn!("a chunk that is not a completion: {err}"),
            }
        }
        self.done = true;
        None
    }
}

impl ChunkStream<String> for ChatDeltas {
    fn next(&mut self) -> LocalBoxFuture<'_, Option<Result<String, VoiceError>>> {
        Box::pin(self.next_delta())
    }
}

/// Text-to-speech by `POST {base}/audio/speech` with `response_format:
/// pcm`.
#[derive(Debug, Clone)]
pub struct OpenAiTts {
    base_url: String,
    model: String,
    voice: String,
}

impl OpenAiTts {
    /// Speak with `model` (for example `tts-1`) in `voice` (`alloy`) at
    /// `base_url`.
    pub fn new(base_url: &str, model: &str, voice: &str) -> Self {
        OpenAiTts {
            base_url: base_url.to_owned(),
            model: model.to_owned(),
            voice: voice.to_owned(),
        }
    }

    async fn request(&self, text: &str) -> Result<PcmBody, VoiceError> {
        let response = http::post(&endpoint(&self.base_url, "audio/speech"))
            .json(&json!({
                "model": self.model,
                "input": text,
                "voice": self.voice,
                "response_format": "pcm",
            }))
            .send()
            .await?;
        Ok(PcmBody {
            response: check_status(response).await?,
            decoder: S16Decoder::new(),
        })
    }
}

impl Tts for OpenAiTts {
    fn sample_rate(&self) -> u32 {
        SPEECH_SAMPLE_RATE
    }

    fn synthesize<'a>(
        &'a self,
        text: &str,
    ) -> LocalBoxFuture<'a, Result<AudioStream<'a>, VoiceError>> {
        let text = text.to_owned();
        Box::pin(async move {
            let body: AudioStream<'a> = Box::new(self.request(&text).await?);
            Ok(body)
        })
    }
}

/// A streamed PCM body.
struct PcmBody {
    response: http::Response,
    decoder: S16Decoder,
}

impl ChunkStream<Vec<i16>> for PcmBody {
    fn next(&mut self) -> LocalBoxFuture<'_, Option<Result<Vec<i16>, VoiceError>>> {
        Box::pin(async move {
            loop {
                match self.response.chunk().await {
                    Ok(Some(bytes)) => {
                        let samples = self.decoder.feed(&bytes);
                        if !samples.is_empty() {
                            return Some(Ok(samples));
                        }
                    }
                    Ok(None) => return None,
                    Err(err) => return Some(Err(err.into())),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_join_with_one_slash() {
        assert_eq!(
            endpoint("http://127.0.0.1:9/v1/", "audio/speech"),
            "http://127.0.0.1:9/v1/audio/speech"
        );
        assert_eq!(
            endpoint("https://api.openai.com/v1", "chat/completions"),
            "https://api.openai.com/v1/chat/completions"
        );
    }

    #[test]
    fn multipart_has_the_fields_then_the_file() {
        let body = multipart("XyZ", &[("model", "whisper-1")], b"RIFFdata");
        let text = String::from_utf8(body).unwrap();
        assert_eq!(
            text,
            "--XyZ\r\ncontent-disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n\
             --XyZ\r\ncontent-disposition: form-data; name=\"file\"; filename=\"audio.wav\"\r\n\
             content-type: audio/wav\r\n\r\nRIFFdata\r\n--XyZ--\r\n"
        );
    }
}
