//! Network faults between the worker and the server: a cut connection, a
//! stalled (black-holed) one, a slow one. The worker notices, reconnects,
//! and every job status arrives exactly once, with no job lost.

use std::time::{Duration, Instant};

use agent_host::worker::Metrics;
use agent_host_tests::proxy::FaultProxy;
use agent_host_tests::worker::{WAIT, dispatch, options, server, start_worker, wait_worker_status};
use fake_livekit::livekit_protocol::JobStatus;
use fake_livekit::{FakeLiveKit, JobId};
use faulty_mode::Mode;

/// Every job reported RUNNING once, then SUCCESS once, and nothing else;
/// the server accepted each status unless it came after the connection the
/// job was assigned on dropped (the open-source server forgets the jobs
/// of a lost connection).
async fn assert_each_reported_once(server: &FakeLiveKit, ids: &[JobId]) {
    for id in ids {
        let job = wait_worker_status(server, id, JobStatus::JsSuccess).await;
        assert_eq!(
            job.worker_statuses(),
            vec![JobStatus::JsRunning, JobStatus::JsSuccess],
            "{id}"
        );
        for change in &job.status_history {
            let after_drop = job.worker_disconnected_at.is_some_and(|at| change.at >= at);
            assert_eq!(change.accepted, !after_drop, "{id}: {change:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_connection_is_noticed_within_the_keepalive_window() {
    let server = server().await;
    let proxy = FaultProxy::start(server.addr()).await;
    let mut opts = options(&server, "stalled", 20);
    opts.url = proxy.url();
    opts.ping_interval = Duration::from_millis(300);
    opts.ping_timeout = Duration::from_millis(300);
    let worker = start_worker(opts);
    server.wait_for_workers(1, WAIT).await.unwrap();
    let ids: Vec<JobId> = (0..5)
        .map(|_| dispatch(&server, "stalled", &Mode::Sleep(1500)))
        .collect();
    for id in &ids {
        wait_worker_status(&server, id, JobStatus::JsRunning).await;
    }

    proxy.stall();
    let stalled_at = Instant::now();
    // The worker gives up on the silent connection and registers anew.
    server
        .wait_for_message(0, WAIT, "second registration", |m| {
            matches!(&m.dir, fake_livekit::Direction::Inbound(msg) if matches!(msg.message, Some(fake_livekit::livekit_protocol::worker_message::Message::Register(_))))
                && m.connection > 1
        })
        .await
        .unwrap();
    let noticed = stalled_at.elapsed();
    // ping interval + timeout, one more interval for the check, and slack
    // for a loaded machine.
    assert!(noticed < Duration::from_secs(5), "took {noticed:?}");
    // The black-holed connection dies (as TCP eventually would).
    proxy.cut();
    assert_each_reported_once(&server, &ids).await;
    assert!(Metrics::get(&worker.handle.metrics().reconnects) >= 1);
    worker.handle.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_and_slow_connections_lose_no_status() {
    let server = server().await;
    let proxy = FaultProxy::start(server.addr()).await;
    let mut opts = options(&server, "bumpy", 20);
    opts.url = proxy.url();
    let worker = start_worker(opts);
    server.wait_for_workers(1, WAIT).await.unwrap();

    // Cut while jobs run: they finish, their statuses arrive over the next connection.
    let first: Vec<JobId> = (0..5)
        .map(|_| dispatch(&server, "bumpy", &Mode::Sleep(1000)))
        .collect();
    for id in &first {
        wait_worker_status(&server, id, JobStatus::JsRunning).await;
    }
    proxy.cut();
    assert_each_reported_once(&server, &first).await;

    // A slow path: every chunk waits 100 ms; offers, assignments and
    // statuses still go through (the server waits 3 s for an answer).
    server.wait_for_workers(1, WAIT).await.unwrap();
    proxy.delay(Duration::from_millis(100));
    let second: Vec<JobId> = (0..3)
        .map(|_| dispatch(&server, "bumpy", &Mode::Sleep(200)))
        .collect();
    assert_each_reported_once(&server, &second).await;
    assert_eq!(Metrics::get(&worker.handle.metrics().jobs_succeeded), 8);
    assert_eq!(Metrics::get(&worker.handle.metrics().jobs_failed), 0);
    worker.handle.stop();
}
