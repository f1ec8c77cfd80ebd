//! Host memory held on a guest's behalf is charged to its job: a guest that
//! hoards it through any resource kind fails on its own, with the budget's
//! reason, the jobs beside it succeed, and the process's memory stays
//! within the budget plus a constant.
//!
//! Memory bounds are generous (each hoarding job's 16 MiB budget plus
//! 8 MiB, plus [`SLACK_MIB`] for everything else in the process). Measured
//! on a 2-core machine: 29 MiB of peak growth for the fields and requests
//! hoarders together (220 MiB without the budget), 4 MiB for unread
//! responses, 5 MiB for the event flood (125 MiB without).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use agent_host::room::sim::{SimOutput, SimRooms};
use agent_host::{HttpAllowList, JobLimits, Outcome};
use agent_host_tests::{faulty_job, guests, load, rss_kib, run_job, runtime};
use faulty_mode::Mode;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// The default budget's failure reason for `kind`.
fn over(kind: &str) -> String {
    format!("host memory limit 16 MiB exceeded ({kind})")
}

/// Peak RSS growth allowed besides the hoarding jobs' budgets.
const SLACK_MIB: u64 = 32;

/// Generous bound for any one job here.
const WAIT: Duration = Duration::from_secs(90);

/// Held by each test while it measures: RSS is the whole process's, so the
/// tests of this file take turns.
static MEASURING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The process's peak resident memory while it lives, sampled every 10 ms.
struct PeakRss {
    base: u64,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl PeakRss {
    async fn start() -> Self {
        let turn = MEASURING.lock().await;
        let base = rss_kib();
        let peak = Arc::new(AtomicU64::new(base));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss_kib(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Self {
            base,
            peak,
            stop,
            _turn: turn,
        }
    }

    /// Growth over the start, in MiB (printed); stops sampling.
    fn growth_mib(&self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let growth = self.peak.load(Ordering::Relaxed).saturating_sub(self.base) / 1024;
        eprintln!("peak RSS growth: {growth} MiB");
        growth
    }
}

/// Runs `modes` of `faulty` at once, with 10 sleepers beside them, under
/// `limits`; returns each mode's outcome and the peak RSS growth in MiB.
async fn hoard(modes: &[Mode], limits: JobLimits) -> (Vec<Outcome>, u64) {
    let runtime = runtime(32);
    let plugin = load(&runtime, guests::FAULTY);
    let rooms = SimRooms::default();
    let rss = PeakRss::start().await;
    let mut sleepers = Vec::new();
    for i in 0..10 {
        let (runtime, plugin, rooms) = (runtime.clone(), plugin.clone(), rooms.clone());
        sleepers.push(tokio::spawn(async move {
            let req = faulty_job(&format!("AJ_hm_sleep{i}"), Mode::Sleep(1000));
            run_job(&runtime, &plugin, &rooms, req, JobLimits::default()).await
        }));
    }
    let mut hoarders = Vec::new();
    for (i, mode) in modes.iter().enumerate() {
        let (runtime, plugin, rooms) = (runtime.clone(), plugin.clone(), rooms.clone());
        let (mode, limits) = (mode.clone(), limits.clone());
        hoarders.push(tokio::spawn(async move {
            let req = faulty_job(&format!("AJ_hm_hoard{i}"), mode.clone());
            tokio::time::timeout(WAIT, run_job(&runtime, &plugin, &rooms, req, limits))
                .await
                .unwrap_or_else(|_| panic!("mode {mode} did not end"))
        }));
    }
    let mut outcomes = Vec::new();
    for hoarder in hoarders {
        outcomes.push(hoarder.await.unwrap());
    }
    for sleeper in sleepers {
        assert_eq!(sleeper.await.unwrap(), Outcome::Success, "a job beside");
    }
    (outcomes, rss.growth_mib())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hoarding_http_fields_and_requests_fails_only_that_job() {
    let modes = [Mode::HoardFields, Mode::HoardRequests];
    let (outcomes, growth) = hoard(&modes, JobLimits::default()).await;
    assert_eq!(outcomes[0], Outcome::Failed(over("wasi:http fields")));
    // The request's header set is counted as fields until it moves into
    // the request; whichever grows past the budget is named.
    assert!(
        [
            Outcome::Failed(over("wasi:http requests")),
            Outcome::Failed(over("wasi:http fields"))
        ]
        .contains(&outcomes[1]),
        "{:?}",
        outcomes[1]
    );
    let bound = 2 * (16 + 8) + SLACK_MIB;
    assert!(growth < bound, "RSS grew {growth} MiB, bound {bound} MiB");
}

/// A loopback server that answers every request on a connection with a
/// 4,000,000-byte body, written from one shared buffer as fast as the
/// client reads (a client that does not read holds the writer back).
async fn big_bodies() -> u16 {
    const BODY: usize = 4_000_000;
    static CHUNK: [u8; 64 << 10] = [b'z'; 64 << 10];
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = [0u8; 4096];
                // One read holds the small request of `hoard-responses`.
                if stream.read(&mut head).await.unwrap_or(0) == 0 {
                    return;
                }
                let start = format!("HTTP/1.1 200 OK\r\ncontent-length: {BODY}\r\n\r\n");
                if stream.write_all(start.as_bytes()).await.is_err() {
                    return;
                }
                let mut left = BODY;
                while left > 0 {
                    let n = left.min(CHUNK.len());
                    if stream.write_all(&CHUNK[..n]).await.is_err() {
                        return;
                    }
                    left -= n;
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_response_bodies_fail_the_job_with_bounded_memory() {
    let port = big_bodies().await;
    let limits = JobLimits {
        http_allow: HttpAllowList::parse([format!("127.0.0.1:{port}")], false).unwrap(),
        ..JobLimits::default()
    };
    let modes = [Mode::HoardResponses(format!("127.0.0.1:{port}"))];
    let (outcomes, growth) = hoard(&modes, limits).await;
    // Each response holds its buffers; the request that no longer fits
    // is refused, or the response that no longer fits ends the job.
    assert!(
        [
            Outcome::Failed(over("wasi:http responses")),
            Outcome::Failed(over("wasi:http requests"))
        ]
        .contains(&outcomes[0]),
        "{:?}",
        outcomes[0]
    );
    let bound = 16 + 8 + SLACK_MIB;
    assert!(growth < bound, "RSS grew {growth} MiB, bound {bound} MiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unread_room_events_fails_the_job() {
    let runtime = runtime(4);
    let plugin = load(&runtime, guests::FAULTY);
    let rooms = SimRooms::default();
    let job = faulty_job("AJ_hm_events", Mode::Sleep(60_000));
    let room = rooms.room(&job.room.name);
    let mut outputs = room.subscribe();
    let rss = PeakRss::start().await;
    let running = tokio::spawn({
        let (runtime, plugin, rooms) = (runtime.clone(), plugin.clone(), rooms.clone());
        async move { run_job(&runtime, &plugin, &rooms, job, JobLimits::default()).await }
    });
    let beside = tokio::spawn({
        let (runtime, plugin, rooms) = (runtime.clone(), plugin.clone(), rooms.clone());
        async move {
            let req = faulty_job("AJ_hm_events_beside", Mode::Ok);
            run_job(&runtime, &plugin, &rooms, req, JobLimits::default()).await
        }
    });
    loop {
        match tokio::time::timeout(WAIT, outputs.recv()).await {
            Ok(Some(SimOutput::AgentJoined(_))) => break,
            Ok(Some(_)) => continue,
            other => panic!("the agent never joined: {other:?}"),
        }
    }
    // 1,000 packets of 128 KiB: 125 MiB if nothing counted them, within
    // the sim queue's 1,024 events.
    let payload = vec![7u8; 128 << 10];
    for _ in 0..1000 {
        room.send_data("flooder", Some("flood"), &payload, &[]);
    }
    let outcome = tokio::time::timeout(WAIT, running)
        .await
        .expect("the flooded job ends")
        .unwrap();
    assert_eq!(outcome, Outcome::Failed(over("room events")));
    assert_eq!(beside.await.unwrap(), Outcome::Success);
    let growth = rss.growth_mib();
    let bound = 16 + 8 + SLACK_MIB;
    assert!(growth < bound, "RSS grew {growth} MiB, bound {bound} MiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_audio_beyond_the_budget_is_dropped_not_fatal() {
    let runtime = runtime(2);
    let plugin = load(&runtime, guests::FAULTY);
    let rooms = SimRooms::default();
    let job = faulty_job("AJ_hm_audio", Mode::HoardAudio("alice".to_owned()));
    let room = rooms.room(&job.room.name);
    room.join_identity("alice");
    let mut outputs = room.subscribe();
    // 64 KiB: room for about 60 frames of 10 ms (960 bytes each).
    let limits = JobLimits {
        host_memory_bytes: 64 << 10,
        ..JobLimits::default()
    };
    let running = tokio::spawn({
        let (runtime, plugin, rooms) = (runtime.clone(), plugin.clone(), rooms.clone());
        async move { run_job(&runtime, &plugin, &rooms, job, limits).await }
    });
    let mut texts = Vec::new();
    let mut text = async || loop {
        match tokio::time::timeout(WAIT, outputs.recv()).await {
            Ok(Some(SimOutput::Text { text, .. })) => return text.text,
            Ok(Some(_)) => continue,
            other => panic!("no text from the agent: {other:?}"),
        }
    };
    texts.push(text().await);
    // One second of audio, 100 frames, while the agent reads nothing.
    let format = agent_host::wit::audio::AudioFormat {
        sample_rate: 48_000,
        channels: 1,
    };
    room.speak("alice", format, &vec![100i16; 48_000]);
    texts.push(text().await);
    assert_eq!(running.await.unwrap(), Outcome::Success);
    assert_eq!(texts[0], "subscribed");
    let frames: usize = texts[1]
        .strip_prefix("audio frames: ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{texts:?}"));
    assert!(frames > 0 && frames < 70, "{frames} frames kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_partial_output_lines_stay_bounded() {
    let modes = [Mode::HoardStdout, Mode::HoardStdout];
    let (outcomes, growth) = hoard(&modes, JobLimits::default()).await;
    // 64 MiB without a newline each: the host keeps one cut line.
    assert_eq!(outcomes, [Outcome::Success, Outcome::Success]);
    let bound = SLACK_MIB;
    assert!(growth < bound, "RSS grew {growth} MiB, bound {bound} MiB");
}
