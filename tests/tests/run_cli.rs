//! `agent-host run` as a process: health endpoints, SIGTERM drain, refused
//! credentials.

use agent_host_tests::process::{get, spawn_host};
use agent_host_tests::worker::{WAIT, assert_drained_cleanly, server, wait_worker_status};
use fake_livekit::DispatchRequest;
use fake_livekit::livekit_protocol::JobStatus;

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
            req.metadata = "sleep:3000".into();
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
    req.metadata = "sleep:60000".into();
    let id = server.dispatch(req);
    wait_worker_status(&server, &id, JobStatus::JsRunning).await;
    host.signal("TERM");
    host.wait_log("signal received: draining (send it again to stop at once)");
    host.signal("INT");
    assert_eq!(host.wait_exit(), Some(1));
}
