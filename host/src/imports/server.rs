//! `agent-host:agent/server`: LiveKit's server API, scoped to the job's room.
//!
//! Policy: a call goes through the job's [`RoomScope`](crate::room::service::RoomScope),
//! which names the job's own room and signs a token for it alone; a job
//! without one (console, simulated rooms) gets `denied` and nothing reaches
//! the network. What the guest passes (payload, topic, identities,
//! metadata, attributes, track id) counts against
//! [`JobLimits::max_payload_bytes`](crate::JobLimits::max_payload_bytes) and
//! is refused with `too-large` above it, before any call is made.

use wasmtime::component::HasData;

use super::guest_bytes;
use crate::bindings::agent_host::agent::server::Host;
use crate::bindings::types::RoomError;
use crate::bounded;
use crate::config::job::MAX_LOG_LINE;
use crate::room::service::{RoomScope, RoomServiceError};

type Answer = wasmtime::Result<Result<(), RoomError>>;

/// What the `server` import reaches: the job's server API scope, if it was
/// granted one, and the payload cap. No room session, no HTTP policy.
pub(crate) struct ServerView<'a> {
    /// LiveKit's server API for the job's own room; `None` where the host
    /// has no server credentials (console, simulated rooms).
    pub(crate) scope: Option<&'a RoomScope>,
    /// [`JobLimits::max_payload_bytes`](crate::JobLimits::max_payload_bytes).
    pub(crate) max_payload: usize,
}

/// [`HasData`] for the `server` import, whose data is a [`ServerView`].
pub(crate) struct ServerData;

impl HasData for ServerData {
    type Data<'a> = ServerView<'a>;
}

impl<'a> ServerView<'a> {
    /// The job's server API, once the guest's input is within the cap.
    fn room_service(&self, bytes: usize) -> Result<&'a RoomScope, RoomError> {
        let max = self.max_payload;
        if bytes > max {
            return Err(RoomError::TooLarge(u32::try_from(max).unwrap_or(u32::MAX)));
        }
        self.scope.ok_or_else(|| {
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

impl Host for ServerView<'_> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A job without a scope (console, simulated rooms): every call is
    /// denied, and the cap is checked first, as with a scope.
    #[tokio::test]
    async fn without_a_scope_every_call_is_denied() -> wasmtime::Result<()> {
        let mut server = ServerView {
            scope: None,
            max_payload: 64,
        };
        let denied = |result: Result<(), RoomError>| matches!(result, Err(RoomError::Denied(text)) if text.contains("not available"));
        assert!(denied(
            server.send_data(b"hi".to_vec(), None, true, vec![]).await?
        ));
        assert!(denied(
            server
                .update_participant("bob".into(), None, vec![])
                .await?
        ));
        assert!(denied(server.remove_participant("bob".into()).await?));
        assert!(denied(
            server.mute_track("bob".into(), "TR_1".into(), true).await?
        ));
        Ok(())
    }

    #[tokio::test]
    async fn every_field_counts_against_the_payload_cap() -> wasmtime::Result<()> {
        let mut server = ServerView {
            scope: None,
            max_payload: 8,
        };
        let too_large = Err(RoomError::TooLarge(8));
        // 4 bytes + "topic" and its framing: 10.
        let data = server
            .send_data(b"ping".to_vec(), Some("topic".into()), true, vec![])
            .await?;
        assert_eq!(data, too_large);
        // "bob" (4) + metadata "meta" (5) = 9: the metadata counts.
        let update = server
            .update_participant("bob".into(), Some("meta".into()), vec![])
            .await?;
        assert_eq!(update, too_large);
        let attributes = vec![("k".into(), "value".into())];
        let update = server
            .update_participant("bob".into(), None, attributes)
            .await?;
        assert_eq!(update, too_large);
        let remove = server.remove_participant("a-long-name".into()).await?;
        assert_eq!(remove, too_large);
        let mute = server
            .mute_track("bob".into(), "TR_12".into(), true)
            .await?;
        assert_eq!(mute, too_large);
        Ok(())
    }
}
