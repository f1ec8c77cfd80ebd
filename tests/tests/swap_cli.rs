//! Hot-swap triggers of `agent-host run` as a process: `--watch`, SIGHUP,
//! the admin API; several plugins and a config file.

use std::path::Path;

use agent_host_tests::guests;
use agent_host_tests::process::{Host, get, post, spawn_host};
use agent_host_tests::worker::{self, WAIT, flavor_of_next_job};
use fake_livekit::FakeLiveKit;

/// Replaces `path` the way editors and build tools do: write, then rename over it.
fn replace_file(path: &Path, from: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn start(server: &FakeLiveKit, plugin: &Path, extra: &[&str]) -> Host {
    let mut args = vec![
        "--plugin",
        plugin.to_str().unwrap(),
        "--agent-name",
        "swap-agent",
    ];
    args.extend_from_slice(extra);
    spawn_host(server, &server.config().api_secret, &args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_swaps_when_the_file_is_replaced() {
    let server = worker::server().await;
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("agent.wasm");
    std::fs::copy(guests::FAULTY, &plugin).unwrap();
    let host = start(&server, &plugin, &["--watch"]);
    host.wait_log("watching for changes");
    server.wait_for_workers(1, WAIT).await.unwrap();
    assert_eq!(flavor_of_next_job(&server, "swap-agent").await, "a");
    replace_file(&plugin, guests::FAULTY_B);
    host.wait_log("plugin swapped: new jobs run the new version, running jobs keep theirs");
    assert_eq!(flavor_of_next_job(&server, "swap-agent").await, "b");
    // A broken file is refused; the worker keeps serving the last good one.
    std::fs::write(dir.path().join("junk.tmp"), b"junk").unwrap();
    std::fs::rename(dir.path().join("junk.tmp"), &plugin).unwrap();
    host.wait_log("plugin swap refused; the current version keeps serving");
    assert_eq!(flavor_of_next_job(&server, "swap-agent").await, "b");
    assert_eq!(server.workers().len(), 1, "stayed registered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_plugin() {
    let server = worker::server().await;
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("agent.wasm");
    std::fs::copy(guests::FAULTY, &plugin).unwrap();
    let host = start(&server, &plugin, &[]);
    host.wait_log("health server listening");
    server.wait_for_workers(1, WAIT).await.unwrap();
    host.signal("HUP");
    host.wait_log("plugin unchanged; nothing to swap");
    replace_file(&plugin, guests::FAULTY_B);
    host.signal("HUP");
    host.wait_log("plugin swapped: new jobs run the new version, running jobs keep theirs");
    assert_eq!(flavor_of_next_job(&server, "swap-agent").await, "b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_swaps_only_with_the_token() {
    let server = worker::server().await;
    let host = start(
        &server,
        Path::new(guests::FAULTY),
        &["--admin-token", "s3cret"],
    );
    let addr = host.wait_log("health server listening")["addr"]
        .as_str()
        .unwrap()
        .to_string();
    server.wait_for_workers(1, WAIT).await.unwrap();
    let b = std::fs::read(guests::FAULTY_B).unwrap();

    assert_eq!(post(&addr, "/plugins/swap-agent", None, &b).0, 401);
    assert_eq!(post(&addr, "/plugins/swap-agent", Some("wrong"), &b).0, 401);
    assert_eq!(post(&addr, "/plugins/nobody", Some("s3cret"), &b).0, 404);
    let (status, body) = post(&addr, "/plugins/swap-agent", Some("s3cret"), b"not wasm");
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("not a WebAssembly file"), "{body}");
    let (status, body) = post(&addr, "/plugins/swap-agent", Some("s3cret"), &b);
    assert_eq!(status, 200, "{body}");
    let swap: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        swap["new"].as_str().unwrap(),
        agent_host::runtime::digest(&b)
    );
    assert_eq!(flavor_of_next_job(&server, "swap-agent").await, "b");

    let (_, info) = get(&addr, "/worker");
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    let current: Vec<_> = info["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["current"] == true)
        .collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["digest"], swap["new"]);
    let (_, metrics) = get(&addr, "/metrics");
    assert!(
        metrics.contains("agent_host_plugin_swaps_total{agent_name=\"swap-agent\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("agent_host_plugin_swaps_refused_total{agent_name=\"swap-agent\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_is_off_without_a_token() {
    let server = worker::server().await;
    let host = start(&server, Path::new(guests::FAULTY), &[]);
    let addr = host.wait_log("health server listening")["addr"]
        .as_str()
        .unwrap()
        .to_string();
    let b = std::fs::read(guests::FAULTY_B).unwrap();
    assert_eq!(
        post(&addr, "/plugins/swap-agent", Some("anything"), &b).0,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_plugins_from_flags_and_from_a_config_file() {
    let server = worker::server().await;
    // From flags: one worker per NAME=PLUGIN.
    let alpha = format!("alpha={}", guests::FAULTY);
    let beta = format!("beta={}", guests::FAULTY_B);
    let host = spawn_host(
        &server,
        &server.config().api_secret,
        &["--plugin", &alpha, "--plugin", &beta],
    );
    let addr = host.wait_log("health server listening")["addr"]
        .as_str()
        .unwrap()
        .to_string();
    server.wait_for_workers(2, WAIT).await.unwrap();
    assert_eq!(flavor_of_next_job(&server, "alpha").await, "a");
    assert_eq!(flavor_of_next_job(&server, "beta").await, "b");
    let (_, info) = get(&addr, "/worker");
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info.as_array().map(Vec::len), Some(2), "{info}");
    drop(host);

    // From a config file, with a per-plugin setting, and a flag that wins.
    let server = worker::server().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent-host.toml");
    std::fs::write(
        &config,
        format!(
            r#"
            url = "{url}"
            api_key = "{key}"
            api_secret = "wrong-but-overridden"
            max_jobs = 7

            [[plugin]]
            path = "{a}"
            agent_name = "gamma"

            [[plugin]]
            path = "{b}"
            agent_name = "delta"
            deployment = "blue"
            "#,
            url = server.url(),
            key = server.config().api_key,
            a = guests::FAULTY,
            b = guests::FAULTY_B,
        ),
    )
    .unwrap();
    let mut child = agent_host_tests::agent_host_for_fake_server()
        .args([
            "run",
            "--config",
            config.to_str().unwrap(),
            "--http-host",
            "127.0.0.1",
            "--http-port",
            "0",
        ])
        .args(["--api-secret", &server.config().api_secret])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let workers = server.wait_for_workers(2, WAIT).await.unwrap();
    let delta = workers
        .iter()
        .find(|w| w.agent_name == "delta")
        .expect("delta registered");
    assert_eq!(delta.deployment, "blue");
    assert!(
        workers
            .iter()
            .any(|w| w.agent_name == "gamma" && w.deployment.is_empty())
    );
    assert_eq!(flavor_of_next_job(&server, "gamma").await, "a");
    let _ = child.kill();
    let _ = child.wait();
}

/// `agent-host compile PLUGIN -o OUT`.
fn compile(plugin: &str, out: &Path) {
    let status = agent_host_tests::agent_host_command()
        .args(["compile", plugin, "-o", out.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_swap_to_and_between_precompiled_plugins() {
    let server = worker::server().await;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.cwasm"), dir.path().join("b.cwasm"));
    compile(guests::FAULTY, &a);
    compile(guests::FAULTY_B, &b);
    let plugin = dir.path().join("agent.cwasm");
    std::fs::copy(&a, &plugin).unwrap();
    let host = start(
        &server,
        &plugin,
        &["--watch", "--allow-precompiled", "--admin-token", "s3cret"],
    );
    host.wait_log("watching for changes");
    let addr = host.wait_log("health server listening")["addr"]
        .as_str()
        .unwrap()
        .to_string();
    server.wait_for_workers(1, WAIT).await.unwrap();
    assert_eq!(flavor_of_next_job(&server, "swap-agent").await, "a");

    // --watch: a .cwasm replaces a .cwasm.
    replace_file(&plugin, b.to_str().unwrap());
    host.wait_log("plugin swapped: new jobs run the new version, running jobs keep theirs");
    assert_eq!(flavor_of_next_job(&server, "swap-agent").await, "b");

    // The admin API: a .cwasm has the digest of its .wasm, so posting the
    // .wasm of the current version finds it in memory.
    let b_wasm = std::fs::read(guests::FAULTY_B).unwrap();
    let (status, body) = post(&addr, "/plugins/swap-agent", Some("s3cret"), &b_wasm);
    assert_eq!(status, 200, "{body}");
    let swap: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(swap["new"], swap["old"], "{body}");
    assert_eq!(swap["reused"], true, "{body}");
    let (status, body) = post(
        &addr,
        "/plugins/swap-agent",
        Some("s3cret"),
        &std::fs::read(&a).unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(flavor_of_next_job(&server, "swap-agent").await, "a");
    // Both posts logged a swap; consume them before waiting for the next.
    for _ in 0..2 {
        host.wait_log("plugin swapped: new jobs run the new version, running jobs keep theirs");
    }

    // SIGHUP re-reads the file (b.cwasm): its digest is not the current one.
    host.signal("HUP");
    host.wait_log("plugin swapped: new jobs run the new version, running jobs keep theirs");
    assert_eq!(flavor_of_next_job(&server, "swap-agent").await, "b");
}
