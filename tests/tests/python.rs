//! Python agents: the examples built with the Python SDK (componentize-py)
//! run in the simulated room and under a worker against fake-livekit,
//! their exceptions become failure reasons, `check` prints what one job
//! takes from the pool, and many jobs run at once in one host.
//!
//! Needs the Python toolchain (`agent-host setup --lang python`, which
//! `.ci/run` runs first): building needs no network then. Each example is
//! built once per run of this binary (and skipped when its sources did not
//! change since the last build, `guest_build::python`).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use agent_host::room::offline::Offline;
use agent_host::room::sim::{SimOutput, SimRooms};
use agent_host::worker::Worker;
use agent_host::{JobLimits, Outcome};
use agent_host_capability::{Capability, require};
use agent_host_tests::sim::{self, next, text};
use agent_host_tests::worker::{WAIT, options, server, wait_worker_status};
use agent_host_tests::{agent_host_command, load, request, runtime, workspace_root};
use fake_livekit::DispatchRequest;
use fake_livekit::livekit_protocol::JobStatus;

/// The agent's joining, for [`next`]: what it sends before is not missed.
fn joined(output: SimOutput) -> Option<()> {
    matches!(output, SimOutput::AgentJoined(_)).then_some(())
}

/// Builds `examples/<name>` once for this test binary.
fn example(name: &'static str) -> &'static str {
    static BUILT: OnceLock<std::sync::Mutex<Vec<(&'static str, &'static str)>>> = OnceLock::new();
    require(Capability::PythonSdk);
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, path)) = built.iter().find(|(n, _)| *n == name) {
        return path;
    }
    let dir = workspace_root().join("examples").join(name);
    let wasm: PathBuf = agent_host::guest_build::python::build(&dir)
        .unwrap_or_else(|e| panic!("building {name}: {e:#}"));
    let path: &'static str = Box::leak(wasm.display().to_string().into_boxed_str());
    built.push((name, path));
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_python_sdk),
    ignore = "needs the Python toolchain: run `agent-host setup --lang python`"
)]
async fn echo_py_echoes_to_the_sender_in_a_sim_room() {
    let (room, mut outputs, outcome) = sim::start(example("echo-py"), "AJ_py_echo", "").await;
    next(&mut outputs, joined).await;
    room.send_text("alice", "lk.chat", "hello from alice", &[]);
    assert_eq!(next(&mut outputs, text).await, "hello from alice");
    room.close();
    let outcome = tokio::time::timeout(WAIT, outcome).await.unwrap().unwrap();
    assert_eq!(outcome, Outcome::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_python_sdk),
    ignore = "needs the Python toolchain: run `agent-host setup --lang python`"
)]
async fn greeter_py_greets_who_is_there_and_who_joins() {
    let (room, mut outputs, outcome) = sim::start(example("greeter-py"), "AJ_py_greet", "").await;
    assert_eq!(next(&mut outputs, text).await, "Hello, alice!");
    room.join_identity("bob");
    assert_eq!(next(&mut outputs, text).await, "Hello, bob!");
    room.leave("bob");
    assert_eq!(next(&mut outputs, text).await, "Goodbye, bob!");
    room.close();
    let outcome = tokio::time::timeout(WAIT, outcome).await.unwrap().unwrap();
    assert_eq!(outcome, Outcome::Success);
}

/// An uncaught exception ends the job as FAILED with its type and message,
/// not componentize-py's generic "unexpected exception".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_python_sdk),
    ignore = "needs the Python toolchain: run `agent-host setup --lang python`"
)]
async fn a_python_exception_fails_the_job_with_its_message() {
    let (room, mut outputs, outcome) = sim::start(example("echo-py"), "AJ_py_raise", "").await;
    next(&mut outputs, joined).await;
    room.send_text("alice", "lk.chat", "raise", &[]);
    let outcome = tokio::time::timeout(WAIT, outcome).await.unwrap().unwrap();
    assert_eq!(
        outcome,
        Outcome::Failed("ValueError: asked to fail by alice".into())
    );
}

/// Under a worker, the reason reaches the server with the FAILED status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_python_sdk),
    ignore = "needs the Python toolchain: run `agent-host setup --lang python`"
)]
async fn under_a_worker_a_python_failure_reaches_the_server() {
    let wasm = example("echo-py");
    let server = server().await;
    let options = options(&server, "echo-py", 4);
    let runtime = runtime(options.max_jobs as u32);
    let plugin = load(&runtime, wasm);
    let worker = Worker::new(options, runtime, plugin, Arc::new(Offline));
    let handle = worker.handle();
    let task = tokio::spawn(worker.run());
    server.wait_for_workers(1, WAIT).await.unwrap();

    let mut req = DispatchRequest::new("room-py-fail", "echo-py");
    req.metadata = "raise".into();
    let id = server.dispatch(req);
    let job = wait_worker_status(&server, &id, JobStatus::JsFailed).await;
    let error = job
        .status_history
        .iter()
        .rev()
        .find(|c| c.status == JobStatus::JsFailed)
        .expect("a FAILED update")
        .error
        .clone();
    assert_eq!(
        error,
        "RuntimeError: the job's metadata asked this agent to fail"
    );
    handle.drain();
    let _ = tokio::time::timeout(WAIT, task).await;
}

#[test]
#[cfg_attr(
    not(has_python_sdk),
    ignore = "needs the Python toolchain: run `agent-host setup --lang python`"
)]
fn check_prints_what_a_python_job_takes_from_the_pool() {
    let wasm = example("echo-py");
    let out = agent_host_command()
        .args(["check", wasm])
        .output()
        .expect("running agent-host check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("WIT version:   0.1.4"), "{stdout}");
    assert!(stdout.contains("guest version: 0.1.0"), "{stdout}");
    assert!(
        stdout.contains(
            "per job:       core instances 14, memories 1, tables 2; 1000 jobs fit the pool of 1000"
        ),
        "{stdout}"
    );
}

/// Many Python jobs alive at once in one host (the pool used to hold 8
/// core instances per job, and a Python job needs 14); the 1,000-job
/// figure is measured by the bench, 50 here keep the test quick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_python_sdk),
    ignore = "needs the Python toolchain: run `agent-host setup --lang python`"
)]
async fn fifty_python_jobs_run_at_once_in_one_host() {
    const JOBS: usize = 50;
    let runtime = runtime(JOBS as u32);
    let plugin = load(&runtime, example("echo-py"));
    assert_eq!(runtime.jobs_fit(&plugin), JOBS as u32);
    let rooms = Arc::new(SimRooms::default());
    let mut handles = Vec::new();
    for i in 0..JOBS {
        let req = request(&format!("AJ_py_{i}"), "");
        rooms.room(&req.room.name).join_identity("alice");
        let offer = runtime
            .offer(&plugin, req, JobLimits::default())
            .await
            .expect("the guest answers");
        let job = offer.job.expect("accepted");
        handles.push(job.start(rooms.clone(), String::new(), String::new()));
    }
    assert_eq!(runtime.pool_share_used(), 1.0, "every job holds its share");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        handles.iter().all(|h| !h.is_finished()),
        "all alive together"
    );
    // Each one still answers.
    for i in [0, JOBS / 2, JOBS - 1] {
        let room = rooms.room(&format!("room-AJ_py_{i}"));
        let mut outputs = room.subscribe();
        room.send_text("alice", "lk.chat", &format!("ping {i}"), &[]);
        assert_eq!(next(&mut outputs, text).await, format!("ping {i}"));
    }
    for i in 0..JOBS {
        rooms.room(&format!("room-AJ_py_{i}")).close();
    }
    for handle in handles {
        let outcome = tokio::time::timeout(WAIT, handle.outcome()).await.unwrap();
        assert_eq!(outcome, Outcome::Success);
    }
    assert_eq!(runtime.pool_share_used(), 0.0);
}
