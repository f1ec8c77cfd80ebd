//! Conformance: the official Python worker (`livekit-agents`, pinned in
//! `tests/conformance/setup.sh`) and `agent-host run` go through the same
//! scenario, each against its own fresh fake server, and the server must
//! see the same message flow from both.
//!
//! The scenario (see `tests/conformance/README.md`):
//! 1. register → `summarize_worker` steps up to and including the first
//!    status report;
//! 2. job A, a short job: offer → accept → assignment → RUNNING → SUCCESS;
//! 3. job B, a job that runs until the server terminates it: RUNNING →
//!    termination → the worker's SUCCESS (ignored by the server);
//! 4. job C, a 3 s job: RUNNING → SIGTERM to the worker's pid → the job
//!    finishes (SUCCESS), the worker closes the socket and exits 0; then the
//!    worker-level steps of the whole connection.
//!
//! Needs the venv: `bash tests/conformance/setup.sh`, a fresh binary
//! (`cargo build -p agent-host`), then
//! `AGENT_HOST_PYTHON=$PWD/target/conformance-venv/bin/python cargo test -p agent-host-tests --test conformance -- --nocapture`.
//! Without `AGENT_HOST_PYTHON` the test is reported as ignored, with how to
//! get the venv; on CI (`CI=true`, set by `.ci/run`) it fails instead (see
//! `agent_host_capability`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use agent_host_tests::{agent_host_for_fake_server, guests};
use fake_livekit::flow::{self, FlowStep, WorkerStep};
use fake_livekit::livekit_protocol::{JobStatus, worker_message};
use fake_livekit::python::{self, PyWorker};
use fake_livekit::{Config, Direction, DispatchRequest, FakeLiveKit, JobId, WorkerSnapshot};
use faulty_mode::Mode;

/// The agent name both workers register with.
const AGENT: &str = "conformance-agent";
/// Registration: the Python worker takes about 3 s to start, more on a busy
/// machine.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(90);
/// Anything else a step waits for.
const WAIT: Duration = Duration::from_secs(45);

/// What the server saw of one worker going through the scenario.
#[derive(Debug, Clone, PartialEq)]
struct Transcript {
    /// `summarize_worker` up to and including the first status report.
    register: Vec<WorkerStep>,
    /// Job A: a short job that succeeds.
    success: Vec<FlowStep>,
    /// Job B: terminated by the server while running.
    terminated: Vec<FlowStep>,
    /// Job C: running when the worker gets SIGTERM.
    drained: Vec<FlowStep>,
    /// The worker's exit code after the drain.
    exit_code: Option<i32>,
    /// `summarize_worker` of the whole connection.
    worker: Vec<WorkerStep>,
}

/// The job metadata of each scenario step for one worker implementation
/// (`agent.py` and the `faulty` guest spell "run until terminated"
/// differently).
struct Modes {
    success: String,
    hold: String,
    drain: String,
}

/// `agent.py`'s metadata (its own grammar, see the script).
fn python_modes() -> Modes {
    Modes {
        success: "sleep:300".to_owned(),
        hold: "hold".to_owned(),
        drain: "sleep:3000".to_owned(),
    }
}

/// `faulty` has no room transport under `run`, so no `ok` (it sends text):
/// only sleeps.
fn faulty_modes() -> Modes {
    Modes {
        success: Mode::Sleep(300).to_string(),
        hold: Mode::Sleep(60_000).to_string(),
        drain: Mode::Sleep(3000).to_string(),
    }
}

/// The worker process under test.
enum Process {
    Python(PyWorker),
    Host(HostProcess),
}

impl Process {
    /// SIGTERM to the worker's own pid only.
    fn sigterm(&self) {
        match self {
            Process::Python(p) => p.signal("-TERM"),
            Process::Host(h) => h.sigterm(),
        }
    }

    async fn wait_exit(&mut self) -> Option<i32> {
        match self {
            Process::Python(p) => p.wait_exit(WAIT).await.code(),
            Process::Host(h) => h.wait_exit().await,
        }
    }
}

/// `agent-host run --plugin faulty.wasm` as a child process, JSON logs to a
/// file (tail printed if the test panics), killed on drop.
struct HostProcess {
    child: tokio::process::Child,
    log: PathBuf,
}

impl HostProcess {
    fn spawn(server: &FakeLiveKit) -> HostProcess {
        let log =
            std::env::temp_dir().join(format!("agent-host-conformance-{}.log", std::process::id()));
        let out = std::fs::File::create(&log).expect("creating the agent-host log");
        let child = tokio::process::Command::from(agent_host_for_fake_server())
            .args(["--log-format", "json", "run", "--plugin", guests::FAULTY])
            .args(["--url", &server.url()])
            .args(["--api-key", &server.config().api_key])
            .args(["--api-secret", &server.config().api_secret])
            .args(["--agent-name", AGENT])
            .args(["--http-host", "127.0.0.1", "--http-port", "0"])
            // agent.py reports load 0 so that a busy build machine cannot
            // turn it WS_FULL; agent-host's load (job share or CPU share,
            // at most 1) stays under a threshold above 1 for the same
            // reason. Draining still reports WS_FULL.
            .args(["--load-threshold", "1.01"])
            // faulty's `sleep` never reads its room, so it only ends when
            // its grace period is over; keep that short.
            .args(["--termination-grace", "1s"])
            .env("RUST_LOG", "info")
            .env_remove("LIVEKIT_AGENT_NAME")
            .env_remove("LIVEKIT_AGENT_DEPLOYMENT")
            .env_remove("AGENT_HOST_PLUGIN")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("duplicating the log file"))
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .expect("starting agent-host run");
        eprintln!(
            "agent-host pid {}, log {}",
            child.id().unwrap_or_default(),
            log.display()
        );
        HostProcess { child, log }
    }

    fn sigterm(&self) {
        let pid = self.child.id().expect("agent-host is still running");
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("running kill")
            .success();
        assert!(ok, "kill -TERM {pid}");
    }

    async fn wait_exit(&mut self) -> Option<i32> {
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("agent-host did not exit")
            .expect("waiting for agent-host")
            .code()
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            python::print_log_tail("agent-host", &self.log);
        }
        let _ = self.child.start_kill();
    }
}

/// The statuses the worker itself reported for a job, in order.
async fn wait_worker_statuses(
    server: &FakeLiveKit,
    job: &JobId,
    what: &str,
    pred: impl Fn(&[JobStatus]) -> bool,
) {
    server
        .wait_for_job(job, WAIT, what, |j| pred(&j.worker_statuses()))
        .await
        .unwrap_or_else(|e| panic!("{e}; job: {:?}", server.job(job)));
}

fn is_terminal(s: &JobStatus) -> bool {
    matches!(s, JobStatus::JsSuccess | JobStatus::JsFailed)
}

/// Waits for the worker's RUNNING.
async fn wait_running(server: &FakeLiveKit, job: &JobId) {
    wait_worker_statuses(server, job, "the worker's RUNNING", |s| {
        s.contains(&JobStatus::JsRunning)
    })
    .await;
}

/// Waits for the worker's final SUCCESS or FAILED (whichever it is, the
/// transcript comparison tells).
async fn wait_terminal(server: &FakeLiveKit, job: &JobId) {
    wait_worker_statuses(server, job, "the worker's final status", |s| {
        s.iter().any(is_terminal)
    })
    .await;
}

/// Runs the scenario against `server`, with `process` the worker connected
/// to it.
/// `label` prefixes the timings it prints (not compared: they depend on the
/// machine and on what each guest does, e.g. `faulty`'s sleep ignores a
/// termination and is stopped after the grace period).
async fn scenario(
    label: &str,
    server: &FakeLiveKit,
    process: &mut Process,
    modes: &Modes,
) -> Transcript {
    let started = Instant::now();
    let timing = |step: &str, since: Instant| {
        eprintln!("TIMING {label}: {step} {:?}", since.elapsed());
    };
    // --- register --------------------------------------------------------
    let w: WorkerSnapshot = server
        .wait_for_workers(1, REGISTER_TIMEOUT)
        .await
        .expect("the worker registers")
        .remove(0);
    timing("start → registered", started);
    server
        .wait_for_message(0, WAIT, "the first update_worker", |m| {
            m.connection == w.connection
                && matches!(m.inbound(), Some(worker_message::Message::UpdateWorker(_)))
        })
        .await
        .unwrap();
    let mut register = flow::summarize_worker(&server.messages(), w.connection);
    let first_status = register
        .iter()
        .position(|s| matches!(s, WorkerStep::Status(_)))
        .expect("a status step");
    register.truncate(first_status + 1);

    // --- job A: offer → accept → assignment → RUNNING → SUCCESS ----------
    let at = Instant::now();
    let a = server.dispatch(DispatchRequest::new("room-a", AGENT).metadata(modes.success.as_str()));
    wait_terminal(server, &a).await;
    timing("job A dispatch → final status", at);
    let success = flow::summarize(&server.messages(), a.as_str());

    // --- job B: RUNNING → termination → SUCCESS ---------------------------
    let b = server.dispatch(DispatchRequest::new("room-b", AGENT).metadata(modes.hold.as_str()));
    wait_running(server, &b).await;
    server.terminate_job(&b).unwrap();
    let at = Instant::now();
    wait_terminal(server, &b).await;
    timing("job B termination → final status", at);
    let terminated = flow::summarize(&server.messages(), b.as_str());

    // --- job C: RUNNING → SIGTERM → SUCCESS, close, exit 0 ----------------
    let c = server.dispatch(DispatchRequest::new("room-c", AGENT).metadata(modes.drain.as_str()));
    wait_running(server, &c).await;
    process.sigterm();
    let at = Instant::now();
    wait_terminal(server, &c).await;
    timing("job C SIGTERM → final status", at);
    let exit_code = process.wait_exit().await;
    timing("job C SIGTERM → exit", at);
    let (_, closed) = server
        .wait_for_message(0, WAIT, "the connection's end", |m| {
            m.connection == w.connection && matches!(m.dir, Direction::Closed { .. })
        })
        .await
        .unwrap();
    eprintln!(
        "TIMING {label}: job C SIGTERM → connection closed {:?}",
        closed.at.saturating_duration_since(at)
    );
    let messages = server.messages();
    Transcript {
        register,
        success,
        terminated,
        drained: flow::summarize(&messages, c.as_str()),
        exit_code,
        worker: flow::summarize_worker(&messages, w.connection),
    }
}

/// What one side's agent code puts in its accept, as opposed to what the
/// worker (SDK or agent-host) adds itself.
struct AgentAccept {
    /// Whether the agent passes a participant name.
    name: bool,
    /// Participant attribute keys the agent sets itself.
    attributes: &'static [&'static str],
}

/// `agent.py` calls `accept(name="conformance", metadata=…)`, no attributes.
const PYTHON_ACCEPT: AgentAccept = AgentAccept {
    name: true,
    attributes: &[],
};

/// `faulty` accepts with default options, except (in builds that have it)
/// a `faulty.flavor` attribute that tells hot-swapped builds apart.
const FAULTY_ACCEPT: AgentAccept = AgentAccept {
    name: false,
    attributes: &["faulty.flavor"],
};

/// Removes what legitimately differs between the two workers, that is what
/// the two agents' own code chooses, after checking it is what that agent
/// sends:
/// * `Accept.has_name`: the Python agent passes a participant name, the
///   `faulty` guest does not; set to `false` on both sides;
/// * `Accept.attribute_keys`: the keys the agent itself sets
///   ([`AgentAccept::attributes`]) are dropped; the ones the worker adds
///   (`lk.agent.name`) are compared.
///
/// Nothing else is normalised: the SDK version string is already left out
/// by `summarize_worker`, and permissions, identities, statuses, close codes
/// and the exit code are compared as they are.
fn normalise(mut t: Transcript, agent: &AgentAccept) -> Transcript {
    let before = format!("{t:?}");
    for steps in [&mut t.success, &mut t.terminated, &mut t.drained] {
        for step in steps.iter_mut() {
            if let FlowStep::Accept {
                has_name,
                attribute_keys,
                ..
            } = step
            {
                assert_eq!(
                    *has_name, agent.name,
                    "participant name sent (the agent passes one: {}) in {before}",
                    agent.name
                );
                *has_name = false;
                attribute_keys.retain(|k| !agent.attributes.contains(&k.as_str()));
            }
        }
    }
    t
}

async fn run_python(python: &Path) -> (Transcript, Duration) {
    let started = Instant::now();
    let server = FakeLiveKit::start(Config::default()).await.unwrap();
    let mut process = Process::Python(PyWorker::spawn(python, &server, AGENT));
    let t = scenario("python", &server, &mut process, &python_modes()).await;
    eprintln!("python transcript: {t:#?}");
    (t, started.elapsed())
}

async fn run_agent_host() -> (Transcript, Duration) {
    let started = Instant::now();
    let server = FakeLiveKit::start(Config::default()).await.unwrap();
    let mut process = Process::Host(HostProcess::spawn(&server));
    let t = scenario("agent-host", &server, &mut process, &faulty_modes()).await;
    eprintln!("agent-host transcript: {t:#?}");
    (t, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_python_worker),
    ignore = "needs the official Python worker: run tests/conformance/setup.sh, set AGENT_HOST_PYTHON"
)]
async fn python_and_agent_host_send_the_same_flow() {
    let python = python::python();
    eprintln!("livekit-agents {}", python::sdk_version(&python));

    let (py, py_took) = run_python(&python).await;
    let (host, host_took) = run_agent_host().await;
    eprintln!("python scenario took {py_took:?}, agent-host scenario took {host_took:?}");

    assert_eq!(
        py.exit_code,
        Some(0),
        "the reference worker drains and exits 0"
    );
    let py = normalise(py, &PYTHON_ACCEPT);
    let host = normalise(host, &FAULTY_ACCEPT);
    // Each step separately first, so a failure names it.
    assert_eq!(py.register, host.register, "register");
    assert_eq!(py.success, host.success, "job A (success)");
    assert_eq!(py.terminated, host.terminated, "job B (termination)");
    assert_eq!(py.drained, host.drained, "job C (SIGTERM drain)");
    assert_eq!(py.exit_code, host.exit_code, "exit code after the drain");
    assert_eq!(py.worker, host.worker, "worker-level steps");
    assert_eq!(py, host);
}
