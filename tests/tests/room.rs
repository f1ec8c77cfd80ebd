//! Room I/O end to end: real LiveKit client code joins rooms on the WebRTC
//! double (`webrtc-double`), inside a private network namespace (libwebrtc
//! ignores loopback; see `agent_host_tests::netns`).
//!
//! Each outer test re-runs this binary inside a namespace of its own, where
//! its inner test starts a double on the namespace's address and runs its
//! scenarios concurrently (to keep the wall time near that of the slowest
//! one), each in rooms of its own, then reports each scenario's result
//! (`AGENT_HOST_ROOM_SCENARIOS=echo,parrot` picks some). An outer test is
//! ignored, with the reason, when the machine lacks what it needs, and fails
//! on CI instead (see `agent_host_capability`):
//! * `python_client_scenario` (needs the conformance venv): `python_client`,
//!   LiveKit's Python SDK joins, echoes data and chat to the sender only,
//!   publishes and receives audio, and is disconnected with ROOM_CLOSED when
//!   the last remote leaves: the double itself against a second real client;
//! * `room_scenarios` (needs LiveKit's client library; see
//!   [`agent_host_tests::livekit_lib`]), jobs on `FfiRooms`:
//!   `echo` answers text and data to the sender only; `greeter` greets a
//!   joiner; `parrot` hears a remote speak, says so (`lk.agent.state` =
//!   `speaking`) and sends audio back; 20 `echo` jobs in 20 rooms share the
//!   one FFI client and each answers only in its own room; `frontend` (the
//!   `frontend` guest) sets `lk.agent.state`, streams a transcription word
//!   by word with its attributes and final trailer, publishes one on
//!   behalf of a participant, ends a stream by dropping its writer,
//!   answers calls (an error, 1400 for an unregistered method, 1502 for
//!   one left unanswered, then `closed` for the late answer), calls a
//!   participant, and receives byte streams (one over the cap, marked
//!   incomplete); and the whole
//!   chain `fake-livekit` dispatch → `Worker` → room → the job speaks and
//!   ends → the server records SUCCESS, which it received before the double
//!   saw the agent leave (the double reports departures to fake-livekit,
//!   which fails a job whose agent leaves while it is live, as LiveKit's
//!   server does). The direct jobs must end with SUCCESS once the last
//!   remote has left and the room closed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_host::room::BYTE_STREAM_MAX_BYTES;
use agent_host::room::ffi::FfiRooms;
use agent_host::worker::Worker;
use agent_host::{JobLimits, Outcome, Plugin, Runtime};
use agent_host_tests::worker::options;
use agent_host_tests::{guests, livekit_lib, load, netns, request, runtime, workspace_root};
use fake_livekit::auth::{AgentTokenParams, build_agent_token, default_permissions};
use fake_livekit::livekit_protocol::JobStatus;
use fake_livekit::{Config, DispatchRequest, FakeLiveKit};
use faulty_mode::Mode;
use futures::future::{BoxFuture, join_all};
use tokio::task::JoinHandle;
use webrtc_double::{Config as DoubleConfig, Double, Observation, Room};

const KEY: &str = "devkey";
const SECRET: &str = "secret";
/// Bound for anything a scenario waits for.
const WAIT: Duration = Duration::from_secs(30);
/// How long rooms of `Ctx::lingering` stay after the last remote left
/// (LiveKit's `departure_timeout` is 20 s).
const LINGER: Duration = Duration::from_secs(5);
/// Times a remote says something before the agent must have answered
/// (`until_answered`), and how long each try waits for the answer.
const TRIES: u32 = 3;
const TRY_WAIT: Duration = Duration::from_secs(5);
/// Jobs in the concurrency scenario.
const MANY: usize = 20;

#[test]
#[cfg_attr(
    not(all(has_netns, has_livekit_lib)),
    ignore = "needs a private network namespace (run as root) and LiveKit's client library (run `agent-host setup`)"
)]
fn room_scenarios() {
    livekit_lib();
    netns::run_inside("inner_room_scenarios");
}

#[test]
#[cfg_attr(
    not(all(has_netns, has_python_worker)),
    ignore = "needs a private network namespace (run as root) and the official Python worker (run tests/conformance/setup.sh, set AGENT_HOST_PYTHON)"
)]
fn python_client_scenario() {
    fake_livekit::python::python();
    netns::run_inside("inner_python_client");
}

#[test]
#[ignore = "runs inside the private network namespace made by room_scenarios"]
fn inner_room_scenarios() {
    in_namespace(|double| {
        Box::pin(async move {
            let rooms = FfiRooms::load(&livekit_lib()).expect("loading LiveKit's client library");
            let config = DoubleConfig::new(KEY, SECRET);
            let lingering = Double::start_with(
                SocketAddr::new(netns::DOUBLE_IP, 0),
                DoubleConfig {
                    close_delay: LINGER,
                    ..config
                },
            )
            .await
            .expect("starting the lingering double");
            let ctx = Arc::new(Ctx {
                double,
                lingering,
                runtime: runtime(MANY as u32 + 8),
                rooms,
            });
            let scenarios: Vec<(&str, BoxFuture<'static, ()>)> = vec![
                ("echo", Box::pin(echo(ctx.clone()))),
                ("greeter", Box::pin(greeter(ctx.clone()))),
                ("parrot", Box::pin(parrot(ctx.clone()))),
                ("many_rooms", Box::pin(many_rooms(ctx.clone()))),
                ("frontend", Box::pin(frontend(ctx.clone()))),
                ("worker_chain", Box::pin(worker_chain(ctx))),
            ];
            scenarios
        })
    });
}

#[test]
#[ignore = "runs inside the private network namespace made by python_client_scenario"]
fn inner_python_client() {
    in_namespace(|double| {
        Box::pin(async move {
            let python = fake_livekit::python::python();
            let scenarios: Vec<(&str, BoxFuture<'static, ()>)> =
                vec![("python_client", Box::pin(python_client(double, python)))];
            scenarios
        })
    });
}

/// The scenarios `make` returns for a double on the namespace's address,
/// run concurrently; asserts that each passed.
fn in_namespace(
    make: impl FnOnce(Double) -> BoxFuture<'static, Vec<(&'static str, BoxFuture<'static, ()>)>>,
) {
    netns::assert_inside();
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let double = Double::start(SocketAddr::new(netns::DOUBLE_IP, 0), KEY, SECRET)
            .await
            .expect("starting the double");
        let scenarios = make(double).await;
        // `AGENT_HOST_ROOM_SCENARIOS=echo,parrot` runs only those.
        let only = std::env::var("AGENT_HOST_ROOM_SCENARIOS").ok();
        let scenarios: Vec<(&str, JoinHandle<Duration>)> = scenarios
            .into_iter()
            .filter(|(name, _)| {
                only.as_ref()
                    .is_none_or(|o| o.split(',').any(|n| n == *name))
            })
            .map(|(name, run)| (name, tokio::spawn(timed(run))))
            .collect();
        let mut failed = Vec::new();
        for (name, task) in scenarios {
            match task.await {
                Ok(took) => println!("scenario {name}: ok in {took:.1?}"),
                Err(e) => {
                    println!("scenario {name}: FAILED ({e})");
                    failed.push(name);
                }
            }
        }
        assert!(failed.is_empty(), "failed scenarios: {failed:?}");
    });
}

/// Runs a scenario and says how long it took.
async fn timed(scenario: BoxFuture<'static, ()>) -> Duration {
    let started = Instant::now();
    scenario.await;
    started.elapsed()
}

/// What the FFI scenarios share: the doubles, one runtime, one FFI client.
struct Ctx {
    /// Rooms close as soon as the last remote leaves.
    double: Double,
    /// Rooms close [`LINGER`] after the last remote leaves.
    lingering: Double,
    runtime: Runtime,
    rooms: FfiRooms,
}

/// A job started directly (no worker) on the FFI transport.
struct Job {
    room: Room,
    agent: String,
    outcome: JoinHandle<Outcome>,
}

impl Job {
    /// Waits for the job's outcome and asserts it is SUCCESS.
    async fn succeeds(self) {
        let outcome = tokio::time::timeout(WAIT, self.outcome)
            .await
            .unwrap_or_else(|_| panic!("job of {} did not end after the room closed", self.agent))
            .expect("job task");
        assert!(
            matches!(outcome, Outcome::Success),
            "job of {} ended with {outcome:?}",
            self.agent
        );
    }
}

/// The participant token fake-livekit would hand the job.
fn token(room: &str, identity: &str) -> String {
    build_agent_token(
        KEY,
        SECRET,
        &AgentTokenParams {
            room,
            identity,
            name: "agent",
            metadata: "",
            attributes: &HashMap::new(),
        },
        &default_permissions(),
    )
}

/// Offers job `id` (room `room-{id}`, empty metadata) to `plugin`, starts it on the FFI
/// transport and waits until its agent is in the room.
async fn start_job(ctx: &Ctx, double: &Double, plugin: &Arc<Plugin>, id: &str) -> Job {
    start_job_with(ctx, double, plugin, id, "").await
}

/// [`start_job`] with the job's `metadata`.
async fn start_job_with(
    ctx: &Ctx,
    double: &Double,
    plugin: &Arc<Plugin>,
    id: &str,
    metadata: &str,
) -> Job {
    let req = request(id, metadata);
    let room_name = req.room.name.clone();
    let agent = format!("agent-{id}");
    let offer = ctx
        .runtime
        .offer(plugin, req, JobLimits::default())
        .await
        .expect("the guest answers the offer");
    let job = offer.job.expect("the guest accepts the job");
    let handle = job.start(
        Arc::new(ctx.rooms.clone()),
        double.url(),
        token(&room_name, &agent),
    );
    let outcome = tokio::spawn(handle.outcome());
    let room = double.room(&room_name);
    let ready = room.wait_for_agent(WAIT).await.expect("the agent joins");
    assert_eq!(ready, agent);
    Job {
        room,
        agent,
        outcome,
    }
}

/// The first text from `agent` that `f` accepts.
async fn text_from<T>(
    room: &Room,
    agent: &str,
    what: &str,
    f: impl Fn(&str, &str, &[String]) -> Option<T>,
) -> T {
    room.wait_for(WAIT, what, |o| match o {
        Observation::Text {
            sender,
            topic,
            text,
            destinations,
            ..
        } if sender == agent => f(topic, text, destinations),
        _ => None,
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; saw {:#?}", room.observations()))
}

/// The agent knows about remotes through signalling and gets their data
/// through the data channel; give the participant update a head start so
/// the first packet is not from an unknown sender.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// Has a remote `say` something until the agent's answer, which `answer`
/// picks from the room's observations, arrives: at most [`TRIES`] times,
/// [`TRY_WAIT`] apart. What a remote sends right after joining can go
/// unanswered on a loaded machine: the agent's client library learns of
/// the remote over the signal connection and receives its data over
/// WebRTC, and a packet that wins that race reaches the agent without a
/// sender (LiveKit's Rust SDK names only participants it knows), so an
/// agent cannot answer it.
async fn until_answered<T, F: Future<Output = ()>>(
    room: &Room,
    what: &str,
    say: impl Fn() -> F,
    answer: impl Fn(&Observation) -> Option<T>,
) -> T {
    for attempt in 1..=TRIES {
        say().await;
        if let Ok(answered) = room.wait_for(TRY_WAIT, what, &answer).await {
            return answered;
        }
        println!("{what}: no answer to try {attempt}");
    }
    panic!("{what}: never answered; saw {:#?}", room.observations());
}

async fn echo(ctx: Arc<Ctx>) {
    let plugin = load(&ctx.runtime, guests::ECHO);
    let job = start_job(&ctx, &ctx.double, &plugin, "echo").await;
    let room = &job.room;
    let alice = room.join("alice").unwrap();
    let bob = room.join("bob").unwrap();
    settle().await;
    alice.send_text("lk.chat", "hello from alice").unwrap();
    let dest = text_from(room, &job.agent, "the echoed chat", |topic, text, dest| {
        (text == "hello from alice").then(|| (topic.to_string(), dest.to_vec()))
    })
    .await;
    assert_eq!(dest, ("lk.chat".to_string(), vec!["alice".to_string()]));
    let bob = &bob;
    let say = move || async move { bob.send_data("ping", b"ping from bob").unwrap() };
    let (topic, dest) = until_answered(room, "the echoed data", say, |o| match o {
        Observation::Data {
            sender,
            topic,
            payload,
            destinations,
            ..
        } if sender == &job.agent && payload == b"ping from bob" => {
            Some((topic.clone(), destinations.clone()))
        }
        _ => None,
    })
    .await;
    assert_eq!((topic.as_str(), dest), ("ping", vec!["bob".to_string()]));
    // Nothing went to everyone or to the wrong participant.
    for o in room.observations() {
        match &o {
            Observation::Text { destinations, .. } | Observation::Data { destinations, .. } => {
                assert_eq!(destinations.len(), 1, "{o:?}")
            }
            _ => {}
        }
    }
    alice.leave().unwrap();
    bob.leave().unwrap();
    assert!(room.is_closed());
    job.succeeds().await;
}

/// The frontend contract through LiveKit's client library: the
/// `frontend` guest sets `lk.agent.state`, streams a transcription word by
/// word, publishes one on behalf of alice, answers alice's calls (one
/// late, after the transport gave up on it), calls her, and receives her
/// byte stream.
async fn frontend(ctx: Arc<Ctx>) {
    let plugin = load(&ctx.runtime, guests::FRONTEND);
    let topic = "lk.agent.pre-connect-audio-buffer";
    let script = format!(
        "wait alice;state thinking;transcribe seg-1 TR_mic hello there world;\
         user alice u-1 hi agent;unclosed seg-2 cut short;register echo fail slow;serve 3;\
         call alice ping 5000 hello;call alice nothing 5000 x;accept {topic};receive 2"
    );
    let job = start_job_with(&ctx, &ctx.lingering, &plugin, "frontend", &script).await;
    let room = &job.room;
    let agent = job.agent.as_str();
    let alice = room.join("alice").unwrap();
    alice.serve_rpc("ping", |caller, payload| {
        Ok(format!("pong {payload} to {caller}"))
    });
    let report = |line: String| {
        text_from(room, agent, "a report", move |topic, text, _| {
            (topic == "lk.chat" && text == line).then_some(())
        })
    };

    let state = room
        .wait_for(WAIT, "lk.agent.state", |o| match o {
            Observation::AgentUpdated {
                identity,
                attributes,
                ..
            } if identity == agent => attributes.get("lk.agent.state").cloned(),
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(state, "thinking");

    let transcription = |sender: String| {
        let agent = agent.to_string();
        room.wait_for(WAIT, "a transcription", move |o| match o {
            Observation::Text {
                sender: s,
                topic,
                agent: a,
                ..
            } if topic == "lk.transcription" && *s == sender && *a == agent => Some(o.clone()),
            _ => None,
        })
    };
    let Observation::Text {
        text,
        attributes,
        chunks,
        trailer,
        ..
    } = transcription(agent.to_string()).await.unwrap()
    else {
        unreachable!()
    };
    assert_eq!(text, "hello there world");
    assert_eq!(chunks, ["hello ", "there ", "world"], "one chunk per write");
    let attribute = |k: &str| attributes.get(k).map(String::as_str);
    assert_eq!(attribute("lk.segment_id"), Some("seg-1"));
    assert_eq!(attribute("lk.transcribed_track_id"), Some("TR_mic"));
    assert_eq!(attribute("lk.transcription_final"), Some("false"));
    assert_eq!(
        trailer.get("lk.transcription_final").map(String::as_str),
        Some("true")
    );
    let Observation::Text { text, .. } = transcription("alice".into()).await.unwrap() else {
        unreachable!()
    };
    assert_eq!(text, "hi agent", "sent on behalf of alice");
    let dropped = room
        .wait_for(WAIT, "the stream whose writer was dropped", |o| match o {
            Observation::Text {
                attributes,
                text,
                trailer,
                ..
            } if attributes.get("lk.segment_id").map(String::as_str) == Some("seg-2") => {
                Some((text.clone(), trailer.clone()))
            }
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(
        dropped.0, "cut short ",
        "dropping the writer ended the stream"
    );
    assert!(dropped.1.is_empty(), "{:?}", dropped.1);

    report("registered".into()).await;
    let call = |method: &'static str, payload: &'static str| {
        alice.perform_rpc(agent, method, payload, Duration::from_secs(10))
    };
    assert_eq!(call("echo", "hi").await.unwrap(), Ok("hi".into()));
    assert_eq!(
        call("fail", "why").await.unwrap(),
        Err((4001, "nope".into()))
    );
    let unregistered = call("missing", "").await.unwrap().unwrap_err();
    assert_eq!(unregistered.0, 1400, "{unregistered:?}");
    let unanswered = alice
        .perform_rpc(agent, "slow", "", Duration::from_secs(1))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(unanswered.0, 1502, "{unanswered:?}");
    report("served 3".into()).await;
    // The transport forgot the call at its timeout (and answered it): the
    // guest's late answer finds nothing waiting.
    report("late Err(RoomError::Closed)".into()).await;
    report(format!("answer pong hello to {agent}")).await;
    let unsupported = text_from(room, agent, "the unsupported call", |_, text, _| {
        text.starts_with("rpc-error").then(|| text.to_string())
    })
    .await;
    assert!(unsupported.starts_with("rpc-error 1400 "), "{unsupported}");

    report(format!("accepted {topic}")).await;
    let attributes = vec![("sampleRate".to_string(), "16000".to_string())];
    alice.send_bytes(topic, &attributes, &[5; 40_000]).unwrap();
    // Over the host's cap: what fits arrives, marked incomplete (the guest
    // reports both once both came).
    alice
        .send_bytes(topic, &attributes, &vec![6; BYTE_STREAM_MAX_BYTES + 1])
        .unwrap();
    report(format!("bytes {topic} alice 40000 sampleRate=16000 None")).await;
    let capped = text_from(room, agent, "the capped byte stream", |_, text, _| {
        text.starts_with(&format!("bytes {topic} alice {BYTE_STREAM_MAX_BYTES} "))
            .then(|| text.to_string())
    })
    .await;
    assert!(
        capped.ends_with("sampleRate=16000 Some(\"larger than the host's cap of 4194304 bytes\")"),
        "{capped}"
    );
    // The script is done: the job ends with the room still open.
    job.succeeds().await;
    alice.leave().unwrap();
}

async fn greeter(ctx: Arc<Ctx>) {
    let plugin = load(&ctx.runtime, guests::GREETER);
    // Greeter says goodbye when someone leaves: the room outlives the last
    // remote so that the goodbye does not race the room closing (a send
    // after the room closed fails the job). Said into an empty room, the
    // goodbye travels as a one-packet (inline, compressed) v2 text stream.
    let job = start_job(&ctx, &ctx.lingering, &plugin, "greeter").await;
    let carol = job.room.join("carol").unwrap();
    for line in ["Hello, carol!", "Goodbye, carol!"] {
        let dest = text_from(&job.room, &job.agent, line, |_, text, dest| {
            (text == line).then(|| dest.to_vec())
        })
        .await;
        assert!(dest.is_empty(), "{line:?} goes to everyone: {dest:?}");
        if line.starts_with("Hello") {
            carol.leave().unwrap();
        }
    }
    let room = job.room.clone();
    job.succeeds().await;
    assert!(room.is_closed());
}

async fn parrot(ctx: Arc<Ctx>) {
    let plugin = load(&ctx.runtime, guests::PARROT);
    let job = start_job(&ctx, &ctx.double, &plugin, "parrot").await;
    let room = &job.room;
    room.wait_for(WAIT, "parrot's track", |o| {
        matches!(o, Observation::TrackPublished { agent, audio: true, .. } if agent == &job.agent)
            .then_some(())
    })
    .await
    .unwrap();
    let dave = room.join("dave").unwrap();
    settle().await;
    // It hears a phrase (its frames reached the guest) and plays it back,
    // saying so in `lk.agent.state`. The first words can be lost while the
    // agent's subscription starts, so dave repeats himself (a few times at
    // most) until parrot answers.
    let speaking = |o: &Observation| match o {
        Observation::AgentUpdated {
            identity,
            attributes,
            ..
        } if identity == &job.agent => attributes
            .get("lk.agent.state")
            .filter(|s| *s == "speaking")
            .map(|_| ()),
        _ => None,
    };
    let dave = &dave;
    let say = move || async move {
        let frames = dave.speak(Duration::from_millis(1500)).await.unwrap();
        assert_eq!(frames, 75);
    };
    until_answered(room, "parrot speaking", say, speaking).await;
    let rtp = room
        .wait_for_rtp(&job.agent, WAIT, "25 packets (half a second)", |r| {
            r.packets >= 25
        })
        .await
        .unwrap();
    println!("parrot: {rtp:?}");
    dave.leave().unwrap();
    job.succeeds().await;
}

async fn many_rooms(ctx: Arc<Ctx>) {
    let plugin = load(&ctx.runtime, guests::ECHO);
    let jobs = join_all((0..MANY).map(|i| {
        let (ctx, plugin) = (ctx.clone(), plugin.clone());
        async move { start_job(&ctx, &ctx.double, &plugin, &format!("many-{i}")).await }
    }))
    .await;
    let users: Vec<_> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| j.room.join(&format!("user-{i}")).unwrap())
        .collect();
    settle().await;
    for (i, u) in users.iter().enumerate() {
        u.send_text("lk.chat", &format!("hi from room {i}"))
            .unwrap();
    }
    join_all(jobs.iter().enumerate().map(|(i, j)| async move {
        let want = format!("hi from room {i}");
        let dest = text_from(&j.room, &j.agent, "the echo", |_, text, dest| {
            (text == want).then(|| dest.to_vec())
        })
        .await;
        assert_eq!(dest, vec![format!("user-{i}")]);
    }))
    .await;
    for (i, j) in jobs.iter().enumerate() {
        for o in j.room.observations() {
            if let Observation::Text { text, .. } = &o {
                assert_eq!(text, &format!("hi from room {i}"), "room {i} saw {o:?}");
            }
        }
    }
    for u in &users {
        u.leave().unwrap();
    }
    join_all(jobs.into_iter().map(Job::succeeds)).await;
}

async fn worker_chain(ctx: Arc<Ctx>) {
    let server = FakeLiveKit::start(Config {
        room_url: Some(ctx.double.url()),
        ..Config::default()
    })
    .await
    .expect("starting fake-livekit");
    // The double tells the agent service when an agent leaves, as the
    // room tells LiveKit's agent service: a job still live then ends FAILED.
    let mut departures = ctx.double.departures();
    let (left_tx, mut left) = tokio::sync::mpsc::unbounded_channel();
    let fake = server.clone();
    let forward = tokio::spawn(async move {
        while let Some(departure) = departures.recv().await {
            fake.agent_left(&departure.room, &departure.identity);
            let _ = left_tx.send(departure);
        }
    });
    let runtime = runtime(4);
    let plugin = load(&runtime, guests::FAULTY);
    let worker = Worker::new(
        options(&server, "chain", 4),
        runtime,
        plugin,
        Arc::new(ctx.rooms.clone()),
    );
    let handle = worker.handle();
    let task = tokio::spawn(worker.run());
    server.wait_for_workers(1, WAIT).await.unwrap();
    // `ok`: says so in the room and returns while the room stays open.
    let id =
        server.dispatch(DispatchRequest::new("chain-room", "chain").metadata(Mode::Ok.to_string()));
    let room = ctx.double.room("chain-room");
    let agent = room.wait_for_agent(WAIT).await.unwrap();
    assert_eq!(agent, format!("agent-{id}"));
    text_from(&room, &agent, "faulty's ok", |_, text, _| {
        (text == "ok from faulty a").then_some(())
    })
    .await;
    let departure = tokio::time::timeout(WAIT, async {
        while let Some(d) = left.recv().await {
            if d.identity == agent {
                return d;
            }
        }
        panic!("the departures stream ended");
    })
    .await
    .expect("the agent leaves the room after its job");
    let job = server.job(&id).unwrap();
    // The status reached the agent service before the agent left the room,
    // so the server kept it instead of failing the job.
    assert_eq!(
        job.accepted_worker_statuses(),
        [JobStatus::JsRunning, JobStatus::JsSuccess],
        "{job:?}"
    );
    assert_eq!(job.status, JobStatus::JsSuccess, "{job:?}");
    assert!(job.terminated_at.is_none(), "{job:?}");
    let success = job
        .status_history
        .iter()
        .find(|c| c.status == JobStatus::JsSuccess)
        .unwrap();
    assert!(
        success.at < departure.at,
        "the agent left {:?} before the final status",
        success.at - departure.at
    );
    handle.stop();
    let _ = tokio::time::timeout(WAIT, task).await;
    forward.abort();
}

async fn python_client(double: Double, python: std::path::PathBuf) {
    let script = workspace_root().join("tests/webrtc-double/clients/python_client.py");
    let room = double.room("python-room");
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .env("LIVEKIT_URL", double.url())
        .env("LIVEKIT_TOKEN", token("python-room", "py-agent"))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starting the Python client");
    let stdout = child.stdout.take().expect("piped stdout");
    let agent = room.wait_for_agent(WAIT).await.unwrap();
    let alice = room.join("alice").unwrap();
    let bob = room.join("bob").unwrap();
    settle().await;
    alice.send_text("lk.chat", "hello").unwrap();
    let text = text_from(&room, &agent, "the echoed chat", |_, text, dest| {
        Some((text.to_string(), dest.to_vec()))
    })
    .await;
    assert_eq!(text, ("echo: hello".to_string(), vec!["alice".to_string()]));
    let bob = &bob;
    let say = move || async move { bob.send_data("t", b"bytes").unwrap() };
    let data = until_answered(&room, "the echoed data", say, |o| match o {
        Observation::Data {
            payload,
            destinations,
            ..
        } => Some((payload.clone(), destinations.clone())),
        _ => None,
    })
    .await;
    assert_eq!(data, (b"echo: bytes".to_vec(), vec!["bob".to_string()]));
    alice.speak(Duration::from_millis(500)).await.unwrap();
    room.wait_for_rtp(&agent, WAIT, "25 packets", |r| r.packets >= 25)
        .await
        .unwrap();
    bob.leave().unwrap();
    alice.leave().unwrap();
    let out = tokio::time::timeout(WAIT, async {
        use tokio::io::AsyncReadExt;
        let mut out = String::new();
        let mut stdout = stdout;
        let _ = stdout.read_to_string(&mut out).await;
        (child.wait().await, out)
    })
    .await
    .expect("the Python client exits after the room closed");
    let (status, out) = out;
    assert!(
        status.as_ref().is_ok_and(|s| s.success()),
        "{status:?}: {out}"
    );
    let summary: serde_json::Value = out
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no summary from the Python client: {out}"));
    assert_eq!(
        summary["seen"],
        serde_json::json!(["alice", "bob"]),
        "{out}"
    );
    assert!(summary["frames"].as_u64().unwrap_or(0) > 0, "{out}");
    // ROOM_CLOSED (10) in LiveKit's DisconnectReason.
    assert_eq!(summary["disconnect_reason"], 10, "{out}");
}
