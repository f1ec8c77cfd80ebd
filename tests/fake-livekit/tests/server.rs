//! The fake server against a hand-written worker client.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Ended, T, TestWorker, connect, http_status, worker_token};
use fake_livekit::flow::{self, FlowStep};
use fake_livekit::livekit_protocol::{
    self as proto, JobStatus, JobType, WorkerStatus, server_message, worker_message,
};
use fake_livekit::{
    Closer, Config, Direction, DispatchOutcome, DispatchRequest, FakeLiveKit, TerminateReason,
};
use futures::SinkExt;
use livekit_api::access_token::{AccessToken, TokenVerifier, VideoGrants};
use prost::Message as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

async fn server() -> FakeLiveKit {
    FakeLiveKit::start(Config::default()).await.unwrap()
}

/// Waits for `n` closed connections; the reasons of those the server
/// closed, in order.
async fn server_close_reasons(s: &FakeLiveKit, n: usize) -> Vec<String> {
    let mut from = 0;
    for _ in 0..n {
        let (i, _) = s
            .wait_for_message(from, T, "a close", |m| {
                matches!(m.dir, Direction::Closed { .. })
            })
            .await
            .unwrap();
        from = i + 1;
    }
    s.messages()
        .into_iter()
        .filter_map(|m| match m.dir {
            Direction::Closed {
                reason,
                by: Closer::Server,
                ..
            } => Some(reason),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn refuses_bad_tokens_paths_and_plain_requests() {
    let s = server().await;
    let url = format!("{}/agent", s.url());

    let bad_secret = worker_token("devkey", "wrong");
    assert_eq!(
        http_status(connect(&url, Some(&bad_secret)).await.err().unwrap()),
        401
    );

    let wrong_key = worker_token("otherkey", "secret");
    assert_eq!(
        http_status(connect(&url, Some(&wrong_key)).await.err().unwrap()),
        401
    );

    let no_agent = AccessToken::with_api_key("devkey", "secret")
        .with_grants(VideoGrants {
            room_create: true,
            ..Default::default()
        })
        .to_jwt()
        .unwrap();
    assert_eq!(
        http_status(connect(&url, Some(&no_agent)).await.err().unwrap()),
        401
    );

    let expired = AccessToken::with_api_key("devkey", "secret")
        .with_grants(VideoGrants {
            agent: true,
            ..Default::default()
        })
        .with_ttl(Duration::ZERO)
        .to_jwt()
        .unwrap();
    // Within the 60 s leeway: accepted.
    assert!(connect(&url, Some(&expired)).await.is_ok());

    assert_eq!(http_status(connect(&url, None).await.err().unwrap()), 401);
    let good = worker_token("devkey", "secret");
    let other = format!("{}/rtc", s.url());
    assert_eq!(
        http_status(connect(&other, Some(&good)).await.err().unwrap()),
        404
    );

    // Token in the query string works too.
    let q = format!("{url}?access_token={good}&protocol=7");
    connect(&q, None)
        .await
        .expect("access_token query param accepted");

    // A plain HTTP GET /agent: 404, like the OSS server.
    let mut tcp = tokio::net::TcpStream::connect(s.addr()).await.unwrap();
    tcp.write_all(
        format!("GET /agent HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {good}\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut resp = String::new();
    tokio::time::timeout(T, tcp.read_to_string(&mut resp))
        .await
        .unwrap()
        .unwrap();
    assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");

    let rejected: Vec<u16> = s
        .messages()
        .iter()
        .filter_map(|m| match m.dir {
            Direction::Rejected { status, .. } => Some(status),
            _ => None,
        })
        .collect();
    assert_eq!(rejected, [401, 401, 401, 401, 404, 404]);
    let protocols: Vec<i32> = s
        .messages()
        .iter()
        .filter_map(|m| match m.dir {
            Direction::Connected { protocol, .. } => Some(protocol),
            _ => None,
        })
        .collect();
    assert_eq!(protocols, [1, 7]);
}

#[tokio::test]
async fn register_ping_and_worker_status() {
    let s = FakeLiveKit::start(Config {
        ping_interval: Duration::from_millis(100),
        ..Config::default()
    })
    .await
    .unwrap();
    let mut w = TestWorker::connect_to(&s).await;
    // Ping is answered before registration.
    w.send(worker_message::Message::Ping(proto::WorkerPing {
        timestamp: 42,
    }))
    .await;
    match w.recv().await {
        Some(server_message::Message::Pong(p)) => {
            assert_eq!(p.last_timestamp, 42);
            assert!(p.timestamp > 1_600_000_000_000);
        }
        other => panic!("{other:?}"),
    }
    let r = w.register("agent-a").await;
    assert!(r.worker_id.starts_with("AW_"));
    let info = r.server_info.unwrap();
    assert_eq!(info.edition, 0);
    assert_eq!(info.protocol, 17);
    assert_eq!(info.agent_protocol, 1);
    assert!(!info.version.is_empty() && !info.node_id.is_empty());

    let workers = s.wait_for_workers(1, T).await.unwrap();
    assert_eq!(workers[0].id, r.worker_id);
    assert_eq!(workers[0].agent_name, "agent-a");
    assert_eq!(workers[0].job_type, JobType::JtRoom);
    assert_eq!(workers[0].version, "test-0.1");
    assert!(workers[0].permissions.can_subscribe_metrics);

    // Status replaces only when present; load is always overwritten.
    w.update_status(WorkerStatus::WsFull, 0.5).await;
    s.wait_for_worker(&r.worker_id, T, |w| {
        w.worker_status() == Some(WorkerStatus::WsFull) && w.load == 0.5
    })
    .await
    .unwrap();
    w.send(worker_message::Message::UpdateWorker(
        proto::UpdateWorkerStatus {
            status: None,
            load: 0.0,
            ..Default::default()
        },
    ))
    .await;
    s.wait_for_worker(&r.worker_id, T, |w| w.status_updates == 2)
        .await
        .unwrap();
    let snap = s.worker(&r.worker_id).unwrap();
    assert_eq!(
        (snap.worker_status(), snap.load),
        (Some(WorkerStatus::WsFull), 0.0)
    );

    // Control pings arrive every 100 ms.
    w.send(worker_message::Message::Ping(proto::WorkerPing {
        timestamp: 1,
    }))
    .await;
    let deadline = tokio::time::Instant::now() + T;
    while w.pings_seen < 2 && tokio::time::Instant::now() < deadline {
        w.send(worker_message::Message::Ping(proto::WorkerPing {
            timestamp: 1,
        }))
        .await;
        assert!(matches!(
            w.recv().await,
            Some(server_message::Message::Pong(_))
        ));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(w.pings_seen >= 2, "saw {} control pings", w.pings_seen);

    let steps = flow::summarize_worker(&s.messages(), 1);
    assert!(matches!(steps[0], flow::WorkerStep::Connected));
    assert!(matches!(steps[1], flow::WorkerStep::Ping));
    assert!(matches!(steps[2], flow::WorkerStep::Register { .. }));
    assert!(matches!(steps[3], flow::WorkerStep::Registered));
    assert_eq!(
        steps[4],
        flow::WorkerStep::Status(Some(WorkerStatus::WsFull))
    );
    assert_eq!(steps[5], flow::WorkerStep::Status(None));
}

/// With `Config::room_url` set, assignments point jobs at that room server
/// (e.g. the WebRTC double), with the usual participant token.
#[tokio::test]
async fn assignment_carries_the_configured_room_url() {
    let s = FakeLiveKit::start(Config {
        room_url: Some("ws://10.77.0.1:7881".into()),
        ..Config::default()
    })
    .await
    .unwrap();
    let mut w = TestWorker::connect_to(&s).await;
    w.register("agent-a").await;
    s.dispatch(DispatchRequest::new("room-u", "agent-a"));
    let job = w.expect_offer().await;
    w.answer(&job.id, true, false).await;
    let a = match w.recv().await {
        Some(server_message::Message::Assignment(a)) => a,
        other => panic!("{other:?}"),
    };
    assert_eq!(a.url.as_deref(), Some("ws://10.77.0.1:7881"));
    let claims = TokenVerifier::with_api_key("devkey", "secret")
        .verify(&a.token)
        .unwrap();
    assert_eq!(claims.video.room, "room-u");
    assert!(claims.video.room_join);
}

#[tokio::test]
async fn dispatch_offer_accept_assignment_and_job_status() {
    let s = server().await;
    let mut w = TestWorker::connect_to(&s).await;
    let reg = w.register("agent-a").await;

    let req = DispatchRequest::new("room-1", "agent-a")
        .metadata("hello")
        .attribute("k", "v");
    let id = s.dispatch(req);
    let job = w.expect_offer().await;
    assert_eq!(job.id, id.as_str());
    assert!(job.id.starts_with("AJ_") && job.dispatch_id.starts_with("AD_"));
    assert_eq!(job.metadata, "hello");
    assert_eq!(job.attributes["k"], "v");
    let room = job.room.as_ref().unwrap();
    assert_eq!(room.name, "room-1");
    assert!(room.sid.starts_with("RM_"));
    let state = job.state.as_ref().unwrap();
    assert_eq!(state.status, JobStatus::JsRunning as i32);
    assert_eq!(state.worker_id, reg.worker_id);
    assert!(state.started_at > 0 && state.participant_identity.is_empty());

    w.answer(&job.id, true, false).await;
    let a = match w.recv().await {
        Some(server_message::Message::Assignment(a)) => a,
        other => panic!("{other:?}"),
    };
    assert_eq!(a.url, None);
    let ajob = a.job.unwrap();
    assert_eq!(
        ajob.state.unwrap().participant_identity,
        format!("agent-{}", job.id)
    );
    let claims = TokenVerifier::with_api_key("devkey", "secret")
        .verify(&a.token)
        .unwrap();
    assert_eq!(claims.sub, format!("agent-{}", job.id));
    assert_eq!(claims.name, "agent");
    assert_eq!(claims.kind, "agent");
    assert!(claims.video.room_join && claims.video.agent);
    assert_eq!(claims.video.room, "room-1");
    assert_eq!(claims.attributes["lk.agent_name"], "agent-a");
    assert_eq!(claims.exp - claims.nbf, 3600);
    let raw = fake_livekit::auth::decode_unverified(&a.token).unwrap();
    assert_eq!(raw["video"]["canSubscribeMetrics"], true);
    assert_eq!(raw["video"]["canUpdateOwnMetadata"], true);

    let rec = s
        .wait_for_job(&id, T, "assignment", |j| j.assigned_at.is_some())
        .await
        .unwrap();
    assert_eq!(
        rec.outcome,
        DispatchOutcome::Assigned {
            worker_id: reg.worker_id.clone()
        }
    );
    assert_eq!(s.worker(&reg.worker_id).unwrap().job_count, 1);

    w.update_job(&job.id, JobStatus::JsRunning).await;
    w.update_job(&job.id, JobStatus::JsSuccess).await;
    let rec = s
        .wait_for_job_status(&id, JobStatus::JsSuccess, T)
        .await
        .unwrap();
    assert_eq!(
        rec.worker_statuses(),
        [JobStatus::JsRunning, JobStatus::JsSuccess]
    );
    assert!(rec.ended_at.is_some());
    assert_eq!(s.worker(&reg.worker_id).unwrap().job_count, 0);
    // A late update for an ended job is recorded but ignored.
    w.update_job(&job.id, JobStatus::JsFailed).await;
    let rec = s
        .wait_for_job(&id, T, "3 updates", |j| j.status_history.len() == 3)
        .await
        .unwrap();
    assert!(!rec.status_history[2].accepted);
    assert_eq!(rec.status, JobStatus::JsSuccess);

    let steps = flow::summarize(&s.messages(), id.as_str());
    assert_eq!(
        steps,
        [
            FlowStep::Offer,
            FlowStep::Accept {
                participant_identity: "agent-<job>".into(),
                has_name: true,
                attribute_keys: vec![]
            },
            FlowStep::Assignment { has_url: false },
            FlowStep::Status {
                status: JobStatus::JsRunning,
                has_error: false
            },
            FlowStep::Status {
                status: JobStatus::JsSuccess,
                has_error: false
            },
            FlowStep::Status {
                status: JobStatus::JsFailed,
                has_error: false
            },
        ]
    );
}

/// Runs a worker that declines the first offer any of the workers gets and
/// accepts later ones.
async fn decline_once(mut w: TestWorker, declined: Arc<AtomicBool>) -> TestWorker {
    let job = w.expect_offer().await;
    let decline = !declined.swap(true, Ordering::SeqCst);
    w.answer(&job.id, !decline, false).await;
    w
}

#[tokio::test]
async fn decline_goes_to_the_next_worker() {
    let s = server().await;
    let mut a = TestWorker::connect_to(&s).await;
    let mut b = TestWorker::connect_to(&s).await;
    let ra = a.register("agent-a").await;
    let rb = b.register("agent-a").await;
    let id = s.dispatch(DispatchRequest::new("r", "agent-a"));
    let declined = Arc::new(AtomicBool::new(false));
    // Whichever worker is offered first declines; the other accepts.
    let ta = tokio::spawn(decline_once(a, declined.clone()));
    let tb = tokio::spawn(decline_once(b, declined.clone()));
    let rec = s
        .wait_for_job(&id, T, "outcome", |j| j.outcome != DispatchOutcome::Pending)
        .await
        .unwrap();
    let (_a, _b) = (ta.await.unwrap(), tb.await.unwrap());
    assert_eq!(rec.offers.len(), 2);
    assert_ne!(rec.offers[0].worker_id, rec.offers[1].worker_id);
    let DispatchOutcome::Assigned { worker_id } = &rec.outcome else {
        panic!("{:?}", rec.outcome)
    };
    assert_eq!(worker_id, &rec.offers[1].worker_id);
    assert!([&ra.worker_id, &rb.worker_id].contains(&worker_id));
}

#[tokio::test]
async fn all_declined_and_no_workers() {
    let s = server().await;
    let mut a = TestWorker::connect_to(&s).await;
    a.register("agent-a").await;
    let id = s.dispatch(DispatchRequest::new("r", "agent-a"));
    let job = a.expect_offer().await;
    a.answer(&job.id, false, false).await;
    let rec = s
        .wait_for_job(&id, T, "outcome", |j| j.outcome != DispatchOutcome::Pending)
        .await
        .unwrap();
    assert_eq!(rec.outcome, DispatchOutcome::AllDeclined);

    // Agent name, job type and deployment must all match.
    let rec = s
        .dispatch_and_wait(DispatchRequest::new("r", "other"), T)
        .await
        .unwrap();
    assert_eq!(rec.outcome, DispatchOutcome::NoWorkers);
    let rec = s
        .dispatch_and_wait(
            DispatchRequest::new("r", "agent-a").job_type(JobType::JtPublisher),
            T,
        )
        .await
        .unwrap();
    assert_eq!(rec.outcome, DispatchOutcome::NoWorkers);
    assert!(rec.offers.is_empty());
}

#[tokio::test]
async fn terminate_flag_ends_the_job_without_retry() {
    let s = server().await;
    let mut a = TestWorker::connect_to(&s).await;
    let mut b = TestWorker::connect_to(&s).await;
    a.register("agent-a").await;
    b.register("agent-a").await;
    let id = s.dispatch(DispatchRequest::new("r", "agent-a"));
    // Whoever gets the offer rejects it with terminate=true.
    let job = tokio::select! {
        j = a.expect_offer() => { a.answer(&j.id, false, true).await; j }
        j = b.expect_offer() => { b.answer(&j.id, false, true).await; j }
    };
    assert_eq!(job.id, id.as_str());
    let rec = s
        .wait_for_job(&id, T, "outcome", |j| j.outcome != DispatchOutcome::Pending)
        .await
        .unwrap();
    assert!(matches!(
        rec.outcome,
        DispatchOutcome::TerminatedByWorker { .. }
    ));
    assert_eq!(rec.offers.len(), 1);
    assert_eq!(rec.status, JobStatus::JsSuccess);
    assert!(rec.ended_at.is_some());
}

#[tokio::test]
async fn full_workers_are_skipped_and_load_gates_dispatch() {
    let s = server().await;
    let mut full = TestWorker::connect_to(&s).await;
    let mut free = TestWorker::connect_to(&s).await;
    let rf = full.register("agent-a").await;
    let rfree = free.register("agent-a").await;
    full.update_status(WorkerStatus::WsFull, 0.0).await;
    s.wait_for_worker(&rf.worker_id, T, |w| {
        w.worker_status() == Some(WorkerStatus::WsFull)
    })
    .await
    .unwrap();
    for i in 0..5 {
        let id = s.dispatch(DispatchRequest::new(format!("r{i}"), "agent-a"));
        let job = free.expect_offer().await;
        assert_eq!(job.id, id.as_str());
        free.answer(&job.id, false, false).await;
        let rec = s
            .wait_for_job(&id, T, "outcome", |j| j.outcome != DispatchOutcome::Pending)
            .await
            .unwrap();
        assert_eq!(rec.offers.len(), 1);
        assert_eq!(rec.offers[0].worker_id, rfree.worker_id);
    }
    // dispatch_to offers to the full worker anyway (the simulate_job path).
    let id = s.dispatch_to(&rf.worker_id, DispatchRequest::new("forced", "agent-a"));
    let job = full.expect_offer().await;
    assert_eq!(job.id, id.as_str());
    full.answer(&job.id, false, false).await;
    let rec = s
        .wait_for_job(&id, T, "outcome", |j| j.outcome != DispatchOutcome::Pending)
        .await
        .unwrap();
    assert_eq!(rec.outcome, DispatchOutcome::AllDeclined);
    // Free worker at load 0.8: the node gate (target load 0.7) refuses.
    free.update_status(WorkerStatus::WsAvailable, 0.8).await;
    s.wait_for_worker(&rfree.worker_id, T, |w| w.load == 0.8f32)
        .await
        .unwrap();
    let rec = s
        .dispatch_and_wait(DispatchRequest::new("r", "agent-a"), T)
        .await
        .unwrap();
    assert_eq!(rec.outcome, DispatchOutcome::NoServersAvailable);
    // Only the full worker left: no workers.
    drop(free);
    s.wait_for_worker(&rfree.worker_id, T, |w| !w.connected)
        .await
        .unwrap();
    let rec = s
        .dispatch_and_wait(DispatchRequest::new("r", "agent-a"), T)
        .await
        .unwrap();
    assert_eq!(rec.outcome, DispatchOutcome::NoWorkers);
}

/// A worker message the log shows has taken effect: a test that waits for
/// `WS_FULL` in the log and then dispatches finds the worker full (the
/// Python worker's drain conformance depends on it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logged_status_update_has_taken_effect() {
    let s = server().await;
    let mut w = TestWorker::connect_to(&s).await;
    let r = w.register("agent-a").await;
    for i in 0..200u16 {
        let (status, load) = match i % 2 {
            0 => (WorkerStatus::WsFull, 0.0),
            _ => (WorkerStatus::WsAvailable, f32::from(i) / 1000.0),
        };
        let mark = s.messages().len();
        w.update_status(status, load).await;
        s.wait_for_message(mark, T, "the update", |m| {
            matches!(m.inbound(), Some(worker_message::Message::UpdateWorker(_)))
        })
        .await
        .unwrap();
        let snapshot = s
            .workers()
            .into_iter()
            .find(|x| x.id == r.worker_id)
            .unwrap();
        assert_eq!(snapshot.worker_status(), Some(status), "update {i}");
        assert_eq!(snapshot.load, load, "update {i}");
    }
}

#[tokio::test]
async fn unanswered_offer_times_out_without_retry() {
    let s = FakeLiveKit::start(Config {
        offer_timeout: Duration::from_millis(300),
        ..Config::default()
    })
    .await
    .unwrap();
    let mut a = TestWorker::connect_to(&s).await;
    let mut b = TestWorker::connect_to(&s).await;
    a.register("x").await;
    b.register("x").await;
    let rec = s
        .dispatch_and_wait(DispatchRequest::new("r", "x"), T)
        .await
        .unwrap();
    assert!(
        matches!(rec.outcome, DispatchOutcome::Timeout { .. }),
        "{:?}",
        rec.outcome
    );
    assert_eq!(rec.offers.len(), 1);
    assert!(matches!(
        rec.offers[0].answer,
        fake_livekit::OfferAnswer::Timeout
    ));
}

#[tokio::test]
async fn termination_and_disconnect_forget_jobs() {
    let s = server().await;
    let mut w = TestWorker::connect_to(&s).await;
    let reg = w.register("a").await;
    let id = s.dispatch(DispatchRequest::new("r", "a"));
    let job = w.expect_offer().await;
    w.answer(&job.id, true, false).await;
    assert!(matches!(
        w.recv().await,
        Some(server_message::Message::Assignment(_))
    ));
    s.wait_for_job(&id, T, "assignment", |j| j.assigned_at.is_some())
        .await
        .unwrap();

    s.terminate_job(&id).unwrap();
    match w.recv().await {
        Some(server_message::Message::Termination(t)) => assert_eq!(t.job_id, job.id),
        other => panic!("{other:?}"),
    }
    let rec = s.job(&id).unwrap();
    assert_eq!(rec.status, JobStatus::JsSuccess);
    assert!(rec.terminated_at.is_some());
    assert!(s.terminate_job(&id).is_err(), "no worker runs it any more");
    assert_eq!(
        flow::summarize(&s.messages(), id.as_str()).last(),
        Some(&FlowStep::Termination)
    );

    // A second job, then the worker disconnects: the job is forgotten.
    let id2 = s.dispatch(DispatchRequest::new("r2", "a"));
    let job2 = w.expect_offer().await;
    w.answer(&job2.id, true, false).await;
    assert!(matches!(
        w.recv().await,
        Some(server_message::Message::Assignment(_))
    ));
    s.wait_for_job(&id2, T, "assignment", |j| j.assigned_at.is_some())
        .await
        .unwrap();
    w.ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    let rec = s
        .wait_for_job(&id2, T, "disconnect", |j| {
            j.worker_disconnected_at.is_some()
        })
        .await
        .unwrap();
    assert_eq!(rec.status, JobStatus::JsRunning);
    assert!(!s.worker(&reg.worker_id).unwrap().connected);
    assert!(matches!(
        s.terminate_job_with(&id2, TerminateReason::AgentLeftRoom),
        Err(fake_livekit::Error::JobNotRunning(_))
    ));
    let closed = s.messages().into_iter().find_map(|m| match m.dir {
        Direction::Closed { code, by, .. } => Some((code, by)),
        _ => None,
    });
    assert_eq!(closed, Some((Some(1000), Closer::Worker)));
}

#[tokio::test]
async fn agent_left_room_termination_is_failed() {
    let s = server().await;
    let mut w = TestWorker::connect_to(&s).await;
    w.register("a").await;
    let id = s.dispatch(DispatchRequest::new("r", "a"));
    let job = w.expect_offer().await;
    w.answer(&job.id, true, false).await;
    s.wait_for_job(&id, T, "assignment", |j| j.assigned_at.is_some())
        .await
        .unwrap();
    s.terminate_job_with(&id, TerminateReason::AgentLeftRoom)
        .unwrap();
    let rec = s.job(&id).unwrap();
    assert_eq!(
        (rec.status, rec.error.as_str()),
        (JobStatus::JsFailed, "agent worker left the room")
    );
}

#[tokio::test]
async fn agent_leaving_a_live_job_ends_it_failed_and_drops_later_statuses() {
    let s = server().await;
    let mut w = TestWorker::connect_to(&s).await;
    w.register("a").await;
    let id = s.dispatch(DispatchRequest::new("left-room", "a"));
    let job = w.expect_offer().await;
    w.answer(&job.id, true, false).await;
    assert!(matches!(
        w.recv().await,
        Some(server_message::Message::Assignment(_))
    ));
    let identity = format!("agent-{}", job.id);
    // Someone else leaving changes nothing.
    assert_eq!(s.agent_left("left-room", "alice"), None);
    assert_eq!(s.agent_left("left-room", &identity), Some(id.clone()));
    match w.recv().await {
        Some(server_message::Message::Termination(t)) => assert_eq!(t.job_id, job.id),
        other => panic!("{other:?}"),
    }
    // The worker's status after the leave arrives for an unknown job.
    w.update_job(&job.id, JobStatus::JsSuccess).await;
    let rec = s
        .wait_for_job(&id, T, "the late status", |j| {
            !j.worker_statuses().is_empty()
        })
        .await
        .unwrap();
    assert_eq!(
        (rec.status, rec.error.as_str()),
        (JobStatus::JsFailed, "agent worker left the room")
    );
    assert_eq!(rec.dropped_worker_statuses(), [JobStatus::JsSuccess]);
    assert!(rec.accepted_worker_statuses().is_empty());
    assert!(rec.agent_left_at.is_some());

    // Status first, then the leave: the job keeps the worker's status.
    let id2 = s.dispatch(DispatchRequest::new("left-room-2", "a"));
    let job2 = w.expect_offer().await;
    w.answer(&job2.id, true, false).await;
    assert!(matches!(
        w.recv().await,
        Some(server_message::Message::Assignment(_))
    ));
    w.update_job(&job2.id, JobStatus::JsSuccess).await;
    s.wait_for_job_status(&id2, JobStatus::JsSuccess, T)
        .await
        .unwrap();
    assert_eq!(
        s.agent_left("left-room-2", &format!("agent-{}", job2.id)),
        None
    );
    let rec = s.job(&id2).unwrap();
    assert_eq!(rec.status, JobStatus::JsSuccess);
    assert_eq!(rec.accepted_worker_statuses(), [JobStatus::JsSuccess]);
    assert!(rec.terminated_at.is_none() && rec.agent_left_at.is_some());
}

#[tokio::test]
async fn a_second_register_or_an_empty_message_closes_the_socket() {
    let s = server().await;
    let mut twice = TestWorker::connect_to(&s).await;
    twice.register("a").await;
    twice
        .send(worker_message::Message::Register(
            proto::RegisterWorkerRequest {
                agent_name: "a".into(),
                ..Default::default()
            },
        ))
        .await;
    assert_eq!(twice.ended(T).await, Ended::NoCloseFrame);

    let mut empty = TestWorker::connect_to(&s).await;
    empty.register("a").await;
    empty
        .ws
        .send(Message::binary(
            proto::WorkerMessage { message: None }.encode_to_vec(),
        ))
        .await
        .unwrap();
    assert_eq!(empty.ended(T).await, Ended::NoCloseFrame);

    let mut empty_first = TestWorker::connect_to(&s).await;
    empty_first
        .ws
        .send(Message::binary(
            proto::WorkerMessage { message: None }.encode_to_vec(),
        ))
        .await
        .unwrap();
    assert_eq!(empty_first.ended(T).await, Ended::NoCloseFrame);

    let closes = server_close_reasons(&s, 3).await;
    assert_eq!(
        closes,
        [
            "second register",
            "worker message with no message",
            "unexpected message before register: None"
        ]
    );
}

#[tokio::test]
async fn an_unknown_worker_status_is_kept_and_never_picked() {
    let s = server().await;
    let mut w = TestWorker::connect_to(&s).await;
    let reg = w.register("odd").await;
    w.send(worker_message::Message::UpdateWorker(
        proto::UpdateWorkerStatus {
            status: Some(7),
            load: 0.0,
            ..Default::default()
        },
    ))
    .await;
    let snap = s
        .wait_for_worker(&reg.worker_id, T, |w| w.status_updates == 1)
        .await
        .unwrap();
    assert_eq!((snap.status, snap.worker_status()), (7, None));
    let rec = s
        .dispatch_and_wait(DispatchRequest::new("r", "odd"), T)
        .await
        .unwrap();
    assert_eq!(rec.outcome, DispatchOutcome::NoWorkers);
    assert!(rec.offers.is_empty());
}

/// The OSS window: psrpc's 3 s deadline less node selection.
#[tokio::test]
async fn the_default_offer_window_ends_before_three_seconds() {
    let s = server().await;
    let mut w = TestWorker::connect_to(&s).await;
    w.register("slow").await;
    let started = std::time::Instant::now();
    let rec = s
        .dispatch_and_wait(DispatchRequest::new("r", "slow"), T)
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(
        matches!(rec.outcome, DispatchOutcome::Timeout { .. }),
        "{:?}",
        rec.outcome
    );
    assert!(took >= Duration::from_millis(2800), "{took:?}");
    // Generous for a busy machine; the window itself ends at 2.8 s.
    assert!(took < Duration::from_millis(3800), "{took:?}");
}

#[tokio::test]
async fn register_deadline_and_early_messages_close_the_socket() {
    let s = FakeLiveKit::start(Config {
        register_timeout: Duration::from_millis(200),
        ..Config::default()
    })
    .await
    .unwrap();
    let mut idle = TestWorker::connect_to(&s).await;
    assert_eq!(idle.ended(T).await, Ended::NoCloseFrame);

    let mut early = TestWorker::connect_to(&s).await;
    early.update_status(WorkerStatus::WsAvailable, 0.0).await;
    assert_eq!(early.ended(T).await, Ended::NoCloseFrame);

    let mut bad_type = TestWorker::connect_to(&s).await;
    bad_type
        .send(worker_message::Message::Register(
            proto::RegisterWorkerRequest {
                r#type: 9,
                ..Default::default()
            },
        ))
        .await;
    assert_eq!(bad_type.ended(T).await, Ended::NoCloseFrame);

    let mut bad_deployment = TestWorker::connect_to(&s).await;
    bad_deployment
        .send(worker_message::Message::Register(
            proto::RegisterWorkerRequest {
                deployment: "has_underscore".into(),
                ..Default::default()
            },
        ))
        .await;
    assert_eq!(bad_deployment.ended(T).await, Ended::NoCloseFrame);

    let reasons = server_close_reasons(&s, 4).await;
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert_eq!(reasons[0], "register timeout");
    assert!(s.workers().is_empty());

    // A registered worker is not subject to the deadline.
    let mut w = TestWorker::connect_to(&s).await;
    w.register("a").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    w.send(worker_message::Message::Ping(proto::WorkerPing {
        timestamp: 5,
    }))
    .await;
    assert!(matches!(
        w.recv().await,
        Some(server_message::Message::Pong(_))
    ));
}

#[tokio::test]
async fn oversized_message_closes_with_1009() {
    for size in [(2 << 20) + 1, 2 << 20] {
        oversized_message(size).await;
    }
}

async fn oversized_message(size: usize) {
    let s = server().await;
    let mut w = TestWorker::connect_to(&s).await;
    w.register("a").await;
    // Just under the limit is fine.
    let status = proto::UpdateJobStatus {
        job_id: "AJ_unknown".into(),
        status: proto::JobStatus::JsFailed as i32,
        error: "x".repeat((2 << 20) - 40),
    };
    let message = worker_message::Message::UpdateJob(status);
    let len = proto::WorkerMessage {
        message: Some(message.clone()),
    }
    .encoded_len();
    assert!(len < 2 << 20 && len > (2 << 20) - 64, "{len}");
    w.send(message).await;
    w.send(worker_message::Message::Ping(proto::WorkerPing {
        timestamp: 7,
    }))
    .await;
    assert!(matches!(
        w.recv().await,
        Some(server_message::Message::Pong(_))
    ));
    assert_eq!(s.size_limit_closes(), 0);
    let big = vec![0u8; size];
    w.ws.send(Message::binary(big)).await.unwrap();
    assert_eq!(w.ended(T).await, Ended::CloseFrame(Some(1009)));
    assert_eq!(s.size_limit_closes(), 1);
    let closed = s
        .wait_for_message(0, T, "close", |m| matches!(m.dir, Direction::Closed { .. }))
        .await
        .unwrap()
        .1;
    assert!(matches!(
        closed.dir,
        Direction::Closed {
            code: Some(1009),
            by: Closer::Server,
            ..
        }
    ));
}

#[tokio::test]
async fn kill_connections_drops_sockets_without_close_frame() {
    let s = server().await;
    let mut w = TestWorker::connect_to(&s).await;
    let reg = w.register("a").await;
    assert_eq!(s.kill_connections(), 1);
    assert_eq!(w.ended(T).await, Ended::NoCloseFrame);
    s.wait_for_worker(&reg.worker_id, T, |w| !w.connected)
        .await
        .unwrap();
    // Reconnect gets a new worker id.
    let mut w2 = TestWorker::connect_to(&s).await;
    let reg2 = w2.register("a").await;
    assert_ne!(reg.worker_id, reg2.worker_id);

    s.set_reject_all(Some(503));
    let c = s.config();
    let err = connect(
        &format!("{}/agent", s.url()),
        Some(&worker_token(&c.api_key, &c.api_secret)),
    )
    .await;
    assert_eq!(http_status(err.err().unwrap()), 503);
    s.set_reject_all(None);
    TestWorker::connect_to(&s).await;
}

#[tokio::test]
async fn protojson_text_frames_get_json_replies() {
    let s = server().await;
    let mut w = TestWorker::connect_to(&s).await;
    w.ws.send(Message::text(
        r#"{"register":{"type":"JT_ROOM","agentName":"json","version":"1"}}"#,
    ))
    .await
    .unwrap();
    let frame = loop {
        match tokio::time::timeout(T, futures::StreamExt::next(&mut w.ws))
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            Message::Text(t) => break t.to_string(),
            Message::Ping(_) => continue,
            other => panic!("{other:?}"),
        }
    };
    let v: serde_json::Value = serde_json::from_str(&frame).unwrap();
    assert!(
        v["register"]["workerId"]
            .as_str()
            .unwrap()
            .starts_with("AW_"),
        "{frame}"
    );
    assert_eq!(s.workers()[0].agent_name, "json");
}

#[tokio::test]
async fn simulate_job_is_offered_to_the_same_worker() {
    let s = server().await;
    let mut w = TestWorker::connect_to(&s).await;
    let mut other = TestWorker::connect_to(&s).await;
    let reg = w.register("sim").await;
    other.register("sim").await;
    w.send(worker_message::Message::SimulateJob(
        proto::SimulateJobRequest {
            r#type: 0,
            room: Some(proto::Room {
                name: "sim-room".into(),
                sid: "RM_sim".into(),
                ..Default::default()
            }),
            participant: None,
        },
    ))
    .await;
    let job = w.expect_offer().await;
    assert_eq!(job.room.unwrap().name, "sim-room");
    assert_eq!(job.agent_name, "sim");
    assert!(job.dispatch_id.is_empty());
    assert_eq!(job.state.unwrap().worker_id, reg.worker_id);

    w.send(worker_message::Message::MigrateJob(
        proto::MigrateJobRequest {
            job_ids: vec!["AJ_x".into()],
        },
    ))
    .await;
    s.wait_for_worker(&reg.worker_id, T, |w| {
        w.migrate_requests == [vec!["AJ_x".to_string()]]
    })
    .await
    .unwrap();
}
