//! Private network namespaces for tests that need real (non-loopback)
//! interfaces: libwebrtc ignores loopback when gathering ICE candidates, so
//! room tests against the WebRTC double run in a namespace of their own.
//!
//! Pattern: an outer `#[test]` calls [`run_inside`] with the name of an
//! inner test of the same binary. [`run_inside`] re-executes the test
//! binary as `unshare -n sh -c '<setup>; exec "$0" --exact <inner>
//! --ignored --nocapture'`, where the setup brings `lo` up and creates a veth
//! pair with [`DOUBLE_IP`] and [`CLIENT_IP`] (a /24 that exists only in that
//! namespace: [`NETNS_SETUP`]). The inner test is `#[ignore = "runs inside the private
//! network namespace made by <outer>"]` and starts with [`assert_inside`].
//! Its output is relayed and its success asserted.
//!
//! Policy:
//! * Everything binds only to the namespace's addresses or loopback; no
//!   traffic ever leaves the namespace (it has no route out).
//! * Without the right to create namespaces (root or CAP_NET_ADMIN, probed
//!   by `tests/build.rs` running the setup once), the outer test is ignored:
//!   it carries `#[cfg_attr(not(has_netns), ignore = "needs a private
//!   network namespace: run as root")]`. On CI, or when the right went away
//!   after the build, [`run_inside`] fails (see
//!   [`agent_host_capability::require`]).
//! * The inner run is killed after [`INNER_TIMEOUT`].
//!
//! A benchmark (no test harness) re-runs itself inside with
//! [`exec_inside`] instead: same namespace, its output straight through,
//! bounded by the benchmark itself.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agent_host_capability::{Capability, NETNS_SETUP, require};

/// Set to `1` in the environment of the inner run.
pub const INSIDE_ENV: &str = "AGENT_HOST_NETNS_INSIDE";
/// Address of `veth0` in the namespace: where servers (the double) listen.
pub const DOUBLE_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1));
/// Address of `veth1` in the namespace (the client side's second address).
pub const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 2));
/// Longest inner run.
pub const INNER_TIMEOUT: Duration = Duration::from_secs(300);

/// Whether this process is an inner run.
pub fn inside() -> bool {
    std::env::var_os(INSIDE_ENV).is_some_and(|v| v == "1")
}

/// Panics unless this process is an inner run (so an inner test run by hand
/// with `--ignored` fails clearly instead of touching the host network).
pub fn assert_inside() {
    assert!(
        inside(),
        "this test runs only inside the private network namespace its outer test creates"
    );
}

/// The current executable with `args`, to run inside a fresh private
/// network namespace (with [`INSIDE_ENV`] set).
///
/// # Panics
/// If namespaces cannot be created here.
fn unshare(args: &[&str]) -> Command {
    require(Capability::Netns);
    let exe = std::env::current_exe().expect("the executable's path");
    let script = format!("{NETNS_SETUP}; exec \"$0\" \"$@\"");
    let mut command = Command::new("unshare");
    command
        .args(["-n", "sh", "-c", &script])
        .arg(&exe)
        .args(args)
        .env(INSIDE_ENV, "1")
        .stdin(Stdio::null());
    command
}

/// Re-runs the current executable with `args` inside a fresh private
/// network namespace, its output straight through, and returns how it
/// exited (for a benchmark, which bounds its own run).
///
/// # Panics
/// If namespaces cannot be created here or the run cannot start.
pub fn exec_inside(args: &[&str]) -> std::process::ExitStatus {
    unshare(args)
        .status()
        .expect("running the executable inside a namespace")
}

/// Runs the ignored test `inner` of the current test binary inside a fresh
/// private network namespace and asserts it passed.
///
/// # Panics
/// If the inner test fails or times out, or if namespaces cannot be
/// created here.
pub fn run_inside(inner: &str) {
    let args = [
        "--exact",
        inner,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ];
    let mut child = unshare(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting unshare");
    let pipe = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut out);
            }
            String::from_utf8_lossy(&out).into_owned()
        })
    };
    let stdout = pipe(child.stdout.take().map(|r| Box::new(r) as _));
    let stderr = pipe(child.stderr.take().map(|r| Box::new(r) as _));
    let deadline = Instant::now() + INNER_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    // Relay through the test harness's capture.
    print!("{}", stdout.join().unwrap_or_default());
    eprint!("{}", stderr.join().unwrap_or_default());
    match status {
        Some(s) => assert!(s.success(), "{inner} failed inside the namespace: {s}"),
        None => panic!("{inner} timed out after {INNER_TIMEOUT:?} inside the namespace"),
    }
}
