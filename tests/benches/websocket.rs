//! Outbound WebSocket figures, printed as a table.
//!
//! ```sh
//! cargo bench -p agent-host-tests --bench websocket    # full size
//! cargo test -p agent-host-tests --bench websocket     # small, as a smoke run
//! ```
//!
//! Measures, with the `faulty` guest on the raw `websocket` import against
//! the loopback servers of `agent_host_tests::websocket`, in sim rooms:
//! - messages per second per job: `websocket-echo` round trips (guest →
//!   host → loopback echo server → host → guest, up to a buffer's worth in
//!   flight), for one job and for four at once;
//! - host memory per open WebSocket: what a `websocket-hoard` job has
//!   charged to its budget while it holds its sockets, divided by their
//!   number, idle (the echo server sends nothing) and with every inbox
//!   full (the flood server), and, idle, the process's RSS growth per
//!   socket meanwhile (the job's instance included).

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_host::room::sim::{SimOutput, SimRooms};
use agent_host::{HttpAllowList, JobLimits, Outcome, Plugin, Runtime, RuntimeConfig};
use agent_host_tests::{faulty_job, guests, rss_kib, websocket};
use faulty_mode::Mode;

fn allowing(port: u16) -> JobLimits {
    JobLimits {
        http_allow: HttpAllowList::parse([format!("127.0.0.1:{port}")], false).unwrap(),
        ..JobLimits::default()
    }
}

/// Runs `jobs` echo jobs of `count` messages at once; each job's rate.
async fn echo_rate(
    runtime: &Runtime,
    plugin: &Arc<Plugin>,
    server: &websocket::Server,
    jobs: usize,
    count: u32,
) -> f64 {
    let rooms = Arc::new(SimRooms::default());
    let mut running = Vec::new();
    let started = Instant::now();
    for i in 0..jobs {
        let mode = Mode::WebsocketEcho {
            count,
            url: server.url("/echo"),
        };
        let offer = runtime
            .offer(
                plugin,
                faulty_job(&format!("AJ_ws_bench{i}"), mode),
                allowing(server.port),
            )
            .await
            .unwrap();
        let handle = offer
            .job
            .unwrap()
            .start(rooms.clone(), String::new(), String::new());
        running.push(tokio::spawn(handle.outcome()));
    }
    for job in running {
        assert_eq!(job.await.unwrap(), Outcome::Success);
    }
    f64::from(count) / started.elapsed().as_secs_f64()
}

/// Host memory per socket of a `websocket-hoard` job holding up to `cap`
/// sockets to `server`, and the RSS growth per socket, in KiB.
async fn per_socket(
    runtime: &Runtime,
    plugin: &Arc<Plugin>,
    server: &websocket::Server,
    cap: u32,
) -> (u64, u64) {
    let rooms = SimRooms::default();
    let mode = Mode::WebsocketHoard(server.url("/hoard"));
    let request = faulty_job("AJ_ws_bench_hoard", mode);
    let mut outputs = rooms.room(&request.room.name).subscribe();
    let limits = JobLimits {
        max_websockets: cap,
        ..allowing(server.port)
    };
    let base = rss_kib();
    let offer = runtime.offer(plugin, request, limits).await.unwrap();
    let handle = offer
        .job
        .unwrap()
        .start(Arc::new(rooms.clone()), String::new(), String::new());
    let usage = handle.usage();
    // The guest reads nothing for 2 s once it holds every socket; sample
    // then, with the inboxes as full as the server makes them.
    let (mut held, mut rss) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while server
        .seen
        .accepted
        .load(std::sync::atomic::Ordering::Relaxed)
        < u64::from(cap)
    {
        assert!(Instant::now() < deadline, "the hoarder opened its sockets");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        held = held.max(usage.host_memory());
        rss = rss.max(rss_kib());
    }
    loop {
        match outputs.recv().await.unwrap() {
            SimOutput::Text { .. } => break,
            _ => continue,
        }
    }
    assert_eq!(handle.outcome().await, Outcome::Success);
    (
        held / 1024 / u64::from(cap),
        rss.saturating_sub(base) / u64::from(cap),
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --bench websocket` does not.
    let quick = !std::env::args().any(|a| a == "--bench");
    let (count, runs) = if quick { (1000, 1) } else { (50_000, 3) };
    let bytes = std::fs::read(guests::FAULTY).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        max_jobs: 8,
        cache_dir: Some(cache.path().to_path_buf()),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let plugin = runtime.load_plugin(&bytes).unwrap();
    let echo = websocket::echo().await;
    println!("| figure | value |\n|---|---|");
    for jobs in [1, 4] {
        let mut rates = Vec::new();
        for _ in 0..runs {
            rates.push(echo_rate(&runtime, &plugin, &echo, jobs, count).await);
        }
        rates.sort_by(f64::total_cmp);
        println!(
            "| echo round trips per second per job, {jobs} job(s) at once, {count} messages each (median of {runs}) | {:.0} |",
            rates[rates.len() / 2]
        );
    }
    let cap = 32;
    let idle = websocket::echo().await;
    let (host, rss) = per_socket(&runtime, &plugin, &idle, cap).await;
    println!("| host memory charged per open WebSocket, idle ({cap} sockets) | {host} KiB |");
    println!("| process RSS growth per open WebSocket, idle, the job's own included | {rss} KiB |");
    let cap = 8;
    let flood = websocket::flood(100_000, 16 << 10).await;
    // RSS is left out here: the heap freed by the runs before is reused.
    let (host, _) = per_socket(&runtime, &plugin, &flood, cap).await;
    println!(
        "| host memory charged per open WebSocket, inbox full of 16 KiB messages ({cap} sockets) | {host} KiB |"
    );
}
