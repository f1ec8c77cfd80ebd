//! Voice density: N concurrent voice conversations on one host, each a
//! participant of the WebRTC double (`webrtc-double`) speaking to its agent
//! at 50 frames a second, against the fake providers
//! (`agent_host_tests::fake_openai`), for agent-host running
//! `examples/voice` and, side by side in the same run and double, the
//! official Python worker running `tests/conformance/voice_agent.py`
//! (livekit-agents' `AgentSession`, Silero VAD, the OpenAI plugin).
//!
//! ```text
//! cargo bench -p agent-host-tests --bench voice   # N = 10, 50, 100, 200 (Python: 1, 2, 5, 10, ...)
//! cargo test -p agent-host-tests --bench voice    # smoke: N = 2 agent-host, N = 1 Python, one exchange
//! cargo bench -p agent-host-tests --bench voice -- --parrot   # agent-host runs `examples/parrot` instead
//! ```
//!
//! `--parrot` measures agent-host's audio path alone: `parrot` repeats what
//! it heard, with no provider in the loop (its "reply latency" is its own
//! end-of-phrase wait); the table labels it.
//!
//! It re-runs itself inside a private network namespace (libwebrtc ignores
//! loopback; see `agent_host_tests::netns`), where fake-livekit dispatches
//! one job per room to the worker under test, whose agents join the
//! double's rooms. In each room a user ([`Voice::Speech`], a recorded
//! phrase of 1.9 s that both energy and neural voice-activity detectors
//! hear) speaks, then sends silence for [`TURN_GAP`] while the agent
//! answers: the fake transcribes it, streams [`REPLY`] and speaks it as a
//! tone after [`TTS_DELAY`]. Conversations start spread over one turn, so
//! the load is steady. The first exchange is a warm-up (the user repeats
//! the phrase, [`WARMUP_TRIES`] times at most, until the agent answers: the
//! first frames can be lost while a subscription starts); the next ones
//! are measured.
//!
//! Per side and N, over the measured exchanges:
//! - **CPU per conversation**: CPU time of the worker (agent-host: its
//!   process; Python: its process group, the job processes included) over
//!   the measured window, as % of one core, / N.
//! - **memory per conversation**: PSS of the same processes once every
//!   conversation runs, less before the first job, / N.
//! - **pacing p99**: the 99th percentile of the inter-arrival time of the
//!   agent's RTP packets at the double, per track, between consecutive
//!   packets of speech (audio level of at least -[`LOUD_LEVEL`] dBov; gaps over
//!   [`TALKSPURT_GAP`] are pauses between replies, not pacing).
//! - **reply latency**: end of the user's speech to the agent's first
//!   packet of speech at the double, less the scripted [`TTS_DELAY`]; it
//!   includes the agent's end-of-turn wait.
//!
//! A side stops growing N when its pacing p99 passes [`PACING_LIMIT`] or
//! more than [`MAX_MISSING`] of its replies do not arrive (the machine no
//! longer keeps real time for it).
//! The smoke run fails if any reply does not arrive (the Python side gets
//! one fresh try first: it is the reference, not the code under test).

// Shared with the e2e bench, which uses the rest of it.
#[allow(dead_code)]
#[path = "e2e/procfs.rs"]
mod procfs;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use agent_host_capability::{Capability, require};
use agent_host_tests::fake_openai::{FakeOpenAi, Script};
use agent_host_tests::speech_script::SpeechScript;
use agent_host_tests::{agent_host_command, guests, netns, percentile, workspace_root};
use fake_livekit::python::{PyWorker, print_log_tail};
use fake_livekit::{Config, DispatchRequest, FakeLiveKit};
use webrtc_double::{Arrival, Double, Room, Voice};

const KEY: &str = "devkey";
const SECRET: &str = "secret";
/// What the fake LLM answers, streamed word by word: 28 characters, so
/// 1.1 s of tone at the fake's 40 ms a character.
const REPLY: &str = "It is sunny and warm today.";
/// The fake text-to-speech's scripted wait before its first byte: the
/// provider latency subtracted from the reply latency.
const TTS_DELAY: Duration = Duration::from_millis(200);
/// How long the user speaks: the recorded phrase once.
const SPEECH: Duration = Duration::from_millis(1900);
/// The user's silence after speaking, while the agent answers: room for
/// either side's end-of-turn wait (Python: Silero's 0.55 s plus 0.5 s of
/// endpointing), the reply and its audio.
const TURN_GAP: Duration = Duration::from_secs(5);
/// How often the warm-up exchange repeats the phrase at most.
const WARMUP_TRIES: usize = 3;
/// Packets at or above -40 dBov (their `ssrc-audio-level`) are speech: the
/// fake's tone is near -15, silence 127 below. Payload sizes cannot tell:
/// the Python worker's encoder sends both at about 50 bytes.
const LOUD_LEVEL: u8 = 40;
/// Gaps between packets of speech longer than this are pauses between
/// replies, not pacing.
const TALKSPURT_GAP: Duration = Duration::from_secs(1);
/// Pacing p99 beyond which a side is no longer real time.
const PACING_LIMIT: Duration = Duration::from_millis(40);
/// Share of replies that may go missing before a side counts as no
/// longer keeping up (one lost turn in ten: a subscription that started
/// late, not a machine out of time).
const MAX_MISSING: f64 = 0.1;
/// Bound for anything one step waits for.
const WAIT: Duration = Duration::from_secs(60);

/// What one run sizes.
struct Plan {
    agent_host: Vec<usize>,
    python: Vec<usize>,
    measured_exchanges: usize,
    /// Whether a missing reply fails the run (the smoke run) rather than
    /// ending the side's sweep.
    strict: bool,
    /// agent-host runs `examples/parrot` instead of `examples/voice`.
    parrot: bool,
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --bench voice` does not.
    let full = std::env::args().any(|a| a == "--bench");
    let parrot = std::env::args().any(|a| a == "--parrot");
    if !netns::inside() {
        if !cfg!(all(has_netns, has_livekit_lib)) {
            println!(
                "voice bench skipped: needs a private network namespace (run as root) and \
                 LiveKit's client library (run `agent-host setup`)"
            );
            return;
        }
        let args: Vec<&str> = [full.then_some("--bench"), parrot.then_some("--parrot")]
            .into_iter()
            .flatten()
            .collect();
        let status = netns::exec_inside(&args);
        assert!(
            status.success(),
            "the voice bench failed inside the namespace: {status}"
        );
        return;
    }
    let python = cfg!(has_python_worker).then(python);
    let plan = if full {
        Plan {
            agent_host: vec![10, 50, 100, 200],
            python: vec![1, 2, 5, 10, 20],
            measured_exchanges: 3,
            strict: false,
            parrot,
        }
    } else {
        Plan {
            agent_host: vec![2],
            python: vec![1],
            measured_exchanges: 1,
            strict: true,
            parrot,
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run(plan, python));
}

/// The venv's Python (`tests/conformance/setup.sh`), as the e2e bench finds it.
fn python() -> PathBuf {
    require(Capability::PythonWorker)
}

/// The figures of one side at one N.
struct Row {
    side: &'static str,
    n: usize,
    cpu_per_conversation: f64,
    kib_per_conversation: f64,
    pacing_p99: Option<Duration>,
    replies: Vec<Duration>,
    missing: usize,
}

impl Row {
    /// Whether the side kept real time: pacing within [`PACING_LIMIT`] and
    /// at most [`MAX_MISSING`] of the replies (warm-ups included) missing.
    fn real_time(&self, exchanges: usize) -> bool {
        let expected = self.n * (exchanges + 1);
        let missing_ok = self.missing as f64 <= expected as f64 * MAX_MISSING;
        missing_ok && self.pacing_p99.is_some_and(|p| p <= PACING_LIMIT)
    }
}

async fn run(plan: Plan, python: Option<PathBuf>) {
    let double = Double::start(SocketAddr::new(netns::DOUBLE_IP, 0), KEY, SECRET)
        .await
        .expect("starting the double");
    let server = FakeLiveKit::start(Config {
        room_url: Some(double.url()),
        ..Config::default()
    })
    .await
    .expect("starting fake-livekit");
    let speech = SpeechScript {
        transcripts: vec!["what is the weather like today".into()],
        first_byte_delay: TTS_DELAY,
        ..SpeechScript::default()
    };
    let words: Vec<String> = REPLY.split_inclusive(' ').map(str::to_owned).collect();
    let chat = Script::Stream {
        deltas: words,
        hold_after: None,
    };
    let fake = FakeOpenAi::start_voice(chat, speech).await;
    let mut rows = Vec::new();
    for &n in &plan.agent_host {
        let row = agent_host_side(&double, &server, &fake, n, &plan).await;
        provider_calls(&fake);
        let go_on = row.real_time(plan.measured_exchanges);
        print_row(&row);
        rows.push(row);
        if !go_on {
            break;
        }
    }
    if let Some(python) = python {
        for &n in &plan.python {
            let mut row = python_side(&double, &server, &fake, &python, n, 0, &plan).await;
            if plan.strict && row.missing > 0 {
                // The official worker is the reference here, not the code
                // under test: one fresh try before its miss fails the
                // smoke run (its log is printed above).
                println!(
                    "python N={n}: {} replies missing, trying once more",
                    row.missing
                );
                row = python_side(&double, &server, &fake, &python, n, 1, &plan).await;
            }
            provider_calls(&fake);
            let go_on = row.real_time(plan.measured_exchanges);
            print_row(&row);
            rows.push(row);
            if !go_on {
                break;
            }
        }
    } else {
        println!("python side skipped: run tests/conformance/setup.sh and set AGENT_HOST_PYTHON");
    }
    print_table(&rows);
    if plan.strict {
        for row in &rows {
            assert_eq!(
                row.missing, 0,
                "{} at N={}: replies did not arrive",
                row.side, row.n
            );
        }
    }
}

/// Prints how many requests the fake provider answered so far, by kind.
fn provider_calls(fake: &FakeOpenAi) {
    let chats = fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .count();
    println!(
        "  provider so far: {} transcriptions, {chats} completions, {} speeches",
        fake.transcriptions().len(),
        fake.speeches().len()
    );
}

/// A worker under test: its processes, for CPU and memory.
trait Worker {
    /// The processes to measure, now.
    fn pids(&self) -> Vec<u32>;
    /// Their memory, now.
    fn memory(&self) -> procfs::Memory;
}

/// `agent-host run` serving `examples/voice`; killed when dropped.
struct AgentHost(Child);

impl Worker for AgentHost {
    fn pids(&self) -> Vec<u32> {
        vec![self.0.id()]
    }

    fn memory(&self) -> procfs::Memory {
        procfs::memory(self.0.id())
    }
}

impl Drop for AgentHost {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Worker for PyWorker {
    fn pids(&self) -> Vec<u32> {
        procfs::group(self.pid())
    }

    fn memory(&self) -> procfs::Memory {
        procfs::group_memory(self.pid())
    }
}

/// The job metadata of `examples/voice` pointed at `fake`.
fn voice_metadata(fake: &FakeOpenAi) -> String {
    serde_json::json!({
        "base_url": format!("{}/v1", fake.url()),
        "llm_model": "test-model",
        "stt_model": "whisper-1",
        "tts_model": "tts-1",
        "voice": "alloy",
        "instructions": "You are a helpful voice assistant.",
    })
    .to_string()
}

async fn agent_host_side(
    double: &Double,
    server: &FakeLiveKit,
    fake: &FakeOpenAi,
    n: usize,
    plan: &Plan,
) -> Row {
    let agent = format!("voice-ah-{n}");
    let (side, guest) = match plan.parrot {
        true => ("agent-host (parrot)", guests::PARROT),
        false => ("agent-host", guests::VOICE),
    };
    let lib = require(Capability::LivekitLib);
    let allow = format!("127.0.0.1:{}", fake.port());
    // The host holds the key (from its environment); the guest never sees it.
    let credential = format!("{allow}=Authorization: Bearer {{env:VOICE_BENCH_KEY}}");
    let child = agent_host_command()
        .args(["run", "--url", &server.url()])
        .args(["--api-key", KEY, "--api-secret", SECRET])
        .args(["--agent-name", &agent, "--plugin", guest])
        .args(["--http-host", "127.0.0.1", "--http-port", "0"])
        // The benchmark sizes the work itself: every job is taken.
        .args(["--max-jobs", &(n + 2).to_string(), "--load-threshold", "2"])
        .arg("--livekit-lib")
        .arg(&lib)
        .args(["--allow-http", &allow, "--credential", &credential])
        .env("VOICE_BENCH_KEY", "fake-key")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("starting agent-host");
    let worker = AgentHost(child);
    let metadata = voice_metadata(fake);
    measure(side, &worker, double, server, &agent, &metadata, n, plan).await
}

async fn python_side(
    double: &Double,
    server: &FakeLiveKit,
    fake: &FakeOpenAi,
    python: &Path,
    n: usize,
    attempt: usize,
    plan: &Plan,
) -> Row {
    // A fresh name per attempt: a worker never reuses an earlier one's rooms.
    let agent = match attempt {
        0 => format!("voice-py-{n}"),
        _ => format!("voice-py-{n}-retry{attempt}"),
    };
    let script = workspace_root().join("tests/conformance/voice_agent.py");
    let url = format!("{}/v1", fake.url());
    // One prewarmed job process per conversation, so no job waits for one.
    let idle = n.to_string();
    let env = [
        ("VOICE_OPENAI_URL", url.as_str()),
        ("VOICE_IDLE_PROCESSES", &idle),
    ];
    let worker = PyWorker::spawn_script(python, &script, server, &agent, &env);
    let row = measure("python", &worker, double, server, &agent, "", n, plan).await;
    if row.missing > 0 {
        // Why the official worker did not answer is in its own log.
        print_log_tail("python worker", worker.log_path());
    }
    row
}

/// Runs `n` conversations on `worker` (registered as `agent`) and measures.
#[allow(clippy::too_many_arguments)]
async fn measure(
    side: &'static str,
    worker: &impl Worker,
    double: &Double,
    server: &FakeLiveKit,
    agent: &str,
    metadata: &str,
    n: usize,
    plan: &Plan,
) -> Row {
    let registered = server
        .workers()
        .iter()
        .filter(|w| w.agent_name == agent)
        .count();
    assert_eq!(
        registered, 0,
        "a worker named {agent} is already registered"
    );
    wait_for_worker(server, agent, n).await;
    // Before any job process: a conversation's memory includes its share
    // of them (Python runs each job in a process of its own).
    let before = worker.memory();
    // Python prewarms its job processes after registering (a second or
    // two each here): let them start before the first job.
    let settle = match side {
        "python" => Duration::from_secs(5) + Duration::from_millis(1500) * n as u32,
        _ => Duration::from_secs(1),
    };
    tokio::time::sleep(settle).await;
    let turn = SPEECH + TURN_GAP;
    let started = Instant::now();
    let conversations: Vec<_> = (0..n)
        .map(|i| {
            let room_name = format!("{agent}-{i}");
            let room = double.room(&room_name);
            server.dispatch(DispatchRequest::new(&room_name, agent).metadata(metadata));
            // Spread over one turn, so the load is steady.
            let offset = turn.mul_f64(i as f64 / n as f64);
            let exchanges = plan.measured_exchanges;
            tokio::spawn(converse(room, offset, exchanges))
        })
        .collect();
    // Every conversation has had its warm-up exchange after about two turns.
    let warm = started + turn * 2;
    tokio::time::sleep_until(warm.into()).await;
    let after = worker.memory();
    let clock = procfs::CpuClock::start(worker.pids());
    let window = Instant::now();
    let mut replies = Vec::new();
    let mut missing = 0;
    let mut arrivals = Vec::new();
    for conversation in conversations {
        let (got, lost, tracks) = conversation.await.expect("a conversation panicked");
        replies.extend(got);
        missing += lost;
        arrivals.extend(tracks);
    }
    let cpu = clock.used(&worker.pids()).as_secs_f64() / window.elapsed().as_secs_f64() * 100.0;
    replies.sort();
    Row {
        side,
        n,
        cpu_per_conversation: cpu / n as f64,
        kib_per_conversation: after.pss.saturating_sub(before.pss) as f64 / n as f64,
        pacing_p99: pacing_p99(&arrivals, window),
        replies,
        missing,
    }
}

/// Waits for `agent` to register; the Python worker registers once its
/// `n` prewarmed processes started (seconds each on a busy machine).
async fn wait_for_worker(server: &FakeLiveKit, agent: &str, n: usize) {
    let wait = WAIT + Duration::from_secs(5) * n as u32;
    let deadline = Instant::now() + wait;
    while !server.workers().iter().any(|w| w.agent_name == agent) {
        assert!(
            Instant::now() < deadline,
            "{agent} did not register within {wait:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One conversation: waits `offset`, has its agent join, then a warm-up
/// exchange and `exchanges` measured ones. Returns the measured reply
/// latencies, how many replies did not arrive (the warm-up's included),
/// and the agent's packet arrivals per track.
async fn converse(
    room: Room,
    offset: Duration,
    exchanges: usize,
) -> (Vec<Duration>, usize, Vec<Vec<Arrival>>) {
    let Ok(agent) = room.wait_for_agent(WAIT).await else {
        return (Vec::new(), exchanges + 1, Vec::new());
    };
    let user = room.join("user").expect("the user joins");
    tokio::time::sleep(offset).await;
    let mut warmed = false;
    for _ in 0..WARMUP_TRIES {
        if exchange(&room, &agent, &user).await.is_some() {
            warmed = true;
            break;
        }
    }
    let mut replies = Vec::new();
    let mut missing = usize::from(!warmed);
    for _ in 0..exchanges {
        match exchange(&room, &agent, &user).await {
            Some(latency) => replies.push(latency),
            None => missing += 1,
        }
    }
    let tracks = room.arrivals(&agent).into_iter().map(|(_, a)| a).collect();
    room.close();
    (replies, missing, tracks)
}

/// The user speaks once, then is silent for [`TURN_GAP`]: the reply
/// latency, if the agent answered meanwhile.
async fn exchange(room: &Room, agent: &str, user: &webrtc_double::Remote) -> Option<Duration> {
    user.speak_with(SPEECH, Voice::Speech).await.ok()?;
    let ended = Instant::now();
    let silent = user.clone();
    let silence = tokio::spawn(async move { silent.speak_with(TURN_GAP, Voice::Silence).await });
    let reply = room.wait_for_arrival(agent, ended, TURN_GAP, loud).await;
    let _ = silence.await;
    reply.ok().map(|a| (a.at - ended).saturating_sub(TTS_DELAY))
}

/// Whether `arrival` is a packet of speech.
fn loud(arrival: &Arrival) -> bool {
    arrival.level.is_some_and(|level| level <= LOUD_LEVEL)
}

/// The p99 of the gaps between consecutive packets of speech on each
/// track, from `since` on.
fn pacing_p99(tracks: &[Vec<Arrival>], since: Instant) -> Option<Duration> {
    let mut gaps: Vec<Duration> = tracks
        .iter()
        .flat_map(|arrivals| {
            arrivals
                .windows(2)
                .filter(|w| w[0].at >= since)
                .filter(|w| loud(&w[0]) && loud(&w[1]))
                .map(|w| w[1].at - w[0].at)
                .filter(|gap| *gap <= TALKSPURT_GAP)
        })
        .collect();
    gaps.sort();
    (!gaps.is_empty()).then(|| percentile(&gaps, 0.99))
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn print_row(row: &Row) {
    let pacing = row.pacing_p99.map_or("-".into(), ms);
    let p50 = (!row.replies.is_empty()).then(|| ms(percentile(&row.replies, 0.5)));
    println!(
        "{} N={}: cpu/conv {:.1}% mem/conv {:.1} MiB pacing p99 {pacing} reply p50 {} replies {} ({} missing)",
        row.side,
        row.n,
        row.cpu_per_conversation,
        row.kib_per_conversation / 1024.0,
        p50.unwrap_or_else(|| "-".into()),
        row.replies.len(),
        row.missing
    );
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "| side | N | CPU / conversation (% of a core) | memory / conversation (PSS) | \
         pacing p99 | reply p50 | reply p99 | replies missing |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let pct = |p| match row.replies.is_empty() {
            true => "-".to_owned(),
            false => ms(percentile(&row.replies, p)),
        };
        println!(
            "| {} | {} | {:.1} % | {:.1} MiB | {} | {} | {} | {} |",
            row.side,
            row.n,
            row.cpu_per_conversation,
            row.kib_per_conversation / 1024.0,
            row.pacing_p99.map_or("-".into(), ms),
            pct(0.5),
            pct(0.99),
            row.missing
        );
    }
}
