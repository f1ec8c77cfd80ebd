//! `agent-host:agent/audio`: PCM in and out of the job's room.
//!
//! Policy: formats are checked here (8, 16, 24 or 48 kHz; mono or stereo)
//! before a transport sees them; a job publishes at most one track; one
//! `write` carries at most one second of audio in the published format, and
//! its length must be a whole number of frames (a multiple of the channel
//! count). Identities and track names count against the payload cap like
//! every guest string of a room action.

use super::guest_bytes;
use crate::bindings::agent_host::agent::audio::Host;
use crate::bindings::audio::AudioFormat;
use crate::bindings::types::RoomError;
use crate::room::pcm;
use crate::runtime::state::JobState;

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

impl Host for JobState {
    async fn subscribe(
        &mut self,
        identity: String,
        format: AudioFormat,
    ) -> wasmtime::Result<Result<(), RoomError>> {
        if let Err(err) = check(format) {
            return Ok(Err(err));
        }
        Ok(match self.session_for(guest_bytes([identity.as_str()])) {
            Ok(session) => session.subscribe_audio(identity, format).await,
            Err(err) => Err(err),
        })
    }

    async fn unsubscribe(&mut self, identity: String) -> wasmtime::Result<()> {
        // An identity over the cap was never subscribed: nothing to undo.
        if let Ok(session) = self.session_for(guest_bytes([identity.as_str()])) {
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
        if self.audio_out.is_some() {
            return Ok(Err(RoomError::Denied(
                "the job has already published its audio track".into(),
            )));
        }
        let result = match self.session_for(guest_bytes([name.as_str()])) {
            Ok(session) => session.publish_audio(name, format).await,
            Err(err) => Err(err),
        };
        if result.is_ok() {
            self.audio_out = Some(format);
        }
        Ok(result)
    }

    async fn write(&mut self, samples: Vec<i16>) -> wasmtime::Result<Result<(), RoomError>> {
        let Some(format) = self.audio_out else {
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
        Ok(match self.joined_session() {
            Ok(session) => session.write_audio(samples).await,
            Err(err) => Err(err),
        })
    }

    async fn clear(&mut self) -> wasmtime::Result<Result<(), RoomError>> {
        if self.audio_out.is_none() {
            return Ok(Ok(()));
        }
        Ok(match self.joined_session() {
            Ok(session) => session.clear_audio().await,
            Err(err) => Err(err),
        })
    }
}
