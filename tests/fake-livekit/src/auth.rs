//! Worker authentication and agent participant tokens.
//!
//! * [`verify_worker_token`] checks the JWT a worker presents at the `/agent`
//!   upgrade the way LiveKit's `auth/verifier.go` does: HS256 with the API
//!   secret, `iss` equal to the API key, `exp` required, 60 s of leeway (the
//!   `jsonwebtoken` default used by `livekit-api`'s `TokenVerifier`), and the
//!   *video* grant `agent == true` (`agentservice.go::Upgrade`).
//! * [`build_agent_token`] re-implements `protocol/agent/token.go`
//!   `BuildAgentToken`, the participant token sent in `JobAssignment`. It is
//!   signed by hand (HMAC-SHA256) because `livekit-api`'s `VideoGrants` has no
//!   `canSubscribeMetrics` field.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use livekit_api::access_token::{Claims, TokenVerifier};
use livekit_protocol::ParticipantPermission;
use sha2::Sha256;
use test_server_support::TokenError;

/// Validity of the agent participant token (`BuildAgentToken` uses 1 h).
pub const AGENT_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// Attribute the server adds to the agent participant (`lk.agent_name`).
pub const AGENT_NAME_ATTRIBUTE: &str = "lk.agent_name";

/// Why a worker upgrade was refused with 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token, or an `Authorization` header that does not start with
    /// `Bearer `.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Signature, issuer, expiry or format rejected.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The token is valid but has no `video.agent` grant.
    #[error("token has no agent grant")]
    NoAgentGrant,
}

/// Verifies a worker JWT and requires `video.agent`.
pub fn verify_worker_token(
    api_key: &str,
    api_secret: &str,
    jwt: &str,
) -> Result<Claims, AuthError> {
    let claims = TokenVerifier::with_api_key(api_key, api_secret)
        .verify(jwt)
        .map_err(|e| AuthError::Invalid(e.to_string()))?;
    if !claims.video.agent {
        return Err(AuthError::NoAgentGrant);
    }
    Ok(claims)
}

/// The permissions the OSS server assumes when a worker registers without
/// `allowed_permissions`.
pub fn default_permissions() -> ParticipantPermission {
    ParticipantPermission {
        can_subscribe: true,
        can_publish: true,
        can_publish_data: true,
        can_update_metadata: true,
        ..Default::default()
    }
}

/// What goes into an agent participant token.
#[derive(Debug, Clone)]
pub struct AgentTokenParams<'a> {
    /// Room name (`video.room`).
    pub room: &'a str,
    /// `sub`.
    pub identity: &'a str,
    /// `name`.
    pub name: &'a str,
    /// `metadata`.
    pub metadata: &'a str,
    /// `attributes` (the caller adds `lk.agent_name`).
    pub attributes: &'a HashMap<String, String>,
}

/// Builds the JobAssignment token like `agent.BuildAgentToken`.
///
/// Claims: `iss`, `nbf`, `iat`, `exp` (+1 h), `sub`, `name`, `kind: "agent"`,
/// `metadata`, `attributes` and `video{roomJoin, agent, room, canSubscribe,
/// canPublish, canPublishData, hidden, canUpdateOwnMetadata,
/// canSubscribeMetrics}` from the registration permissions.
/// `can_publish_sources` is not copied (the Go code does not either).
pub fn build_agent_token(
    api_key: &str,
    api_secret: &str,
    params: &AgentTokenParams<'_>,
    permissions: &ParticipantPermission,
) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut video = serde_json::json!({
        "roomJoin": true,
        "agent": true,
        "room": params.room,
        "canSubscribe": permissions.can_subscribe,
        "canPublish": permissions.can_publish,
        "canPublishData": permissions.can_publish_data,
        "canUpdateOwnMetadata": permissions.can_update_metadata,
        "canSubscribeMetrics": permissions.can_subscribe_metrics,
    });
    if permissions.hidden {
        video["hidden"] = serde_json::Value::Bool(true);
    }
    let mut claims = serde_json::json!({
        "iss": api_key,
        "nbf": now,
        "iat": now,
        "exp": now + AGENT_TOKEN_TTL.as_secs(),
        "sub": params.identity,
        "kind": "agent",
        "video": video,
    });
    // Go's ClaimGrants uses `omitempty` for these.
    if !params.name.is_empty() {
        claims["name"] = params.name.into();
    }
    if !params.metadata.is_empty() {
        claims["metadata"] = params.metadata.into();
    }
    if !params.attributes.is_empty() {
        claims["attributes"] = serde_json::to_value(params.attributes).unwrap_or_default();
    }
    sign_hs256(api_secret, &claims)
}

/// Encodes and signs a JWT with HS256.
pub fn sign_hs256(secret: &str, claims: &serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(signing_input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

/// Decodes a JWT payload without checking the signature (for tests and logs).
pub fn decode_unverified(jwt: &str) -> Option<serde_json::Value> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use livekit_api::access_token::{AccessToken, VideoGrants};

    #[test]
    fn worker_token_checks() {
        let good = AccessToken::with_api_key("k", "s")
            .with_grants(VideoGrants {
                agent: true,
                ..Default::default()
            })
            .to_jwt()
            .unwrap();
        assert!(verify_worker_token("k", "s", &good).is_ok());
        assert!(matches!(
            verify_worker_token("k", "bad", &good),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            verify_worker_token("other", "s", &good),
            Err(AuthError::Invalid(_))
        ));
        let no_grant = AccessToken::with_api_key("k", "s")
            .with_grants(VideoGrants {
                room_join: false,
                ..Default::default()
            })
            .to_jwt()
            .unwrap();
        assert_eq!(
            verify_worker_token("k", "s", &no_grant).unwrap_err(),
            AuthError::NoAgentGrant
        );
    }

    #[test]
    fn agent_token_verifies_with_livekit_api() {
        let attrs = HashMap::from([("lk.agent_name".to_string(), "a".to_string())]);
        let jwt = build_agent_token(
            "k",
            "s",
            &AgentTokenParams {
                room: "r",
                identity: "agent-AJ_1",
                name: "n",
                metadata: "m",
                attributes: &attrs,
            },
            &default_permissions(),
        );
        let claims = TokenVerifier::with_api_key("k", "s").verify(&jwt).unwrap();
        assert_eq!(claims.sub, "agent-AJ_1");
        assert_eq!(claims.kind, "agent");
        assert!(claims.video.room_join && claims.video.agent);
        assert_eq!(claims.video.room, "r");
        assert_eq!(claims.attributes["lk.agent_name"], "a");
        assert_eq!(claims.exp - claims.nbf, 3600);
        let raw = decode_unverified(&jwt).unwrap();
        assert_eq!(raw["video"]["canSubscribeMetrics"], false);
        assert!(raw["video"].get("hidden").is_none());
    }
}
