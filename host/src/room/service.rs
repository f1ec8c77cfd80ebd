//! LiveKit's server API (`RoomService` over Twirp), scoped to one job's room.
//!
//! Policy:
//! - The worker, which holds the server URL, API key and secret, creates one
//!   [`RoomService`]. Each job gets a [`RoomScope`] bound to the room of its
//!   own assignment; the `server` import passes identities, track ids and
//!   payloads through it, never a room name: there is no parameter for one.
//! - Every call carries a fresh token signed for that room only
//!   (`roomAdmin` + `room`), valid for [`SERVER_API_TOKEN_TTL`]. The key, the secret
//!   and the tokens stay in the host: nothing hands them to the guest, and
//!   error texts never contain them.
//! - Calls connect through the worker's [`Network`]: its proxy (CONNECT)
//!   and TLS roots, as the worker connection does; the server is the one
//!   the operator configured, so its addresses are [`Unrestricted`].
//! - A call takes at most [`SERVER_API_CALL_TIMEOUT`], connect to last byte; the
//!   server's answer is read up to [`SERVER_API_MAX_ANSWER_BYTES`].
//! - The server refusing (HTTP 401 or 403) is `denied`; anything else that
//!   fails is `transport`. Payload caps are applied by the import before a
//!   call is made.
//!
//! Jobs without a scope (console, simulated rooms, a host started without
//! credentials) get `denied` from every `server` function.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::TokioIo;
use livekit_api::access_token::{AccessToken, VideoGrants};
use livekit_protocol as proto;
use prost::Message;

use crate::livekit_url::LiveKitUrl;
use crate::net::{Deadline, Destination, Network, Unrestricted, authority};

pub use crate::config::rooms::SERVER_API_TOKEN_TTL;

pub use crate::config::rooms::SERVER_API_CALL_TIMEOUT;

pub use crate::config::rooms::SERVER_API_MAX_ANSWER_BYTES;

/// The server API credentials of a worker. Never reaches a guest.
pub struct RoomService {
    tls: bool,
    host: String,
    port: u16,
    /// Path prefix of the server URL, without a trailing slash.
    prefix: String,
    api_key: String,
    api_secret: String,
    /// How calls connect (proxy, TLS roots).
    network: Network,
}

impl std::fmt::Debug for RoomService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomService")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("api_key", &self.api_key)
            .field("api_secret", &"<redacted>")
            .finish()
    }
}

impl RoomService {
    /// The `RoomService` of the server at `url` (`ws(s)://` or `http(s)://`,
    /// a path prefix is kept), signing with `api_key` and `api_secret`.
    pub fn new(url: &str, api_key: &str, api_secret: &str) -> Result<Self, String> {
        let parsed = LiveKitUrl::parse(url).map_err(|why| format!("server URL `{url}`: {why}"))?;
        Ok(Self {
            tls: parsed.tls,
            host: parsed.host,
            port: parsed.port,
            prefix: parsed.prefix,
            api_key: api_key.to_owned(),
            api_secret: api_secret.to_owned(),
            network: Network::default(),
        })
    }

    /// Connects through `network` (proxy, TLS roots) instead of directly
    /// with the built-in roots.
    pub fn with_network(mut self, network: Network) -> Self {
        self.network = network;
        self
    }

    /// The server API of `room` only.
    pub fn scope(self: &Arc<Self>, room: &str) -> RoomScope {
        RoomScope {
            service: self.clone(),
            room: room.to_owned(),
        }
    }
}

/// Why a server API call failed. The texts name what failed, never a
/// credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomServiceError {
    /// The server refused the call.
    #[error("{0}")]
    Denied(String),
    /// The call did not get through.
    #[error("{0}")]
    Transport(String),
}

/// The server API of one job's room.
#[derive(Debug, Clone)]
pub struct RoomScope {
    service: Arc<RoomService>,
    room: String,
}

impl RoomScope {
    /// `RoomService.SendData` to this room.
    pub async fn send_data(
        &self,
        payload: Vec<u8>,
        topic: Option<String>,
        reliable: bool,
        destinations: Vec<String>,
    ) -> Result<(), RoomServiceError> {
        let kind = if reliable {
            proto::data_packet::Kind::Reliable
        } else {
            proto::data_packet::Kind::Lossy
        };
        let request = proto::SendDataRequest {
            room: self.room.clone(),
            data: payload,
            kind: kind as i32,
            destination_identities: destinations,
            topic,
            ..Default::default()
        };
        self.call("SendData", &request).await
    }

    /// `RoomService.UpdateParticipant` in this room.
    pub async fn update_participant(
        &self,
        identity: String,
        metadata: Option<String>,
        attributes: Vec<(String, String)>,
    ) -> Result<(), RoomServiceError> {
        let request = proto::UpdateParticipantRequest {
            room: self.room.clone(),
            identity,
            metadata: metadata.unwrap_or_default(),
            attributes: attributes.into_iter().collect(),
            ..Default::default()
        };
        self.call("UpdateParticipant", &request).await
    }

    /// `RoomService.RemoveParticipant` in this room.
    pub async fn remove_participant(&self, identity: String) -> Result<(), RoomServiceError> {
        let request = proto::RoomParticipantIdentity {
            room: self.room.clone(),
            identity,
            ..Default::default()
        };
        self.call("RemoveParticipant", &request).await
    }

    /// `RoomService.MutePublishedTrack` in this room.
    pub async fn mute_track(
        &self,
        identity: String,
        track_sid: String,
        muted: bool,
    ) -> Result<(), RoomServiceError> {
        let request = proto::MuteRoomTrackRequest {
            room: self.room.clone(),
            identity,
            track_sid,
            muted,
        };
        self.call("MutePublishedTrack", &request).await
    }

    async fn call(&self, method: &str, body: &impl Message) -> Result<(), RoomServiceError> {
        tokio::time::timeout(
            SERVER_API_CALL_TIMEOUT,
            self.call_once(method, body.encode_to_vec()),
        )
        .await
        .unwrap_or_else(|_| {
            Err(RoomServiceError::Transport(format!(
                "LiveKit RoomService.{method}: no answer within {} s",
                SERVER_API_CALL_TIMEOUT.as_secs()
            )))
        })
    }

    async fn call_once(&self, method: &str, body: Vec<u8>) -> Result<(), RoomServiceError> {
        let s = &self.service;
        let transport = |what: &str| {
            RoomServiceError::Transport(format!("LiveKit RoomService.{method}: {what}"))
        };
        let token = AccessToken::with_api_key(&s.api_key, &s.api_secret)
            .with_ttl(SERVER_API_TOKEN_TTL)
            .with_grants(VideoGrants {
                room_admin: true,
                room: self.room.clone(),
                ..VideoGrants::default()
            })
            .to_jwt()
            .map_err(|_| transport("could not sign the token"))?;
        let server = Destination {
            tls: s.tls,
            host: &s.host,
            port: s.port,
        };
        let stream = s
            .network
            .dial(
                server,
                &Unrestricted,
                Deadline::after(SERVER_API_CALL_TIMEOUT),
            )
            .await
            .map_err(|e| transport(&e.to_string()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| transport(&e.to_string()))?;
        // Ends with the exchange: this task does not outlive the call
        // (plus `SERVER_API_CALL_TIMEOUT` at worst, when the caller gave up).
        tokio::spawn(async move {
            let _ = tokio::time::timeout(SERVER_API_CALL_TIMEOUT, conn).await;
        });
        let request =
            http::Request::post(format!("{}/twirp/livekit.RoomService/{method}", s.prefix))
                .header(http::header::HOST, authority(&s.host, s.port))
                .header(http::header::CONTENT_TYPE, "application/protobuf")
                .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| transport(&e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| transport(&e.to_string()))?;
        let status = response.status();
        let answer = Limited::new(response.into_body(), SERVER_API_MAX_ANSWER_BYTES)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if status.is_success() {
            return Ok(());
        }
        // Twirp errors are JSON: {"code": "...", "msg": "..."}.
        let msg = serde_json::from_slice::<serde_json::Value>(&answer)
            .ok()
            .and_then(|v| v.get("msg").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&answer).chars().take(200).collect());
        let text = format!("LiveKit RoomService.{method}: {status}: {msg}");
        Err(match status.as_u16() {
            401 | 403 => RoomServiceError::Denied(text),
            _ => RoomServiceError::Transport(text),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let s = RoomService::new("wss://x.livekit.cloud/", "k", "s").unwrap();
        assert!(s.tls);
        assert_eq!(
            (s.host.as_str(), s.port, s.prefix.as_str()),
            ("x.livekit.cloud", 443, "")
        );
        let s = RoomService::new("http://127.0.0.1:7880/lk/", "k", "s").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.prefix.as_str()),
            ("127.0.0.1", 7880, "/lk")
        );
        let s = RoomService::new("ws://[::1]:7880", "k", "s").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("::1", 7880));
        assert!(RoomService::new("ftp://x", "k", "s").is_err());
        assert!(RoomService::new("ws:///x", "k", "s").is_err());
        assert!(!format!("{s:?}").contains("\"s\""));
    }
}
