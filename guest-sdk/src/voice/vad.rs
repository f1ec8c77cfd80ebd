//! Voice-activity detection by energy: is someone speaking in this audio?
//!
//! The audio is cut into 10 ms windows; a window is *voiced* when its RMS
//! level, in dBFS, is above a threshold. Hysteresis keeps a talker who
//! drops a little between syllables voiced: the level that starts speech
//! ([`VadConfig::activation_dbfs`]) is higher than the one that keeps it
//! going ([`VadConfig::deactivation_dbfs`]). Speech starts after
//! [`VadConfig::min_speech`] of voiced windows in a row and ends after
//! [`VadConfig::min_silence`] of unvoiced ones.
//!
//! Invariants: time is audio time (samples counted, never the clock), so
//! the detector gives the same answer however the audio is chunked or how
//! late it arrives; a chunk that does not fill a window is kept for the
//! next. Plain Rust with no host calls: the tests run natively.
//!
//! # Why energy, and what would come next
//!
//! An energy detector costs a multiply-add per sample (well under 1% of a
//! core for hundreds of conversations) and no bytes of model, but it
//! hears any loud sound as speech and misses a quiet talker in noise.
//! Two better detectors fit a Wasm guest, for a later step:
//! - **WebRTC's VAD** (the GMM detector of libwebrtc; `webrtc-vad` binds
//!   the C code, `earshot` is a pure-Rust port): six-band energies and a
//!   Gaussian mixture, about 10x the energy detector's CPU (still a few
//!   microseconds per 10 ms window), some tens of KiB of guest code, no
//!   model file. Better with stationary noise; still fooled by music and
//!   babble. The C binding needs a C toolchain for wasm32-wasip2; the
//!   port does not.
//! - **Silero VAD** (what livekit-agents uses) on `tract-onnx`: a 2 MB
//!   ONNX model (embedded in the guest or fetched), tract's interpreter
//!   adding some MiB of guest code, and roughly 0.5-1 ms of CPU per 32 ms
//!   window on one core without SIMD: 2-3% of a core per conversation,
//!   which is what sizes the Python worker, against the energy
//!   detector's ~0.01%. Robust to noise; the right choice when accuracy
//!   matters more than density.

use std::time::Duration;

/// How the detector decides; [`VadConfig::default`] says why each default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadConfig {
    /// A window this loud or louder (dBFS) counts towards starting speech.
    pub activation_dbfs: f32,
    /// Once speaking, a window this loud or louder (dBFS) keeps speech
    /// going; below [`activation_dbfs`](Self::activation_dbfs) for
    /// hysteresis.
    pub deactivation_dbfs: f32,
    /// Voiced audio in a row needed to start speech: the onset window,
    /// which delays barge-in by as much.
    pub min_speech: Duration,
    /// Unvoiced audio in a row needed to end speech: longer than the gaps
    /// between words.
    pub min_silence: Duration,
}

impl Default for VadConfig {
    /// - activation -40 dBFS: speech into a browser microphone (with its
    ///   gain control) sits around -30 to -15 dBFS and a quiet room at -60
    ///   to -50, so -40 is above the room and below a soft talker;
    /// - deactivation -45 dBFS: 5 dB of hysteresis, the dip of a syllable's
    ///   tail;
    /// - min speech 50 ms: long enough to ignore a click or a door, short
    ///   enough that barge-in (which waits for it) stays well under the
    ///   100 ms that people notice;
    /// - min silence 200 ms: longer than the pauses inside a phrase
    ///   (50-150 ms), so one phrase is one stretch of speech.
    fn default() -> Self {
        VadConfig {
            activation_dbfs: -40.0,
            deactivation_dbfs: -45.0,
            min_speech: Duration::from_millis(50),
            min_silence: Duration::from_millis(200),
        }
    }
}

/// A change the detector saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadEvent {
    /// Speech began; `at` is the audio time its first voiced window
    /// started (it is reported [`VadConfig::min_speech`] later).
    SpeechStarted {
        /// Audio time of the first voiced window.
        at: Duration,
    },
    /// Speech ended; `at` is the audio time its last voiced window ended
    /// (it is reported [`VadConfig::min_silence`] later).
    SpeechEnded {
        /// Audio time the last voiced window ended.
        at: Duration,
    },
}

/// The analysis window: 10 ms, the frame of LiveKit's audio.
const WINDOW_MS: u64 = 10;

/// An energy voice-activity detector over one mono stream.
#[derive(Debug, Clone)]
pub struct Vad {
    config: VadConfig,
    window: usize,
    /// Samples of the window not yet full.
    partial: Vec<i16>,
    /// Windows analysed so far (audio time = windows * 10 ms).
    windows: u64,
    speaking: bool,
    /// Voiced windows in a row (while not speaking) or unvoiced ones
    /// (while speaking).
    run: u64,
}

impl Vad {
    /// A detector for mono audio at `sample_rate`.
    pub fn new(config: VadConfig, sample_rate: u32) -> Self {
        let window = (u64::from(sample_rate) * WINDOW_MS / 1_000).max(1) as usize;
        Vad {
            config,
            window,
            partial: Vec::with_capacity(window),
            windows: 0,
            speaking: false,
            run: 0,
        }
    }

    /// Whether speech is going on, as last reported.
    pub fn speaking(&self) -> bool {
        self.speaking
    }

    /// Audio time analysed so far.
    pub fn elapsed(&self) -> Duration {
        window_time(self.windows)
    }

    /// Feed the next samples; returns what changed, in order.
    pub fn push(&mut self, samples: &[i16]) -> Vec<VadEvent> {
        let mut events = Vec::new();
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (self.window - self.partial.len()).min(rest.len());
            self.partial.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.partial.len() == self.window {
                let level = dbfs(&self.partial);
                self.partial.clear();
                events.extend(self.window_done(level));
            }
        }
        events
    }

    fn window_done(&mut self, level: f32) -> Option<VadEvent> {
        self.windows += 1;
        let min_speech = windows_in(self.config.min_speech);
        let min_silence = windows_in(self.config.min_silence);
        if self.speaking {
            if level >= self.config.deactivation_dbfs {
                self.run = 0;
                return None;
            }
            self.run += 1;
            if self.run < min_silence {
                return None;
            }
            self.speaking = false;
            self.run = 0;
            Some(VadEvent::SpeechEnded {
                at: window_time(self.windows - min_silence),
            })
        } else {
            if level < self.config.activation_dbfs {
                self.run = 0;
                return None;
            }
            self.run += 1;
            if self.run < min_speech {
                return None;
            }
            self.speaking = true;
            self.run = 0;
            Some(VadEvent::SpeechStarted {
                at: window_time(self.windows - min_speech),
            })
        }
    }
}

/// Whole windows in `duration`, at least one.
fn windows_in(duration: Duration) -> u64 {
    (duration.as_millis() as u64).div_ceil(WINDOW_MS).max(1)
}

fn window_time(windows: u64) -> Duration {
    Duration::from_millis(windows * WINDOW_MS)
}

/// The RMS level of `samples` in dBFS (0 for a full-scale square wave;
/// -100 stands for digital silence).
pub fn dbfs(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return -100.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (sum / samples.len() as f64).sqrt();
    if rms < 1.0 {
        return -100.0;
    }
    (20.0 * (rms / 32_768.0).log10()) as f32
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `ms` of a 440 Hz tone at `amplitude`, mono at `rate`.
    pub(crate) fn tone(rate: u32, ms: u32, amplitude: f32) -> Vec<i16> {
        let n = rate as usize * ms as usize / 1_000;
        (0..n)
            .map(|i| {
                let t = i as f32 / rate as f32;
                (amplitude * (2.0 * std::f32::consts::PI * 440.0 * t).sin()) as i16
            })
            .collect()
    }

    pub(crate) fn silence(rate: u32, ms: u32) -> Vec<i16> {
        vec![0; rate as usize * ms as usize / 1_000]
    }

    #[test]
    fn levels_in_dbfs() {
        assert_eq!(dbfs(&[]), -100.0);
        assert_eq!(dbfs(&[0; 160]), -100.0);
        // A sine's RMS is its amplitude / sqrt(2): 8000 -> about -15 dBFS.
        let level = dbfs(&tone(16_000, 100, 8_000.0));
        assert!((level - -15.3).abs() < 0.2, "{level}");
        assert!(dbfs(&tone(16_000, 100, 100.0)) < -50.0);
    }

    #[test]
    fn speech_starts_after_the_onset_window_and_ends_after_the_silence() {
        let mut vad = Vad::new(VadConfig::default(), 16_000);
        assert!(vad.push(&silence(16_000, 300)).is_empty());
        // 40 ms of tone: shorter than the 50 ms onset window.
        assert!(vad.push(&tone(16_000, 40, 8_000.0)).is_empty());
        let events = vad.push(&tone(16_000, 10, 8_000.0));
        assert_eq!(
            events,
            [VadEvent::SpeechStarted {
                at: Duration::from_millis(300)
            }]
        );
        assert!(vad.speaking());
        assert!(vad.push(&tone(16_000, 500, 8_000.0)).is_empty());
        // 150 ms of silence is a pause inside speech, not its end.
        assert!(vad.push(&silence(16_000, 150)).is_empty());
        assert!(vad.push(&tone(16_000, 100, 8_000.0)).is_empty());
        let events = vad.push(&silence(16_000, 300));
        assert_eq!(
            events,
            [VadEvent::SpeechEnded {
                at: Duration::from_millis(1_100)
            }]
        );
        assert!(!vad.speaking());
        assert_eq!(vad.elapsed(), Duration::from_millis(1_400));
    }

    #[test]
    fn a_click_is_not_speech() {
        let mut vad = Vad::new(VadConfig::default(), 16_000);
        let mut audio = tone(16_000, 20, 20_000.0);
        audio.extend(silence(16_000, 100));
        audio.extend(tone(16_000, 30, 20_000.0));
        audio.extend(silence(16_000, 100));
        assert!(vad.push(&audio).is_empty());
    }

    #[test]
    fn hysteresis_keeps_a_softer_tail_voiced() {
        let config = VadConfig::default();
        let mut vad = Vad::new(config, 16_000);
        vad.push(&tone(16_000, 100, 8_000.0));
        assert!(vad.speaking());
        // About -42.5 dBFS: below activation, above deactivation.
        let soft = tone(16_000, 1_000, 350.0);
        let level = dbfs(&soft);
        assert!(level < config.activation_dbfs && level > config.deactivation_dbfs);
        assert!(vad.push(&soft).is_empty(), "still speaking");
        // The same level does not start speech.
        let mut fresh = Vad::new(config, 16_000);
        assert!(fresh.push(&soft).is_empty());
    }

    #[test]
    fn chunking_does_not_change_the_answer() {
        let mut audio = silence(16_000, 100);
        audio.extend(tone(16_000, 400, 8_000.0));
        audio.extend(silence(16_000, 400));
        let mut whole = Vad::new(VadConfig::default(), 16_000);
        let expected = whole.push(&audio);
        assert_eq!(expected.len(), 2);
        for chunk in [1, 7, 160, 333, 4_800] {
            let mut vad = Vad::new(VadConfig::default(), 16_000);
            let events: Vec<_> = audio.chunks(chunk).flat_map(|c| vad.push(c)).collect();
            assert_eq!(events, expected, "chunks of {chunk}");
        }
    }
}
