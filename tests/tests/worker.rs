//! The worker against the fake LiveKit server: registration, offers, job
//! statuses, termination, reconnect, drain and credentials.

use std::time::Duration;

use agent_host::worker::{ConnectionState, Exit, WorkerError};
use agent_host_tests::worker::{
    WAIT, assert_drained_cleanly, dispatch, first_answer, options, run_end, server, start_worker,
    wait_worker_status, worker_statuses,
};
use fake_livekit::livekit_protocol::{JobStatus, WorkerStatus, worker_message::Message};
use fake_livekit::{Config, Direction, DispatchRequest, FakeLiveKit, JobId};
use faulty_mode::Mode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_with_the_right_fields() {
    let server = server().await;
    let mut opts = options(&server, "reg-agent", 10);
    opts.deployment = "staging".into();
    let worker = start_worker(opts);
    let workers = server.wait_for_workers(1, WAIT).await.unwrap();
    let w = &workers[0];
    assert_eq!(w.agent_name, "reg-agent");
    assert_eq!(w.job_type, fake_livekit::livekit_protocol::JobType::JtRoom);
    assert!(w.version.starts_with("agent-host/"), "{}", w.version);
    assert_eq!(w.deployment, "staging");
    assert!(w.permissions_sent);
    let p = &w.permissions;
    assert!(p.can_publish && p.can_subscribe && p.can_publish_data && p.can_update_metadata);
    assert!(!p.hidden);
    #[allow(deprecated)]
    let agent = p.agent;
    assert!(agent);
    // Right after registering: a status update, AVAILABLE.
    let (_, first) = server
        .wait_for_message(0, WAIT, "first status", |m| {
            matches!(&m.dir, Direction::Inbound(msg) if matches!(msg.message, Some(Message::UpdateWorker(_))))
        })
        .await
        .unwrap();
    assert!(first.worker_id.is_some());
    assert_eq!(
        worker_statuses(&server.messages())[0],
        WorkerStatus::WsAvailable
    );
    assert!(matches!(
        worker.handle.status().connection,
        ConnectionState::Registered { .. }
    ));
    worker.handle.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_jobs_at_once_run_then_succeed() {
    let server = server().await;
    let worker = start_worker(options(&server, "burst", 100));
    server.wait_for_workers(1, WAIT).await.unwrap();
    let ids: Vec<JobId> = (0..50)
        .map(|_| dispatch(&server, "burst", &Mode::Sleep(200)))
        .collect();
    for id in &ids {
        let job = wait_worker_status(&server, id, JobStatus::JsSuccess).await;
        assert_eq!(
            job.worker_statuses(),
            vec![JobStatus::JsRunning, JobStatus::JsSuccess],
            "{id}"
        );
        assert_eq!(
            job.accepted_worker_statuses(),
            job.worker_statuses(),
            "{id}"
        );
        assert_eq!(
            job.participant_identity.as_deref(),
            Some(format!("agent-{id}").as_str())
        );
    }
    assert_eq!(
        agent_host::worker::Metrics::get(&worker.handle.metrics().jobs_succeeded),
        50
    );
    worker.handle.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulty_jobs_fail_with_reasons_beside_healthy_ones() {
    let server = server().await;
    let worker = start_worker(options(&server, "mixed", 100));
    server.wait_for_workers(1, WAIT).await.unwrap();
    let sleepers: Vec<JobId> = (0..10)
        .map(|_| dispatch(&server, "mixed", &Mode::Sleep(2000)))
        .collect();
    let trap = dispatch(&server, "mixed", &Mode::Trap);
    let looping = dispatch(&server, "mixed", &Mode::Loop);

    let trap = wait_worker_status(&server, &trap, JobStatus::JsFailed).await;
    let trap_error = trap
        .status_history
        .iter()
        .rev()
        .find(|c| c.status == JobStatus::JsFailed)
        .unwrap()
        .error
        .clone();
    assert_eq!(
        trap_error,
        "trap: unreachable code reached (the guest aborted)"
    );
    let looping = wait_worker_status(&server, &looping, JobStatus::JsFailed).await;
    let loop_error = looping
        .status_history
        .iter()
        .rev()
        .find(|c| c.status == JobStatus::JsFailed)
        .unwrap()
        .error
        .clone();
    assert_eq!(loop_error, "runaway: 1 s without yielding to the host");
    for id in &sleepers {
        wait_worker_status(&server, id, JobStatus::JsSuccess).await;
    }
    worker.handle.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declines_what_the_guest_rejects() {
    let server = server().await;
    let worker = start_worker(options(&server, "picky", 10));
    server.wait_for_workers(1, WAIT).await.unwrap();
    let rejected = dispatch(&server, "picky", &Mode::RejectTerminate);
    let job = server
        .wait_for_job(&rejected, WAIT, "offer answered", |j| {
            first_answer(j).is_some()
        })
        .await
        .unwrap();
    let answer = first_answer(&job).unwrap();
    assert!(!answer.available);
    assert!(answer.terminate);
    assert!(job.worker_statuses().is_empty());
    worker.handle.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_job_ends_within_its_grace_period() {
    let server = server().await;
    let mut opts = options(&server, "term", 10);
    opts.limits.termination_grace = Duration::from_secs(1);
    let worker = start_worker(opts);
    server.wait_for_workers(1, WAIT).await.unwrap();
    let id = dispatch(&server, "term", &Mode::Sleep(60000));
    wait_worker_status(&server, &id, JobStatus::JsRunning).await;
    server.terminate_job(&id).unwrap();
    let job = wait_worker_status(&server, &id, JobStatus::JsSuccess).await;
    let terminated = job.terminated_at.unwrap();
    let reported = job.status_history.last().unwrap().at;
    assert!(
        reported.duration_since(terminated) < Duration::from_secs(10),
        "took {:?}",
        reported - terminated
    );
    assert_eq!(worker.handle.status().active_jobs, 0);
    worker.handle.stop();
}

/// An assignment the worker will not run is answered FAILED with the
/// reason (no phantom RUNNING job on the server); a repeated one for a job
/// that runs here starts nothing and is answered RUNNING.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assignments_it_will_not_run_are_answered() {
    use fake_livekit::livekit_protocol::{Job, JobAssignment, server_message};
    let server = server().await;
    let worker = start_worker(options(&server, "assign", 10));
    let worker_id = server.wait_for_workers(1, WAIT).await.unwrap()[0]
        .id
        .clone();
    let assignment = |job_id: &str| {
        server_message::Message::Assignment(JobAssignment {
            job: Some(Job {
                id: job_id.to_string(),
                ..Default::default()
            }),
            url: None,
            token: String::new(),
        })
    };
    assert!(server.send_to_worker(&worker_id, assignment("AJ_never_offered")));
    let (_, answer) = server
        .wait_for_message(0, WAIT, "the answer", |m| {
            matches!(&m.dir, Direction::Inbound(msg) if matches!(&msg.message, Some(Message::UpdateJob(u)) if u.job_id == "AJ_never_offered"))
        })
        .await
        .unwrap();
    let Direction::Inbound(msg) = answer.dir else {
        unreachable!()
    };
    let Some(Message::UpdateJob(update)) = msg.message else {
        unreachable!()
    };
    assert_eq!(update.status, JobStatus::JsFailed as i32);
    assert!(
        update.error.contains("no accepted offer"),
        "{}",
        update.error
    );

    let id = dispatch(&server, "assign", &Mode::Sleep(1000));
    wait_worker_status(&server, &id, JobStatus::JsRunning).await;
    assert!(server.send_to_worker(&worker_id, assignment(id.as_str())));
    let job = wait_worker_status(&server, &id, JobStatus::JsSuccess).await;
    assert_eq!(
        job.accepted_worker_statuses(),
        [
            JobStatus::JsRunning,
            JobStatus::JsRunning,
            JobStatus::JsSuccess
        ]
    );
    assert_eq!(
        agent_host::worker::Metrics::get(&worker.handle.metrics().jobs_started),
        1
    );
    worker.handle.stop();
}

/// `dispatch_id`, `deployment` and the recording and redaction flags go
/// from the server's offer to the guest's `on-request` (WIT 0.1.2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guest_sees_how_its_job_was_dispatched() {
    let server = FakeLiveKit::start(Config {
        enable_recording: true,
        ..Config::default()
    })
    .await
    .unwrap();
    let mut opts = options(&server, "disp", 10);
    opts.deployment = "staging".into();
    let worker = start_worker(opts);
    server.wait_for_workers(1, WAIT).await.unwrap();
    let mut req = DispatchRequest::new("room-disp", "disp").metadata(Mode::Dispatch.to_string());
    req.deployment = "staging".into();
    let id = server.dispatch(req);
    let job = server
        .wait_for_job(&id, WAIT, "offer answered", |j| first_answer(j).is_some())
        .await
        .unwrap();
    assert!(job.dispatch_id.starts_with("AD_"), "{}", job.dispatch_id);
    let answer = first_answer(&job).unwrap();
    assert_eq!(
        answer.participant_attributes.get("faulty.dispatch"),
        Some(&format!(
            "id={} deployment=staging recording=true redaction=false",
            job.dispatch_id
        ))
    );
    worker.handle.stop();
}

/// The same facts reach `run` through `job.dispatch`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_job_sees_how_it_was_dispatched() {
    use agent_host::room::sim::{SimOutput, SimRooms};
    let runtime = agent_host_tests::runtime(2);
    let plugin = agent_host_tests::load(&runtime, agent_host_tests::guests::FAULTY);
    let rooms = SimRooms::default();
    let request = agent_host_tests::faulty_job("AJ_disp", Mode::Dispatch);
    let mut outputs = rooms.room(&request.room.name).subscribe();
    let dispatch = agent_host::wit::DispatchInfo {
        dispatch_id: "AD_disp".into(),
        deployment: "eu".into(),
        enable_recording: false,
        enable_redaction: true,
    };
    let offer = runtime
        .offer_dispatched(&plugin, request, dispatch, agent_host::JobLimits::default())
        .await
        .unwrap();
    let handle = agent_host_tests::start_sim(offer.job.unwrap(), &rooms);
    assert_eq!(handle.outcome().await, agent_host::Outcome::Success);
    let said = std::iter::from_fn(|| outputs.try_recv().ok()).find_map(|o| match o {
        SimOutput::Text { text, .. } => Some(text.text),
        _ => None,
    });
    assert_eq!(
        said.as_deref(),
        Some("dispatch: id=AD_disp deployment=eu recording=false redaction=true")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_end_the_worker_with_a_clear_error() {
    let server = server().await;
    let mut opts = options(&server, "badkey", 10);
    opts.api_secret = "not-the-secret".into();
    let worker = start_worker(opts);
    let err = tokio::time::timeout(WAIT, worker.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, WorkerError::Unauthorized(_)));
    assert!(err.to_string().contains("refused the credentials"), "{err}");
    assert!(!worker.handle.healthy());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_after_its_retries() {
    // A port with nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = server().await;
    let mut opts = options(&server, "nobody", 10);
    opts.url = format!("ws://127.0.0.1:{port}");
    opts.max_retries = 1;
    let worker = start_worker(opts);
    let err = tokio::time::timeout(WAIT, worker.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, WorkerError::ConnectionFailed { attempts: 2, .. }),
        "{err}"
    );
    assert!(!worker.handle.healthy());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_a_dropped_connection() {
    let server = server().await;
    let worker = start_worker(options(&server, "sturdy", 20));
    let first = server.wait_for_workers(1, WAIT).await.unwrap()[0]
        .id
        .clone();
    let ids: Vec<JobId> = (0..10)
        .map(|_| dispatch(&server, "sturdy", &Mode::Sleep(3000)))
        .collect();
    for id in &ids {
        wait_worker_status(&server, id, JobStatus::JsRunning).await;
    }
    assert!(server.kill_connections() >= 1);
    // A new registration (new worker id), then the running jobs migrate.
    let second = server
        .wait_for_message(0, WAIT, "migrate", |m| {
            matches!(&m.dir, Direction::Inbound(msg) if matches!(&msg.message, Some(Message::MigrateJob(r)) if r.job_ids.len() == 10))
        })
        .await
        .unwrap()
        .1
        .worker_id
        .unwrap();
    assert_ne!(first, second);
    for id in &ids {
        let job = wait_worker_status(&server, id, JobStatus::JsSuccess).await;
        assert_eq!(
            job.worker_statuses(),
            vec![JobStatus::JsRunning, JobStatus::JsSuccess]
        );
        // The open-source server forgot the jobs with the old connection:
        // the final status reaches it and is dropped.
        assert_eq!(job.accepted_worker_statuses(), [JobStatus::JsRunning]);
        assert_eq!(job.dropped_worker_statuses(), [JobStatus::JsSuccess]);
    }
    assert_eq!(
        agent_host::worker::Metrics::get(&worker.handle.metrics().reconnects),
        1
    );
    worker.handle.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_finishes_running_jobs_and_closes_cleanly() {
    let server = server().await;
    let worker = start_worker(options(&server, "drainer", 20));
    server.wait_for_workers(1, WAIT).await.unwrap();
    let ids: Vec<JobId> = (0..5)
        .map(|_| dispatch(&server, "drainer", &Mode::Sleep(3000)))
        .collect();
    for id in &ids {
        wait_worker_status(&server, id, JobStatus::JsRunning).await;
    }
    let before = server.messages().len();
    worker.handle.drain();
    server
        .wait_for_message(before, WAIT, "WS_FULL", |m| {
            matches!(&m.dir, Direction::Inbound(msg) if matches!(&msg.message, Some(Message::UpdateWorker(u)) if u.status == Some(WorkerStatus::WsFull as i32)))
        })
        .await
        .unwrap();
    // An offer that reaches a draining worker is declined.
    let late = server.dispatch_to(
        &server.workers()[0].id,
        DispatchRequest::new("late-room", "drainer"),
    );
    let late = server
        .wait_for_job(&late, WAIT, "answered", |j| first_answer(j).is_some())
        .await
        .unwrap();
    assert!(!first_answer(&late).unwrap().available);
    for id in &ids {
        wait_worker_status(&server, id, JobStatus::JsSuccess).await;
    }
    assert_eq!(run_end(worker.task).await.unwrap(), Exit::Drained);
    assert_drained_cleanly(&server, before).await;
}

/// Polls the worker's status until `pred` holds (bounded by [`WAIT`]).
async fn wait_status(
    handle: &agent_host::worker::WorkerHandle,
    what: &str,
    pred: impl Fn(&agent_host::worker::WorkerStatus) -> bool,
) {
    let deadline = std::time::Instant::now() + WAIT;
    while !pred(&handle.status()) {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: {:?}",
            handle.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A worker for `agent` (its options changed by `tweak`) deciding a
/// `stall-offer` job, whose guest never answers: the decision lasts the
/// worker's offer timeout. The server waits for an answer longer than any
/// offer timeout here, so the worker's own decline is what ends the offer.
async fn deciding_a_stalled_offer(
    agent: &str,
    tweak: impl FnOnce(&mut agent_host::worker::WorkerOptions),
) -> (FakeLiveKit, agent_host_tests::worker::TestWorker, JobId) {
    let server = FakeLiveKit::start(Config {
        offer_timeout: Duration::from_secs(30),
        ..Config::default()
    })
    .await
    .unwrap();
    let mut opts = options(&server, agent, 10);
    opts.status_interval = Duration::from_millis(200);
    tweak(&mut opts);
    let worker = start_worker(opts);
    server.wait_for_workers(1, WAIT).await.unwrap();
    let id = dispatch(&server, agent, &Mode::StallOffer);
    server
        .wait_for_job(&id, WAIT, "offered", |j| !j.offers.is_empty())
        .await
        .unwrap();
    wait_status(&worker.handle, "deciding", |s| s.reserved_jobs == 1).await;
    (server, worker, id)
}

/// The same offer again while the guest still decides the first gets no
/// second instance and no second answer: the server keeps one pending
/// answer per job, and the first decision's answer is it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_offer_under_decision_gets_no_second_instance() {
    use agent_host::worker::Metrics;
    // The default offer timeout (2 s) is the decision's length.
    let (server, worker, id) = deciding_a_stalled_offer("dup", |_| {}).await;
    assert!(server.repeat_offer(&id));
    let job = server
        .wait_for_job(&id, WAIT, "answered", |j| first_answer(j).is_some())
        .await
        .unwrap();
    assert!(!first_answer(&job).unwrap().available);
    wait_status(&worker.handle, "decided", |s| s.reserved_jobs == 0).await;
    // Two status updates later, anything the worker sent before them is in
    // the log (one socket keeps order).
    let after = server.messages().len();
    let is_status = |m: &fake_livekit::LoggedMessage| matches!(&m.dir, Direction::Inbound(msg) if matches!(msg.message, Some(Message::UpdateWorker(_))));
    let (first, _) = server
        .wait_for_message(after, WAIT, "a status", is_status)
        .await
        .unwrap();
    server
        .wait_for_message(first + 1, WAIT, "another status", is_status)
        .await
        .unwrap();
    let answers = agent_host_tests::worker::inbound(&server.messages())
        .into_iter()
        .filter(|m| matches!(m, Message::Availability(a) if a.job_id == id.as_str()))
        .count();
    assert_eq!(answers, 1, "one offer, one answer");
    let m = worker.handle.metrics();
    assert_eq!(Metrics::get(&m.offers_declined), 1);
    assert_eq!(Metrics::get(&m.offers_accepted), 0);
    worker.handle.stop();
}

/// A job the drain timeout fails is counted once, as failed, also when it
/// ends while the worker still drains (here: an offer still being decided
/// keeps the drain open).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_failed_by_the_drain_timeout_is_counted_once() {
    use agent_host::worker::Metrics;
    // The stalled offer is decided 15 s in, long after the drain timeout.
    let (server, worker, _stalled) = deciding_a_stalled_offer("late", |o| {
        o.drain_timeout = Duration::from_secs(1);
        o.offer_timeout = Duration::from_secs(15);
        o.limits.termination_grace = Duration::from_secs(1);
    })
    .await;
    let long = dispatch(&server, "late", &Mode::Sleep(60000));
    wait_worker_status(&server, &long, JobStatus::JsRunning).await;
    worker.handle.drain();
    let job = wait_worker_status(&server, &long, JobStatus::JsFailed).await;
    assert_eq!(job.error, "drain timeout");
    // The job has ended and left the worker's table; the undecided offer
    // keeps the worker draining.
    wait_status(&worker.handle, "the failed job ended", |s| {
        s.active_jobs == 0
    })
    .await;
    assert!(!worker.task.is_finished());
    let m = worker.handle.metrics();
    assert_eq!(
        (
            Metrics::get(&m.jobs_failed),
            Metrics::get(&m.jobs_terminated),
            Metrics::get(&m.jobs_succeeded)
        ),
        (1, 0, 0)
    );
    assert_eq!(run_end(worker.task).await.unwrap(), Exit::Drained);
    assert_eq!(
        server.job(&long).unwrap().worker_statuses(),
        [JobStatus::JsRunning, JobStatus::JsFailed]
    );
    assert_eq!(Metrics::get(&worker.handle.metrics().jobs_failed), 1);
}

/// A worker that would take more jobs than its runtime's pool has room
/// for is refused before it connects, with a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_larger_than_its_runtimes_pool_is_refused() {
    use std::sync::Arc;

    use agent_host::room::offline::Offline;
    use agent_host::worker::Worker;
    let server = server().await;
    let runtime = agent_host_tests::runtime(2);
    let plugin = agent_host_tests::load(&runtime, agent_host_tests::guests::FAULTY);
    let worker = Worker::new(
        options(&server, "big", 4),
        runtime,
        plugin,
        Arc::new(Offline),
    );
    let handle = worker.handle();
    let err = tokio::time::timeout(WAIT, worker.run())
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, WorkerError::BadSetting(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("up to 4 jobs (max_jobs)") && text.contains("room for 2"),
        "{text}"
    );
    assert!(!handle.healthy());
    assert!(server.workers().is_empty());
}
