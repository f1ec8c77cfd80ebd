//! The double without a WebRTC client: its HTTP endpoints and its room
//! lifecycle. (Sessions with real clients are tested in
//! `tests/tests/room.rs`, inside a network namespace.)

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use livekit_api::access_token::{AccessToken, VideoGrants};
use prost::Message as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use webrtc_double::livekit_protocol::{JoinRequest, WrappedJoinRequest};
use webrtc_double::{Config, Double, Error, Observation};

async fn double() -> Double {
    Double::start("127.0.0.1:0".parse().unwrap(), "key", "secret")
        .await
        .unwrap()
}

fn token(secret: &str) -> String {
    AccessToken::with_api_key("key", secret)
        .with_identity("agent-1")
        .with_grants(VideoGrants {
            room_join: true,
            room: "r".into(),
            ..Default::default()
        })
        .to_jwt()
        .unwrap()
}

/// Sends `head` and returns the status code of the answer (0 when the
/// connection closed without one).
async fn status(d: &Double, head: &str) -> u16 {
    let mut s = TcpStream::connect(d.addr()).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn get(path: &str, auth: Option<&str>, upgrade: bool) -> String {
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: x\r\n");
    if let Some(t) = auth {
        head += &format!("Authorization: Bearer {t}\r\n");
    }
    if upgrade {
        head += "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    }
    head + "\r\n"
}

#[tokio::test]
async fn http_endpoints_check_paths_tokens_and_join_requests() {
    let d = double().await;
    let good = token("secret");
    let bad = token("wrong");
    let join = URL_SAFE_NO_PAD.encode(
        WrappedJoinRequest {
            compression: 0,
            join_request: JoinRequest::default().encode_to_vec(),
        }
        .encode_to_vec(),
    );
    assert_eq!(status(&d, &get("/rtc", Some(&good), true)).await, 404);
    assert_eq!(status(&d, &get("/other", None, false)).await, 404);
    assert_eq!(status(&d, &get("/rtc/v1", None, true)).await, 401);
    assert_eq!(status(&d, &get("/rtc/v1", Some(&bad), true)).await, 401);
    let q = format!("/rtc/v1?join_request={join}&access_token={bad}");
    assert_eq!(status(&d, &get(&q, None, true)).await, 401);
    assert_eq!(
        status(&d, &get("/rtc/v1/validate", Some(&good), false)).await,
        200
    );
    assert_eq!(
        status(&d, &get("/rtc/validate", Some(&bad), false)).await,
        401
    );
    let q = "/rtc/v1?join_request=%%%";
    assert_eq!(status(&d, &get(q, Some(&good), true)).await, 400);
    let q = format!("/rtc/v1?join_request={join}");
    assert_eq!(status(&d, &get(&q, Some(&good), false)).await, 400);
    // Garbage and oversized heads are dropped without an answer.
    assert_eq!(status(&d, "\x00\x01\x02 not http\r\n\r\n").await, 0);
    let huge = format!("GET /{} HTTP/1.1\r\n", "a".repeat(100_000));
    assert_eq!(status(&d, &huge).await, 0);
    // Still serving.
    assert_eq!(
        status(&d, &get("/rtc/v1/validate", Some(&good), false)).await,
        200
    );
}

#[tokio::test]
async fn refuses_unspecified_addresses() {
    let err = Double::start("0.0.0.0:0".parse().unwrap(), "k", "s").await;
    assert!(matches!(err, Err(Error::Address(_))));
}

#[tokio::test]
async fn rooms_close_when_the_last_remote_leaves() {
    let d = double().await;
    let room = d.room("r");
    assert_eq!(room.name(), "r");
    assert!(room.sid().starts_with("RM_"));
    let a = room.join("a").unwrap();
    assert!(matches!(room.join("a"), Err(Error::DuplicateIdentity(_))));
    let b = room.join("b").unwrap();
    assert!(a.sid().starts_with("PA_"));
    a.send_text("lk.chat", "nobody listens").unwrap();
    a.send_data("t", b"x").unwrap();
    a.leave().unwrap();
    assert!(matches!(a.leave(), Err(Error::NotInRoom(_))));
    assert!(matches!(a.send_data("t", b"x"), Err(Error::NotInRoom(_))));
    assert!(!room.is_closed());
    assert_eq!(room.remotes(), vec!["b".to_string()]);
    b.leave().unwrap();
    assert!(room.is_closed());
    assert_eq!(room.observations(), vec![Observation::RoomClosed]);
    assert!(matches!(room.join("c"), Err(Error::RoomClosed(_))));
    // The name is free again: a new room.
    let again = d.room("r");
    assert_ne!(again.sid(), room.sid());
    assert!(!again.is_closed());
    again.close();
    again.close();
    assert_eq!(again.observations(), vec![Observation::RoomClosed]);
}

#[tokio::test]
async fn a_close_delay_waits_and_a_rejoin_cancels_it() {
    let config = Config {
        close_delay: Duration::from_millis(200),
        ..Config::new("key", "secret")
    };
    let d = Double::start_with("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let room = d.room("r");
    room.join("a").unwrap().leave().unwrap();
    let b = room.join("b").unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!room.is_closed(), "the rejoin cancelled the close");
    b.leave().unwrap();
    assert!(!room.is_closed());
    room.wait_for(Duration::from_secs(5), "closing", |o| {
        (o == &Observation::RoomClosed).then_some(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn waits_time_out_with_a_clear_error() {
    let d = double().await;
    let err = d
        .room("r")
        .wait_for_agent(Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("an agent ready in room r"),
        "{err}"
    );
}
