//! The `agent-host` binary: `check` and `console`, as a user runs them.

use std::io::Write as _;
use std::process::{Output, Stdio};

use agent_host_tests::{agent_host_command, guests, workspace_root};

fn agent_host(args: &[&str], stdin: &str) -> Output {
    let mut child = agent_host_command()
        .args(args)
        // A guest crate directory is built into the guests' own target dir.
        .env("CARGO_TARGET_DIR", workspace_root().join("target/guests"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting agent-host");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_accepts_the_examples() {
    for wasm in [
        guests::ECHO,
        guests::GREETER,
        guests::FAULTY,
        guests::PARROT,
    ] {
        let out = agent_host(&["check", wasm], "");
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{wasm}: {}", text(&out.stderr));
        assert!(stdout.contains("ok, an agent-host agent"), "{stdout}");
        assert!(stdout.contains("WIT version:   0.1.2"), "{stdout}");
        assert!(stdout.contains("run: func"), "{stdout}");
        assert!(stdout.contains("agent-host:agent/room@0.1.2"), "{stdout}");
    }
    // A guest of the previous WIT release carries no SDK marker and imports
    // the 0.1.0 interfaces, which this host still serves.
    let out = agent_host(&["check", guests::LEGACY], "");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("agent-host:agent/room@0.1.0"), "{stdout}");
}

/// Each bad plugin gets exactly one line on stderr that names the problem.
#[test]
fn check_explains_bad_plugins_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "text.wasm",
            b"hello, world".to_vec(),
            "not a WebAssembly file",
        ),
        (
            "core.wasm",
            wat::parse_str("(module)").unwrap(),
            "core WebAssembly module, not a component",
        ),
        (
            "empty-component.wasm",
            wat::parse_str("(component)").unwrap(),
            "not an agent-host `agent` component",
        ),
        (
            "other-world.wasm",
            wat::parse_str(
                r#"(component
                    (import "example:other/thing@1.0.0" (instance (export "f" (func))))
                )"#,
            )
            .unwrap(),
            "not an agent-host `agent` component",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = agent_host(&["check", path.to_str().unwrap()], "");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{name}: {stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
    let out = agent_host(&["check", "/no/such/plugin.wasm"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/no/such/plugin.wasm"));
}

#[test]
fn console_echoes_what_you_type() {
    let out = agent_host(&["console", "--plugin", guests::ECHO], "hello\n");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.lines().any(|l| l.ends_with(": hello")), "{stdout}");
}

#[test]
fn console_greeter_greets_joiners() {
    let out = agent_host(
        &["console", "--plugin", guests::GREETER],
        "/join bob\n/leave bob\n",
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("bob!"), "{stdout}");
    assert!(stdout.to_lowercase().contains("goodbye"), "{stdout}");
}

#[test]
fn console_builds_a_crate_directory() {
    let dir = workspace_root().join("examples/echo");
    let out = agent_host(&["console", "--plugin", dir.to_str().unwrap()], "built\n");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.lines().any(|l| l.ends_with(": built")), "{stdout}");
}

#[test]
fn console_exit_code_follows_the_job() {
    let out = agent_host(
        &[
            "console",
            "--plugin",
            guests::FAULTY,
            "--metadata",
            "fail:no luck",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("failed: no luck"),
        "{}",
        text(&out.stderr)
    );
    let out = agent_host(
        &[
            "console",
            "--plugin",
            guests::FAULTY,
            "--metadata",
            "sleep:10",
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("job success"),
        "{}",
        text(&out.stderr)
    );
}
