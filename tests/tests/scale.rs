//! Density: 1,000 jobs alive at once in one process, without a thread each.

use std::sync::Arc;

use agent_host::room::sim::SimRooms;
use agent_host::{JobLimits, Outcome};
use agent_host_tests::{faulty_job, guests, load, rss_kib, runtime, thread_count};
use faulty_mode::Mode;

const JOBS: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_sleeping_jobs_share_a_few_threads() {
    let runtime = runtime(JOBS as u32);
    let plugin = load(&runtime, guests::FAULTY);
    let rooms = Arc::new(SimRooms::default());

    // Warm up: let every lazily started thread (timers, pools) exist.
    for i in 0..4 {
        let offer = runtime
            .offer(
                &plugin,
                faulty_job(&format!("AJ_warm{i}"), Mode::Sleep(1)),
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
        assert_eq!(outcome, Outcome::Success);
    }
    let threads_before = thread_count();
    let rss_before = rss_kib();

    // Every job's instance exists before any starts, so all are alive at once.
    let mut prepared = Vec::with_capacity(JOBS);
    for i in 0..JOBS {
        let offer = runtime
            .offer(
                &plugin,
                faulty_job(&format!("AJ_{i}"), Mode::Sleep(1000)),
                JobLimits::default(),
            )
            .await
            .unwrap();
        prepared.push(offer.job.expect("accepted"));
    }
    let handles: Vec<_> = prepared
        .into_iter()
        .map(|job| job.start(rooms.clone(), String::new(), String::new()))
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let alive = handles.iter().filter(|h| !h.is_finished()).count();
    let threads_during = thread_count();
    let rss_during = rss_kib();
    eprintln!(
        "{alive} jobs alive: {threads_before} threads before, {threads_during} during; \
         RSS {} KiB before, {} KiB during ({} KiB per job)",
        rss_before,
        rss_during,
        rss_during.saturating_sub(rss_before) / JOBS as u64
    );
    assert_eq!(alive, JOBS, "all jobs are alive together");
    assert!(
        threads_during <= threads_before + 2,
        "threads grew with jobs: {threads_before} -> {threads_during}"
    );
    for handle in handles {
        assert_eq!(handle.outcome().await, Outcome::Success);
    }
}
