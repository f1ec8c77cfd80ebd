//! JavaScript agents: examples/echo-js, examples/greeter-js and the
//! tests/guests/probe-js test guest, built with the JavaScript SDK and
//! componentize-js (the toolchain `agent-host setup --lang js` installs), run in
//! the simulated room and under `agent-host run` against fake-livekit, their
//! failures included.
//!
//! Each project is built once per test binary (a build takes seconds and
//! about half a GiB), one build at a time, into `target/js-guests/`. Without
//! the toolchain the tests are ignored; on CI (`CI=true`) they are required.

use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use agent_host::guest_build::js;
use agent_host::room::sim::SimOutput;
use agent_host::{HttpAllowList, JobLimits, Outcome};
use agent_host_capability::{Capability, require};
use agent_host_tests::process::spawn_host;
use agent_host_tests::sim::{
    WAIT, assert_greets_and_says_goodbye, next, run_to_end, start, start_with, text,
};
use agent_host_tests::worker::{server, wait_worker_status};
use agent_host_tests::{load, request, runtime, workspace_root};
use fake_livekit::DispatchRequest;
use fake_livekit::livekit_protocol::JobStatus;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// One JavaScript build at a time: each takes about half a GiB.
static BUILDING: Mutex<()> = Mutex::new(());

/// Builds the JavaScript project at `project` (relative to the workspace)
/// into `target/js-guests/<name>.wasm` and returns that path.
fn build(project: &str) -> String {
    require(Capability::JsToolchain);
    let _one = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = workspace_root().join(project);
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let out: PathBuf = workspace_root()
        .join("target/js-guests")
        .join(format!("{name}.wasm"));
    let built =
        js::build_to(&dir, Some(&out)).unwrap_or_else(|e| panic!("building {project}: {e:#}"));
    assert_eq!(built, out);
    out.to_string_lossy().into_owned()
}

static ECHO: LazyLock<String> = LazyLock::new(|| build("examples/echo-js"));
static GREETER: LazyLock<String> = LazyLock::new(|| build("examples/greeter-js"));
static PROBE: LazyLock<String> = LazyLock::new(|| build("tests/guests/probe-js"));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_js_toolchain),
    ignore = "needs agent-host's JavaScript toolchain: run `agent-host setup --lang js`"
)]
async fn echo_js_answers_text_and_data_to_their_sender_only() {
    let (room, mut outputs, outcome) = start(&ECHO, "AJ_echo_js", "").await;
    next(&mut outputs, |o| {
        matches!(o, SimOutput::AgentJoined(_)).then_some(())
    })
    .await;
    room.send_text("alice", "lk.chat", "hello from alice", &[]);
    let (sent, to) = next(&mut outputs, |o| match o {
        SimOutput::Text { text, .. } => Some((text.text, text.destinations)),
        _ => None,
    })
    .await;
    assert_eq!(sent, "hello from alice");
    assert_eq!(to, ["alice"]);
    room.send_data("alice", Some("bytes"), &[0, 1, 2, 255], &[]);
    let data = next(&mut outputs, |o| match o {
        SimOutput::Data { data, .. } => Some(data),
        _ => None,
    })
    .await;
    assert_eq!(data.payload, [0, 1, 2, 255]);
    assert_eq!(data.topic.as_deref(), Some("bytes"));
    assert_eq!(data.destinations, ["alice"]);
    room.close();
    let outcome = tokio::time::timeout(WAIT, outcome).await.unwrap().unwrap();
    assert_eq!(outcome, Outcome::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_js_toolchain),
    ignore = "needs agent-host's JavaScript toolchain: run `agent-host setup --lang js`"
)]
async fn greeter_js_greets_who_is_there_and_who_comes_and_goes() {
    assert_greets_and_says_goodbye(&GREETER, "AJ_greeter_js").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_js_toolchain),
    ignore = "needs agent-host's JavaScript toolchain: run `agent-host setup --lang js`"
)]
async fn a_thrown_error_or_a_rejected_promise_fails_the_job_with_its_message() {
    let (outcome, _) = run_to_end(&PROBE, "AJ_js_throw", "throw", JobLimits::default()).await;
    assert!(
        matches!(&outcome, Outcome::Failed(why) if why.starts_with("TypeError: ") && why.contains("null")),
        "{outcome:?}"
    );
    let (outcome, _) = run_to_end(&PROBE, "AJ_js_reject", "reject", JobLimits::default()).await;
    assert_eq!(
        outcome,
        Outcome::Failed("RangeError: rejected in job AJ_js_reject".into())
    );
    let (outcome, texts) = run_to_end(&PROBE, "AJ_js_ok", "", JobLimits::default()).await;
    assert_eq!(outcome, Outcome::Success);
    assert_eq!(texts, ["job AJ_js_ok"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_js_toolchain),
    ignore = "needs agent-host's JavaScript toolchain: run `agent-host setup --lang js`"
)]
async fn an_error_thrown_by_on_request_rejects_the_job() {
    let runtime = runtime(2);
    let plugin = load(&runtime, &PROBE);
    let offer = runtime
        .offer(
            &plugin,
            request("AJ_js_refuse", "refuse"),
            JobLimits::default(),
        )
        .await
        .expect("the guest answers the offer");
    assert!(offer.job.is_none(), "the job was accepted");
    let offer = runtime
        .offer(&plugin, request("AJ_js_take", ""), JobLimits::default())
        .await
        .expect("the guest answers the offer");
    assert!(offer.job.is_some(), "the job was rejected");
}

/// Answers one HTTP request on loopback with `200` and `body`; returns the
/// port.
async fn answer_once(body: &'static str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the request ended before its head");
            head.extend_from_slice(&buf[..n]);
        }
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(response.as_bytes()).await.unwrap();
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_js_toolchain),
    ignore = "needs agent-host's JavaScript toolchain: run `agent-host setup --lang js`"
)]
async fn fetch_reaches_an_allowed_loopback_server_and_nothing_else() {
    let port = answer_once("hello from loopback").await;
    let limits = JobLimits {
        http_allow: HttpAllowList::parse([format!("127.0.0.1:{port}")], false).unwrap(),
        ..JobLimits::default()
    };
    let metadata = format!("fetch http://127.0.0.1:{port}/hi");
    let (_room, mut outputs, outcome) = start_with(&PROBE, "AJ_js_fetch", &metadata, limits).await;
    assert_eq!(next(&mut outputs, text).await, "200 hello from loopback");
    let outcome = tokio::time::timeout(WAIT, outcome).await.unwrap().unwrap();
    assert_eq!(outcome, Outcome::Success);

    // Not on the allow-list (empty by default): fetch rejects, the job fails.
    let denied = answer_once("never").await;
    let metadata = format!("fetch http://127.0.0.1:{denied}/hi");
    let (outcome, texts) = run_to_end(
        &PROBE,
        "AJ_js_fetch_denied",
        &metadata,
        JobLimits::default(),
    )
    .await;
    assert!(matches!(outcome, Outcome::Failed(_)), "{outcome:?}");
    assert!(texts.is_empty(), "{texts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_js_toolchain),
    ignore = "needs agent-host's JavaScript toolchain: run `agent-host setup --lang js`"
)]
async fn under_run_a_javascript_job_succeeds_and_a_throwing_one_fails_with_its_message() {
    let probe = PROBE.clone();
    let server = server().await;
    let _host = spawn_host(
        &server,
        &server.config().api_secret,
        &["--plugin", &probe, "--agent-name", "js-agent"],
    );
    // The host compiles the 12 MiB component before it registers (once; the
    // compile cache keeps it): 20 s and more on a busy machine.
    server
        .wait_for_workers(1, Duration::from_secs(300))
        .await
        .unwrap();
    let mut ok = DispatchRequest::new("js-room-ok", "js-agent");
    // No room I/O against fake-livekit: a job that touched the room would
    // fail with a transport error.
    ok.metadata = "quiet".into();
    let ok = server.dispatch(ok);
    let mut bad = DispatchRequest::new("js-room-throw", "js-agent");
    bad.metadata = "throw".into();
    let bad = server.dispatch(bad);
    wait_worker_status(&server, &ok, JobStatus::JsSuccess).await;
    let failed = wait_worker_status(&server, &bad, JobStatus::JsFailed).await;
    assert!(
        failed.error.starts_with("TypeError: "),
        "the reason the server got: {:?}",
        failed.error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_js_toolchain),
    ignore = "needs agent-host's JavaScript toolchain: run `agent-host setup --lang js`"
)]
async fn dev_rebuilds_and_swaps_a_javascript_project_on_save() {
    require(Capability::JsToolchain);
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("probe-js");
    std::fs::create_dir_all(&project).unwrap();
    for file in ["package.json", "agent.js"] {
        std::fs::copy(
            workspace_root().join("tests/guests/probe-js").join(file),
            project.join(file),
        )
        .unwrap();
    }
    let server = server().await;
    let child = agent_host_tests::agent_host_for_fake_server()
        .args(["--log-format", "json", "dev", "--plugin"])
        .arg(&project)
        .args([
            "--url",
            &server.url(),
            "--api-key",
            &server.config().api_key,
        ])
        .args(["--api-secret", &server.config().api_secret])
        .args(["--agent-name", "js-dev"])
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let host = agent_host_tests::process::Host::new(child);
    // Each build of the project takes 15-45 s on a busy machine, and the
    // host compiles each new component (20 s and more).
    let slow = Duration::from_secs(300);
    host.wait_log_within("watching for changes", slow);
    server.wait_for_workers(1, slow).await.unwrap();
    let quiet = |room: &str| {
        let mut req = DispatchRequest::new(room, "js-dev");
        req.metadata = "quiet".into();
        server.dispatch(req)
    };
    wait_worker_status(&server, &quiet("js-dev-1"), JobStatus::JsSuccess).await;

    let agent = project.join("agent.js");
    let source = std::fs::read_to_string(&agent).unwrap();
    let edited = source.replacen(
        "case \"quiet\":\n        break;",
        "case \"quiet\":\n        throw new Error(\"edited\");",
        1,
    );
    assert_ne!(edited, source, "probe-js has the quiet case");
    std::fs::write(&agent, &edited).unwrap();
    host.wait_log_within(
        "plugin swapped: new jobs run the new version, running jobs keep theirs",
        slow,
    );
    let failed = wait_worker_status(&server, &quiet("js-dev-2"), JobStatus::JsFailed).await;
    assert_eq!(failed.error, "edited");

    // A module that does not parse: the build fails, the last version serves.
    std::fs::write(&agent, format!("{edited}\nexport default {{")).unwrap();
    host.wait_log_within("reload failed; the current version keeps serving", slow);
    let failed = wait_worker_status(&server, &quiet("js-dev-3"), JobStatus::JsFailed).await;
    assert_eq!(failed.error, "edited");
    assert_eq!(server.workers().len(), 1, "stayed registered throughout");
}
