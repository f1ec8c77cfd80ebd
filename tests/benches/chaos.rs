//! Chaos, many rounds: the mix of `tests/tests/chaos.rs` (healthy jobs
//! beside every fault mode, host-call floods, resource hoarding and an
//! offer that is never answered), round after round on one runtime, with
//! memory, free pool slots and jobs per outcome printed at the end.
//!
//! ```sh
//! cargo test -p agent-host-tests --bench chaos              # 2 small rounds, a smoke run
//! cargo bench -p agent-host-tests --bench chaos -- --long   # 50 rounds of 100 healthy jobs
//! ```
//!
//! Fails (exit code 101) if a healthy job does not succeed, a faulty job
//! ends any other way than failed, or a pool slot is still taken at the end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use agent_host::room::sim::SimRooms;
use agent_host::{JobLimits, Outcome, Plugin, Runtime};
use agent_host_tests::{
    assert_offer_unanswered, faulty_job, guests, load, rss_kib, run_job, runtime,
};
use faulty_mode::Mode;

/// Every mode of `faulty` that must end as a failure.
fn faults() -> [Mode; 9] {
    [
        Mode::Trap,
        Mode::Panic,
        Mode::Loop,
        Mode::Oom,
        Mode::Stack,
        Mode::FloodLog,
        Mode::FloodData,
        Mode::Resources,
        Mode::Fail("chaos".to_owned()),
    ]
}

/// Runs one round; returns (mode, outcome) of every job.
async fn round(
    runtime: &Runtime,
    plugin: &Arc<Plugin>,
    healthy: usize,
    tag: &str,
) -> Vec<(Mode, Outcome)> {
    let rooms = SimRooms::default();
    let mut tasks = Vec::new();
    let modes = (0..healthy).map(|_| Mode::Sleep(200)).chain(faults());
    for (i, mode) in modes.enumerate() {
        let (runtime, plugin, rooms) = (runtime.clone(), plugin.clone(), rooms.clone());
        let req = faulty_job(&format!("AJ_{tag}_{i}"), mode.clone());
        tasks.push(tokio::spawn(async move {
            let outcome = run_job(&runtime, &plugin, &rooms, req, JobLimits::default()).await;
            (mode, outcome)
        }));
    }
    // An offer that is never answered: the caller's timeout declines it.
    assert_offer_unanswered(runtime, plugin, &format!("AJ_{tag}_stall")).await;
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("a job task panicked"));
    }
    outcomes
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let long = std::env::args().any(|a| a == "--long");
    let (rounds, healthy) = if long { (50, 100) } else { (2, 20) };
    let runtime = runtime(256);
    let plugin = load(&runtime, guests::FAULTY);
    // Warm-up: every pool slot and allocator the rounds use.
    round(&runtime, &plugin, healthy, "warm").await;
    let before = rss_kib();
    let started = Instant::now();
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    let mut wrong = Vec::new();
    for r in 0..rounds {
        for (mode, outcome) in round(&runtime, &plugin, healthy, &format!("r{r}")).await {
            let healthy_job = matches!(mode, Mode::Sleep(_));
            let key = match &outcome {
                Outcome::Success => "success".to_owned(),
                Outcome::Terminated => "terminated".to_owned(),
                Outcome::Failed(reason) => format!("failed: {reason}"),
            };
            let right = match &outcome {
                Outcome::Success => healthy_job,
                Outcome::Failed(_) => !healthy_job,
                Outcome::Terminated => false,
            };
            if !right {
                wrong.push(format!("{mode}: {outcome}"));
            }
            *tally.entry(key).or_default() += 1;
        }
    }
    let took = started.elapsed();
    let after = rss_kib();
    let jobs: usize = tally.values().sum();
    println!("| figure | value |\n|---|---|");
    println!(
        "| rounds | {rounds} ({healthy} healthy + {} faulty jobs + 1 unanswered offer each) |",
        faults().len()
    );
    println!("| jobs | {jobs} in {took:.1?} |");
    println!("| RSS after the warm-up | {before} KiB |");
    println!(
        "| RSS after the rounds | {after} KiB ({:+} KiB) |",
        after as i64 - before as i64
    );
    println!(
        "| pool slots taken at the end | {} |",
        runtime
            .live_instances()
            .map_or("no pool".into(), |n| n.to_string())
    );
    println!("\n| outcome | jobs |\n|---|---|");
    for (outcome, n) in &tally {
        println!("| {outcome} | {n} |");
    }
    assert!(wrong.is_empty(), "jobs ended the wrong way: {wrong:#?}");
    assert_eq!(
        runtime.live_instances().unwrap_or(0),
        0,
        "pool slots leaked"
    );
}
