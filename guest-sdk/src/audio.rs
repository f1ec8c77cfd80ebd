//! The agent's ears and voice: PCM audio in and out of the room.

use crate::__bindings::agent_host::agent::audio;
pub use crate::__bindings::agent_host::agent::audio::{
    AudioFormat, AudioFrame, TrackInfo, TrackKind,
};
use crate::RoomError;

impl AudioFormat {
    /// 48 kHz mono, LiveKit's native rate.
    pub const MONO_48K: AudioFormat = AudioFormat {
        sample_rate: 48_000,
        channels: 1,
    };

    /// 16 kHz mono, what most speech models take.
    pub const MONO_16K: AudioFormat = AudioFormat {
        sample_rate: 16_000,
        channels: 1,
    };

    /// Samples (all channels) in `ms` milliseconds of this format.
    pub fn samples_in(&self, ms: u32) -> usize {
        (u64::from(self.sample_rate) * u64::from(ms) / 1_000) as usize * self.channels as usize
    }
}

/// Audio in and out of the room, as 16-bit PCM interleaved by channel.
///
/// Obtained from [`JobContext::audio`](crate::JobContext::audio). Frames of
/// subscribed participants arrive as [`Event::Audio`](crate::Event::Audio)
/// from [`Room::next`](crate::Room::next) and [`Room::all_events`](crate::Room::all_events).
///
/// ```no_run
/// # let ctx: agent_host_sdk::JobContext = unimplemented!();
/// use agent_host_sdk::{AudioFormat, Event};
/// let audio = ctx.audio();
/// audio.publish("voice", AudioFormat::MONO_48K)?;
/// for participant in ctx.room().participants() {
///     audio.subscribe(&participant.identity, AudioFormat::MONO_48K)?;
/// }
/// for event in ctx.room().all_events() {
///     if let Event::Audio(frame) = event {
///         audio.write(&frame.samples)?; // an echo with no delay
///     }
/// }
/// # Ok::<(), agent_host_sdk::RoomError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Audio {
    _private: (),
}

impl Audio {
    pub(crate) fn new() -> Self {
        Audio { _private: () }
    }

    /// Receive `identity`'s microphone audio in `format`, from now (or from
    /// when it starts publishing) until [`unsubscribe`](Self::unsubscribe)
    /// or it leaves.
    pub fn subscribe(&self, identity: &str, format: AudioFormat) -> Result<(), RoomError> {
        Ok(audio::subscribe(identity, format)?)
    }

    /// Stop receiving `identity`'s audio.
    pub fn unsubscribe(&self, identity: &str) {
        audio::unsubscribe(identity)
    }

    /// Publish the agent's voice track, once per job.
    pub fn publish(&self, name: &str, format: AudioFormat) -> Result<(), RoomError> {
        Ok(audio::publish(name, format)?)
    }

    /// Queue samples (interleaved, in the published format) to be played.
    /// Waits while about a second of audio is already queued; at most one
    /// second per call, so longer audio is written in chunks.
    pub fn write(&self, samples: &[i16]) -> Result<(), RoomError> {
        Ok(audio::write(samples)?)
    }

    /// Drop the audio queued and not yet played, for barge-in.
    pub fn clear(&self) -> Result<(), RoomError> {
        Ok(audio::clear()?)
    }

    /// The agent's own track, once [`publish`](Self::publish) succeeded:
    /// its sid is what `lk.transcribed_track_id` names in the agent's
    /// transcriptions. Needs a host with WIT 0.1.4.
    pub fn published_track(&self) -> Option<TrackInfo> {
        audio::published_track()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_in_counts_every_channel() {
        assert_eq!(AudioFormat::MONO_48K.samples_in(10), 480);
        let stereo = AudioFormat {
            sample_rate: 16_000,
            channels: 2,
        };
        assert_eq!(stereo.samples_in(1_000), 32_000);
    }
}
