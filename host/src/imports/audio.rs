//! `agent-host:agent/audio`: PCM in and out of the job's room.
//!
//! Policy: formats are checked here (8, 16, 24 or 48 kHz; mono or stereo)
//! before a transport sees them; a job publishes at most one track; one
//! `write` carries at most one second of audio in the published format, and
//! its length must be a whole number of frames (a multiple of the channel
//! count). Identities and track names count against the payload cap like
//! every guest string of a room action.
//!
//! [`AudioView`] is what the import reaches: the job's room link, its
//! published track, its own identity and the payload cap.

use wasmtime::component::HasData;

use super::guest_bytes;
use super::room::{RoomLink, SessionGuard};
use crate::bindings::agent_host::agent::audio::Host;
use crate::bindings::audio::{AudioFormat, TrackInfo, TrackKind};
use crate::bindings::types::RoomError;
use crate::room::pcm;

/// The agent's published track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PublishedTrack {
    /// The format `write` takes.
    pub(crate) format: AudioFormat,
    /// What `published-track` says.
    pub(crate) info: TrackInfo,
}

/// What the `audio` import reaches.
pub(crate) struct AudioView<'a> {
    /// The job's own session, through which audio flows.
    pub(crate) link: &'a mut RoomLink,
    /// The agent's published track, once published.
    pub(crate) track: &'a mut Option<PublishedTrack>,
    /// The agent's own identity, its track's owner.
    pub(crate) identity: &'a str,
    /// [`JobLimits::max_payload_bytes`](crate::JobLimits::max_payload_bytes).
    pub(crate) max_payload: usize,
}

/// [`HasData`] for the `audio` import, whose data is an [`AudioView`].
pub(crate) struct AudioData;

impl HasData for AudioData {
    type Data<'a> = AudioView<'a>;
}

impl AudioView<'_> {
    async fn session_for(&mut self, bytes: usize) -> Result<SessionGuard<'_>, RoomError> {
        self.link.session_for(bytes, self.max_payload).await
    }
}

fn check(format: AudioFormat) -> Result<(), RoomError> {
    if pcm::supported(format) {
        Ok(())
    } else {
        Err(RoomError::Denied(format!(
            "unsupported audio format {} Hz x {} channels: use 8000, 16000, 24000 or 48000 Hz, 1 or 2 channels",
            format.sample_rate, format.channels
        )))
    }
}

impl Host for AudioView<'_> {
    async fn subscribe(
        &mut self,
        identity: String,
        format: AudioFormat,
    ) -> wasmtime::Result<Result<(), RoomError>> {
        if let Err(err) = check(format) {
            return Ok(Err(err));
        }
        Ok(
            match self.session_for(guest_bytes([identity.as_str()])).await {
                Ok(mut session) => session.subscribe_audio(identity, format).await,
                Err(err) => Err(err),
            },
        )
    }

    async fn unsubscribe(&mut self, identity: String) -> wasmtime::Result<()> {
        // An identity over the cap was never subscribed: nothing to undo.
        if let Ok(mut session) = self.session_for(guest_bytes([identity.as_str()])).await {
            session.unsubscribe_audio(identity).await;
        }
        Ok(())
    }

    async fn publish(
        &mut self,
        name: String,
        format: AudioFormat,
    ) -> wasmtime::Result<Result<(), RoomError>> {
        if let Err(err) = check(format) {
            return Ok(Err(err));
        }
        if self.track.is_some() {
            return Ok(Err(RoomError::Denied(
                "the job has already published its audio track".into(),
            )));
        }
        let result = match self.session_for(guest_bytes([name.as_str()])).await {
            Ok(mut session) => session.publish_audio(name.clone(), format).await,
            Err(err) => Err(err),
        };
        Ok(result.map(|sid| {
            *self.track = Some(PublishedTrack {
                format,
                info: TrackInfo {
                    sid,
                    participant: self.identity.to_string(),
                    name,
                    kind: TrackKind::Audio,
                },
            });
        }))
    }

    async fn write(&mut self, samples: Vec<i16>) -> wasmtime::Result<Result<(), RoomError>> {
        let Some(format) = self.track.as_ref().map(|t| t.format) else {
            return Ok(Err(RoomError::Denied(
                "publish the audio track before writing to it".into(),
            )));
        };
        let channels = format.channels as usize;
        let one_second = format.sample_rate as usize * channels;
        if samples.len() > one_second {
            let bytes = one_second * 2;
            return Ok(Err(RoomError::TooLarge(
                u32::try_from(bytes).unwrap_or(u32::MAX),
            )));
        }
        if !samples.len().is_multiple_of(channels) {
            return Ok(Err(RoomError::Denied(format!(
                "{} samples is not a whole number of {channels}-channel frames",
                samples.len()
            ))));
        }
        Ok(match self.link.joined_session().await {
            Ok(mut session) => session.write_audio(samples).await,
            Err(err) => Err(err),
        })
    }

    async fn published_track(&mut self) -> wasmtime::Result<Option<TrackInfo>> {
        Ok(self.track.as_ref().map(|t| t.info.clone()))
    }

    async fn clear(&mut self) -> wasmtime::Result<Result<(), RoomError>> {
        if self.track.is_none() {
            return Ok(Ok(()));
        }
        Ok(match self.link.joined_session().await {
            Ok(mut session) => session.clear_audio().await,
            Err(err) => Err(err),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imports::testing::{Joined, joined};
    use crate::room::sim::SimOutput;

    /// The audio view of `joined`'s link, with `track` as its published track.
    fn view<'a>(
        joined: &'a mut Joined,
        track: &'a mut Option<PublishedTrack>,
        max_payload: usize,
    ) -> AudioView<'a> {
        AudioView {
            link: &mut joined.link,
            track,
            identity: "agent-AJ_test",
            max_payload,
        }
    }

    const MONO_16K: AudioFormat = AudioFormat {
        sample_rate: 16000,
        channels: 1,
    };
    const STEREO_48K: AudioFormat = AudioFormat {
        sample_rate: 48000,
        channels: 2,
    };

    #[tokio::test]
    async fn formats_are_checked_before_the_room_sees_them() -> wasmtime::Result<()> {
        let mut joined = joined("formats").await;
        let mut track = None;
        let mut audio = view(&mut joined, &mut track, 1024);
        for format in [
            AudioFormat {
                sample_rate: 44100,
                channels: 1,
            },
            AudioFormat {
                sample_rate: 16000,
                channels: 3,
            },
        ] {
            assert!(matches!(
                audio.subscribe("bob".into(), format).await?,
                Err(RoomError::Denied(_))
            ));
            assert!(matches!(
                audio.publish("voice".into(), format).await?,
                Err(RoomError::Denied(_))
            ));
        }
        assert_eq!(track, None);
        assert_eq!(joined.next_output(), None);
        Ok(())
    }

    #[tokio::test]
    async fn one_track_written_in_whole_frames_of_at_most_a_second() -> wasmtime::Result<()> {
        let mut joined = joined("track").await;
        let mut track = None;
        let mut audio = view(&mut joined, &mut track, 1024);
        assert!(matches!(
            audio.write(vec![0; 2]).await?,
            Err(RoomError::Denied(_))
        ));
        assert_eq!(audio.clear().await?, Ok(()), "nothing to clear yet");
        assert_eq!(audio.published_track().await?, None);
        assert_eq!(audio.publish("voice".into(), STEREO_48K).await?, Ok(()));
        let published = audio.published_track().await?.expect("published");
        assert_eq!(
            (published.participant.as_str(), published.name.as_str()),
            ("agent-AJ_test", "voice")
        );
        assert_eq!(published.sid, "TR_agent-AJ_test_voice", "the sim's sid");
        assert!(matches!(
            audio.publish("again".into(), MONO_16K).await?,
            Err(RoomError::Denied(_))
        ));
        // One second of 48 kHz stereo is 96,000 samples, 192,000 bytes.
        assert_eq!(
            audio.write(vec![0; 96_002]).await?,
            Err(RoomError::TooLarge(192_000))
        );
        assert!(matches!(
            audio.write(vec![0; 3]).await?,
            Err(RoomError::Denied(_))
        ));
        assert_eq!(audio.write(vec![7; 4]).await?, Ok(()));
        assert_eq!(track.map(|t| t.format), Some(STEREO_48K));
        assert!(matches!(
            joined.next_output(),
            Some(SimOutput::AudioPublished { name, format, .. }) if name == "voice" && format == STEREO_48K
        ));
        assert!(matches!(
            joined.next_output(),
            Some(SimOutput::Audio { samples, .. }) if samples == [7; 4]
        ));
        assert_eq!(joined.next_output(), None);
        Ok(())
    }

    #[tokio::test]
    async fn names_count_against_the_payload_cap() -> wasmtime::Result<()> {
        let mut joined = joined("names").await;
        let mut track = None;
        let mut audio = view(&mut joined, &mut track, 4);
        let long = "voice".to_string();
        assert_eq!(
            audio.subscribe(long.clone(), MONO_16K).await?,
            Err(RoomError::TooLarge(4))
        );
        assert_eq!(
            audio.publish(long.clone(), MONO_16K).await?,
            Err(RoomError::TooLarge(4))
        );
        // An identity over the cap was never subscribed: nothing to undo.
        audio.unsubscribe(long).await?;
        assert_eq!(track, None);
        assert_eq!(joined.next_output(), None);
        Ok(())
    }
}
