//! Job start and density figures for the runtime, printed as a table.
//!
//! ```sh
//! cargo bench -p agent-host-tests --bench jobs            # full size
//! cargo test -p agent-host-tests --bench jobs             # small, as a smoke run
//! ```
//!
//! Measures, with the `faulty` example guest:
//! - compile of the component, and load from the on-disk cache;
//! - offer + start + run of a job that returns at once (`sleep:0`), one
//!   after another: p50/p99 per job, and jobs per second;
//! - memory per idle job: RSS growth while N `sleep` jobs are alive,
//!   divided by N, and the process's thread count meanwhile.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_host::room::sim::SimRooms;
use agent_host::{JobLimits, Outcome, Runtime, RuntimeConfig};
use agent_host_tests::{faulty_job, guests, percentile, rss_kib};
use faulty_mode::Mode;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --bench jobs` does not.
    let quick = !std::env::args().any(|a| a == "--bench");
    let (sequential, idle_sizes): (usize, &[usize]) = if quick {
        (200, &[100])
    } else {
        (5000, &[1000, 10_000])
    };
    let max_jobs = *idle_sizes.iter().max().unwrap() as u32;
    let bytes = std::fs::read(guests::FAULTY).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        max_jobs,
        cache_dir: Some(cache.path().to_path_buf()),
        ..RuntimeConfig::default()
    })
    .unwrap();

    let started = Instant::now();
    let plugin = runtime.load_plugin(&bytes).unwrap();
    let compile = started.elapsed();
    let started = Instant::now();
    let cached = runtime.load_plugin(&bytes).unwrap();
    let from_cache = started.elapsed();
    assert!(cached.from_cache());
    println!("| figure | value |\n|---|---|");
    println!(
        "| compile `faulty` ({} KiB) | {compile:.1?} |",
        bytes.len() / 1024
    );
    println!("| load it from the on-disk cache | {from_cache:.2?} |");

    let rooms = Arc::new(SimRooms::default());
    let mut times = Vec::with_capacity(sequential);
    let all = Instant::now();
    for i in 0..sequential {
        let t = Instant::now();
        let offer = runtime
            .offer(
                &plugin,
                faulty_job(&format!("AJ_seq{i}"), Mode::Sleep(0)),
                JobLimits::default(),
            )
            .await
            .unwrap();
        let outcome = offer
            .job
            .unwrap()
            .start(rooms.clone(), String::new(), String::new())
            .outcome()
            .await;
        times.push(t.elapsed());
        assert_eq!(outcome, Outcome::Success);
    }
    let rate = sequential as f64 / all.elapsed().as_secs_f64();
    times.sort();
    println!(
        "| one job: offer + instantiate + run + end, p50 / p99 (n={sequential}) | {:.0?} / {:.0?} |",
        percentile(&times, 0.5),
        percentile(&times, 0.99)
    );
    println!("| sequential jobs per second | {rate:.0} |");

    let idle_limits = JobLimits {
        termination_grace: Duration::from_millis(100),
        ..JobLimits::default()
    };
    for &n in idle_sizes {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = rss_kib();
        let threads_before = agent_host_tests::thread_count();
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let offer = runtime
                .offer(
                    &plugin,
                    faulty_job(&format!("AJ_idle{n}_{i}"), Mode::Sleep(600_000)),
                    idle_limits.clone(),
                )
                .await
                .unwrap();
            handles.push(
                offer
                    .job
                    .unwrap()
                    .start(rooms.clone(), String::new(), String::new()),
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let during = rss_kib();
        let threads = agent_host_tests::thread_count();
        assert!(handles.iter().all(|h| !h.is_finished()));
        println!(
            "| {n} idle jobs: RSS growth per job | {} KiB (process RSS {} MiB; threads {threads_before} -> {threads}) |",
            (during - before) / n as u64,
            during / 1024
        );
        for h in &handles {
            h.terminate();
        }
        // The guests sleep in the host and never read the end signal:
        // they are stopped after their grace period.
        for h in handles {
            let _ = h.outcome().await;
        }
    }
}
