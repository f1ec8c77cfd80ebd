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
use agent_host::{HttpAllowList, JobLimits, Outcome};
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
    built("examples", name)
}

/// Builds `<parent>/<name>` once for this test binary, into
/// `target/python-guests/<name>` (a build in the source tree would make
/// the guests' build script run again).
fn built(parent: &str, name: &'static str) -> &'static str {
    static BUILT: OnceLock<std::sync::Mutex<Vec<(&'static str, &'static str)>>> = OnceLock::new();
    require(Capability::PythonSdk);
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, path)) = built.iter().find(|(n, _)| *n == name) {
        return path;
    }
    let root = workspace_root();
    let out = root.join("target/python-guests").join(name);
    let wasm: PathBuf =
        agent_host::guest_build::python::build_into(&root.join(parent).join(name), &out)
            .unwrap_or_else(|e| panic!("building {name}: {e:#}"));
    let path: &'static str = Box::leak(wasm.display().to_string().into_boxed_str());
    built.push((name, path));
    path
}

/// `echo-py` answers the sender; then an uncaught exception ends the job as
/// FAILED with its type and message, not componentize-py's generic
/// "unexpected exception".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_python_sdk),
    ignore = "needs the Python toolchain: run `agent-host setup --lang python`"
)]
async fn echo_py_echoes_to_the_sender_and_an_exception_fails_the_job_with_its_message() {
    let (room, mut outputs, outcome) = sim::start(example("echo-py"), "AJ_py_echo", "").await;
    next(&mut outputs, joined).await;
    room.send_text("alice", "lk.chat", "hello from alice", &[]);
    assert_eq!(next(&mut outputs, text).await, "hello from alice");
    room.send_text("alice", "lk.chat", "raise", &[]);
    assert_eq!(
        ended(outcome).await,
        Outcome::Failed("ValueError: asked to fail by alice".into())
    );
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
    assert_eq!(ended(outcome).await, Outcome::Success);
}

/// The outcome of a job started by [`sim::start`], within [`WAIT`].
async fn ended(outcome: tokio::task::JoinHandle<Outcome>) -> Outcome {
    tokio::time::timeout(WAIT, outcome)
        .await
        .expect("the job ends in time")
        .expect("the job's task")
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
    assert!(stdout.contains("WIT version:   0.1.5"), "{stdout}");
    // `check` compiles without the cache: seconds for an interpreter, so
    // it says what it is doing (on stderr; a pipe gets whole lines).
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("compiling {wasm} ..."))
            && stderr.contains(&format!("compiled {wasm} in ")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("warning"),
        "the SDK writes its marker: {stderr}"
    );
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

/// A loopback HTTP/1.1 server answering each request with
/// `<METHOD> <path> <body length>` (bodies have a content-length, or are
/// chunked), `max` requests at most; the number it got.
async fn answering_server(max: usize) -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        for _ in 0..max {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut data = Vec::new();
            let mut buf = [0u8; 8192];
            // Up to the end of the body: content-length, or the last chunk.
            let body_len = loop {
                match tokio::time::timeout(WAIT, stream.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break None,
                    Ok(Ok(n)) => data.extend_from_slice(&buf[..n]),
                }
                let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&data[..end]).to_lowercase();
                let body = &data[end + 4..];
                if let Some(len) = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                {
                    if body.len() >= len {
                        break Some(len);
                    }
                } else if head.contains("transfer-encoding: chunked") {
                    if body.ends_with(b"0\r\n\r\n") {
                        let text = String::from_utf8_lossy(body);
                        let mut total = 0;
                        let mut rest = text.as_ref();
                        while let Some((size, after)) = rest.split_once("\r\n") {
                            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                            if n == 0 {
                                break;
                            }
                            total += n;
                            rest = after.get(n + 2..).unwrap_or("");
                        }
                        break Some(total);
                    }
                } else {
                    break Some(0);
                }
            };
            let head = String::from_utf8_lossy(&data);
            let mut words = head.split(' ');
            let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let body = format!("{method} {path} {}", body_len.unwrap_or(0));
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });
    (port, hits)
}

/// A Python guest reaches a loopback server through the allow-list with
/// `agent_host.http` (GET, and a POST streamed in pieces), and is refused,
/// with WASI's error code as the failure reason, where the list does not
/// name the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_python_sdk),
    ignore = "needs the Python toolchain: run `agent-host setup --lang python`"
)]
async fn a_python_guest_reaches_http_through_the_allow_list_only() {
    use std::sync::atomic::Ordering;
    let wasm = built("tests/guests", "http-py");
    let (port, hits) = answering_server(2).await;
    let url = format!("http://127.0.0.1:{port}/py?x=1");
    let allowed = JobLimits {
        http_allow: HttpAllowList::parse(&[format!("127.0.0.1:{port}")], false).unwrap(),
        ..JobLimits::default()
    };
    let (outcome, texts) = sim::run_to_end(wasm, "AJ_py_http", &url, allowed).await;
    assert_eq!(outcome, Outcome::Success);
    assert_eq!(texts, ["200 GET /py?x=1 0", "200 POST /py?x=1 8000"]);
    assert_eq!(hits.load(Ordering::SeqCst), 2);

    let (outcome, _) = sim::run_to_end(wasm, "AJ_py_http_denied", &url, JobLimits::default()).await;
    match &outcome {
        Outcome::Failed(reason) => {
            assert!(
                reason.starts_with("HttpError: HttpRequestDenied"),
                "{reason}"
            )
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        2,
        "a denied request reached the server"
    );
}

/// An exception in `on_request` declines the offer (the SDK logs it): the
/// offer is answered, not a trap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_python_sdk),
    ignore = "needs the Python toolchain: run `agent-host setup --lang python`"
)]
async fn an_exception_in_on_request_declines_the_offer() {
    let runtime = runtime(1);
    let plugin = load(&runtime, built("tests/guests", "http-py"));
    let offer = runtime
        .offer(
            &plugin,
            request("AJ_py_refuse", "raise"),
            JobLimits::default(),
        )
        .await
        .expect("the guest answers");
    assert!(
        matches!(offer.decision, agent_host::wit::Decision::Reject),
        "{:?}",
        offer.decision
    );
    assert!(offer.job.is_none());
}
