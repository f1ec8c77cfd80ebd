//! Hot swap: new jobs take the new version, running jobs keep theirs, old
//! versions are released when idle, broken versions are refused; and
//! several plugins in one host stay out of each other's way.

use std::time::{Duration, Instant};

use agent_host::worker::Metrics;
use agent_host_tests::guests;
use agent_host_tests::worker::{
    WAIT, dispatch, flavor, options, server, start_worker, wait_worker_status,
};
use fake_livekit::DispatchRequest;
use fake_livekit::livekit_protocol::JobStatus;
use faulty_mode::Mode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_under_load_loses_no_job() {
    let server = server().await;
    let worker = start_worker(options(&server, "swapper", 200));
    server.wait_for_workers(1, WAIT).await.unwrap();
    let builds = [
        (std::fs::read(guests::FAULTY).unwrap(), "a"),
        (std::fs::read(guests::FAULTY_B).unwrap(), "b"),
    ];

    // A job every 20 ms for 10 s, five swaps spread over it.
    let dispatcher = {
        let server = server.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            for i in 0..500 {
                tick.tick().await;
                let mut req = DispatchRequest::new(format!("swap-room-{i}"), "swapper");
                req.metadata = Mode::Sleep(100).to_string();
                ids.push(server.dispatch(req));
            }
            ids
        })
    };
    // (when the swap started, when it ended, flavor current after it)
    let mut swaps = vec![(Instant::now(), Instant::now(), "a")];
    for round in 1..=5 {
        tokio::time::sleep(Duration::from_millis(1600)).await;
        let (bytes, name) = &builds[round % 2];
        let started = Instant::now();
        worker
            .handle
            .swap(bytes.clone())
            .await
            .expect("the swap is accepted");
        swaps.push((started, Instant::now(), name));
    }
    let ids = dispatcher.await.unwrap();

    for id in &ids {
        let job = wait_worker_status(&server, id, JobStatus::JsSuccess).await;
        assert_eq!(job.offers.len(), 1, "{id} was offered once and accepted");
        let got = flavor(&job).expect("accepted with a flavor");
        // The version current when the offer was made: unambiguous unless
        // the offer went out while a swap was in progress.
        let sent = job.offers[0].sent_at;
        let before: Vec<_> = swaps.iter().filter(|(_, end, _)| *end <= sent).collect();
        let in_progress = swaps
            .iter()
            .any(|(start, end, _)| *start <= sent && sent < *end);
        if !in_progress {
            assert_eq!(got, before.last().unwrap().2, "{id}");
        }
    }
    let m = worker.handle.metrics();
    assert_eq!(Metrics::get(&m.offers_declined), 0);
    assert_eq!(Metrics::get(&m.jobs_succeeded), 500);
    assert_eq!(Metrics::get(&m.swaps), 5);

    // Old versions are released once idle: only the current one is left.
    let deadline = Instant::now() + WAIT;
    loop {
        let versions = worker.handle.versions();
        if versions.len() == 1 {
            assert!(versions[0].0.current);
            assert_eq!(versions[0].1, 0);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "old versions still loaded: {versions:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.handle.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_jobs_keep_their_version() {
    let server = server().await;
    let worker = start_worker(options(&server, "keeper", 10));
    server.wait_for_workers(1, WAIT).await.unwrap();
    let old_job = dispatch(&server, "keeper", &Mode::Sleep(2000));
    wait_worker_status(&server, &old_job, JobStatus::JsRunning).await;
    let old = worker.handle.current_plugin();
    worker
        .handle
        .swap(std::fs::read(guests::FAULTY_B).unwrap())
        .await
        .unwrap();
    // Both versions are in memory while the old job runs, each with its jobs.
    let versions = worker.handle.versions();
    assert_eq!(versions.len(), 2, "{versions:?}");
    let old_entry = versions
        .iter()
        .find(|(v, _)| v.version.digest == old.digest)
        .unwrap();
    assert!(!old_entry.0.current);
    assert_eq!(old_entry.1, 1);
    // Swapping back while the old version is still in memory reuses it.
    let back = worker
        .handle
        .swap(std::fs::read(guests::FAULTY).unwrap())
        .await
        .unwrap();
    assert!(back.reused);
    assert_eq!(back.new, old);
    let job = wait_worker_status(&server, &old_job, JobStatus::JsSuccess).await;
    assert_eq!(flavor(&job).as_deref(), Some("a"));
    worker.handle.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_swaps_are_refused_and_the_old_version_serves_on() {
    let server = server().await;
    let worker = start_worker(options(&server, "stubborn", 10));
    let registered = server.wait_for_workers(1, WAIT).await.unwrap()[0]
        .id
        .clone();
    let before = worker.handle.current_plugin();
    let not_wasm = worker
        .handle
        .swap(b"definitely not wasm".to_vec())
        .await
        .unwrap_err();
    assert!(
        not_wasm.to_string().contains("not a WebAssembly file"),
        "{not_wasm}"
    );
    let other_world = wat::parse_str("(component)").unwrap();
    let wrong = worker.handle.swap(other_world).await.unwrap_err();
    assert!(
        wrong
            .to_string()
            .contains("not an agent-host `agent` component"),
        "{wrong}"
    );
    assert_eq!(worker.handle.current_plugin(), before);
    assert_eq!(Metrics::get(&worker.handle.metrics().swaps_refused), 2);

    // Still the same registration, still serving.
    let id = dispatch(&server, "stubborn", &Mode::Sleep(10));
    let job = wait_worker_status(&server, &id, JobStatus::JsSuccess).await;
    assert_eq!(job.worker_id.as_deref(), Some(registered.as_str()));
    assert_eq!(server.workers().len(), 1);
    worker.handle.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_plugins_in_one_host_keep_to_their_own_jobs() {
    let server = server().await;
    let a = start_worker(options(&server, "alpha", 20));
    let b = start_worker(options(&server, "beta", 20));
    server.wait_for_workers(2, WAIT).await.unwrap();
    let crashes: Vec<_> = [Mode::Trap, Mode::Panic, Mode::Loop]
        .iter()
        .map(|m| dispatch(&server, "alpha", m))
        .collect();
    let healthy: Vec<_> = (0..5)
        .map(|i| dispatch(&server, "beta", &Mode::Sleep(100 + i)))
        .collect();
    for id in &crashes {
        let job = wait_worker_status(&server, id, JobStatus::JsFailed).await;
        assert_eq!(
            job.worker_id,
            server
                .workers()
                .iter()
                .find(|w| w.agent_name == "alpha")
                .map(|w| w.id.clone())
        );
    }
    for id in &healthy {
        let job = wait_worker_status(&server, id, JobStatus::JsSuccess).await;
        assert_eq!(
            job.worker_id,
            server
                .workers()
                .iter()
                .find(|w| w.agent_name == "beta")
                .map(|w| w.id.clone())
        );
    }
    assert_eq!(Metrics::get(&a.handle.metrics().jobs_failed), 3);
    assert_eq!(Metrics::get(&a.handle.metrics().jobs_started), 3);
    assert_eq!(Metrics::get(&b.handle.metrics().jobs_succeeded), 5);
    assert_eq!(Metrics::get(&b.handle.metrics().jobs_started), 5);
    a.handle.stop();
    b.handle.stop();
}
