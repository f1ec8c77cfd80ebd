//! Prewarm: what a 10 MB table costs each job when `prewarm` builds it
//! once per version, when each job builds it in `run`, and a trivial job
//! for scale. In process, in sim rooms (no network): the runtime's own
//! cost, not the server's.
//!
//! ```sh
//! cargo bench -p agent-host-tests --bench prewarm    # 50 jobs a row
//! cargo test -p agent-host-tests --bench prewarm     # 5 jobs a row, a smoke run
//! ```
//!
//! Per row, jobs start one after the other and stay idle in their rooms:
//! - start: offer → the job's first text in the room (the body running),
//!   p50 and max;
//! - memory per idle job: growth of this process's RSS, PSS and USS
//!   (`/proc/self/smaps_rollup`) from before the first job to when all
//!   are idle, divided by the number of jobs.
//!
//! Rows: `examples/greeter` (a trivial job: says hello and waits),
//! `examples/prewarm` reading the table its prewarm built (`stay`), and
//! the same building its own table in `run` (`in-run stay`).
//!
//! The Python counterpart (where the conformance venv is, `AGENT_HOST_PYTHON`):
//! livekit-agents' worker with `prewarm_fnc` building the same table
//! (`prewarm_agent.py`), which runs in every idle job process: time from
//! spawn to every idle process prewarmed, and the memory of each idle
//! process (RSS, PSS, USS), for `num_idle_processes` = 2 (4 with `--bench`).

#[path = "e2e/procfs.rs"]
#[allow(dead_code)]
mod procfs;

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_host::room::sim::{SimRoom, SimRooms};
use agent_host::{JobHandle, JobLimits, Plugin, Runtime};
use agent_host_capability::{Capability, require};
use agent_host_tests::{guests, request, runtime, sim};
use fake_livekit::python::PyWorker;
use fake_livekit::{Config, FakeLiveKit};

/// One row: the plugin, its job metadata, its label.
struct Row {
    label: &'static str,
    wasm: &'static str,
    metadata: &'static str,
}

const ROWS: [Row; 3] = [
    Row {
        label: "trivial job (greeter)",
        wasm: guests::GREETER,
        metadata: "",
    },
    Row {
        label: "10 MB table built in prewarm",
        wasm: guests::PREWARM,
        metadata: "stay",
    },
    Row {
        label: "10 MB table built in run",
        wasm: guests::PREWARM,
        metadata: "in-run stay",
    },
];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --bench prewarm` does not.
    let full = std::env::args().any(|a| a == "--bench");
    let jobs = if full { 50 } else { 5 };
    let runtime = runtime(jobs as u32);
    println!("{jobs} jobs a row, one after the other, all idle at the end");
    println!(
        "{:<30} {:>10} {:>10} {:>12} {:>12} {:>12}",
        "row", "start p50", "start max", "RSS/job", "PSS/job", "USS/job"
    );
    // A discarded round first: the process's own first-job costs (thread
    // stacks, allocator arenas) would otherwise land on the first row.
    let warmup = agent_host_tests::load(&runtime, ROWS[0].wasm);
    measure(&runtime, &warmup, &ROWS[0], jobs).await;
    for row in &ROWS {
        let started = Instant::now();
        let plugin = agent_host_tests::load(&runtime, row.wasm);
        let load = started.elapsed();
        let (starts, per_job) = measure(&runtime, &plugin, row, jobs).await;
        println!(
            "{:<30} {:>10.2?} {:>10.2?} {:>8} KiB {:>8} KiB {:>8} KiB   (load {load:.0?}, prewarm {:?})",
            row.label,
            starts[starts.len() / 2],
            starts[starts.len() - 1],
            per_job.rss,
            per_job.pss,
            per_job.uss,
            plugin.prewarm(),
        );
    }
    if cfg!(has_python_worker) {
        python_side(&require(Capability::PythonWorker), if full { 4 } else { 2 }).await;
    } else {
        println!("python side skipped: run tests/conformance/setup.sh and set AGENT_HOST_PYTHON");
    }
}

/// The Python worker with `idle` prewarmed job processes: spawn → all
/// prewarmed, and each idle process's memory.
async fn python_side(python: &std::path::Path, idle: usize) {
    let server = FakeLiveKit::start(Config::default())
        .await
        .expect("starting fake-livekit");
    let ready =
        std::env::temp_dir().join(format!("agent-host-bench-prewarmed-{}", std::process::id()));
    let _ = std::fs::remove_file(&ready);
    let script =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/prewarm_agent.py");
    let spawned = Instant::now();
    let worker = PyWorker::spawn_script(
        python,
        &script,
        &server,
        "prewarm-bench",
        &[
            ("BENCH_PREWARMED", ready.to_str().expect("a UTF-8 temp dir")),
            ("BENCH_IDLE_PROCESSES", &idle.to_string()),
        ],
    );
    // Bounded: 120 s, polled every 10 ms.
    let deadline = spawned + Duration::from_secs(120);
    let pids: Vec<u32> = loop {
        let text = std::fs::read_to_string(&ready).unwrap_or_default();
        let pids: Vec<u32> = text
            .lines()
            .filter_map(|l| l.split_once(' ')?.0.parse().ok())
            .collect();
        if pids.len() >= idle {
            break pids;
        }
        assert!(
            Instant::now() < deadline,
            "the Python worker prewarmed {} of {idle} processes in 120 s",
            pids.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let ready_after = spawned.elapsed();
    let each: Vec<procfs::Memory> = pids.iter().map(|&pid| procfs::memory(pid)).collect();
    let n = each.len() as u64;
    let sum = each.iter().fold(procfs::Memory::default(), |a, &m| a + m);
    let whole = procfs::group_memory(worker.pid());
    println!(
        "{:<30} {:>21} {:>8} KiB {:>8} KiB {:>8} KiB   (per idle process; spawn → {idle} prewarmed {ready_after:.2?}; \
         whole worker, {idle} idle: RSS {} MiB, USS {} MiB)",
        format!("Python prewarm_fnc, {idle} idle"),
        "",
        sum.rss / n,
        sum.pss / n,
        sum.uss / n,
        whole.rss >> 10,
        whole.uss >> 10,
    );
    drop(worker);
    let _ = std::fs::remove_file(&ready);
}

/// Starts `jobs` jobs of `row` one by one; their start times, sorted, and
/// the memory each idle job added.
async fn measure(
    runtime: &Runtime,
    plugin: &Arc<Plugin>,
    row: &Row,
    jobs: usize,
) -> (Vec<Duration>, procfs::Memory) {
    let rooms = SimRooms::default();
    let before = procfs::memory(std::process::id());
    let mut starts = Vec::new();
    let mut running: Vec<(SimRoom, JobHandle)> = Vec::new();
    for i in 0..jobs {
        let job = request(&format!("AJ_{}_{i}", row.metadata.len()), row.metadata);
        let room = rooms.room(&job.room.name);
        let mut outputs = room.subscribe();
        room.join_identity("alice");
        let offered = Instant::now();
        let offer = runtime
            .offer(plugin, job, JobLimits::default())
            .await
            .expect("the guest answers");
        let handle = agent_host_tests::start_sim(offer.job.expect("accepted"), &rooms);
        sim::next(&mut outputs, sim::text).await;
        starts.push(offered.elapsed());
        running.push((room, handle));
    }
    let idle = procfs::memory(std::process::id());
    let per = |after: u64, before: u64| after.saturating_sub(before) / jobs as u64;
    let per_job = procfs::Memory {
        rss: per(idle.rss, before.rss),
        pss: per(idle.pss, before.pss),
        uss: per(idle.uss, before.uss),
    };
    for (room, handle) in running {
        room.close();
        tokio::time::timeout(Duration::from_secs(30), handle.outcome())
            .await
            .expect("the job ends when its room closes");
    }
    starts.sort();
    (starts, per_job)
}
