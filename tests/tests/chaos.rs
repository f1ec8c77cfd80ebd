//! Chaos, small size: healthy jobs beside every fault mode, host-call
//! floods and a guest that never answers its offer. Healthy jobs all
//! succeed, every faulty one fails with its reason within its limit, and
//! afterwards every pool slot is free again and memory is back near its
//! baseline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_host::room::sim::SimRooms;
use agent_host::{JobLimits, Outcome, Runtime};
use agent_host_tests::{
    assert_offer_unanswered, faulty_job, guests, load, rss_kib, run_job, runtime,
};
use faulty_mode::Mode;

const HEALTHY: usize = 100;

/// (mode, reason, the most it may take on a loaded 2-core machine)
fn faults() -> [(Mode, &'static str, u64); 8] {
    [
        (
            Mode::Trap,
            "trap: unreachable code reached (the guest aborted)",
            15,
        ),
        (Mode::Panic, "guest panicked: faulty: asked to panic", 15),
        (Mode::Loop, "runaway: 1 s without yielding to the host", 20),
        (Mode::Oom, "memory limit 64 MiB exceeded", 20),
        (
            Mode::Stack,
            "stack overflow (unbounded recursion in the guest?)",
            15,
        ),
        (
            Mode::FloodLog,
            "runaway: 1 s without yielding to the host",
            20,
        ),
        (
            Mode::FloodData,
            "runaway: 1 s without yielding to the host",
            20,
        ),
        (Mode::Fail("chaos".to_owned()), "chaos", 15),
    ]
}

async fn round(runtime: &Runtime, plugin: &Arc<agent_host::Plugin>, tag: &str) {
    let rooms = SimRooms::default();
    let mut tasks = Vec::new();
    for i in 0..HEALTHY {
        let (runtime, plugin, rooms) = (runtime.clone(), plugin.clone(), rooms.clone());
        let req = faulty_job(&format!("AJ_{tag}_ok{i}"), Mode::Sleep(200));
        tasks.push(tokio::spawn(async move {
            let outcome = run_job(&runtime, &plugin, &rooms, req, JobLimits::default()).await;
            (
                Mode::Sleep(200),
                outcome,
                Duration::ZERO,
                Duration::from_secs(30),
            )
        }));
    }
    for (i, (mode, _, limit)) in faults().into_iter().enumerate() {
        let (runtime, plugin, rooms) = (runtime.clone(), plugin.clone(), rooms.clone());
        let req = faulty_job(&format!("AJ_{tag}_fault{i}"), mode.clone());
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let outcome = run_job(&runtime, &plugin, &rooms, req, JobLimits::default()).await;
            (mode, outcome, started.elapsed(), Duration::from_secs(limit))
        }));
    }
    // A guest that never answers its offer: the caller's timeout declines it.
    assert_offer_unanswered(runtime, plugin, &format!("AJ_{tag}_stall")).await;

    let faults = faults();
    for task in tasks {
        let (mode, outcome, took, limit) = task.await.unwrap();
        match faults.iter().find(|(m, _, _)| *m == mode) {
            Some((_, reason, _)) => {
                assert_eq!(outcome, Outcome::Failed(reason.to_string()), "{mode}");
                assert!(took < limit, "{mode} took {took:?}");
            }
            None => assert_eq!(outcome, Outcome::Success, "{mode}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_jobs_survive_every_fault_and_nothing_leaks() {
    let runtime = runtime(256);
    let plugin = load(&runtime, guests::FAULTY);
    // The first round warms every pool slot and allocator the rounds use.
    round(&runtime, &plugin, "warm").await;
    assert_eq!(
        runtime.live_instances(),
        Some(0),
        "every slot free after the first round"
    );
    let baseline = rss_kib();

    round(&runtime, &plugin, "chaos").await;
    assert_eq!(
        runtime.live_instances(),
        Some(0),
        "every slot free after the chaos round"
    );
    let after = rss_kib();
    eprintln!("RSS: {baseline} KiB after the warm-up round, {after} KiB after the chaos round");
    // Within 32 MiB of the baseline: one round's worth of leaked jobs
    // (108 jobs, each with at least 1 MiB of linear memory) would exceed it.
    assert!(
        after <= baseline + 32 * 1024,
        "memory grew from {baseline} KiB to {after} KiB"
    );
}
