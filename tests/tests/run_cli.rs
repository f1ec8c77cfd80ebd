//! `agent-host run` as a process: health endpoints, SIGTERM drain, refused
//! credentials, room I/O without LiveKit's client library; and `agent-host
//! connect` without a server.

use agent_host_tests::process::{Host, get, spawn_host};
use agent_host_tests::worker::{WAIT, assert_drained_cleanly, server, wait_worker_status};
use fake_livekit::DispatchRequest;
use fake_livekit::livekit_protocol::JobStatus;
use faulty_mode::Mode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_endpoints_and_sigterm_drain() {
    let server = server().await;
    let mut host = spawn_host(
        &server,
        &server.config().api_secret,
        &[
            "--plugin",
            agent_host_tests::guests::FAULTY,
            "--agent-name",
            "cli-agent",
        ],
    );
    let addr = host.wait_log("health server listening")["addr"]
        .as_str()
        .unwrap()
        .to_string();
    server.wait_for_workers(1, WAIT).await.unwrap();

    assert_eq!(get(&addr, "/"), (200, "OK".to_string()));
    let (status, body) = get(&addr, "/worker");
    assert_eq!(status, 200);
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["agent_name"], "cli-agent");
    assert_eq!(info["worker_type"], "JT_ROOM");
    assert_eq!(info["protocol_version"], 1);
    assert!(
        info["sdk_version"]
            .as_str()
            .unwrap()
            .starts_with("agent-host/")
    );
    assert_eq!(info["active_jobs"], 0);
    assert_eq!(get(&addr, "/nope").0, 404);

    let ids: Vec<_> = (0..5)
        .map(|i| {
            let mut req = DispatchRequest::new(format!("cli-room-{i}"), "cli-agent");
            req.metadata = Mode::Sleep(3000).to_string();
            server.dispatch(req)
        })
        .collect();
    for id in &ids {
        wait_worker_status(&server, id, JobStatus::JsRunning).await;
    }
    let (_, metrics) = get(&addr, "/metrics");
    assert!(
        metrics.contains("agent_host_active_jobs{agent_name=\"cli-agent\"} 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains("agent_host_jobs_started_total{agent_name=\"cli-agent\"} 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains("agent_host_connected{agent_name=\"cli-agent\"} 1"),
        "{metrics}"
    );
    let (_, body) = get(&addr, "/worker");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["active_jobs"],
        5
    );

    let before = server.messages().len();
    host.signal("TERM");
    for id in &ids {
        wait_worker_status(&server, id, JobStatus::JsSuccess).await;
    }
    assert_eq!(host.wait_exit(), Some(0));
    assert_drained_cleanly(&server, before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_exit_non_zero_with_a_clear_message() {
    let server = server().await;
    let mut host = spawn_host(
        &server,
        "wrong-secret",
        &["--plugin", agent_host_tests::guests::FAULTY],
    );
    assert_eq!(host.wait_exit(), Some(1));
    let mut said = String::new();
    while let Ok(line) = host.logs.try_recv() {
        said += &line.to_string();
    }
    assert!(said.contains("refused the credentials"), "{said}");
    // The three causes, and the worker's clock to compare with the server's.
    for cause in [
        "the API key or secret is wrong",
        "clock is more than 60 s off",
        "does not know the API key yet",
    ] {
        assert!(said.contains(cause), "{cause}: {said}");
    }
    let now = said
        .split("the worker's time now is ")
        .nth(1)
        .and_then(|rest| rest.get(..20))
        .unwrap_or_else(|| panic!("no time in {said}"));
    let shape = now.bytes().enumerate().all(|(i, b)| match i {
        4 | 7 => b == b'-',
        10 => b == b'T',
        13 | 16 => b == b':',
        19 => b == b'Z',
        _ => b.is_ascii_digit(),
    });
    assert!(shape, "not RFC 3339 UTC: {now}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_stops_at_once() {
    let server = server().await;
    let mut host = spawn_host(
        &server,
        &server.config().api_secret,
        &[
            "--plugin",
            agent_host_tests::guests::FAULTY,
            "--agent-name",
            "cli-agent",
        ],
    );
    host.wait_log("health server listening");
    server.wait_for_workers(1, WAIT).await.unwrap();
    let mut req = DispatchRequest::new("stuck-room", "cli-agent");
    req.metadata = Mode::Sleep(60_000).to_string();
    let id = server.dispatch(req);
    wait_worker_status(&server, &id, JobStatus::JsRunning).await;
    host.signal("TERM");
    host.wait_log("signal received: draining (send it again to stop at once)");
    host.signal("INT");
    assert_eq!(host.wait_exit(), Some(1));
}

/// `agent-host run` with JSON logs against `server`, with no LiveKit client
/// library anywhere (an empty cache, no `LIVEKIT_LIB_PATH`); `extra` adds flags.
fn spawn_host_without_livekit_lib(
    server: &fake_livekit::FakeLiveKit,
    cache: &std::path::Path,
    extra: &[&str],
) -> Host {
    let child = agent_host_tests::agent_host_command()
        .args(["--log-format", "json", "run", "--url", &server.url()])
        .args(["--api-key", &server.config().api_key])
        .args(["--api-secret", &server.config().api_secret])
        .args(["--http-host", "127.0.0.1", "--http-port", "0"])
        .args(extra)
        .env("XDG_CACHE_HOME", cache)
        .env_remove("LIVEKIT_LIB_PATH")
        .env_remove("AGENT_HOST_NO_ROOM_IO")
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting agent-host run");
    Host::new(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_livekit_library_jobs_run_but_room_actions_say_how_to_install_it() {
    let server = server().await;
    let cache = tempfile::tempdir().unwrap();
    let mut host = spawn_host_without_livekit_lib(
        &server,
        cache.path(),
        &[
            "--plugin",
            agent_host_tests::guests::FAULTY,
            "--agent-name",
            "no-lib",
        ],
    );
    let transport = host.wait_log("room transport: none, jobs run without room I/O");
    assert!(
        transport.to_string().contains("agent-host setup"),
        "{transport}"
    );
    server.wait_for_workers(1, WAIT).await.unwrap();

    // A job that never touches the room succeeds.
    let mut quiet = DispatchRequest::new("no-lib-quiet", "no-lib");
    quiet.metadata = Mode::Sleep(10).to_string();
    let quiet = server.dispatch(quiet);
    wait_worker_status(&server, &quiet, JobStatus::JsSuccess).await;

    // One that sends text fails, and its error says how to get room I/O.
    let mut talker = DispatchRequest::new("no-lib-talker", "no-lib");
    talker.metadata = Mode::Ok.to_string();
    let talker = server.dispatch(talker);
    let record = wait_worker_status(&server, &talker, JobStatus::JsFailed).await;
    assert!(
        record.error.contains("room I/O is not available"),
        "{}",
        record.error
    );
    assert!(
        record.error.contains("agent-host setup"),
        "{}",
        record.error
    );

    host.signal("TERM");
    assert_eq!(host.wait_exit(), Some(0));
}

#[test]
fn a_named_livekit_library_that_is_missing_is_a_startup_error() {
    let out = agent_host_tests::agent_host_command()
        .args([
            "run",
            "--url",
            "ws://127.0.0.1:9",
            "--api-key",
            "k",
            "--api-secret",
            "s",
        ])
        .args([
            "--plugin",
            agent_host_tests::guests::FAULTY,
            "--http-port",
            "0",
        ])
        .args(["--livekit-lib", "/nonexistent/liblivekit_ffi.so"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("running agent-host run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("/nonexistent/liblivekit_ffi.so does not exist"),
        "{stderr}"
    );
    assert!(stderr.contains("agent-host setup"), "{stderr}");
}

#[test]
#[cfg_attr(
    not(has_livekit_lib),
    ignore = "needs LiveKit's client library: run `agent-host setup`"
)]
fn connect_without_a_server_fails_the_job_with_exit_code_1() {
    let lib = agent_host_tests::livekit_lib();
    let out = agent_host_tests::agent_host_command()
        .args([
            "connect",
            "--room",
            "nowhere",
            "--plugin",
            agent_host_tests::guests::ECHO,
        ])
        .args(["--url", "ws://127.0.0.1:9"])
        .arg("--livekit-lib")
        .arg(&lib)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("running agent-host connect");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("job failed: could not join the room"),
        "{stderr}"
    );
    assert!(
        stderr.contains("could not connect to ws://127.0.0.1:9"),
        "{stderr}"
    );
}
