//! Participant tokens: who may join which room.
//!
//! Policy (as LiveKit's `auth` middleware): the JWT comes from the
//! `Authorization: Bearer` header, else from the `access_token` query
//! parameter. It must be HS256-signed with the double's API secret, have
//! `iss` equal to the API key and an unexpired `exp` (60 s leeway), a
//! `video.roomJoin` grant, a non-empty `video.room` and a non-empty `sub`
//! (the identity). Anything else is refused (the caller answers 401).

use std::collections::HashMap;

use livekit_api::access_token::TokenVerifier;
use test_server_support::TokenError;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token, or an `Authorization` header that is not `Bearer <token>`.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Signature, issuer, expiry or format rejected.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// No `video.roomJoin` grant, or no room in it.
    #[error("token does not grant joining a room")]
    NoRoomJoin,
    /// Empty `sub`.
    #[error("token has no identity")]
    NoIdentity,
}

/// What a valid token lets its holder do: join `room` as `identity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// `sub`.
    pub identity: String,
    /// `name`.
    pub name: String,
    /// `video.room`.
    pub room: String,
    /// `metadata`.
    pub metadata: String,
    /// `attributes`.
    pub attributes: HashMap<String, String>,
    /// `kind` (`agent` for agent participants).
    pub kind: String,
}

/// Verifies a participant token and returns its grant.
pub fn verify(api_key: &str, api_secret: &str, jwt: &str) -> Result<Grant, AuthError> {
    let claims = TokenVerifier::with_api_key(api_key, api_secret)
        .verify(jwt)
        .map_err(|e| AuthError::Invalid(e.to_string()))?;
    if !claims.video.room_join || claims.video.room.is_empty() {
        return Err(AuthError::NoRoomJoin);
    }
    if claims.sub.is_empty() {
        return Err(AuthError::NoIdentity);
    }
    Ok(Grant {
        identity: claims.sub,
        name: claims.name,
        room: claims.video.room,
        metadata: claims.metadata,
        attributes: claims.attributes,
        kind: claims.kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use livekit_api::access_token::{AccessToken, VideoGrants};

    fn token(secret: &str, identity: &str, grants: VideoGrants) -> String {
        AccessToken::with_api_key("key", secret)
            .with_identity(identity)
            .with_name("Name")
            .with_grants(grants)
            .to_jwt()
            .unwrap()
    }

    fn sign(secret: &str, claims: &serde_json::Value) -> String {
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use hmac::{Hmac, Mac};
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    fn join(room: &str) -> VideoGrants {
        VideoGrants {
            room_join: true,
            room: room.into(),
            ..Default::default()
        }
    }

    #[test]
    fn accepts_a_room_join_token() {
        let g = verify("key", "secret", &token("secret", "alice", join("r1"))).unwrap();
        assert_eq!((g.identity.as_str(), g.room.as_str()), ("alice", "r1"));
        assert_eq!(g.name, "Name");
    }

    #[test]
    fn refuses_bad_tokens() {
        let good = token("secret", "alice", join("r1"));
        assert!(matches!(
            verify("key", "other", &good),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            verify("other-key", "secret", &good),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            verify("key", "secret", "not.a.jwt"),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            verify("key", "secret", ""),
            Err(AuthError::Invalid(_))
        ));
        // `AccessToken` refuses to build join tokens without a room or an
        // identity, so these are signed by hand.
        let no_room = sign(
            "secret",
            &serde_json::json!({"iss": "key", "sub": "alice", "nbf": 0,
                "exp": 4_000_000_000u64, "video": {"roomJoin": true}}),
        );
        assert_eq!(
            verify("key", "secret", &no_room),
            Err(AuthError::NoRoomJoin)
        );
        let no_join = VideoGrants {
            room: "r1".into(),
            ..Default::default()
        };
        assert_eq!(
            verify("key", "secret", &token("secret", "alice", no_join)),
            Err(AuthError::NoRoomJoin)
        );
        let no_sub = sign(
            "secret",
            &serde_json::json!({"iss": "key", "nbf": 0, "exp": 4_000_000_000u64,
                "video": {"roomJoin": true, "room": "r1"}}),
        );
        assert_eq!(verify("key", "secret", &no_sub), Err(AuthError::NoIdentity));
    }
}
