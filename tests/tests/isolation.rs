//! Crash isolation: each fault mode of `faulty` ends its own job with the
//! right reason, while healthy jobs in the same engine carry on.

use std::time::{Duration, Instant};

use agent_host::room::sim::SimRooms;
use agent_host::{JobLimits, Outcome};
use agent_host_tests::{faulty_job, guests, load, run_job, runtime, start_sim};
use faulty_mode::Mode;

/// (mode, expected failure reason, how long the job may take at most:
/// its limit plus a generous margin for a loaded 2-core machine).
fn faults() -> [(Mode, &'static str, Duration); 6] {
    [
        (
            Mode::Trap,
            "trap: unreachable code reached (the guest aborted)",
            Duration::from_secs(10),
        ),
        (
            Mode::Panic,
            "guest panicked: faulty: asked to panic",
            Duration::from_secs(10),
        ),
        (
            Mode::Loop,
            "runaway: 1 s without yielding to the host",
            Duration::from_secs(15),
        ),
        (
            Mode::Oom,
            "memory limit 64 MiB exceeded",
            Duration::from_secs(15),
        ),
        (
            Mode::Stack,
            "stack overflow (unbounded recursion in the guest?)",
            Duration::from_secs(10),
        ),
        (
            Mode::Fail("the agent gave up".to_owned()),
            "the agent gave up",
            Duration::from_secs(10),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_fails_its_own_job_while_sleepers_succeed() {
    let runtime = runtime(64);
    let plugin = load(&runtime, guests::FAULTY);
    let rooms = SimRooms::default();

    let mut sleepers = Vec::new();
    for i in 0..20 {
        let (runtime, plugin, rooms) = (runtime.clone(), plugin.clone(), rooms.clone());
        sleepers.push(tokio::spawn(async move {
            let req = faulty_job(&format!("AJ_sleep{i}"), Mode::Sleep(500));
            run_job(&runtime, &plugin, &rooms, req, JobLimits::default()).await
        }));
    }
    let mut faulty = Vec::new();
    for (i, (mode, reason, within)) in faults().into_iter().enumerate() {
        let (runtime, plugin, rooms) = (runtime.clone(), plugin.clone(), rooms.clone());
        faulty.push(tokio::spawn(async move {
            let started = Instant::now();
            let req = faulty_job(&format!("AJ_fault{i}"), mode.clone());
            let outcome = run_job(&runtime, &plugin, &rooms, req, JobLimits::default()).await;
            (mode, reason, within, outcome, started.elapsed())
        }));
    }

    for fault in faulty {
        let (mode, reason, within, outcome, took) = fault.await.unwrap();
        assert_eq!(outcome, Outcome::Failed(reason.to_string()), "mode {mode}");
        assert!(took < within, "mode {mode} took {took:?}, limit {within:?}");
    }
    for sleeper in sleepers {
        assert_eq!(sleeper.await.unwrap(), Outcome::Success);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_configurable() {
    let runtime = runtime(4);
    let plugin = load(&runtime, guests::FAULTY);
    let rooms = SimRooms::default();
    let limits = JobLimits {
        memory_bytes: 16 << 20,
        cpu_slice: std::time::Duration::from_millis(200),
        wall_clock: Some(Duration::from_millis(300)),
        ..JobLimits::default()
    };
    let run = |id: &str, mode: Mode| {
        run_job(
            &runtime,
            &plugin,
            &rooms,
            faulty_job(id, mode),
            limits.clone(),
        )
    };
    assert_eq!(
        run("AJ_oom", Mode::Oom).await,
        Outcome::Failed("memory limit 16 MiB exceeded".into())
    );
    assert_eq!(
        run("AJ_loop", Mode::Loop).await,
        Outcome::Failed("runaway: 200 ms without yielding to the host".into())
    );
    assert_eq!(
        run("AJ_slow", Mode::Sleep(5000)).await,
        Outcome::Failed("wall-clock limit 300 ms exceeded".into())
    );
    assert_eq!(run("AJ_ok", Mode::Sleep(10)).await, Outcome::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_job_is_stopped_after_its_grace_period() {
    let runtime = runtime(4);
    let plugin = load(&runtime, guests::FAULTY);
    let rooms = SimRooms::default();
    let limits = JobLimits {
        termination_grace: Duration::from_millis(200),
        ..JobLimits::default()
    };
    let offer = runtime
        .offer(&plugin, faulty_job("AJ_term", Mode::Sleep(60_000)), limits)
        .await
        .unwrap();
    let handle = start_sim(offer.job.unwrap(), &rooms);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    handle.terminate();
    assert_eq!(handle.outcome().await, Outcome::Terminated);
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// A job whose room session ended and that keeps running is stopped after
/// the termination grace, as a terminated one is: whether its guest was
/// told (`closed(room-closed)`) and ignored it, or never reads events at
/// all (a long `sleep`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_ignores_its_room_closing_is_stopped_after_its_grace_period() {
    let runtime = runtime(4);
    let plugin = load(&runtime, guests::FAULTY);
    let rooms = SimRooms::default();
    let grace = Duration::from_millis(300);
    let limits = JobLimits {
        termination_grace: grace,
        ..JobLimits::default()
    };
    for (id, mode) in [
        ("AJ_ignore", Mode::IgnoreClosed),
        ("AJ_deaf", Mode::Sleep(600_000)),
    ] {
        let request = faulty_job(id, mode.clone());
        let room = rooms.room(&request.room.name);
        let offer = runtime
            .offer(&plugin, request, limits.clone())
            .await
            .unwrap();
        let handle = start_sim(offer.job.unwrap(), &rooms);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!handle.is_finished(), "{mode}");
        let closed = Instant::now();
        room.close();
        let outcome = tokio::time::timeout(Duration::from_secs(30), handle.outcome())
            .await
            .unwrap_or_else(|_| panic!("the host ends a job whose room closed ({mode})"));
        assert_eq!(outcome, Outcome::Terminated, "{mode}");
        assert!(
            closed.elapsed() >= grace,
            "{mode}: stopped before its grace period"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guest_decides_on_offers() {
    use agent_host::wit::Decision;
    let runtime = runtime(4);
    let plugin = load(&runtime, guests::FAULTY);
    let offer = runtime
        .offer(
            &plugin,
            faulty_job("AJ_r", Mode::Reject),
            JobLimits::default(),
        )
        .await
        .unwrap();
    assert!(matches!(offer.decision, Decision::Reject));
    assert!(offer.job.is_none());
    let offer = runtime
        .offer(
            &plugin,
            faulty_job("AJ_rt", Mode::RejectTerminate),
            JobLimits::default(),
        )
        .await
        .unwrap();
    assert!(matches!(offer.decision, Decision::RejectAndTerminate));
    let offer = runtime
        .offer(&plugin, faulty_job("AJ_a", Mode::Ok), JobLimits::default())
        .await
        .unwrap();
    assert!(matches!(offer.decision, Decision::Accept(_)));
    assert_eq!(offer.job.unwrap().info().identity, "agent-AJ_a");
}
