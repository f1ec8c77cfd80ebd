//! LiveKit's server API, limited to the job's own room.

use crate::__bindings::agent_host::agent::server;
use crate::RoomError;

/// Server-side actions in the job's room: what a LiveKit admin could do, but
/// only in this room. The host signs each call itself; the guest never holds
/// a credential and cannot name another room.
///
/// Obtained from [`JobContext::server`](crate::JobContext::server).
#[derive(Debug, Clone, Copy)]
pub struct Server {
    _private: (),
}

impl Server {
    pub(crate) fn new() -> Self {
        Server { _private: () }
    }

    /// Send a data packet as the server (receivers see no sender);
    /// `destinations` empty means everyone.
    pub fn send_data<S: AsRef<str>>(
        &self,
        payload: &[u8],
        topic: Option<&str>,
        destinations: &[S],
    ) -> Result<(), RoomError> {
        let destinations: Vec<String> = destinations.iter().map(|s| s.as_ref().into()).collect();
        Ok(server::send_data(payload, topic, true, &destinations)?)
    }

    /// Change a participant's metadata (when given) and attributes (an empty
    /// value removes a key).
    pub fn update_participant(
        &self,
        identity: &str,
        metadata: Option<&str>,
        attributes: &[(String, String)],
    ) -> Result<(), RoomError> {
        Ok(server::update_participant(identity, metadata, attributes)?)
    }

    /// Remove a participant from the room.
    pub fn remove_participant(&self, identity: &str) -> Result<(), RoomError> {
        Ok(server::remove_participant(identity)?)
    }

    /// Mute (or unmute) a track a participant published.
    pub fn mute_track(
        &self,
        identity: &str,
        track_sid: &str,
        muted: bool,
    ) -> Result<(), RoomError> {
        Ok(server::mute_track(identity, track_sid, muted)?)
    }
}
