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
