//! Conformance: the official Python worker (`livekit-agents`, pinned in
//! `tests/conformance/setup.sh`) against the fake server.
//!
//! Needs the venv: `bash tests/conformance/setup.sh`, then
//! `AGENT_HOST_PYTHON=$PWD/target/conformance-venv/bin/python cargo test -p fake-livekit --test python_worker -- --nocapture`.
//! Without `AGENT_HOST_PYTHON` the test is ignored (it fails on CI; see
//! [`fake_livekit::python`]).
//!
//! What it pins down (see `tests/conformance/README.md` for the write-up):
//! * register: `type=JT_ROOM`, the agent name, `version` = the SDK version,
//!   `allowed_permissions{can_subscribe, can_publish, can_publish_data,
//!   can_update_metadata, agent}` all true, nothing else set.
//! * accepted job: offer → `availability{available, identity "agent-<job>",
//!   name, metadata, attributes {"lk.agent.name"}}` → assignment →
//!   `update_job RUNNING` (yes, Python sends RUNNING: when the process pool
//!   emits `process_job_launched`, i.e. after the assignment, once the job
//!   process has the StartJobRequest) → `update_job SUCCESS` after the
//!   process exits 0.
//! * termination: `termination` → the job process shuts down → the worker
//!   still sends `update_job SUCCESS`, which the server ignores (the job was
//!   already ended by the server).
//! * `reject()` → `availability{available:false, terminate:true}`;
//!   `reject(terminate=False)` → `terminate:false`.
//! * SIGTERM: `update_worker{status: WS_FULL}` at once (load field unset),
//!   offers still arriving are declined (`available:false, terminate:false`),
//!   running jobs finish and report SUCCESS, then a close frame 1000 and
//!   exit code 0.

use std::time::{Duration, Instant};

use fake_livekit::flow::{self, FlowStep, WorkerStep};
use fake_livekit::livekit_protocol::{JobStatus, JobType, WorkerStatus, worker_message};
use fake_livekit::python::{PyWorker, python, sdk_version};
use fake_livekit::{
    Closer, Config, DispatchOutcome, DispatchRequest, FakeLiveKit, JobId, OfferAnswer,
};

const AGENT: &str = "conformance-agent";
const JOB_TIMEOUT: Duration = Duration::from_secs(45);

fn accept_step() -> FlowStep {
    FlowStep::Accept {
        participant_identity: "agent-<job>".into(),
        has_name: true,
        attribute_keys: vec!["lk.agent.name".into()],
    }
}

fn status(s: JobStatus) -> FlowStep {
    FlowStep::Status {
        status: s,
        has_error: false,
    }
}

/// When the worker sent its first update_job with `status` for `job`.
fn worker_update_at(server: &FakeLiveKit, job: &JobId, s: JobStatus) -> Option<Instant> {
    server
        .job(job)?
        .status_history
        .iter()
        .find(|c| c.status == s && c.worker_id.is_some())
        .map(|c| c.at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_python_worker),
    ignore = "needs the official Python worker: run tests/conformance/setup.sh, set AGENT_HOST_PYTHON"
)]
async fn python_worker_conformance() {
    let python = python();
    let version = sdk_version(&python);

    let server = FakeLiveKit::start(Config::default()).await.unwrap();
    let mut py = PyWorker::spawn(&python, &server, AGENT);
    let started = Instant::now();

    // --- register ---------------------------------------------------------
    let w = server
        .wait_for_workers(1, Duration::from_secs(90))
        .await
        .unwrap()
        .remove(0);
    let reg = &w.registration;
    assert_eq!(w.job_type, JobType::JtRoom);
    assert_eq!(w.agent_name, AGENT);
    assert_eq!(w.version, version);
    assert_eq!(reg.namespace, None);
    assert_eq!(reg.deployment, "");
    assert_eq!(reg.ping_interval, 0);
    assert!(w.permissions_sent);
    let p = &w.permissions;
    #[allow(deprecated)]
    let agent_flag = p.agent;
    assert!(
        p.can_subscribe
            && p.can_publish
            && p.can_publish_data
            && p.can_update_metadata
            && agent_flag
    );
    assert!(!p.hidden && !p.can_subscribe_metrics && p.can_publish_sources.is_empty());
    assert_eq!(w.protocol, 1, "no protocol query parameter");
    println!(
        "FACT registered {:?} after process start",
        w.registered_at - started
    );

    // First periodic status report.
    let (_, first) = server
        .wait_for_message(0, Duration::from_secs(10), "first update_worker", |m| {
            matches!(m.inbound(), Some(worker_message::Message::UpdateWorker(_)))
        })
        .await
        .unwrap();
    println!(
        "FACT first update_worker {:?} after register",
        first.at - w.registered_at
    );

    // --- offer → accept → assignment → RUNNING → SUCCESS ------------------
    let a = server.dispatch(DispatchRequest::new("room-success", AGENT).metadata("sleep:300"));
    let rec = server
        .wait_for_job_status(&a, JobStatus::JsSuccess, JOB_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        rec.outcome,
        DispatchOutcome::Assigned {
            worker_id: w.id.clone()
        }
    );
    let OfferAnswer::Response {
        at: answered,
        response,
    } = &rec.offers[0].answer
    else {
        panic!("{:?}", rec.offers[0].answer)
    };
    assert!(response.available && !response.terminate);
    assert_eq!(response.participant_identity, format!("agent-{a}"));
    assert_eq!(response.participant_name, "conformance");
    assert_eq!(response.participant_metadata, "conformance-agent");
    assert_eq!(
        response
            .participant_attributes
            .get("lk.agent.name")
            .map(String::as_str),
        Some(AGENT)
    );
    assert_eq!(
        rec.worker_statuses(),
        [JobStatus::JsRunning, JobStatus::JsSuccess]
    );
    assert!(rec.status_history.iter().all(|c| c.accepted));
    let steps = flow::summarize(&server.messages(), a.as_str());
    assert_eq!(
        steps,
        [
            FlowStep::Offer,
            accept_step(),
            FlowStep::Assignment { has_url: false },
            status(JobStatus::JsRunning),
            status(JobStatus::JsSuccess)
        ]
    );
    let assigned = rec.assigned_at.unwrap();
    let running = worker_update_at(&server, &a, JobStatus::JsRunning).unwrap();
    let success = worker_update_at(&server, &a, JobStatus::JsSuccess).unwrap();
    println!(
        "FACT accepted job: offer→answer {:?}, assignment→RUNNING {:?}, RUNNING→SUCCESS {:?} (job sleeps 300 ms)",
        *answered - rec.offers[0].sent_at,
        running - assigned,
        success - running
    );

    // --- termination -------------------------------------------------------
    let b = server.dispatch(DispatchRequest::new("room-hold", AGENT).metadata("hold"));
    server
        .wait_for_job_status(&b, JobStatus::JsRunning, JOB_TIMEOUT)
        .await
        .unwrap();
    server
        .wait_for_job(&b, JOB_TIMEOUT, "worker RUNNING", |j| {
            j.worker_statuses() == [JobStatus::JsRunning]
        })
        .await
        .unwrap();
    server.terminate_job(&b).unwrap();
    let rec = server
        .wait_for_job(&b, JOB_TIMEOUT, "worker update after termination", |j| {
            j.worker_statuses().len() == 2
        })
        .await
        .unwrap();
    assert_eq!(
        rec.worker_statuses(),
        [JobStatus::JsRunning, JobStatus::JsSuccess]
    );
    let last = rec.status_history.last().unwrap();
    assert!(!last.accepted, "the server had already ended the job");
    assert_eq!(rec.status, JobStatus::JsSuccess);
    assert_eq!(
        flow::summarize(&server.messages(), b.as_str()),
        [
            FlowStep::Offer,
            accept_step(),
            FlowStep::Assignment { has_url: false },
            status(JobStatus::JsRunning),
            FlowStep::Termination,
            status(JobStatus::JsSuccess)
        ]
    );
    println!(
        "FACT termination → worker SUCCESS after {:?}",
        last.at - rec.terminated_at.unwrap()
    );

    // --- reject / decline --------------------------------------------------
    let c = server
        .dispatch_and_wait(
            DispatchRequest::new("room-reject", AGENT).metadata("reject"),
            JOB_TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(
        c.outcome,
        DispatchOutcome::TerminatedByWorker {
            worker_id: w.id.clone()
        }
    );
    assert_eq!(
        flow::summarize(&server.messages(), c.id.as_str()),
        [FlowStep::Offer, FlowStep::Decline { terminate: true }]
    );
    let d = server
        .dispatch_and_wait(
            DispatchRequest::new("room-decline", AGENT).metadata("decline"),
            JOB_TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(d.outcome, DispatchOutcome::AllDeclined);
    assert_eq!(
        flow::summarize(&server.messages(), d.id.as_str()),
        [FlowStep::Offer, FlowStep::Decline { terminate: false }]
    );

    // --- failures ----------------------------------------------------------
    let e = server.dispatch(DispatchRequest::new("room-raise", AGENT).metadata("raise"));
    let rec = server
        .wait_for_job(&e, JOB_TIMEOUT, "terminal worker status", |j| {
            j.worker_statuses().len() == 2
        })
        .await
        .unwrap();
    // An exception in the entrypoint is logged, the job shuts down normally
    // and the process exits 0: reported as SUCCESS.
    assert_eq!(
        rec.worker_statuses(),
        [JobStatus::JsRunning, JobStatus::JsSuccess]
    );
    let f = server.dispatch(DispatchRequest::new("room-exit", AGENT).metadata("exit:3"));
    let rec = server
        .wait_for_job(&f, JOB_TIMEOUT, "terminal worker status", |j| {
            j.worker_statuses().len() == 2
        })
        .await
        .unwrap();
    assert_eq!(
        rec.worker_statuses(),
        [JobStatus::JsRunning, JobStatus::JsFailed]
    );
    assert!(
        rec.status_history.iter().all(|c| c.error.is_empty()),
        "Python never fills error"
    );

    // --- SIGTERM drain -----------------------------------------------------
    let g = server.dispatch(DispatchRequest::new("room-drain", AGENT).metadata("sleep:3000"));
    server
        .wait_for_job(&g, JOB_TIMEOUT, "worker RUNNING", |j| {
            j.worker_statuses() == [JobStatus::JsRunning]
        })
        .await
        .unwrap();
    let log_mark = server.messages().len();
    let sigterm_at = Instant::now();
    py.signal("-TERM");
    let (_, full) = server
        .wait_for_message(log_mark, Duration::from_secs(10), "WS_FULL after SIGTERM", |m| {
            matches!(m.inbound(), Some(worker_message::Message::UpdateWorker(u)) if u.status == Some(WorkerStatus::WsFull as i32))
        })
        .await
        .unwrap();
    let Some(worker_message::Message::UpdateWorker(u)) = full.inbound() else {
        unreachable!()
    };
    assert_eq!(u.load, 0.0, "drain update carries no load");
    assert_eq!(u.job_count, 1);
    println!(
        "FACT SIGTERM → update_worker WS_FULL after {:?}",
        full.at - sigterm_at
    );
    // The server now skips the worker; an offer that races in is declined.
    let skipped = server
        .dispatch_and_wait(DispatchRequest::new("room-late", AGENT), JOB_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(skipped.outcome, DispatchOutcome::NoWorkers);
    let raced = server.dispatch_to(&w.id, DispatchRequest::new("room-race", AGENT));
    let raced = server
        .wait_for_job(&raced, JOB_TIMEOUT, "outcome", |j| {
            j.outcome != DispatchOutcome::Pending
        })
        .await
        .unwrap();
    assert_eq!(
        flow::summarize(&server.messages(), raced.id.as_str()),
        [FlowStep::Offer, FlowStep::Decline { terminate: false }]
    );
    // The running job finishes, then the worker closes and exits 0.
    let rec = server
        .wait_for_job_status(&g, JobStatus::JsSuccess, JOB_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        rec.worker_statuses(),
        [JobStatus::JsRunning, JobStatus::JsSuccess]
    );
    let gone = server
        .wait_for_worker(&w.id, JOB_TIMEOUT, |w| !w.connected)
        .await
        .unwrap();
    let exit = py.wait_exit(JOB_TIMEOUT).await;
    println!(
        "FACT after SIGTERM: job SUCCESS, socket closed, exit status {exit:?}, {:?} after the signal",
        sigterm_at.elapsed()
    );
    assert_eq!(exit.code(), Some(0));
    assert_eq!(gone.job_count, 0);

    let steps = flow::summarize_worker(&server.messages(), w.connection);
    println!("FACT worker steps: {steps:?}");
    assert_eq!(steps[0], WorkerStep::Connected);
    assert!(matches!(steps[1], WorkerStep::Register { .. }));
    assert_eq!(steps[2], WorkerStep::Registered);
    assert_eq!(
        steps[3],
        WorkerStep::Status(Some(WorkerStatus::WsAvailable))
    );
    assert_eq!(steps[4], WorkerStep::Status(Some(WorkerStatus::WsFull)));
    assert_eq!(
        steps[5],
        WorkerStep::Closed {
            code: Some(1000),
            by: Closer::Worker
        }
    );
    assert_eq!(steps.len(), 6, "no pings, no migrate_job: {steps:?}");
}
