//! `agent-host:agent/server`: LiveKit's server API, scoped to the job's room.
//!
//! Policy: a call goes through the job's [`RoomScope`](crate::room_service::RoomScope),
//! which names the job's own room and signs a token for it alone; a job
//! without one (console, simulated rooms) gets `denied` and nothing reaches
//! the network. What the guest passes (payload, topic, identities,
//! metadata, attributes, track id) counts against
//! [`JobLimits::max_payload_bytes`](crate::JobLimits::max_payload_bytes) and
//! is refused with `too-large` above it, before any call is made.

use super::guest_bytes;
use crate::bindings::agent_host::agent::server::Host;
use crate::bindings::types::RoomError;
use crate::bounded;
use crate::limits::MAX_LOG_LINE;
use crate::room_service::{RoomScope, RoomServiceError};
use crate::runtime::state::JobState;

type Answer = wasmtime::Result<Result<(), RoomError>>;

impl JobState {
    /// The job's server API, once the guest's input is within the cap.
    fn room_service(&self, bytes: usize) -> Result<RoomScope, RoomError> {
        let max = self.limits.max_payload_bytes;
        if bytes > max {
            return Err(RoomError::TooLarge(u32::try_from(max).unwrap_or(u32::MAX)));
        }
        self.room_service.clone().ok_or_else(|| {
            RoomError::Denied("the LiveKit server API is not available to this job".into())
        })
    }
}

fn answer(result: Result<(), RoomServiceError>) -> Answer {
    Ok(result.map_err(|err| {
        tracing::warn!(error = %bounded::display(&err, MAX_LOG_LINE), "server API call failed");
        match err {
            RoomServiceError::Denied(text) => RoomError::Denied(text),
            RoomServiceError::Transport(text) => RoomError::Transport(text),
        }
    }))
}

impl Host for JobState {
    async fn send_data(
        &mut self,
        payload: Vec<u8>,
        topic: Option<String>,
        reliable: bool,
        destinations: Vec<String>,
    ) -> Answer {
        let bytes =
            payload.len() + guest_bytes(topic.iter().chain(&destinations).map(String::as_str));
        let scope = match self.room_service(bytes) {
            Ok(scope) => scope,
            Err(err) => return Ok(Err(err)),
        };
        answer(
            scope
                .send_data(payload, topic, reliable, destinations)
                .await,
        )
    }

    async fn update_participant(
        &mut self,
        identity: String,
        metadata: Option<String>,
        attributes: Vec<(String, String)>,
    ) -> Answer {
        let bytes = guest_bytes(
            [identity.as_str()]
                .into_iter()
                .chain(metadata.as_deref())
                .chain(
                    attributes
                        .iter()
                        .flat_map(|(k, v)| [k.as_str(), v.as_str()]),
                ),
        );
        let scope = match self.room_service(bytes) {
            Ok(scope) => scope,
            Err(err) => return Ok(Err(err)),
        };
        answer(
            scope
                .update_participant(identity, metadata, attributes)
                .await,
        )
    }

    async fn remove_participant(&mut self, identity: String) -> Answer {
        let scope = match self.room_service(guest_bytes([identity.as_str()])) {
            Ok(scope) => scope,
            Err(err) => return Ok(Err(err)),
        };
        answer(scope.remove_participant(identity).await)
    }

    async fn mute_track(&mut self, identity: String, track_sid: String, muted: bool) -> Answer {
        let scope = match self.room_service(guest_bytes([identity.as_str(), track_sid.as_str()])) {
            Ok(scope) => scope,
            Err(err) => return Ok(Err(err)),
        };
        answer(scope.mute_track(identity, track_sid, muted).await)
    }
}
