//! Several `agent-host run` processes registered with one fake-livekit,
//! which places jobs as LiveKit's server does (AVAILABLE workers only,
//! weighted by `1 - load`): agent-host adds no dispatcher of its own.
//!
//! * jobs spread over the workers by the load they report, and a worker
//!   killed with SIGKILL loses its own jobs only;
//! * a rolling restart under 50 jobs/s (start a new worker, SIGTERM an old
//!   one, three times) loses no job, and every job gets exactly one final
//!   status, which the server accepted.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use agent_host_tests::guests;
use agent_host_tests::process::{Host, spawn_host};
use agent_host_tests::worker::{WAIT, dispatch, server, wait_worker_status};
use fake_livekit::livekit_protocol::JobStatus;
use fake_livekit::{DispatchOutcome, FakeLiveKit, JobId};
use faulty_mode::Mode;

const AGENT: &str = "fleet";
/// Dispatch rate of the rolling restart: one job every 20 ms.
const PERIOD: Duration = Duration::from_millis(20);
/// Upper bound on the jobs the rolling restart dispatches (15 s at 50/s;
/// it takes about 5 s).
const MAX_JOBS: usize = 750;

/// Starts `agent-host run` (with `extra` flags) and waits until it has
/// registered; returns it and its worker id.
async fn join(server: &FakeLiveKit, extra: &[&str]) -> (Host, String) {
    let known: HashSet<String> = server.workers().into_iter().map(|w| w.id).collect();
    let mut args = vec!["--plugin", guests::FAULTY, "--agent-name", AGENT];
    args.extend_from_slice(extra);
    let host = spawn_host(server, &server.config().api_secret, &args);
    let deadline = Instant::now() + WAIT;
    loop {
        let new = server
            .workers()
            .into_iter()
            .find(|w| w.connected && !known.contains(&w.id));
        if let Some(worker) = new {
            return (host, worker.id);
        }
        assert!(Instant::now() < deadline, "agent-host did not register");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Dispatches `n` jobs doing `mode`, one every [`PERIOD`].
async fn dispatch_paced(server: &FakeLiveKit, n: usize, mode: &Mode) -> Vec<JobId> {
    let mut tick = tokio::time::interval(PERIOD);
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        tick.tick().await;
        ids.push(dispatch(server, AGENT, mode));
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_spread_by_load_and_a_killed_worker_loses_only_its_own() {
    let server = server().await;
    let (mut first, first_id) = join(&server, &[]).await;
    let (_second, second_id) = join(&server, &[]).await;
    // Full (and so never picked) from its third job on: 3 jobs of 50 is
    // load 0.06.
    let (_third, third_id) = join(&server, &["--load-threshold", "0.05"]).await;
    let ids = dispatch_paced(&server, 30, &Mode::Sleep(6000)).await;
    let mut per_worker: HashMap<String, Vec<JobId>> = HashMap::new();
    for id in &ids {
        let job = wait_worker_status(&server, id, JobStatus::JsRunning).await;
        assert_eq!(job.accepted_worker_statuses(), [JobStatus::JsRunning]);
        let worker = job.worker_id.clone().expect("assigned");
        per_worker.entry(worker).or_default().push(id.clone());
    }
    let count = |w: &str| per_worker.get(w).map_or(0, Vec::len);
    println!(
        "jobs per worker: {} / {} / {} (threshold 0.05)",
        count(&first_id),
        count(&second_id),
        count(&third_id)
    );
    assert!(count(&third_id) <= 3, "{per_worker:?}");
    assert!(
        count(&first_id) >= 5 && count(&second_id) >= 5,
        "{per_worker:?}"
    );

    // SIGKILL the first: its jobs are gone (the server forgets them with
    // the connection), every other job ends normally.
    first.child.kill().unwrap();
    for id in per_worker.get(&first_id).into_iter().flatten() {
        let job = server
            .wait_for_job(id, WAIT, "the worker's disconnect", |j| {
                j.worker_disconnected_at.is_some()
            })
            .await
            .unwrap();
        assert_eq!(job.worker_statuses(), [JobStatus::JsRunning], "{id}");
    }
    for worker in [&second_id, &third_id] {
        for id in per_worker.get(worker).into_iter().flatten() {
            let job = wait_worker_status(&server, id, JobStatus::JsSuccess).await;
            assert_eq!(
                job.accepted_worker_statuses(),
                [JobStatus::JsRunning, JobStatus::JsSuccess],
                "{id}"
            );
        }
        assert!(server.worker(worker).unwrap().connected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_under_load_loses_no_job() {
    let server = server().await;
    let mut fleet = Vec::new();
    for _ in 0..3 {
        fleet.push(join(&server, &[]).await);
    }
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let ids = {
        let server = server.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut tick = tokio::time::interval(PERIOD);
            while ids.len() < MAX_JOBS {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => ids.push(dispatch(&server, AGENT, &Mode::Sleep(300))),
                }
            }
            ids
        })
    };
    for round in 0..3 {
        // A second of traffic with the new worker in the pool first.
        let (new, new_id) = join(&server, &[]).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (mut old, old_id) = fleet.remove(0);
        old.signal("TERM");
        let code = tokio::task::spawn_blocking(move || old.wait_exit())
            .await
            .unwrap();
        assert_eq!(
            code,
            Some(0),
            "round {round}: {old_id} did not drain cleanly"
        );
        println!("round {round}: {old_id} drained, {new_id} took over");
        fleet.push((new, new_id));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = stop.send(());
    let ids = ids.await.unwrap();
    assert!(ids.len() >= 150, "only {} jobs dispatched", ids.len());
    for id in &ids {
        let job = wait_worker_status(&server, id, JobStatus::JsSuccess).await;
        assert!(
            matches!(job.outcome, DispatchOutcome::Assigned { .. }),
            "{id}: {:?}",
            job.outcome
        );
        assert_eq!(
            job.accepted_worker_statuses(),
            [JobStatus::JsRunning, JobStatus::JsSuccess],
            "{id}"
        );
        assert!(job.dropped_worker_statuses().is_empty(), "{id}");
    }
    let placed: HashSet<_> = server
        .jobs()
        .iter()
        .filter_map(|j| j.worker_id.clone())
        .collect();
    println!("{} jobs over {} workers", ids.len(), placed.len());
}
