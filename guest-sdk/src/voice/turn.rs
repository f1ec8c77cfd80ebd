//! End of turn: the user stopped speaking and waits for the answer.
//!
//! The turn ends once the audio after the user's last speech has been
//! silent for [`TurnConfig::end_of_turn`]. Speech starting again before
//! that continues the same turn. The silence is counted in audio time,
//! from the end of the last voiced window (not from when the VAD
//! reported it), so a turn ends after the same silence however the audio
//! is chunked.
//!
//! Invariant: at most one end of turn per stretch of speech; plain Rust,
//! tested natively.

use std::time::Duration;

use super::vad::VadEvent;

/// When a turn ends; [`TurnConfig::default`] says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnConfig {
    /// Silence after speech that ends the user's turn.
    pub end_of_turn: Duration,
}

impl Default for TurnConfig {
    /// 500 ms: livekit-agents' `min_endpointing_delay` (0.5 s), longer than
    /// the pauses inside a sentence (up to ~300 ms) and short enough that
    /// the reply does not feel late; every millisecond here adds to the
    /// reply's latency.
    fn default() -> Self {
        TurnConfig {
            end_of_turn: Duration::from_millis(500),
        }
    }
}

/// Tracks the user's turn from the VAD's events and the audio time.
#[derive(Debug, Clone)]
pub struct TurnDetector {
    config: TurnConfig,
    /// Speech is going on.
    speaking: bool,
    /// Speech ended at this audio time and the turn has not ended yet.
    silent_since: Option<Duration>,
}

impl TurnDetector {
    /// A detector with nobody speaking.
    pub fn new(config: TurnConfig) -> Self {
        TurnDetector {
            config,
            speaking: false,
            silent_since: None,
        }
    }

    /// Whether a turn is in progress (speech, or silence not yet long
    /// enough to end it).
    pub fn in_turn(&self) -> bool {
        self.speaking || self.silent_since.is_some()
    }

    /// Take the VAD's `event`.
    pub fn event(&mut self, event: VadEvent) {
        match event {
            VadEvent::SpeechStarted { .. } => {
                self.speaking = true;
                self.silent_since = None;
            }
            VadEvent::SpeechEnded { at } => {
                self.speaking = false;
                self.silent_since = Some(at);
            }
        }
    }

    /// Whether the turn ended by audio time `now`; true once per turn.
    pub fn ended(&mut self, now: Duration) -> bool {
        match self.silent_since {
            Some(since)
                if !self.speaking && now.saturating_sub(since) >= self.config.end_of_turn =>
            {
                self.silent_since = None;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn the_turn_ends_after_the_silence_once() {
        let mut turn = TurnDetector::new(TurnConfig::default());
        assert!(!turn.in_turn());
        assert!(!turn.ended(ms(10_000)), "no speech, no turn");
        turn.event(VadEvent::SpeechStarted { at: ms(100) });
        assert!(turn.in_turn());
        assert!(!turn.ended(ms(5_000)), "still speaking");
        turn.event(VadEvent::SpeechEnded { at: ms(5_000) });
        assert!(!turn.ended(ms(5_499)));
        assert!(turn.ended(ms(5_500)));
        assert!(!turn.ended(ms(6_000)), "once");
        assert!(!turn.in_turn());
    }

    #[test]
    fn speech_resuming_continues_the_turn() {
        let mut turn = TurnDetector::new(TurnConfig {
            end_of_turn: ms(300),
        });
        turn.event(VadEvent::SpeechStarted { at: ms(0) });
        turn.event(VadEvent::SpeechEnded { at: ms(1_000) });
        assert!(!turn.ended(ms(1_200)));
        turn.event(VadEvent::SpeechStarted { at: ms(1_250) });
        assert!(!turn.ended(ms(1_400)), "the silence was cut short");
        turn.event(VadEvent::SpeechEnded { at: ms(2_000) });
        assert!(turn.ended(ms(2_300)));
    }
}
