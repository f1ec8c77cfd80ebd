//! Running the official Python worker (`livekit-agents`, pinned in
//! `tests/conformance/setup.sh`) against a [`FakeLiveKit`], for conformance
//! tests.
//!
//! The interpreter comes from the environment: `AGENT_HOST_PYTHON`, the
//! venv's `python` (`bash tests/conformance/setup.sh` creates
//! `target/conformance-venv`). Tests that need it carry
//! `#[cfg_attr(not(has_python_worker), ignore = "needs the official Python worker: run tests/conformance/setup.sh, set AGENT_HOST_PYTHON")]`
//! and call [`python`], which fails when it is missing on CI (see
//! `agent_host_capability`).
//!
//! [`PyWorker`] runs `tests/conformance/agent.py start` in its own process
//! group, with output to a log file whose tail is printed when a test
//! panics, and kills the whole group when dropped.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::FakeLiveKit;

pub use agent_host_capability::PYTHON_ENV;

/// The Python interpreter to run the official worker with, from
/// [`PYTHON_ENV`].
///
/// # Panics
/// When it is unset or does not exist: see [`agent_host_capability::require`].
pub fn python() -> PathBuf {
    agent_host_capability::require(agent_host_capability::Capability::PythonWorker)
}

/// The `livekit-agents` version importable with `python`.
///
/// # Panics
/// When `python` cannot run or `livekit.agents` cannot be imported.
pub fn sdk_version(python: &Path) -> String {
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "from livekit.agents import __version__; print(__version__)",
        ])
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success() && !version.is_empty(),
        "livekit-agents is not importable with {}: {}",
        python.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    version
}

/// The workspace root (where `tests/conformance` lives).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tests/conformance/agent.py`, the minimal official-SDK agent.
pub fn agent_script() -> PathBuf {
    workspace_root().join("tests/conformance/agent.py")
}

/// The Python worker process (`agent.py start`), in its own process group.
/// Dropping it kills the whole group (worker, forkserver, job processes:
/// only processes it started), and prints the tail of its log if the
/// thread is panicking.
#[derive(Debug)]
pub struct PyWorker {
    child: tokio::process::Child,
    pid: u32,
    log: PathBuf,
}

impl PyWorker {
    /// Starts `agent.py start` with `python`, connected to `server`,
    /// registering as `agent_name`. Needs a tokio runtime.
    pub fn spawn(python: &Path, server: &FakeLiveKit, agent_name: &str) -> PyWorker {
        Self::spawn_script(python, &agent_script(), server, agent_name, &[])
    }

    /// Starts `script start` with `python`, connected to `server`, with
    /// `CONFORMANCE_AGENT_NAME=agent_name` and the extra environment `env`
    /// (for other agent scripts, such as the benchmark's). Needs a tokio
    /// runtime.
    pub fn spawn_script(
        python: &Path,
        script: &Path,
        server: &FakeLiveKit,
        agent_name: &str,
        env: &[(&str, &str)],
    ) -> PyWorker {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let log = std::env::temp_dir().join(format!(
            "fake-livekit-python-worker-{}-{}.log",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let out = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
        let child = tokio::process::Command::new(python)
            .arg(script)
            .arg("start")
            .envs(env.iter().copied())
            .env("LIVEKIT_URL", server.url())
            .env("LIVEKIT_API_KEY", &server.config().api_key)
            .env("LIVEKIT_API_SECRET", &server.config().api_secret)
            .env("CONFORMANCE_AGENT_NAME", agent_name)
            .env_remove("LIVEKIT_WORKER_TOKEN")
            .env_remove("LIVEKIT_AGENT_NAME_OVERRIDE")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("duplicating the log file"))
            .stderr(out)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("spawning the python worker");
        let pid = child.id().expect("the python worker's pid");
        println!("python worker pid {pid}, log {}", log.display());
        PyWorker { child, pid, log }
    }

    /// The worker's pid (also its process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Where its stdout and stderr go.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Sends `sig` (as `kill` takes it: `-TERM`, `-INT`, …) to the worker's
    /// own pid only, not its group, as Kubernetes signals PID 1.
    pub fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([sig, &self.pid.to_string()])
            .status()
            .expect("running kill")
            .success();
        assert!(ok, "kill {sig} {}", self.pid);
    }

    /// Waits for the worker to exit.
    ///
    /// # Panics
    /// If it has not exited within `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the python worker did not exit within {timeout:?}"))
            .expect("waiting for the python worker")
    }
}

impl Drop for PyWorker {
    fn drop(&mut self) {
        if std::thread::panicking() {
            print_log_tail("python worker", &self.log);
        }
        // Kill the process group we created (worker, forkserver, job procs).
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.pid)])
            .stderr(Stdio::null())
            .status();
    }
}

/// Prints the last 40 lines of the log file `log` of `what` to stderr (for
/// the `Drop` of a child process whose test is panicking). Does nothing if
/// the file cannot be read.
pub fn print_log_tail(what: &str, log: &Path) {
    let Ok(text) = std::fs::read_to_string(log) else {
        return;
    };
    let lines: Vec<&str> = text.lines().collect();
    eprintln!("--- {what} log (last lines) ---");
    for line in &lines[lines.len().saturating_sub(40)..] {
        eprintln!("{line}");
    }
}
