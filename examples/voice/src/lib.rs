//! Voice: a complete voice agent. The participant speaks, the agent
//! transcribes, thinks and answers aloud, stops when interrupted, and the
//! frontend (LiveKit's agents playground, `components-react`'s
//! voice-assistant hooks) shows its state and both sides' transcriptions.
//! Typed chat (`lk.chat`) is a turn too. It is the SDK's
//! [`VoiceSession`] with providers picked from the job's configuration.
//!
//! Configuration: the job's metadata, a JSON object (empty metadata means
//! every default), each key overridden by a job attribute of the same
//! name:
//!
//! | key            | default                                   | what |
//! |----------------|-------------------------------------------|------|
//! | `base_url`     | `https://api.openai.com/v1`               | the OpenAI-compatible API (LLM; STT and TTS with `openai`) |
//! | `llm_model`    | `gpt-4o-mini`                             | chat completions model |
//! | `provider`     | `openai`                                  | speech: `openai` (HTTP) or `deepgram` (WebSockets) |
//! | `speech_url`   | `wss://api.deepgram.com`                  | the Deepgram-compatible API, with `deepgram` |
//! | `stt_model`    | `whisper-1`, `nova-3` with `deepgram`     | speech-to-text model |
//! | `tts_model`    | `tts-1`, `aura-2-thalia-en` with `deepgram` | text-to-speech model (Deepgram's names the voice) |
//! | `voice`        | `alloy`                                   | OpenAI's voice |
//! | `language`     | none (detected)                           | ISO-639-1 language for OpenAI's STT |
//! | `instructions` | a brief, friendly voice assistant          | the system message |
//!
//! The guest holds no key: the operator allows the providers and gives
//! the host their keys, which it adds to each request:
//!
//! ```text
//! agent-host console target/wasm32-wasip2/release/voice.wasm \
//!     --allow-http api.openai.com \
//!     --credential 'api.openai.com=Authorization: Bearer sk-...'
//! ```

use agent_host_sdk::voice::{
    DeepgramStt, DeepgramTts, OpenAiLlm, OpenAiStt, OpenAiTts, VoiceSession,
};
use agent_host_sdk::{AsyncAgent, JobContext};
use serde::Deserialize;

/// The instructions unless configured: short spoken answers, since long
/// ones are slow to hear and hard to interrupt.
const INSTRUCTIONS: &str = "You are a friendly voice assistant. Answer briefly, in plain \
    spoken sentences, without lists or markup.";

/// The job's configuration; `None` is the default.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Config {
    base_url: Option<String>,
    llm_model: Option<String>,
    provider: Option<String>,
    speech_url: Option<String>,
    stt_model: Option<String>,
    tts_model: Option<String>,
    voice: Option<String>,
    language: Option<String>,
    instructions: Option<String>,
}

impl Config {
    /// The metadata's configuration with `attributes` overriding it.
    fn parse(metadata: &str, attributes: &[(String, String)]) -> Result<Config, String> {
        let mut value = if metadata.trim().is_empty() {
            serde_json::json!({})
        } else {
            serde_json::from_str(metadata).map_err(|err| format!("job metadata: {err}"))?
        };
        let Some(object) = value.as_object_mut() else {
            return Err("job metadata: not a JSON object".into());
        };
        for (key, val) in attributes {
            if Config::KEYS.contains(&key.as_str()) {
                object.insert(key.clone(), val.clone().into());
            }
        }
        serde_json::from_value(value).map_err(|err| format!("job metadata: {err}"))
    }

    /// The keys attributes may override (others belong to someone else).
    const KEYS: &[&str] = &[
        "base_url",
        "llm_model",
        "provider",
        "speech_url",
        "stt_model",
        "tts_model",
        "voice",
        "language",
        "instructions",
    ];

    /// The session this configuration describes.
    fn session(&self) -> Result<VoiceSession, String> {
        let base = self
            .base_url
            .as_deref()
            .unwrap_or("https://api.openai.com/v1");
        let model = |value: &Option<String>, default: &str| value.clone().unwrap_or(default.into());
        let builder = VoiceSession::builder()
            .llm(OpenAiLlm::new(base, &model(&self.llm_model, "gpt-4o-mini")))
            .instructions(self.instructions.as_deref().unwrap_or(INSTRUCTIONS));
        let builder = match self.provider.as_deref().unwrap_or("openai") {
            "openai" => {
                let mut stt = OpenAiStt::new(base, &model(&self.stt_model, "whisper-1"));
                if let Some(language) = &self.language {
                    stt = stt.language(language);
                }
                let voice = model(&self.voice, "alloy");
                builder.stt(stt).tts(OpenAiTts::new(
                    base,
                    &model(&self.tts_model, "tts-1"),
                    &voice,
                ))
            }
            "deepgram" => {
                let url = self
                    .speech_url
                    .as_deref()
                    .unwrap_or("wss://api.deepgram.com");
                builder
                    .stt(DeepgramStt::new(url, &model(&self.stt_model, "nova-3")))
                    .tts(DeepgramTts::new(
                        url,
                        &model(&self.tts_model, "aura-2-thalia-en"),
                    ))
            }
            other => return Err(format!("provider {other:?}: not openai or deepgram")),
        };
        builder.build()
    }
}

struct Voice;

impl AsyncAgent for Voice {
    async fn run(ctx: JobContext) -> Result<(), String> {
        let info = ctx.info();
        Config::parse(&info.metadata, &info.attributes)?
            .session()?
            .run(ctx)
            .await
    }
}

agent_host_sdk::export_agent!(async Voice);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_metadata_is_every_default() {
        assert_eq!(Config::parse("", &[]).unwrap(), Config::default());
        assert!(Config::default().session().is_ok());
    }

    #[test]
    fn attributes_override_the_metadata() {
        let config = Config::parse(
            r#"{"base_url": "http://127.0.0.1:9/v1", "voice": "alloy"}"#,
            &[
                ("voice".into(), "nova".into()),
                ("lk.agent.state".into(), "ignored".into()),
            ],
        )
        .unwrap();
        assert_eq!(config.base_url.as_deref(), Some("http://127.0.0.1:9/v1"));
        assert_eq!(config.voice.as_deref(), Some("nova"));
    }

    #[test]
    fn bad_configuration_says_why() {
        let err = Config::parse("[1]", &[]).unwrap_err();
        assert!(err.contains("not a JSON object"), "{err}");
        let err = Config::parse(r#"{"modle": "x"}"#, &[]).unwrap_err();
        assert!(err.contains("unknown field"), "{err}");
        let config = Config::parse(r#"{"provider": "acme"}"#, &[]).unwrap();
        let err = config.session().err().unwrap();
        assert!(err.contains("not openai or deepgram"), "{err}");
    }
}
