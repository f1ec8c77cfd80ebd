//! Bad command lines get a clear error and a non-zero exit, never a panic.

use std::process::Command;

fn agent_host(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_agent-host"))
        .args(args)
        .output()
        .expect("running agent-host");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unknown_flag_is_refused() {
    let (code, stderr) = agent_host(&["console", "--plugin", "x.wasm", "--no-such-flag"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--no-such-flag"), "{stderr}");
}

#[test]
fn bad_values_name_the_flag() {
    let (code, stderr) = agent_host(&["console", "--plugin", "x.wasm", "--memory-limit", "lots"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--memory-limit"), "{stderr}");
    let (code, stderr) = agent_host(&["console", "--plugin", "x.wasm", "--cpu-slice", "soon"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--cpu-slice"), "{stderr}");
    let (code, stderr) = agent_host(&["console", "--plugin", "x.wasm", "--allow-http", "http://x"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--allow-http"), "{stderr}");
    assert!(
        stderr.contains("bad --allow-http rule `http://x`"),
        "{stderr}"
    );
}

#[test]
fn missing_plugin_is_a_clear_error() {
    let (code, stderr) = agent_host(&["check", "/does/not/exist.wasm"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.starts_with("error: reading /does/not/exist.wasm"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));
}

#[test]
fn setup_refuses_a_wrong_wheel_and_says_when_pip_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("livekit-ffi");
    let target = target.to_str().unwrap();
    let fake = dir.path().join("livekit.whl");
    std::fs::write(&fake, "not the wheel").unwrap();
    let (code, stderr) = agent_host(&["setup", "--wheel", fake.to_str().unwrap(), "--dir", target]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("refusing to install it"), "{stderr}");
    let (code, stderr) =
        agent_host(&["setup", "--python", "/nonexistent/python3", "--dir", target]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot run /nonexistent/python3"),
        "{stderr}"
    );
    assert!(stderr.contains("pip"), "{stderr}");
    assert!(!dir.path().join("livekit-ffi/liblivekit_ffi.so").exists());
}

/// `run` flags pointing at a port nothing listens on, with `extra` added.
fn run_with(extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec![
        "run",
        "--url",
        "ws://127.0.0.1:9",
        "--api-key",
        "k",
        "--api-secret",
        "s",
        "--plugin",
        "/does/not/exist.wasm",
        "--http-port",
        "0",
    ];
    args.extend_from_slice(extra);
    agent_host(&args)
}

#[test]
fn a_deployment_the_server_would_refuse_fails_at_start_naming_the_rule() {
    let long = "d".repeat(65);
    for (deployment, rule) in [
        ("prod_eu", "`_` (at byte 4) is reserved"),
        ("prod eu", "whitespace or a control byte at byte 4"),
        (long.as_str(), "65 bytes long, the most is 64"),
    ] {
        let (code, stderr) = run_with(&["--deployment", deployment]);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains("--deployment"), "{stderr}");
        assert!(stderr.contains(rule), "{deployment}: {stderr}");
        assert!(
            stderr.contains("would be refused by the LiveKit server"),
            "{stderr}"
        );
    }
    // A valid one passes that check (and the run fails later, at the plugin).
    let (code, stderr) = run_with(&["--deployment", "prod-eu.v2"]);
    assert_eq!(code, Some(2));
    assert!(!stderr.contains("--deployment"), "{stderr}");
    assert!(stderr.contains("/does/not/exist.wasm"), "{stderr}");
}

#[test]
fn a_load_threshold_above_the_servers_target_load_warns() {
    let (_, stderr) = run_with(&["--load-threshold", "0.9"]);
    assert!(
        stderr.contains("--load-threshold is above the LiveKit server's target load"),
        "{stderr}"
    );
    let (_, stderr) = run_with(&["--load-threshold", "0.7"]);
    assert!(!stderr.contains("--load-threshold"), "{stderr}");
}

#[test]
fn bad_network_settings_fail_at_start() {
    let (code, stderr) = run_with(&["--ca-file", "/does/not/exist.pem"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("/does/not/exist.pem"), "{stderr}");
}
