//! The worker token: the JWT every connection attempt carries.
//!
//! Policy: a fresh token per attempt, with the `video.agent` grant only and
//! no identity (as the official workers send it), signed with the API
//! secret and valid for [`WORKER_TOKEN_TTL`]. The secret never leaves the
//! host.

use std::time::Duration;

use livekit_api::access_token::{AccessToken, VideoGrants};

use super::ConnectError;

pub(crate) use crate::config::worker::WORKER_TOKEN_TTL;

/// A worker token: the `video.agent` grant, signed with the secret, valid
/// for `ttl`. No identity, as the official workers send it.
pub fn worker_token(
    api_key: &str,
    api_secret: &str,
    ttl: Duration,
) -> Result<String, ConnectError> {
    AccessToken::with_api_key(api_key, api_secret)
        .with_ttl(ttl)
        .with_grants(VideoGrants {
            agent: true,
            ..VideoGrants::default()
        })
        .to_jwt()
        .map_err(|e| ConnectError::Other(format!("could not sign the worker token: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_has_the_agent_grant() {
        let token = worker_token("key", "secret", Duration::from_secs(60)).unwrap();
        let claims = livekit_api::access_token::Claims::from_unverified(&token).unwrap();
        assert!(claims.video.agent);
        assert_eq!(claims.iss, "key");
    }
}
