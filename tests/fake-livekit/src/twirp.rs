//! LiveKit's `RoomService` over Twirp, the four calls agent-host makes:
//! `POST /twirp/livekit.RoomService/{SendData,UpdateParticipant,RemoveParticipant,MutePublishedTrack}`
//! with a protobuf body (`Content-Type: application/protobuf`).
//!
//! Like the server's `roomservice.go`: the bearer token must verify (HS256
//! with the API secret, `iss` the API key) and carry `video.roomAdmin` for
//! exactly the room named in the body; otherwise 401 (no or bad token) or
//! 403 (wrong grant), with a Twirp JSON error. A call that passes is
//! recorded ([`TwirpCall`], read with
//! [`FakeLiveKit::twirp_calls`](crate::FakeLiveKit::twirp_calls)) and
//! answered with the empty protobuf response. Refused calls are recorded
//! too, with their status.
//!
//! Bodies are read up to [`MAX_BODY`] within 10 s; anything malformed is a
//! 400, never a panic.

use std::time::Duration;

use livekit_api::access_token::TokenVerifier;
use livekit_protocol as proto;
use prost::Message as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::Inner;

/// The path prefix of the `RoomService` calls.
pub const PREFIX: &str = "/twirp/livekit.RoomService/";

/// Largest request body read.
pub const MAX_BODY: usize = 1 << 20;

/// One `RoomService` call as the fake saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct TwirpCall {
    /// `SendData`, `UpdateParticipant`, `RemoveParticipant` or `MutePublishedTrack`.
    pub method: String,
    /// HTTP status answered: 200, or the refusal.
    pub status: u16,
    /// The bearer token presented (empty when none).
    pub token: String,
    /// The `video.room` grant of the token, when it verified.
    pub token_room: Option<String>,
    /// Whether the token had `video.roomAdmin`.
    pub room_admin: bool,
    /// The room the body names.
    pub room: String,
    /// The participant identity the body names (empty for `SendData`).
    pub identity: String,
    /// The decoded request, for assertions on its other fields.
    pub request: Request,
}

/// The decoded body of a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `SendData`.
    SendData(proto::SendDataRequest),
    /// `UpdateParticipant`.
    UpdateParticipant(proto::UpdateParticipantRequest),
    /// `RemoveParticipant`.
    RemoveParticipant(proto::RoomParticipantIdentity),
    /// `MutePublishedTrack`.
    MutePublishedTrack(proto::MuteRoomTrackRequest),
}

impl Request {
    fn decode(method: &str, body: &[u8]) -> Result<Self, String> {
        let bad = |e: prost::DecodeError| format!("bad {method} body: {e}");
        Ok(match method {
            "SendData" => Request::SendData(proto::SendDataRequest::decode(body).map_err(bad)?),
            "UpdateParticipant" => Request::UpdateParticipant(
                proto::UpdateParticipantRequest::decode(body).map_err(bad)?,
            ),
            "RemoveParticipant" => Request::RemoveParticipant(
                proto::RoomParticipantIdentity::decode(body).map_err(bad)?,
            ),
            "MutePublishedTrack" => {
                Request::MutePublishedTrack(proto::MuteRoomTrackRequest::decode(body).map_err(bad)?)
            }
            other => return Err(format!("unknown method {other}")),
        })
    }

    fn room_and_identity(&self) -> (&str, &str) {
        match self {
            Request::SendData(r) => (&r.room, ""),
            Request::UpdateParticipant(r) => (&r.room, &r.identity),
            Request::RemoveParticipant(r) => (&r.room, &r.identity),
            Request::MutePublishedTrack(r) => (&r.room, &r.identity),
        }
    }
}

/// Serves one Twirp request whose head was read; `tail` is what was read
/// past the head.
pub(crate) async fn serve(
    inner: &Inner,
    mut stream: TcpStream,
    method: &str,
    authorization: Option<&str>,
    content_length: Option<&str>,
    mut tail: Vec<u8>,
) {
    let Some(len) = content_length
        .and_then(|l| l.trim().parse::<usize>().ok())
        .filter(|l| *l <= MAX_BODY)
    else {
        return answer(
            &mut stream,
            400,
            "malformed",
            "missing or too large content-length",
        )
        .await;
    };
    let read = async {
        let mut chunk = [0u8; 8192];
        while tail.len() < len {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            tail.extend_from_slice(&chunk[..n]);
        }
        std::io::Result::Ok(())
    };
    if !matches!(
        tokio::time::timeout(Duration::from_secs(10), read).await,
        Ok(Ok(()))
    ) {
        return;
    }
    tail.truncate(len);
    let request = match Request::decode(method, &tail) {
        Ok(request) => request,
        Err(e) => return answer(&mut stream, 400, "malformed", &e).await,
    };
    let token = authorization
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let claims = TokenVerifier::with_api_key(&inner.config.api_key, &inner.config.api_secret)
        .verify(&token)
        .ok();
    let (room, identity) = request.room_and_identity();
    let (status, why) = match &claims {
        None => (401, "unauthenticated: no valid token"),
        Some(c) if !c.video.room_admin => (403, "permission denied: no roomAdmin grant"),
        Some(c) if c.video.room != room => (403, "permission denied: token is for another room"),
        Some(_) => (200, ""),
    };
    let call = TwirpCall {
        method: method.to_owned(),
        status,
        token,
        token_room: claims.as_ref().map(|c| c.video.room.clone()),
        room_admin: claims.as_ref().is_some_and(|c| c.video.room_admin),
        room: room.to_owned(),
        identity: identity.to_owned(),
        request,
    };
    inner.update(|s| s.twirp.push(call));
    if status != 200 {
        let code = if status == 401 {
            "unauthenticated"
        } else {
            "permission_denied"
        };
        return answer(&mut stream, status, code, why).await;
    }
    // Every response of these calls is empty or may be: `SendDataResponse`,
    // `ParticipantInfo`, `RemoveParticipantResponse`, `MuteRoomTrackResponse`.
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/protobuf\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// A Twirp error: JSON `{"code", "msg"}` with `status`.
async fn answer(stream: &mut TcpStream, status: u16, code: &str, msg: &str) {
    let body = serde_json::json!({ "code": code, "msg": msg }).to_string();
    let reason = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        _ => "Forbidden",
    };
    let text = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(text.as_bytes()).await;
    let _ = stream.shutdown().await;
}
