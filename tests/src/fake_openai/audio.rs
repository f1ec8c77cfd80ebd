//! The audio endpoints, as OpenAI answers them, from the fake's
//! [`SpeechScript`].
//!
//! - `POST /v1/audio/transcriptions` (multipart: `file`, `model`, optional
//!   `language`, `response_format`): the `file` part must be a RIFF/WAVE
//!   PCM s16 file, else `400` with OpenAI's error body; the answer is
//!   `{"text": NEXT}`, the next scripted transcript (with `language` and
//!   `duration` too for `verbose_json`, what livekit-plugins-openai asks
//!   whisper-1 for).
//! - `POST /v1/audio/speech` (JSON `model`, `input`, `voice`,
//!   `response_format`): after the script's `first_byte_delay`, the tone
//!   for `input` at 24 kHz s16le mono in 100 ms chunks, as fast as the
//!   client reads. `response_format` `pcm` (`content-type: audio/pcm`) is
//!   raw PCM; `wav` is the same PCM behind a WAVE header (what a client
//!   that decodes containers gets); anything else is `400`: the fake has
//!   no encoder, and a silent wrong answer would fail far from the cause.

use std::convert::Infallible;

use bytes::Bytes;
use hyper::{HeaderMap, Response};

use super::{Body, State, error, respond};
use crate::speech_script::{chunk_bytes, pcm_ms, tone};

/// OpenAI's text-to-speech output rate.
const SPEECH_RATE: u32 = 24_000;

/// A transcription request the fake answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcription {
    /// The `model` part.
    pub model: String,
    /// The `language` part, if sent.
    pub language: Option<String>,
    /// The `response_format` part, if sent.
    pub response_format: Option<String>,
    /// The WAVE file's sample rate.
    pub sample_rate: u32,
    /// How much audio the file held.
    pub audio_ms: u64,
    /// What the fake answered.
    pub text: String,
}

/// A speech request the fake answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Speech {
    /// `model`.
    pub model: String,
    /// `input`, the text to speak.
    pub input: String,
    /// `voice`.
    pub voice: String,
    /// `response_format` (OpenAI's default, `mp3`, when absent).
    pub response_format: String,
}

/// Answers a transcription request.
pub(super) async fn transcribe(headers: &HeaderMap, body: Bytes, state: &State) -> Response<Body> {
    let boundary = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| multer::parse_boundary(v).ok());
    let Some(boundary) = boundary else {
        return error(
            400,
            "expected content-type multipart/form-data with a boundary",
        );
    };
    let body = futures::stream::once(async move { Ok::<_, Infallible>(body) });
    let mut form = multer::Multipart::new(body, boundary);
    let (mut model, mut language, mut response_format, mut wav) = (None, None, None, None);
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return error(400, &format!("malformed multipart body: {e}")),
        };
        let name = field.name().unwrap_or_default().to_owned();
        let Ok(value) = field.bytes().await else {
            return error(400, &format!("malformed multipart part {name:?}"));
        };
        let text = || String::from_utf8_lossy(&value).into_owned();
        match name.as_str() {
            "model" => model = Some(text()),
            "language" => language = Some(text()),
            "response_format" => response_format = Some(text()),
            "file" => wav = Some(value),
            _ => {}
        }
    }
    let Some(model) = model else {
        return error(400, "you must provide a model parameter");
    };
    let Some(wav) = wav else {
        return error(400, "you must provide a file parameter");
    };
    let format = match Wave::parse(&wav) {
        Ok(format) => format,
        Err(why) => return error(400, &format!("the file is not a RIFF/WAVE PCM file: {why}")),
    };
    let text = state.transcripts.next();
    let audio_ms = pcm_ms(format.data_bytes, format.sample_rate, format.channels);
    state.transcriptions.lock().unwrap().push(Transcription {
        model,
        language,
        response_format: response_format.clone(),
        sample_rate: format.sample_rate,
        audio_ms,
        text: text.clone(),
    });
    let mut json = serde_json::json!({ "text": text });
    // What `verbose_json` adds that clients read (whisper-1's format).
    if response_format.as_deref() == Some("verbose_json") {
        json["language"] = "english".into();
        json["duration"] = (audio_ms as f64 / 1000.0).into();
    }
    let json = json.to_string();
    let (mut tx, body) = Body::new(1);
    tokio::spawn(async move { tx.send_data(Bytes::from(json)).await });
    respond(200, "application/json", body)
}

/// Answers a speech request.
pub(super) fn speak(body: &[u8], state: &State) -> Response<Body> {
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(body) else {
        return error(400, "the body is not JSON");
    };
    let field = |name: &str| request[name].as_str().map(str::to_owned);
    let Some(input) = field("input") else {
        return error(400, "you must provide an input parameter");
    };
    let response_format = field("response_format").unwrap_or_else(|| "mp3".to_owned());
    let content_type = match response_format.as_str() {
        "pcm" => "audio/pcm",
        "wav" => "audio/wav",
        other => {
            return error(
                400,
                &format!("the fake answers response_format pcm or wav, not {other:?}"),
            );
        }
    };
    let pcm = tone(SPEECH_RATE, state.speech.tone_length(&input));
    let header = (response_format == "wav").then(|| Wave::header(SPEECH_RATE, pcm.len()));
    state.speeches.lock().unwrap().push(Speech {
        model: field("model").unwrap_or_default(),
        input,
        voice: field("voice").unwrap_or_default(),
        response_format,
    });
    let delay = state.speech.first_byte_delay;
    let (mut tx, body) = Body::new(2);
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        if let Some(header) = header
            && tx.send_data(Bytes::from(header)).await.is_err()
        {
            return;
        }
        let pcm = Bytes::from(pcm);
        let step = chunk_bytes(SPEECH_RATE);
        for start in (0..pcm.len()).step_by(step) {
            let end = (start + step).min(pcm.len());
            if tx.send_data(pcm.slice(start..end)).await.is_err() {
                return;
            }
        }
    });
    respond(200, content_type, body)
}

/// What a RIFF/WAVE PCM s16 file holds.
struct Wave {
    sample_rate: u32,
    channels: u16,
    data_bytes: usize,
}

impl Wave {
    /// Reads the `fmt ` and `data` chunks of a RIFF/WAVE file.
    fn parse(file: &[u8]) -> Result<Self, &'static str> {
        if file.len() < 12 || &file[..4] != b"RIFF" || &file[8..12] != b"WAVE" {
            return Err("no RIFF/WAVE header");
        }
        let u16_at = |at: usize| u16::from_le_bytes([file[at], file[at + 1]]);
        let u32_at = |at: usize| u32::from_le_bytes(file[at..at + 4].try_into().unwrap());
        let (mut format, mut at) = (None, 12);
        while at + 8 <= file.len() {
            let (id, size) = (&file[at..at + 4], u32_at(at + 4) as usize);
            let body = at + 8;
            match id {
                b"fmt " if size >= 16 && body + 16 <= file.len() => {
                    if u16_at(body) != 1 || u16_at(body + 14) != 16 {
                        return Err("not 16-bit integer PCM");
                    }
                    format = Some((u16_at(body + 2), u32_at(body + 4)));
                }
                b"data" => {
                    let Some((channels, sample_rate)) = format else {
                        return Err("data before fmt");
                    };
                    if channels == 0 || sample_rate == 0 {
                        return Err("no channels or no sample rate");
                    }
                    return Ok(Self {
                        sample_rate,
                        channels,
                        data_bytes: size.min(file.len() - body),
                    });
                }
                _ => {}
            }
            at = body + size + size % 2;
        }
        Err("no data chunk")
    }

    /// The 44-byte header of a mono s16 file of `data_bytes` at `rate`.
    fn header(rate: u32, data_bytes: usize) -> Vec<u8> {
        let data = data_bytes as u32;
        let mut header = Vec::with_capacity(44);
        header.extend_from_slice(b"RIFF");
        header.extend_from_slice(&(36 + data).to_le_bytes());
        header.extend_from_slice(b"WAVEfmt ");
        header.extend_from_slice(&16u32.to_le_bytes());
        header.extend_from_slice(&1u16.to_le_bytes()); // PCM
        header.extend_from_slice(&1u16.to_le_bytes()); // mono
        header.extend_from_slice(&rate.to_le_bytes());
        header.extend_from_slice(&(rate * 2).to_le_bytes());
        header.extend_from_slice(&2u16.to_le_bytes()); // block align
        header.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
        header.extend_from_slice(b"data");
        header.extend_from_slice(&data.to_le_bytes());
        header
    }
}

/// A WAVE file of `pcm` (s16le mono at `rate`): what a test's client sends.
pub fn wave_file(rate: u32, pcm: &[u8]) -> Vec<u8> {
    let mut file = Wave::header(rate, pcm.len());
    file.extend_from_slice(pcm);
    file
}
