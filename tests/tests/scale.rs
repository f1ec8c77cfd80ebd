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

/// The pool admits a job only while its plugin's needs fit: past the pool's
/// jobs the offer is refused before instantiation, with a reason naming
/// what ran out, and a finished job's share comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_admits_jobs_by_what_their_plugin_needs() {
    let runtime = runtime(2);
    let plugin = load(&runtime, guests::FAULTY);
    assert_eq!(runtime.jobs_fit(&plugin), 2);
    let needs = plugin.footprint();
    assert_eq!(needs.core_instances, 3, "{needs}");
    let offer = |id: &str| {
        let (runtime, plugin) = (runtime.clone(), plugin.clone());
        let request = faulty_job(id, Mode::Sleep(1));
        async move { runtime.offer(&plugin, request, JobLimits::default()).await }
    };
    let first = offer("AJ_1").await.unwrap().job.expect("accepted");
    let second = offer("AJ_2").await.unwrap().job.expect("accepted");
    assert_eq!(runtime.pool_share_used(), 1.0);
    let err = offer("AJ_3").await.err().expect("no room for a third job");
    assert!(
        format!("{err:#}").contains("the pool is full: 2 jobs of at most 2"),
        "{err:#}"
    );
    // A refused offer leaves the pool as it was; a job that ends frees its share.
    let rooms = Arc::new(SimRooms::default());
    let outcome = first
        .start(rooms.clone(), String::new(), String::new())
        .outcome()
        .await;
    assert_eq!(outcome, Outcome::Success);
    let third = offer("AJ_3").await.unwrap().job.expect("room again");
    drop((second, third));
    assert_eq!(runtime.pool_share_used(), 0.0);
}
