//! Micro-benchmarks of the runtime and the wire, with divan.
//!
//! ```sh
//! cargo bench -p agent-host-tests --bench micro     # full
//! cargo test -p agent-host-tests --bench micro      # each benchmark once, as a smoke run
//! ```
//!
//! They live in `agent-host-tests` rather than `host/` because they need the
//! example guests, which this crate builds (`agent_host_tests::guests`).
//! What each one measures:
//! - `compile`: compiling the `faulty` component with Cranelift (no cache);
//! - `load_cached`: loading it from the on-disk compile cache;
//! - `job_sleep0`: offer (fresh instance, `on-request`) + start + `run` +
//!   end of a `faulty` job that returns at once, in a sim room;
//! - `next_event_round_trip`: a text message into a sim room → the `echo`
//!   guest's `next-event` → its `send-text` → back out of the room;
//! - `encode_update_job` / `decode_assignment`: the protobuf work of the
//!   worker protocol per message (status update out, job assignment in).

use std::sync::{Arc, LazyLock};

use agent_host::room::sim::{SimOutput, SimRooms};
use agent_host::{JobLimits, Outcome, Plugin, Runtime, RuntimeConfig};
use agent_host_tests::{faulty_job, guests, request};
use fake_livekit::livekit_protocol as proto;
use faulty_mode::Mode;
use prost::Message as _;

fn main() {
    divan::main();
}

/// One current-thread tokio runtime for the async benchmarks.
static TOKIO: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
});

/// A runtime with its own compile cache, and `faulty` and `echo` loaded.
struct Loaded {
    runtime: Runtime,
    faulty: Arc<Plugin>,
    echo: Arc<Plugin>,
    faulty_bytes: Vec<u8>,
    _cache: tempfile::TempDir,
}

static LOADED: LazyLock<Loaded> = LazyLock::new(|| {
    let cache = tempfile::tempdir().expect("cache dir");
    let runtime = Runtime::new(RuntimeConfig {
        max_jobs: 16,
        cache_dir: Some(cache.path().to_path_buf()),
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let faulty_bytes = std::fs::read(guests::FAULTY).expect("faulty.wasm");
    let echo_bytes = std::fs::read(guests::ECHO).expect("echo.wasm");
    Loaded {
        faulty: runtime.load_plugin(&faulty_bytes).expect("faulty loads"),
        echo: runtime.load_plugin(&echo_bytes).expect("echo loads"),
        runtime,
        faulty_bytes,
        _cache: cache,
    }
});

#[divan::bench(sample_count = 5, sample_size = 1)]
fn compile(bencher: divan::Bencher) {
    let bytes = std::fs::read(guests::FAULTY).expect("faulty.wasm");
    let runtime = Runtime::new(RuntimeConfig {
        max_jobs: 1,
        cache_dir: None,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    bencher.bench_local(|| runtime.load_plugin(&bytes).expect("compiles"));
}

#[divan::bench(sample_count = 20)]
fn load_cached(bencher: divan::Bencher) {
    let loaded = &*LOADED;
    bencher.bench_local(|| {
        let plugin = loaded
            .runtime
            .load_plugin(&loaded.faulty_bytes)
            .expect("loads");
        assert!(plugin.from_cache());
        plugin
    });
}

#[divan::bench(sample_count = 50)]
fn job_sleep0(bencher: divan::Bencher) {
    let loaded = &*LOADED;
    let rooms = Arc::new(SimRooms::default());
    bencher.bench_local(|| {
        TOKIO.block_on(async {
            let offer = loaded
                .runtime
                .offer(
                    &loaded.faulty,
                    faulty_job("AJ_micro", Mode::Sleep(0)),
                    JobLimits::default(),
                )
                .await
                .expect("offer answered");
            let outcome = offer
                .job
                .expect("accepted")
                .start(rooms.clone(), String::new(), String::new())
                .outcome()
                .await;
            assert_eq!(outcome, Outcome::Success);
        })
    });
}

#[divan::bench(sample_count = 50)]
fn next_event_round_trip(bencher: divan::Bencher) {
    let loaded = &*LOADED;
    let rooms = SimRooms::default();
    let room = rooms.room("room-AJ_echo");
    let mut out = room.subscribe();
    let job = TOKIO.block_on(async {
        let offer = loaded
            .runtime
            .offer(&loaded.echo, request("AJ_echo", ""), JobLimits::default())
            .await
            .expect("offer answered");
        offer
            .job
            .expect("accepted")
            .start(Arc::new(rooms.clone()), String::new(), String::new())
    });
    TOKIO.block_on(async {
        // The job's session must be in the room before anything is said.
        while !matches!(
            out.recv().await.expect("room open"),
            SimOutput::AgentJoined(_)
        ) {}
    });
    room.join_identity("user");
    bencher.bench_local(|| {
        TOKIO.block_on(async {
            room.send_text("user", "chat", "ping", &[]);
            loop {
                match out.recv().await.expect("room open") {
                    SimOutput::Text { .. } => break,
                    _ => continue,
                }
            }
        })
    });
    room.close();
    TOKIO.block_on(job.outcome());
}

fn job() -> proto::Job {
    proto::Job {
        id: "AJ_abcdefghijkl".into(),
        dispatch_id: "AD_abcdefghijkl".into(),
        room: Some(proto::Room {
            sid: "RM_abcdefghijkl".into(),
            name: "room-bench".into(),
            ..Default::default()
        }),
        agent_name: "bench".into(),
        metadata: Mode::Sleep(600_000).to_string(),
        ..Default::default()
    }
}

#[divan::bench]
fn encode_update_job() -> Vec<u8> {
    let message = proto::WorkerMessage {
        message: Some(proto::worker_message::Message::UpdateJob(
            proto::UpdateJobStatus {
                job_id: divan::black_box("AJ_abcdefghijkl").to_string(),
                status: proto::JobStatus::JsRunning as i32,
                error: String::new(),
            },
        )),
    };
    message.encode_to_vec()
}

#[divan::bench]
fn decode_assignment(bencher: divan::Bencher) {
    let frame = proto::ServerMessage {
        message: Some(proto::server_message::Message::Assignment(
            proto::JobAssignment {
                job: Some(job()),
                url: None,
                // A participant token is a JWT of a few hundred bytes.
                token: "e".repeat(400),
            },
        )),
    }
    .encode_to_vec();
    bencher.bench(|| {
        agent_host::worker::decode_server_frame(divan::black_box(&frame)).expect("decodes")
    });
}
