//! Shared pieces of agent-host's integration tests: the example guests
//! built as components, and helpers to run jobs and the `agent-host` binary.

use std::path::PathBuf;
use std::sync::Arc;

use agent_host::room::sim::SimRooms;
use agent_host::wit::{JobRequest, JobType, RoomInfo};
use agent_host::{JobHandle, JobLimits, Outcome, Plugin, PreparedJob, Runtime, RuntimeConfig};
use agent_host_capability::{Capability, require};
use faulty_mode::Mode;

pub mod fake_openai;
pub mod fake_speech;
pub mod netns;
pub mod process;
pub mod proxy;
pub mod sim;
pub mod speech_script;
pub mod tls;
pub mod websocket;
pub mod worker;

/// Paths of the example components, built by `build.rs`.
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}

/// A runtime for tests: `max_jobs` slots, compiled components cached in
/// `target/test-cache` so test binaries share compilations.
pub fn runtime(max_jobs: u32) -> Runtime {
    Runtime::new(RuntimeConfig {
        max_jobs,
        cache_dir: Some(test_cache_dir()),
        ..RuntimeConfig::default()
    })
    .expect("creating the runtime")
}

/// Loads one of the [`guests`].
pub fn load(runtime: &Runtime, wasm: &str) -> Arc<Plugin> {
    let bytes = std::fs::read(wasm).expect("reading a guest component");
    runtime
        .load_plugin(&bytes)
        .expect("loading a guest component")
}

/// A room job request with the given id and metadata, in a room named after the id.
pub fn request(id: &str, metadata: &str) -> JobRequest {
    JobRequest {
        id: id.to_string(),
        job_type: JobType::Room,
        room: RoomInfo {
            sid: format!("RM_{id}"),
            name: format!("room-{id}"),
            metadata: String::new(),
        },
        participant: None,
        agent_name: String::new(),
        metadata: metadata.to_string(),
        attributes: Vec::new(),
    }
}

/// A room job request for the `faulty` guest doing `mode` (its metadata),
/// with the given id, in a room named after the id.
pub fn faulty_job(id: &str, mode: Mode) -> JobRequest {
    request(id, &mode.to_string())
}

/// Offers a job to `plugin`, starts it in a sim room and waits for its end.
pub async fn run_job(
    runtime: &Runtime,
    plugin: &Arc<Plugin>,
    rooms: &SimRooms,
    request: JobRequest,
    limits: JobLimits,
) -> Outcome {
    let offer = runtime
        .offer(plugin, request, limits)
        .await
        .expect("the guest answers the offer");
    start_sim(offer.job.expect("the guest accepts the job"), rooms)
        .outcome()
        .await
}

/// Starts an accepted job in a sim room of `rooms`.
pub fn start_sim(job: PreparedJob, rooms: &SimRooms) -> JobHandle {
    job.start(Arc::new(rooms.clone()), String::new(), String::new())
}

/// LiveKit's client library (`liblivekit_ffi.so`) for room tests, found as
/// agent-host finds it (`LIVEKIT_LIB_PATH`, else the cache `agent-host setup`
/// fills). Tests that call it carry
/// `#[cfg_attr(not(has_livekit_lib), ignore = "needs LiveKit's client library: run `agent-host setup`")]`.
///
/// # Panics
/// When the library is missing (on CI, or when it went away after the
/// build): see [`agent_host_capability::require`].
pub fn livekit_lib() -> PathBuf {
    require(Capability::LivekitLib)
}

/// Offers `faulty`'s `stall-offer` job, which never answers, and checks that
/// the caller's 2 s timeout is what ends the wait.
pub async fn assert_offer_unanswered(runtime: &Runtime, plugin: &Arc<Plugin>, id: &str) {
    let offer = runtime.offer(
        plugin,
        faulty_job(id, Mode::StallOffer),
        JobLimits::default(),
    );
    let answer = tokio::time::timeout(std::time::Duration::from_secs(2), offer).await;
    assert!(answer.is_err(), "a stalled offer got an answer");
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The `agent-host` binary, built next to the test executables by
/// `cargo test` at the workspace root.
pub fn agent_host_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join("agent-host");
    assert!(
        bin.is_file(),
        "{} is missing: run the tests with `cargo test` from the workspace root",
        bin.display()
    );
    bin
}

/// Where tests cache compiled components, shared by every test binary and
/// every `agent-host` process they start.
pub fn test_cache_dir() -> PathBuf {
    workspace_root().join("target/test-cache")
}

/// `agent-host` as tests start it: with the shared compile cache.
pub fn agent_host_command() -> std::process::Command {
    let mut command = std::process::Command::new(agent_host_bin());
    command.env("AGENT_HOST_CACHE_DIR", test_cache_dir());
    command
}

/// `agent-host` for a worker against `fake-livekit`, which has no rooms:
/// jobs run without room I/O even where LiveKit's client library is
/// installed.
pub fn agent_host_for_fake_server() -> std::process::Command {
    let mut command = agent_host_command();
    command.env("AGENT_HOST_NO_ROOM_IO", "1");
    command
}

/// The `p` quantile (0 to 1) of `sorted`, nearest rank; for benchmarks.
pub fn percentile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Number of threads of this process, from `/proc/self/status`.
pub fn thread_count() -> usize {
    proc_status("Threads:")
}

/// Resident memory of this process in KiB, from `/proc/self/status`.
pub fn rss_kib() -> u64 {
    proc_status("VmRSS:")
}

/// A numeric field of `/proc/self/status` (units such as `kB` dropped).
fn proc_status<T: std::str::FromStr>(field: &str) -> T {
    let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} line in /proc/self/status"))
}
