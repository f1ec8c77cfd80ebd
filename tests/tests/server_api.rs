//! The `server` import: LiveKit's `RoomService` through the worker, scoped
//! to each job's room, with credentials the guest never sees.
//!
//! An in-process worker (the `faulty` guest, mode `server:<identity>`) runs
//! jobs in two rooms at once against the fake server, which verifies each
//! call's token and records it.

use std::sync::Arc;
use std::time::Duration;

use agent_host::room::sim::{SimOutput, SimRooms};
use agent_host::worker::Worker;
use agent_host_tests::worker::{WAIT, options, wait_worker_status};
use agent_host_tests::{guests, load, runtime};
use fake_livekit::livekit_protocol::JobStatus;
use fake_livekit::twirp::Request;
use fake_livekit::{Config, DispatchRequest, FakeLiveKit};
use faulty_mode::Mode;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A secret no guest output could contain by accident.
const SECRET: &str = "s3cr3t-that-must-never-reach-a-guest-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_calls_are_scoped_to_the_jobs_room_and_keep_credentials_in_the_host() {
    let server = FakeLiveKit::start(Config {
        api_secret: SECRET.into(),
        ..Config::default()
    })
    .await
    .unwrap();
    let rooms = SimRooms::default();
    let runtime = runtime(4);
    let plugin = load(&runtime, guests::FAULTY);
    let worker = Worker::new(
        options(&server, "admin", 4),
        runtime,
        plugin,
        Arc::new(rooms.clone()),
    );
    let handle = worker.handle();
    let task = tokio::spawn(worker.run());
    server.wait_for_workers(1, WAIT).await.unwrap();

    let mut outputs = Vec::new();
    let mut jobs = Vec::new();
    for room in ["room-a", "room-b"] {
        outputs.push(rooms.room(room).subscribe());
        let mut req = DispatchRequest::new(room, "admin");
        // The guest asks for "room-b/alice" and the like: identities are
        // just strings, there is nothing that names a room.
        req.metadata = Mode::Server(format!("alice-of-{room}")).to_string();
        jobs.push(server.dispatch(req));
    }
    for id in &jobs {
        wait_worker_status(&server, id, JobStatus::JsSuccess).await;
    }

    // Four calls per job, each for the job's own room, each with a token
    // for that room only.
    let calls = server.twirp_calls();
    assert_eq!(calls.len(), 8, "{calls:#?}");
    for room in ["room-a", "room-b"] {
        let mine: Vec<_> = calls.iter().filter(|c| c.room == room).collect();
        let mut methods: Vec<&str> = mine.iter().map(|c| c.method.as_str()).collect();
        methods.sort_unstable();
        assert_eq!(
            methods,
            [
                "MutePublishedTrack",
                "RemoveParticipant",
                "SendData",
                "UpdateParticipant"
            ]
        );
        for call in &mine {
            assert_eq!(call.status, 200, "{call:?}");
            assert!(call.room_admin);
            assert_eq!(call.token_room.as_deref(), Some(room));
            if !matches!(call.request, Request::SendData(_)) {
                assert_eq!(call.identity, format!("alice-of-{room}"));
            }
        }
    }
    match &calls
        .iter()
        .find(|c| c.method == "UpdateParticipant")
        .unwrap()
        .request
    {
        Request::UpdateParticipant(r) => {
            assert_eq!(r.metadata, "faulty-meta");
            assert_eq!(
                r.attributes.get("faulty.server").map(String::as_str),
                Some("yes")
            );
        }
        other => panic!("{other:?}"),
    }

    // A token of room-a is refused for room-b by the (fake) server: the
    // scope is in the token, not only in the body the host writes.
    let token_a = &calls.iter().find(|c| c.room == "room-a").unwrap().token;
    let status = raw_remove(&server, token_a, "room-b").await;
    assert_eq!(status, 403);
    assert_eq!(raw_remove(&server, token_a, "room-a").await, 200);

    // Everything the guests could see of themselves (info, environment,
    // arguments) and every answer they got, as they reported it: no
    // secret, no token.
    let mut reports = Vec::new();
    for rx in &mut outputs {
        while let Ok(out) = rx.try_recv() {
            if let SimOutput::Text { text, .. } = out {
                reports.push(text.text);
            }
        }
    }
    assert_eq!(reports.len(), 2, "{reports:?}");
    for report in &reports {
        assert!(report.contains("send-data: Ok(())"), "{report}");
        assert!(report.contains("info: "), "{report}");
        assert!(!report.contains(SECRET), "the secret leaked: {report}");
        for call in &calls {
            assert!(!report.contains(&call.token), "a token leaked: {report}");
        }
        // Nor any part of a token (its signature, its claims).
        for part in token_a.split('.') {
            assert!(!report.contains(part), "part of a token leaked: {report}");
        }
    }
    handle.stop();
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_without_server_credentials_are_denied() {
    // A sim job (no worker, so no credentials): every call is denied and
    // nothing is sent anywhere.
    let runtime = runtime(1);
    let plugin = load(&runtime, guests::FAULTY);
    let rooms = SimRooms::default();
    let outcome = agent_host_tests::run_job(
        &runtime,
        &plugin,
        &rooms,
        agent_host_tests::faulty_job("AJ_noserver", Mode::Server("bob".to_owned())),
        agent_host::JobLimits::default(),
    )
    .await;
    let agent_host::Outcome::Failed(reason) = outcome else {
        panic!("{outcome}");
    };
    assert_eq!(
        reason.matches("not available to this job").count(),
        4,
        "{reason}"
    );
}

/// `RemoveParticipant` for `room` with `token`, by hand: the HTTP status.
async fn raw_remove(server: &FakeLiveKit, token: &str, room: &str) -> u16 {
    use prost::Message as _;
    let body = fake_livekit::livekit_protocol::RoomParticipantIdentity {
        room: room.into(),
        identity: "x".into(),
        ..Default::default()
    }
    .encode_to_vec();
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let head = format!(
        "POST /twirp/livekit.RoomService/RemoveParticipant HTTP/1.1\r\nhost: x\r\ncontent-type: application/protobuf\r\nauthorization: Bearer {token}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
