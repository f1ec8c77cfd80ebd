//! The `agent-host` binary: `check` and `console`, as a user runs them.

use std::io::Write as _;
use std::process::{Output, Stdio};

use agent_host_tests::{agent_host_command, guests, workspace_root};
use faulty_mode::Mode;

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
        assert!(stdout.contains("WIT version:   0.1.5"), "{stdout}");
        assert!(stdout.contains("run: func"), "{stdout}");
        assert!(stdout.contains("agent-host:agent/room@0.1.5"), "{stdout}");
        // What one job takes from the pool, as wasmtime counts it: a Rust
        // guest holds its program and two shims, one memory, two tables.
        assert!(
            stdout.contains(
                "per job:       core instances 3, memories 1, tables 2; 1000 jobs fit the pool of 1000"
            ),
            "{stdout}"
        );
        assert!(
            !text(&out.stderr).contains("warning"),
            "{}",
            text(&out.stderr)
        );
    }
    // A guest of the previous WIT release carries no SDK marker and imports
    // the 0.1.0 interfaces, which this host still serves.
    let out = agent_host(&["check", guests::LEGACY], "");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("agent-host:agent/room@0.1.0"), "{stdout}");
    // It loads, and `check` says how to record the version it lacks.
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("warning:")
            && stderr.contains("no `agent-host:sdk-version` custom section"),
        "{stderr}"
    );
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
            &Mode::Fail("no luck".to_owned()).to_string(),
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
            &Mode::Sleep(10).to_string(),
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

/// `agent-host compile PLUGIN -o OUT` with `extra` flags; panics unless it
/// succeeded.
fn compile(plugin: &str, out: &std::path::Path, extra: &[&str]) {
    let mut args = vec!["compile", plugin, "-o", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let result = agent_host(&args, "");
    assert!(result.status.success(), "{}", text(&result.stderr));
}

#[test]
fn a_precompiled_plugin_runs_a_job_and_keeps_its_identity() {
    let dir = tempfile::tempdir().unwrap();
    let cwasm = dir.path().join("echo.cwasm");
    compile(guests::ECHO, &cwasm, &[]);
    let cwasm = cwasm.to_str().unwrap();
    let out = agent_host(
        &["console", "--allow-precompiled", "--plugin", cwasm],
        "ahead of time\n",
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.lines().any(|l| l.ends_with(": ahead of time")),
        "{stdout}"
    );

    // `check` prints the digest and markers of the component it came from.
    let identity = |plugin: &str, extra: &[&str]| {
        let mut args = vec!["check"];
        args.extend_from_slice(extra);
        args.push(plugin);
        let out = agent_host(&args, "");
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .map(str::trim_start)
            .filter(|l| {
                ["digest:", "guest version:", "WIT version:", "per job:"]
                    .iter()
                    .any(|field| l.starts_with(field))
            })
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let of_wasm = identity(guests::ECHO, &[]);
    // The pool accounting travels in the `.cwasm` header too.
    assert_eq!(of_wasm.len(), 4, "{of_wasm:?}");
    assert_eq!(identity(cwasm, &["--allow-precompiled"]), of_wasm);
}

/// A `.cwasm` is refused, in one line and with exit code 2, unless the
/// operator opted in and it was compiled by this host with these settings.
#[test]
fn precompiled_plugins_are_refused_unless_opted_in_and_compatible() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.cwasm");
    compile(guests::FAULTY, &good, &[]);
    let bytes = std::fs::read(&good).unwrap();
    let other_memory = dir.path().join("other-memory.cwasm");
    compile(guests::FAULTY, &other_memory, &["--memory-limit", "32MiB"]);
    // The layout: wasmtime's artifact, the JSON header, its length, a magic.
    let trailer = bytes.len() - 12;
    let header_len = u32::from_le_bytes(bytes[trailer..trailer + 4].try_into().unwrap()) as usize;
    let artifact = &bytes[..trailer - header_len];
    let header = std::str::from_utf8(&bytes[trailer - header_len..trailer]).unwrap();
    let cwasm = |artifact: &[u8], header: &[u8]| {
        let mut out = artifact.to_vec();
        out.extend_from_slice(header);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&bytes[trailer + 4..]);
        out
    };
    assert_eq!(cwasm(artifact, header.as_bytes()), bytes);
    // The header as another agent-host release would write it.
    let this_version = format!("\"agent_host\":\"{}\"", env!("CARGO_PKG_VERSION"));
    assert!(header.contains(&this_version), "{header}");
    let other = header.replace(&this_version, "\"agent_host\":\"0.0.0\"");

    let cases: [(&str, Vec<u8>, &[&str], &str); 6] = [
        (
            "no-opt-in.cwasm",
            bytes.clone(),
            &[],
            "load it with --allow-precompiled",
        ),
        (
            "other-memory.cwasm",
            std::fs::read(&other_memory).unwrap(),
            &["--allow-precompiled"],
            "compiled by a different wasmtime or engine configuration",
        ),
        (
            "other-release.cwasm",
            cwasm(artifact, other.as_bytes()),
            &["--allow-precompiled"],
            "compiled by agent-host 0.0.0",
        ),
        (
            "truncated.cwasm",
            cwasm(&artifact[..artifact.len() / 2], header.as_bytes()),
            &["--allow-precompiled"],
            "wasmtime refused its code",
        ),
        (
            "bad-header.cwasm",
            cwasm(artifact, &vec![b'{'; header.len()]),
            &["--allow-precompiled"],
            "not a valid .cwasm",
        ),
        (
            // wasmtime's own artifact, as `wasmtime compile` writes it.
            "bare.cwasm",
            artifact.to_vec(),
            &["--allow-precompiled"],
            "wasmtime's precompiled code without agent-host's header",
        ),
    ];
    for (name, contents, flags, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        let mut args = vec!["console"];
        args.extend_from_slice(flags);
        args.extend(["--plugin", path.to_str().unwrap()]);
        let out = agent_host(&args, "");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        let lines: Vec<_> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(lines.len(), 1, "{name}: {stderr}");
        assert!(lines[0].contains(name), "{name}: {stderr}");
        assert!(lines[0].contains(expected), "{name}: {stderr}");
        if name != "no-opt-in.cwasm" {
            assert!(
                lines[0].ends_with("recompile it with `agent-host compile`"),
                "{name}: {stderr}"
            );
        }
    }
}

/// A console driven line by line: what it prints is read as it comes.
struct Interactive {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Interactive {
    fn start(args: &[&str]) -> Self {
        let mut child = agent_host_command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting agent-host");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Interactive {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (at most 60 s) for a printed line containing `part`.
    fn wait_for(&mut self, part: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(part) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {part:?}; saw {:#?}", self.seen),
            }
        }
    }

    fn type_line(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
    }

    /// Ends the input and waits for the console to exit successfully.
    fn finish(mut self) -> Vec<String> {
        drop(self.child.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}; saw {:#?}", self.seen);
        self.seen.extend(self.lines.try_iter());
        self.seen
    }
}

#[test]
fn console_shows_agent_state_and_transcriptions_as_they_stream_and_calls_the_agent() {
    let script = "state thinking;transcribe s1 TR_you hello there world;\
                  user you u1 hi agent;register echo;serve 1";
    let mut console = Interactive::start(&[
        "console",
        "--plugin",
        guests::FRONTEND,
        "--metadata",
        script,
    ]);
    assert!(console.wait_for("[state]").ends_with("[state] thinking"));
    let agent = console.wait_for("[transcription]: hello");
    assert!(
        agent.starts_with("agent-")
            && agent.ends_with("[transcription]: hello there world (final)"),
        "{agent}"
    );
    let user = console.wait_for("[transcription]: hi");
    assert_eq!(
        user, "you [transcription]: hi agent (final)",
        "on behalf of you"
    );
    console.wait_for(": registered");
    console.type_line("/rpc echo hi there");
    console.wait_for("[rpc] echo -> hi there");
    let seen = console.finish();
    assert!(
        !seen.iter().any(|l| l.contains("[stream")),
        "no raw stream output: {seen:#?}"
    );
}

#[test]
fn console_say_speaks_as_the_user() {
    let mut console = Interactive::start(&["console", "--plugin", guests::PARROT]);
    console.wait_for("[state] listening");
    console.type_line("/say hello there agent");
    console.wait_for("[state] speaking");
    console.finish();
}

/// `agent-host new NAME --lang LANG` in a fresh directory, then `check`
/// and `console` on the project as its README says: the agent greets and
/// answers `abc` (the Rust and JavaScript templates reverse it, Python's
/// echoes it).
fn new_project_checks_and_answers(lang: &str, answer: &str) {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("my-agent");
    let dir_arg = dir.to_str().unwrap();
    let out = agent_host(&["new", "my-agent", "--lang", lang, "--dir", dir_arg], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(dir.join("README.md").is_file());
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(readme.contains("agent-host console --plugin ."), "{readme}");
    // Cargo resolves the Rust project's dependencies from its local cache:
    // tests do not reach the network.
    let check = agent_host_command()
        .args(["check", dir_arg])
        .env("CARGO_TARGET_DIR", workspace_root().join("target/guests"))
        .env("CARGO_NET_OFFLINE", "true")
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check.stderr));
    assert!(text(&check.stdout).contains("ok, an agent-host agent"));
    let out = agent_host(&["console", "--plugin", dir_arg], "abc\n");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.lines().any(|l| l.ends_with(&format!(": {answer}"))),
        "{stdout}"
    );
    // A second `new` into the now non-empty directory is refused.
    let again = agent_host(&["new", "my-agent", "--lang", lang, "--dir", dir_arg], "");
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("not an empty directory"));
}

#[test]
fn new_rust_project_checks_and_answers_in_console() {
    new_project_checks_and_answers("rust", "cba");
}

#[test]
#[cfg_attr(
    not(has_js_toolchain),
    ignore = "needs agent-host's JavaScript toolchain: run `agent-host setup --lang js`"
)]
fn new_js_project_checks_and_answers_in_console() {
    agent_host_capability::require(agent_host_capability::Capability::JsToolchain);
    new_project_checks_and_answers("js", "cba");
}

#[test]
#[cfg_attr(
    not(has_python_sdk),
    ignore = "needs the Python agents' toolchain: run `agent-host setup --lang python`"
)]
fn new_python_project_checks_and_answers_in_console() {
    agent_host_capability::require(agent_host_capability::Capability::PythonSdk);
    new_project_checks_and_answers("python", "abc");
}
