//! Every job's CPU time is measured and shown, and the optional per-job
//! CPU quota stops a guest that computes ~9 ms, waits 1 µs, and repeats
//! (never a runaway, never ending on its own).

use std::time::{Duration, Instant};

use agent_host::config::job::CpuQuota;
use agent_host::ops::{OpsState, serve};
use agent_host::room::sim::SimRooms;
use agent_host::{JobLimits, Outcome};
use agent_host_tests::process::get;
use agent_host_tests::worker::{WAIT, dispatch, options, server, start_worker, wait_worker_status};
use agent_host_tests::{faulty_job, guests, load, run_job, runtime};
use fake_livekit::livekit_protocol::JobStatus;
use faulty_mode::Mode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cpu_quota_stops_a_busy_loop_with_tiny_waits() {
    let runtime = runtime(8);
    let plugin = load(&runtime, guests::FAULTY);
    let rooms = SimRooms::default();
    let quota: CpuQuota = "0.5/2s".parse().unwrap();
    let limited = JobLimits {
        cpu_quota: Some(quota),
        ..JobLimits::default()
    };
    // Without a quota, only a wall-clock limit ends it: the CPU slice does
    // not, since it waits every 9 ms.
    let unlimited = JobLimits {
        wall_clock: Some(Duration::from_secs(3)),
        ..JobLimits::default()
    };
    let beside = tokio::spawn({
        let (runtime, plugin, rooms) = (runtime.clone(), plugin.clone(), rooms.clone());
        async move {
            let req = faulty_job("AJ_cpu_beside", Mode::Sleep(2000));
            run_job(&runtime, &plugin, &rooms, req, JobLimits::default()).await
        }
    });
    let free = tokio::spawn({
        let (runtime, plugin, rooms) = (runtime.clone(), plugin.clone(), rooms.clone());
        async move {
            let req = faulty_job("AJ_cpu_free", Mode::CpuBurst);
            run_job(&runtime, &plugin, &rooms, req, unlimited).await
        }
    });
    let started = Instant::now();
    let req = faulty_job("AJ_cpu_burst", Mode::CpuBurst);
    let outcome = tokio::time::timeout(
        Duration::from_secs(60),
        run_job(&runtime, &plugin, &rooms, req, limited),
    )
    .await
    .expect("the quota ends the job");
    assert_eq!(
        outcome,
        Outcome::Failed(
            "CPU quota exceeded: more than 1 s of CPU within 2 s (0.5 of a core over 2 s)".into()
        )
    );
    // It needs at least its 1 s of CPU, and at most a few windows on a
    // loaded 2-core machine.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(30),
        "{took:?}"
    );
    assert_eq!(
        free.await.unwrap(),
        Outcome::Failed("wall-clock limit 3 s exceeded".into())
    );
    assert_eq!(beside.await.unwrap(), Outcome::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_shows_cpu_per_job_and_a_histogram() {
    let server = server().await;
    let mut opts = options(&server, "cpu", 4);
    // Long enough for the job to show CPU time even when it gets a small
    // share of a loaded machine; the job ends by this limit.
    opts.limits.wall_clock = Some(Duration::from_secs(8));
    let worker = start_worker(opts);
    server.wait_for_workers(1, WAIT).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(serve(
        listener,
        OpsState {
            workers: vec![worker.handle.clone()],
            admin_token: None,
        },
    ));
    let busy = dispatch(&server, "cpu", &Mode::CpuBurst);
    wait_worker_status(&server, &busy, JobStatus::JsRunning).await;
    let running = std::time::Instant::now();

    let fetch = |path: &'static str| {
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || get(&addr, path))
    };
    // The busy loop's CPU time shows while it runs: poll until it passes
    // 0.3 s (its share of a loaded machine decides how soon), at most 5 s.
    let (jobs, cpu) = loop {
        let (status, body) = fetch("/worker").await.unwrap();
        assert_eq!(status, 200);
        let info: serde_json::Value = serde_json::from_str(&body).unwrap();
        let jobs = info["jobs"].as_array().expect("a jobs array").clone();
        assert_eq!(jobs.len(), 1, "{body}");
        assert_eq!(jobs[0]["id"], busy.0.as_str());
        let cpu = jobs[0]["cpu_seconds"].as_f64().unwrap();
        if cpu > 0.3 || running.elapsed() > Duration::from_secs(5) {
            break (jobs, cpu);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // One guest runs on one core at most: never more CPU than wall time
    // (plus the moments between its start and the status seen here).
    let wall = running.elapsed().as_secs_f64();
    assert!(
        cpu > 0.3 && cpu <= wall + 0.5,
        "cpu_seconds {cpu} after {wall:.2} s"
    );
    assert!(jobs[0]["host_memory_bytes"].as_u64().is_some());

    wait_worker_status(&server, &busy, JobStatus::JsFailed).await;
    let (_, metrics) = fetch("/metrics").await.unwrap();
    assert!(
        metrics.contains("# TYPE agent_host_job_cpu_seconds histogram"),
        "{metrics}"
    );
    let value = |line: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(line))
            .unwrap_or_else(|| panic!("no `{line}` in {metrics}"))
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(
        value("agent_host_job_cpu_seconds_count{agent_name=\"cpu\"}"),
        1.0
    );
    assert_eq!(
        value("agent_host_job_cpu_seconds_bucket{agent_name=\"cpu\",le=\"0.1\"}"),
        0.0
    );
    assert_eq!(
        value("agent_host_job_cpu_seconds_bucket{agent_name=\"cpu\",le=\"10\"}"),
        1.0
    );
    let sum = value("agent_host_job_cpu_seconds_sum{agent_name=\"cpu\"}");
    assert!(sum > cpu && sum < 8.5, "sum {sum}, earlier {cpu}");
    let (_, body) = fetch("/worker").await.unwrap();
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["jobs"], serde_json::json!([]), "an ended job is gone");
    worker.handle.stop();
}
