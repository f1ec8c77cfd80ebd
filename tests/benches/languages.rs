//! Agents in each language in one host: job start, memory and CPU per job,
//! and many idle jobs at once, for the echo agent in Rust
//! (`examples/echo`), Python (`examples/echo-py`, the Python SDK) and
//! JavaScript (`examples/echo-js`, the JavaScript SDK).
//!
//! ```sh
//! agent-host setup --lang python --lang js              # the toolchains, once
//! cargo bench -p agent-host-tests --bench languages     # 1,000 jobs a language
//! cargo test -p agent-host-tests --bench languages      # 20 jobs a language, a smoke run
//! cargo bench -p agent-host-tests --bench languages -- --lang python   # one language
//! ```
//!
//! Each language runs in a child process of its own (this binary with
//! `--lang`), so that one's jobs and heap do not colour the next one's
//! memory figures. In-process, on the library (`Runtime`) with the compile
//! cache warm:
//! - offer: `Runtime::offer` (a fresh instance from the pooling allocator
//!   and the guest's `on_request`) to the accepted `PreparedJob`;
//! - offer → body: offer, `start`, until the job's agent joined the sim room
//!   (its `run` is under way: the SDK calls it, the host joins first);
//! - memory per job: growth of this process's USS and PSS over N live,
//!   idle jobs (each waits for its room's events), divided by N;
//! - CPU per job: this process's CPU time while starting the N jobs, over
//!   N; idle CPU: share of a core used over 5 s while all N are idle.

#[path = "e2e/procfs.rs"]
#[allow(dead_code, reason = "only this process's memory and CPU are read")]
mod procfs;

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_host::JobLimits;
use agent_host::room::sim::{SimOutput, SimRooms};
use agent_host_tests::{guests, percentile, request, runtime, workspace_root};

/// The languages measured, by the name `--lang` takes.
const LANGUAGES: [&str; 3] = ["rust", "python", "js"];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let jobs: usize = if bench { 1000 } else { 20 };
    match args.iter().position(|a| a == "--lang") {
        Some(i) => {
            let lang = args.get(i + 1).map(String::as_str).unwrap_or_default();
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a tokio runtime")
                .block_on(measure(lang, jobs));
        }
        None => {
            for lang in LANGUAGES {
                let mut child = std::process::Command::new(&args[0]);
                child.args(["--lang", lang]);
                if bench {
                    child.arg("--bench");
                }
                let status = child.status().expect("running a language's measurement");
                assert!(status.success(), "{lang}: {status}");
            }
        }
    }
}

/// Builds the echo agent of `lang` (once; later builds are skipped while
/// its sources are unchanged) and returns its component's path.
fn echo(lang: &str) -> std::path::PathBuf {
    let root = workspace_root();
    match lang {
        "rust" => guests::ECHO.into(),
        "python" => agent_host::guest_build::python::build_into(
            &root.join("examples/echo-py"),
            &root.join("target/python-guests/echo-py"),
        )
        .expect("building examples/echo-py"),
        "js" => agent_host::guest_build::js::build_to(
            &root.join("examples/echo-js"),
            Some(&root.join("target/js-guests/echo-js.wasm")),
        )
        .expect("building examples/echo-js"),
        other => panic!("--lang takes one of {LANGUAGES:?}, not `{other}`"),
    }
}

/// Starts `jobs` echo jobs of `lang` one after the other, keeps them idle
/// together, and prints what they cost.
async fn measure(lang: &str, jobs: usize) {
    let wasm = echo(lang);
    let rt = runtime(jobs as u32);
    let loaded = Instant::now();
    let plugin = rt
        .load_plugin_file(&wasm)
        .unwrap_or_else(|e| panic!("loading the {lang} echo: {e:#}"));
    println!(
        "{lang} echo: {} KiB component, loaded in {:.0?} (from cache: {}); per job {}; {} fit",
        std::fs::metadata(&wasm)
            .map(|m| m.len() / 1024)
            .unwrap_or(0),
        loaded.elapsed(),
        plugin.from_cache(),
        plugin.footprint(),
        rt.jobs_fit(&plugin)
    );
    let pid = std::process::id();
    let rooms = Arc::new(SimRooms::default());
    let before = procfs::memory(pid);
    let cpu_before = procfs::cpu_ticks(pid);
    let mut offers = Vec::with_capacity(jobs);
    let mut starts = Vec::with_capacity(jobs);
    let mut handles = Vec::with_capacity(jobs);
    for i in 0..jobs {
        let req = request(&format!("AJ_{lang}bench_{i}"), "");
        let room = rooms.room(&req.room.name);
        let mut outputs = room.subscribe();
        let t0 = Instant::now();
        let offer = rt
            .offer(&plugin, req, JobLimits::default())
            .await
            .expect("the guest answers");
        offers.push(t0.elapsed());
        let job = offer.job.expect("accepted");
        handles.push(job.start(rooms.clone(), String::new(), String::new()));
        tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(out) = outputs.recv().await {
                if matches!(out, SimOutput::AgentJoined(_)) {
                    return;
                }
            }
        })
        .await
        .expect("the agent joins");
        starts.push(t0.elapsed());
    }
    let start_cpu_ms = (procfs::cpu_ticks(pid) - cpu_before) as f64 * 10.0;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let during = procfs::memory(pid);
    let idle_from = (Instant::now(), procfs::cpu_ticks(pid));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle_cpu =
        (procfs::cpu_ticks(pid) - idle_from.1) as f64 / 100.0 / idle_from.0.elapsed().as_secs_f64()
            * 100.0;
    let alive = handles.iter().filter(|h| !h.is_finished()).count();
    offers.sort();
    starts.sort();
    let per = |a: u64, b: u64| a.saturating_sub(b) as f64 / jobs as f64;
    println!("{lang}: {alive} of {jobs} jobs alive at once");
    println!(
        "{lang}: offer: p50 {:.2?} p99 {:.2?}; offer -> body: p50 {:.2?} p99 {:.2?}",
        percentile(&offers, 0.5),
        percentile(&offers, 0.99),
        percentile(&starts, 0.5),
        percentile(&starts, 0.99)
    );
    println!(
        "{lang}: per job: USS {:.0} KiB, PSS {:.0} KiB, RSS {:.0} KiB; CPU to start {:.2} ms; \
         idle CPU {:.2} % of a core for all {jobs}",
        per(during.uss, before.uss),
        per(during.pss, before.pss),
        per(during.rss, before.rss),
        start_cpu_ms / jobs as f64,
        idle_cpu
    );
    assert_eq!(alive, jobs, "every job is alive together");
    for i in 0..jobs {
        rooms.room(&format!("room-AJ_{lang}bench_{i}")).close();
    }
    for handle in handles {
        handle.outcome().await;
    }
}
