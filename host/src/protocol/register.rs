//! Registering: the deployment rule the server applies, and the
//! `register` exchange that opens every connection.
//!
//! Policy: a deployment the server would refuse is an error before any
//! connection is made (the server would close the socket without a
//! reason); the first *message* after `register` must be its answer
//! (control frames in between are not messages), within the caller's wait.

use std::time::Duration;

use livekit_protocol as proto;

use super::ConnectError;
use super::codec::{self, Incoming, Socket};

pub use crate::config::worker::MAX_DEPLOYMENT_BYTES;

/// The open-source server's `ValidateDeployment` (livekit/protocol
/// `agent/environment.go`): empty, or at most 64 bytes with no `_` (kept
/// for the server's own use), no space, control byte or DEL. The error
/// says which rule, as the server's does (the server then closes the
/// connection without a reason).
pub fn validate_deployment(deployment: &str) -> Result<(), String> {
    let refused = |why: String| {
        Err(format!(
            "the deployment name {deployment:?} would be refused by the LiveKit server: {why}"
        ))
    };
    if deployment.len() > MAX_DEPLOYMENT_BYTES {
        return refused(format!(
            "it is {} bytes long, the most is {MAX_DEPLOYMENT_BYTES}",
            deployment.len()
        ));
    }
    for (i, b) in deployment.bytes().enumerate() {
        if b == b'_' {
            return refused(format!(
                "`_` (at byte {i}) is reserved; use `-` or `.` instead"
            ));
        }
        if b <= b' ' || b == 0x7f {
            return refused(format!(
                "it contains whitespace or a control byte at byte {i}"
            ));
        }
    }
    Ok(())
}

/// Sends `register` and waits up to `wait` for its answer, the first
/// message after it; control frames in between are not messages. Returns
/// the worker id.
pub(crate) async fn register(
    socket: &mut Socket,
    request: proto::RegisterWorkerRequest,
    wait: Duration,
) -> Result<String, ConnectError> {
    codec::send(socket, proto::worker_message::Message::Register(request))
        .await
        .map_err(|e| ConnectError::Other(format!("sending register: {e}")))?;
    // As the Python worker: the first message must be the answer.
    let not_first =
        || ConnectError::Other("expected the register response as the first message".into());
    let answer = async {
        loop {
            match codec::receive(socket).await {
                // A ping (answered by tungstenite) or a pong.
                Incoming::Alive => continue,
                Incoming::Message(message) => {
                    return match *message {
                        proto::server_message::Message::Register(response) => {
                            Ok(response.worker_id)
                        }
                        _ => Err(not_first()),
                    };
                }
                Incoming::Skipped => return Err(not_first()),
                Incoming::Closed(reason) => return Err(ConnectError::Other(reason)),
            }
        }
    };
    tokio::time::timeout(wait, answer)
        .await
        .unwrap_or_else(|_| Err(ConnectError::Other("no register response in time".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployments_follow_the_servers_rule() {
        for good in [
            "",
            "prod-eu",
            "prod.v2",
            "prod:us",
            "a/b",
            "prodüction",
            &"a".repeat(64),
        ] {
            assert!(validate_deployment(good).is_ok(), "{good:?}");
        }
        for (bad, says) in [
            ("prod_eu", "`_` (at byte 4) is reserved"),
            ("prod eu", "whitespace or a control byte at byte 4"),
            ("prod\teu", "control byte"),
            ("prod\x7f", "control byte"),
            (&"a".repeat(65) as &str, "65 bytes long, the most is 64"),
        ] {
            let err = validate_deployment(bad).unwrap_err();
            assert!(err.contains(says), "{bad:?}: {err}");
            assert!(
                err.contains("would be refused by the LiveKit server"),
                "{err}"
            );
        }
    }
}
