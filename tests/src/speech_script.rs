//! What the fake speech providers say and how their speech sounds, shared
//! by the HTTP fakes ([`crate::fake_openai`]) and the WebSocket ones
//! ([`crate::fake_speech`]), so a test scripts both the same way.
//!
//! Policy: transcripts are answered from a queue that repeats its last entry
//! when it runs dry (a test that scripts one sentence gets it for every
//! turn); synthesized speech is a 440 Hz tone, never silence, at amplitude
//! [`TONE_AMPLITUDE`] (well above any voice-activity threshold), lasting
//! [`SpeechScript::ms_per_char`] per character of the text, capped at
//! [`MAX_TONE`]; it starts after [`SpeechScript::first_byte_delay`], the
//! scripted provider latency a benchmark subtracts from what it measures.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

/// The tone's amplitude: a quarter of full scale, far above the energy
/// thresholds of voice-activity detectors (a few hundred) yet unclipped.
pub const TONE_AMPLITUDE: f32 = 8000.0;

/// The tone's pitch: A4, plainly audible in a recording of a test.
const TONE_HZ: f32 = 440.0;

/// The longest tone one text gets: ten seconds, so a long scripted answer
/// cannot make a test or benchmark wait for minutes.
pub const MAX_TONE: Duration = Duration::from_secs(10);

/// How the fake speech providers answer.
#[derive(Debug, Clone)]
pub struct SpeechScript {
    /// What speech-to-text hears, turn by turn; the last repeats.
    pub transcripts: Vec<String>,
    /// How long text-to-speech waits before its first audio byte.
    pub first_byte_delay: Duration,
    /// How long the tone lasts per character of the text to speak.
    pub ms_per_char: u64,
}

impl Default for SpeechScript {
    /// One transcript (`hello`), no delay, 40 ms per character: about the
    /// pace of spoken English, so a sentence gives seconds of audio.
    fn default() -> Self {
        Self {
            transcripts: vec!["hello".to_owned()],
            first_byte_delay: Duration::ZERO,
            ms_per_char: 40,
        }
    }
}

impl SpeechScript {
    /// The default script hearing `transcripts`, in order.
    pub fn hearing(transcripts: &[&str]) -> Self {
        Self {
            transcripts: transcripts.iter().map(|t| t.to_string()).collect(),
            ..Self::default()
        }
    }

    /// How long the tone for `text` lasts.
    pub fn tone_length(&self, text: &str) -> Duration {
        let chars = text.chars().count() as u64;
        Duration::from_millis(self.ms_per_char.saturating_mul(chars)).min(MAX_TONE)
    }
}

/// The scripted transcripts as a queue shared by a fake's connections.
#[derive(Debug)]
pub(crate) struct Transcripts {
    queue: Mutex<VecDeque<String>>,
    last: Mutex<String>,
}

impl Transcripts {
    pub(crate) fn new(script: &SpeechScript) -> Self {
        Self {
            queue: Mutex::new(script.transcripts.iter().cloned().collect()),
            last: Mutex::new(String::new()),
        }
    }

    /// The next transcript: the queue's front, else the last one again
    /// (empty when nothing was scripted).
    pub(crate) fn next(&self) -> String {
        let mut last = self.last.lock().expect("not poisoned");
        if let Some(next) = self.queue.lock().expect("not poisoned").pop_front() {
            *last = next;
        }
        last.clone()
    }
}

/// `length` of the tone as PCM s16le mono at `sample_rate`.
pub fn tone(sample_rate: u32, length: Duration) -> Vec<u8> {
    let samples = (u128::from(sample_rate) * length.as_millis() / 1000) as usize;
    let step = std::f32::consts::TAU * TONE_HZ / sample_rate as f32;
    (0..samples)
        .flat_map(|i| {
            let sample = (TONE_AMPLITUDE * (step * i as f32).sin()) as i16;
            sample.to_le_bytes()
        })
        .collect()
}

/// Bytes of 100 ms of PCM s16le mono at `sample_rate`: the chunk the fakes
/// send speech in (4,800 bytes at OpenAI's 24 kHz).
pub fn chunk_bytes(sample_rate: u32) -> usize {
    sample_rate as usize / 10 * 2
}

/// Whether PCM s16le holds speech: its RMS is above 500, well under a
/// voice's and the tone's, well over a silent or near-silent track's.
pub fn has_energy(pcm: &[u8]) -> bool {
    let samples = pcm
        .chunks_exact(2)
        .map(|s| i16::from_le_bytes([s[0], s[1]]));
    let (sum, count) = samples.fold((0f64, 0usize), |(sum, n), s| {
        (sum + f64::from(s) * f64::from(s), n + 1)
    });
    count > 0 && (sum / count as f64).sqrt() > 500.0
}

/// Milliseconds of PCM s16le of `channels` at `sample_rate` in `bytes`.
pub fn pcm_ms(bytes: usize, sample_rate: u32, channels: u16) -> u64 {
    let per_second = u64::from(sample_rate) * u64::from(channels) * 2;
    (bytes as u64 * 1000).checked_div(per_second).unwrap_or(0)
}
