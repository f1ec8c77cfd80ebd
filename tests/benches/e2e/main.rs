//! End-to-end figures: the real `agent-host` binary against the fake LiveKit
//! server over loopback WebSockets, optionally side by side with the
//! official Python worker (`livekit-agents`, see `tests/conformance`).
//!
//! ```sh
//! cargo build --profile bench -p agent-host          # the binary under test
//! cargo bench -p agent-host-tests --bench e2e          # agent-host, full size
//! cargo bench -p agent-host-tests --bench e2e -- --python   # and the Python worker
//! cargo test -p agent-host-tests --bench e2e           # small sizes, a smoke run
//! ```
//! (`bash tests/benches/e2e.sh` does all of it, venv included.)
//! `AGENT_HOST_BIN=<path>` measures another `agent-host` binary.
//!
//! Prints a table and writes it as JSON to `target/bench/e2e.json`
//! (`e2e-quick.json` for the small run). Each worker runs as a child
//! process against a fresh fake server; what is measured:
//! - **job start**: from the server queueing `JobAssignment` to the job body
//!   running. agent-host: the `faulty` guest's first log line in `run`,
//!   timestamped by the host's logger; Python: the first statement of the
//!   entrypoint appends `time.time_ns()` to a file. Also shown: assignment →
//!   the worker's `UpdateJobStatus(RUNNING)` received by the server, and
//!   dispatch → body (which adds the offer round trip).
//! - **sustained rate**: jobs dispatched at once, divided by the time from
//!   the first dispatch to the last body start.
//! - **memory**: `/proc/<pid>/smaps_rollup` of the host process (Python: of
//!   every process of the worker's group: worker, idle and job processes).
//!   Per idle job: growth from before the idle jobs were dispatched, divided
//!   by their number; also the whole process divided by them. After the
//!   bursts: what they left resident against the idle worker and against
//!   the warm one (after the jobs one at a time, before any burst). Both
//!   also split by what holds the pages (`procfs::breakdown`: fiber
//!   stacks, guest memories, guest tables, heap, file-backed).
//! - **start → registered**: process spawn to the server's register
//!   response; cold = empty compile cache, warm = the cache the cold run left.
//! - **CPU of idle jobs**: utime + stime over a window, % of one core.
//! - **TCP segments per job** in a burst: the machine's `OutSegs`
//!   (`/proc/net/snmp`) from the first dispatch to the last body start,
//!   both ends of the loopback connection, divided by the burst's jobs.

mod jobs;
mod procfs;
mod report;
mod workers;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agent_host_tests::{guests, workspace_root};
use fake_livekit::{Config, FakeLiveKit};
use faulty_mode::Mode;

use jobs::{BodyStarts, Spread, Started, burst, dispatch_many, wait_ended, wait_started};
use procfs::Memory;
use report::Figures;
use workers::{AgentHost, Python};

/// How much work each part does.
struct Sizes {
    /// Samples of a single job dispatched alone.
    single: usize,
    /// Burst sizes for agent-host, and for the Python worker.
    bursts: Vec<usize>,
    py_bursts: Vec<usize>,
    /// Jobs in the sustained-rate run.
    sustained: usize,
    /// Idle job counts for agent-host (the CPU window is taken at the
    /// first), and for the Python worker.
    idle: Vec<usize>,
    py_idle: usize,
    /// CPU measurement window.
    cpu_window: Duration,
    /// Time given to a worker to settle (idle processes, warm-up) before
    /// its idle figures.
    settle: Duration,
}

impl Sizes {
    fn new(full: bool) -> Sizes {
        if full {
            Sizes {
                single: 30,
                bursts: vec![100, 1000],
                py_bursts: vec![20, 100],
                sustained: 5000,
                idle: vec![1000, 10_000],
                py_idle: 20,
                cpu_window: Duration::from_secs(10),
                settle: Duration::from_secs(5),
            }
        } else {
            Sizes {
                single: 3,
                bursts: vec![20],
                py_bursts: vec![5],
                sustained: 100,
                idle: vec![50, 200],
                py_idle: 3,
                cpu_window: Duration::from_secs(1),
                settle: Duration::from_millis(500),
            }
        }
    }
}

/// The CPU row both workers fill, whatever their number of idle jobs.
const PER_IDLE_JOB_CPU: &str = "per idle job: CPU (% of a core)";

/// Jobs that stay alive for the whole run (`agent.py` reads `faulty`'s
/// `sleep:<ms>` too).
const IDLE: Mode = Mode::Sleep(3_600_000);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --bench e2e` does not.
    let full = std::env::args().any(|a| a == "--bench");
    let with_python = std::env::args().any(|a| a == "--python");
    let sizes = Sizes::new(full);
    let mut figures = Figures::default();

    let bin = host_bin();
    println!("agent-host binary: {}", bin.display());
    run_agent_host(&sizes, &bin, &mut figures).await;
    if with_python {
        let python = python();
        run_python(&sizes, &python, &mut figures).await;
    }

    let out = workspace_root().join("target/bench").join(if full {
        "e2e.json"
    } else {
        "e2e-quick.json"
    });
    figures.print();
    figures.write_json(&out, full);
    println!("written to {}", out.display());
}

/// The `agent-host` binary: `AGENT_HOST_BIN` (to measure another build),
/// else the one next to this benchmark's profile directory
/// (`target/release` under `cargo bench`, `target/debug` under `cargo test`).
fn host_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("AGENT_HOST_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("the benchmark's path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .join("agent-host");
    assert!(
        bin.is_file(),
        "{} is missing: build it first (`cargo build --profile bench -p agent-host` \
         for `cargo bench`, `cargo build -p agent-host` for `cargo test`), \
         or run `bash tests/benches/e2e.sh`",
        bin.display()
    );
    bin
}

/// A fresh fake server with the OSS defaults, less the node gate: the
/// benchmark decides how many jobs a worker gets.
async fn server() -> FakeLiveKit {
    FakeLiveKit::start(Config {
        target_load: None,
        ..Config::default()
    })
    .await
    .expect("starting the fake LiveKit server")
}

/// Spawn → register response, for a worker spawned at `spawned`.
async fn registered(server: &FakeLiveKit, spawned: Instant) -> Duration {
    let workers = server
        .wait_for_workers(1, Duration::from_secs(120))
        .await
        .expect("the worker registers");
    workers[0].registered_at.duration_since(spawned)
}

async fn run_agent_host(sizes: &Sizes, bin: &Path, f: &mut Figures) {
    const W: usize = report::AGENT_HOST;
    let cache = tempfile::tempdir().expect("cache dir");
    let plugin = guests::FAULTY;
    // The pool holds every idle job plus the largest burst.
    let max_jobs = sizes.idle.iter().max().unwrap() + sizes.bursts.iter().max().unwrap() + 100;

    let cold_server = server().await;
    let host = AgentHost::spawn(bin, &cold_server, "bench", plugin, cache.path(), max_jobs);
    f.set(
        W,
        "start → registered, cold cache (ms)",
        ms(registered(&cold_server, host.spawned).await),
    );
    drop(host);

    let server = server().await;
    let host = AgentHost::spawn(bin, &server, "bench", plugin, cache.path(), max_jobs);
    f.set(
        W,
        "start → registered, warm cache (ms)",
        ms(registered(&server, host.spawned).await),
    );
    tokio::time::sleep(sizes.settle).await;
    let idle = host.memory();
    let idle_parts = procfs::breakdown(host.pid());
    f.set(W, "idle worker RSS (MiB)", mib(idle.rss));
    f.set(W, "idle worker PSS (MiB)", mib(idle.pss));
    let cpu = procfs::cpu_percent(&[host.pid()], sizes.cpu_window).await;
    f.set(W, "CPU, idle worker, no jobs (% of a core)", cpu);

    let pid = host.pid();
    let pids = move || vec![pid];
    one_at_a_time(sizes.single, &server, &host.bodies, W, f).await;
    // The warm baseline: the worker once jobs ran (their code paths, the
    // runtime's threads), before any burst.
    let warm = host.memory();
    f.set(
        W,
        "warm worker RSS, after one job at a time (MiB)",
        mib(warm.rss),
    );
    bursts(&sizes.bursts, &server, &host.bodies, &pids, W, f).await;

    let (ids, started) = burst(
        &server,
        "bench",
        sizes.sustained,
        &Mode::Sleep(0).to_string(),
        &host.bodies,
    )
    .await;
    f.set(W, "sustained: jobs started per second", rate(&started));
    wait_ended(&server, &ids).await;

    // What the bursts left, against the idle and the warm worker.
    tokio::time::sleep(sizes.settle).await;
    let base = host.memory();
    f.set(W, "after the bursts: RSS (MiB)", mib(base.rss));
    f.set(
        W,
        "after the bursts: RSS above the idle worker's (%)",
        (base.rss as f64 / idle.rss as f64 - 1.0) * 100.0,
    );
    f.set(
        W,
        "after the bursts: RSS above the warm worker's (%)",
        (base.rss as f64 / warm.rss as f64 - 1.0) * 100.0,
    );
    let base_parts = procfs::breakdown(pid);
    breakdown_rows(
        f,
        W,
        "after the bursts: above the idle worker's",
        base_parts - idle_parts,
        (1024, "MiB"),
    );
    let mut alive = 0;
    for (i, &n) in sizes.idle.iter().enumerate() {
        // In batches, so no offer waits longer than the server's window.
        let filling = Instant::now();
        let from = alive;
        while alive < n {
            let batch = (n - alive).min(1000);
            let ids = dispatch_many(&server, "bench", batch, &IDLE.to_string());
            wait_started(&server, &ids, &host.bodies).await;
            alive += batch;
        }
        let fill_rate = (n - from) as f64 / filling.elapsed().as_secs_f64();
        f.set(
            W,
            &format!("{n} idle jobs: started per second while filling"),
            fill_rate,
        );
        tokio::time::sleep(sizes.settle).await;
        idle_memory(f, W, n, host.memory(), base, i == 0);
        let parts = procfs::breakdown(pid) - base_parts;
        breakdown_rows(
            f,
            W,
            &format!("{n} idle jobs: growth per job"),
            parts,
            (n, "KiB"),
        );
        if i == 0 {
            let cpu = procfs::cpu_percent(&[host.pid()], sizes.cpu_window).await;
            f.set(W, &format!("CPU, {n} idle jobs (% of a core)"), cpu);
            f.set(W, PER_IDLE_JOB_CPU, cpu / n as f64);
        }
    }
}

async fn run_python(sizes: &Sizes, python: &Path, f: &mut Figures) {
    const W: usize = report::PYTHON;
    let server = server().await;
    let py = Python::spawn(python, &server, "bench");
    f.set(
        W,
        "start → registered, warm cache (ms)",
        ms(registered(&server, py.spawned).await),
    );
    // Its idle job processes start after registration.
    tokio::time::sleep(sizes.settle.max(Duration::from_secs(5))).await;
    let idle = py.memory();
    f.set(W, "idle worker PSS (MiB)", mib(idle.pss));
    let cpu = procfs::cpu_percent(&py.pids(), sizes.cpu_window).await;
    f.set(W, "CPU, idle worker, no jobs (% of a core)", cpu);

    let pids = || py.pids();
    one_at_a_time(sizes.single.min(5), &server, &py.bodies, W, f).await;
    bursts(&sizes.py_bursts, &server, &py.bodies, &pids, W, f).await;

    let base = py.memory();
    let n = sizes.py_idle;
    let ids = dispatch_many(&server, "bench", n, &IDLE.to_string());
    wait_started(&server, &ids, &py.bodies).await;
    tokio::time::sleep(sizes.settle.max(Duration::from_secs(3))).await;
    idle_memory(f, W, n, py.memory(), base, true);
    let cpu = procfs::cpu_percent(&py.pids(), sizes.cpu_window).await;
    f.set(W, &format!("CPU, {n} idle jobs (% of a core)"), cpu);
    f.set(W, PER_IDLE_JOB_CPU, cpu / n as f64);
}

/// Jobs one at a time (`single` samples): each sleeps a little and ends,
/// and the next starts once it ended and the worker had a moment to refill
/// (Python prewarms job processes).
async fn one_at_a_time(
    single: usize,
    server: &FakeLiveKit,
    bodies: &BodyStarts,
    w: usize,
    f: &mut Figures,
) {
    let mut one = Vec::new();
    for _ in 0..single {
        let (ids, started) = burst(server, "bench", 1, &Mode::Sleep(0).to_string(), bodies).await;
        one.extend(started);
        wait_ended(server, &ids).await;
        tokio::time::sleep(refill(w)).await;
    }
    spreads(f, w, "one job", &one);
}

/// Each burst, as [`one_at_a_time`] runs its jobs; also the CPU time per
/// job of the worker's processes (`pids`) and of this process (mostly the
/// fake server) until the last body started.
async fn bursts(
    bursts: &[usize],
    server: &FakeLiveKit,
    bodies: &BodyStarts,
    pids: &dyn Fn() -> Vec<u32>,
    w: usize,
    f: &mut Figures,
) {
    for &n in bursts {
        let worker_cpu = procfs::CpuClock::start(pids());
        let server_cpu = procfs::CpuClock::start(vec![std::process::id()]);
        let segments = procfs::tcp_segments_sent();
        let (ids, started) =
            burst(server, "bench", n, &Mode::Sleep(1000).to_string(), bodies).await;
        f.set(
            w,
            &format!("burst of {n}: TCP segments per job, both ends"),
            procfs::tcp_segments_sent().saturating_sub(segments) as f64 / n as f64,
        );
        let per_job = |used: Duration| used.as_secs_f64() * 1e3 / n as f64;
        let worker = per_job(worker_cpu.used(&pids()));
        let own = per_job(server_cpu.used(&[std::process::id()]));
        f.set(w, &format!("burst of {n}: worker CPU per job (ms)"), worker);
        f.set(
            w,
            &format!("burst of {n}: fake server CPU per job (ms)"),
            own,
        );
        spreads(f, w, &format!("burst of {n}"), &started);
        f.set(
            w,
            &format!("burst of {n}: jobs started per second"),
            rate(&started),
        );
        wait_ended(server, &ids).await;
        tokio::time::sleep(refill(w) * 2).await;
    }
}

/// The pause after jobs ended before the next ones: Python's worker
/// starts a job process to replace each one used.
fn refill(w: usize) -> Duration {
    Duration::from_millis(if w == report::PYTHON { 2000 } else { 50 })
}

fn spreads(f: &mut Figures, w: usize, what: &str, started: &[Started]) {
    let spread = |to: fn(&Started) -> Instant, from: fn(&Started) -> Instant| {
        Spread::of(started.iter().map(|s| to(s) - from(s)).collect())
    };
    let rows = [
        ("assignment → body", spread(|s| s.body, |s| s.assigned)),
        (
            "assignment → RUNNING at server",
            spread(|s| s.running, |s| s.assigned),
        ),
        ("dispatch → body", spread(|s| s.body, |s| s.dispatched)),
    ];
    for (span, spread) in rows {
        f.set(w, &format!("{what}: {span}, p50 (ms)"), spread.p50_ms);
        f.set(w, &format!("{what}: {span}, p99 (ms)"), spread.p99_ms);
        f.set(w, &format!("{what}: {span}, max (ms)"), spread.max_ms);
    }
}

/// Jobs per second: jobs over first dispatch → last body start.
fn rate(started: &[Started]) -> f64 {
    let first = started.iter().map(|s| s.dispatched).min().unwrap();
    let last = started.iter().map(|s| s.body).max().unwrap();
    started.len() as f64 / (last - first).as_secs_f64()
}

/// Growth of memory per idle job from `base`, for `jobs` jobs; with
/// `compared`, also under the names both workers share (the sizes differ).
fn idle_memory(f: &mut Figures, w: usize, jobs: usize, now: Memory, base: Memory, compared: bool) {
    let per = |a: u64, b: u64| a.saturating_sub(b) as f64 / jobs as f64;
    // RSS summed over processes counts shared pages once per process:
    // meaningful for agent-host's single process only.
    if w == report::AGENT_HOST {
        f.set(
            w,
            &format!("{jobs} idle jobs: RSS growth per job (KiB)"),
            per(now.rss, base.rss),
        );
        f.set(
            w,
            &format!("{jobs} idle jobs: whole RSS / jobs (KiB)"),
            per(now.rss, 0),
        );
    }
    f.set(
        w,
        &format!("{jobs} idle jobs: USS growth per job (KiB)"),
        per(now.uss, base.uss),
    );
    f.set(
        w,
        &format!("{jobs} idle jobs: whole PSS (MiB)"),
        mib(now.pss),
    );
    if compared {
        f.set(w, "per idle job: USS growth (KiB)", per(now.uss, base.uss));
        f.set(w, "per idle job: PSS growth (KiB)", per(now.pss, base.pss));
    }
}

/// The rows of a [`procfs::Breakdown`] (in KiB), each divided by `per`
/// and shown in `unit`: 1024 for MiB, a job count for KiB per job.
fn breakdown_rows(
    f: &mut Figures,
    w: usize,
    what: &str,
    parts: procfs::Breakdown,
    (per, unit): (usize, &str),
) {
    let rows = [
        ("fiber stacks", parts.stacks),
        ("guest memories, written pages", parts.memories),
        ("guest tables", parts.tables),
        (
            "heap (wasmtime's stores and instances, the host's state)",
            parts.heap,
        ),
        ("file-backed (binary, guest memory images)", parts.files),
    ];
    for (name, kib) in rows {
        f.set(
            w,
            &format!("{what}: {name} ({unit})"),
            kib as f64 / per as f64,
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The venv's Python, installed by `tests/conformance/setup.sh` if needed
/// (`AGENT_HOST_PYTHON` overrides it).
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os(fake_livekit::python::PYTHON_ENV) {
        return PathBuf::from(p);
    }
    let root = workspace_root();
    let status = std::process::Command::new("bash")
        .arg(root.join("tests/conformance/setup.sh"))
        .status()
        .expect("running tests/conformance/setup.sh");
    assert!(status.success(), "tests/conformance/setup.sh failed");
    root.join("target/conformance-venv/bin/python")
}
