//! Faulty: misbehaves on request, to test how the host contains a guest.
//!
//! The job metadata picks the behaviour: a [`Mode`] (crate `faulty-mode`,
//! shared with the tests); see `README.md` for the modes.

use std::hint::black_box;
use std::time::Duration;

use agent_host_sdk::{AcceptOptions, Agent, Decision, DispatchInfo, JobContext, JobRequest};
use faulty_mode::{HugeFailure, Mode, Oversize};

mod hoard;
mod websocket;

/// Which build this is: `FAULTY_FLAVOR` at compile time, else `a`.
const FLAVOR: &str = match option_env!("FAULTY_FLAVOR") {
    Some(flavor) => flavor,
    None => "a",
};

struct Faulty;

impl Agent for Faulty {
    fn on_request(request: JobRequest) -> Decision {
        match request.metadata.parse() {
            Ok(Mode::Reject) => Decision::Reject,
            Ok(Mode::RejectTerminate) => Decision::RejectAndTerminate,
            // Never answers: waits in the host until the offer times out.
            Ok(Mode::StallOffer) => {
                std::thread::sleep(Duration::from_secs(3600));
                Decision::Reject
            }
            Ok(Mode::AcceptOversize(field)) => oversize_accept(field),
            // What the offer says of its dispatch, where the server records it.
            Ok(Mode::Dispatch) => Decision::Accept(AcceptOptions {
                attributes: vec![
                    ("faulty.flavor".to_owned(), FLAVOR.to_owned()),
                    ("faulty.dispatch".to_owned(), describe(&request.dispatch())),
                ],
                ..Default::default()
            }),
            // The flavor tells builds apart in hot-swap tests: it shows in
            // the participant attributes the server records.
            _ => Decision::Accept(AcceptOptions {
                attributes: vec![("faulty.flavor".to_owned(), FLAVOR.to_owned())],
                ..Default::default()
            }),
        }
    }

    fn run(ctx: JobContext) -> Result<(), String> {
        let metadata = ctx.info().metadata;
        agent_host_sdk::info!("faulty: mode '{metadata}'");
        let mode: Mode = metadata.parse().map_err(|e| format!("faulty: {e}"))?;
        match mode {
            Mode::Dispatch => {
                let text = format!("dispatch: {}", describe(&ctx.dispatch()));
                ctx.room().send_text(&text)?;
                Ok(())
            }
            Mode::Ok => {
                ctx.room().send_text(&format!("ok from faulty {FLAVOR}"))?;
                Ok(())
            }
            Mode::Sleep(ms) => {
                // On wasip2 this is a `wasi:clocks` poll the host serves.
                std::thread::sleep(Duration::from_millis(ms));
                Ok(())
            }
            Mode::Fail(text) => Err(text),
            Mode::Trap => trap(),
            Mode::Panic => panic!("faulty: asked to panic"),
            Mode::Loop => spin(),
            // Host-call floods: calls that return at once, forever.
            Mode::FloodLog => loop {
                agent_host_sdk::log::trace("faulty: flooding the log");
            },
            Mode::FloodData => {
                let room = ctx.room();
                loop {
                    // Errors are part of the flood; keep going.
                    let _ = room.publish_data(b"flood", Default::default());
                }
            }
            Mode::IgnoreClosed => ignore_closed(&ctx),
            Mode::Oom => exhaust_memory(),
            Mode::Stack => {
                recurse(0);
                Err("faulty: recursion ended".to_owned())
            }
            Mode::AudioMisuse => audio_misuse(&ctx),
            Mode::Resources => hoard_resources(),
            Mode::HoardFields => hoard::fields(),
            Mode::HoardRequests => hoard::requests(),
            Mode::HoardResponses(authority) => hoard::responses(&authority),
            Mode::HoardStdout => hoard::stdout(),
            Mode::HoardAudio(identity) => hoard::audio(&ctx, &identity),
            Mode::CpuBurst => hoard::cpu_burst(),
            Mode::Server(identity) => server_calls(&ctx, &identity),
            Mode::HugeName(how) => fail_through_huge_name(how),
            // Under the 1 MiB the host lifts from one call: a longer text
            // fails the job on that limit before the host reads it.
            Mode::HugeErr => Err(format!("faulty: {}", "e".repeat(768 << 10))),
            Mode::HugePanic => panic!("faulty: {}", "p".repeat(HUGE)),
            Mode::HugeOutput => huge_output(),
            Mode::HugeFields => huge_fields(&ctx),
            Mode::Sandbox(port) => sandbox(port.unwrap_or(80)),
            Mode::Shutdown(reason) => shutdown(&ctx, &reason),
            Mode::SetMetadata(metadata) => Ok(ctx.room().set_metadata(&metadata)?),
            Mode::AudioUnsubscribe(identity) => audio_unsubscribe(&ctx, &identity),
            Mode::WebsocketEcho { count, url } => websocket::echo(&ctx, count, &url),
            Mode::WebsocketHoard(url) => websocket::hoard(&ctx, &url),
            Mode::Reject | Mode::RejectTerminate | Mode::StallOffer | Mode::AcceptOversize(_) => {
                Err(format!("faulty: mode '{metadata}' acts on the offer only"))
            }
        }
    }
}

agent_host_sdk::export_agent!(Faulty);

/// One line for a job's dispatch facts.
fn describe(d: &DispatchInfo) -> String {
    format!(
        "id={} deployment={} recording={} redaction={}",
        d.dispatch_id, d.deployment, d.enable_recording, d.enable_redaction
    )
}

/// Reads room events until the session ends, then carries on as if it had
/// not: the host must end the job after its grace period.
fn ignore_closed(ctx: &JobContext) -> ! {
    if let Some(agent_host_sdk::RoomEvent::Closed(reason)) = ctx.room().events().last() {
        agent_host_sdk::info!("faulty: room closed ({reason:?}); carrying on regardless");
    }
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Asks the host to end the job with `reason`, then tries one room action
/// at once (the text `after shutdown`: the WIT promises the session closes
/// with the call, before any event is read), then reads room events until
/// they end. `Ok` when the action was refused as `closed` and the events
/// ended with `closed(shutdown-requested)`.
fn shutdown(ctx: &JobContext, reason: &str) -> Result<(), String> {
    use agent_host_sdk::{CloseReason, RoomError, RoomEvent};
    ctx.shutdown(reason);
    match ctx.room().send_text("after shutdown") {
        Err(RoomError::Closed) => {}
        other => {
            return Err(format!(
                "faulty: a room action after shutdown gave {other:?}"
            ));
        }
    }
    let last = ctx.room().events().last();
    if !matches!(
        last,
        Some(RoomEvent::Closed(CloseReason::ShutdownRequested))
    ) {
        return Err(format!(
            "faulty: after shutdown the events ended with {last:?}"
        ));
    }
    Ok(())
}

/// Subscribes to `identity`'s audio and waits (30 s at most) for a frame,
/// unsubscribes, sends `unsubscribed`, then counts the frames that arrive
/// in the next second and sends `frames after unsubscribe: <n>`.
fn audio_unsubscribe(ctx: &JobContext, identity: &str) -> Result<(), String> {
    use agent_host_sdk::{AudioFormat, Event};
    let (room, audio) = (ctx.room(), ctx.audio());
    audio.subscribe(identity, AudioFormat::MONO_48K)?;
    room.send_text("subscribed")?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match room.next(Some(left)) {
            Some(Event::Audio(_)) => break,
            Some(_) => continue,
            None => return Err(format!("faulty: no audio from {identity} in 30 s")),
        }
    }
    audio.unsubscribe(identity);
    room.send_text("unsubscribed")?;
    let until = std::time::Instant::now() + Duration::from_secs(1);
    let mut frames = 0;
    while let Some(event) = room.next(Some(
        until.saturating_duration_since(std::time::Instant::now()),
    )) {
        if let Event::Audio(_) = event {
            frames += 1;
        }
    }
    room.send_text(&format!("frames after unsubscribe: {frames}"))?;
    Ok(())
}

/// Executes the `unreachable` instruction.
fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    // Lets the crate be checked for the host target too.
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}

/// Burns CPU forever without calling the host.
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

/// Allocates and touches 1 MiB chunks, keeping them alive, until an
/// allocation fails; Rust's allocation error handler then aborts, which
/// traps.
fn exhaust_memory() -> ! {
    const CHUNK: usize = 1 << 20;
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        // Non-zero fill: fresh pages are not touched by a zeroed allocation.
        chunks.push(black_box(vec![0xa5; CHUNK]));
        if chunks.len().is_multiple_of(16) {
            agent_host_sdk::debug!("faulty: holding {} MiB", chunks.len());
        }
    }
}

/// Recursion that cannot become a loop: every frame keeps a local array
/// alive across the recursive call.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    // Small frames: the wasm call stack overflows (a clean "stack overflow"
    // trap) long before Rust's shadow stack in linear memory would.
    let below = recurse(black_box(depth + 1));
    black_box(below.wrapping_add(depth))
}

/// Tries to reach outside the sandbox. `Ok` if every attempt was denied or
/// found nothing, otherwise `Err` naming what worked.
fn sandbox(port: u16) -> Result<(), String> {
    use std::net::{TcpStream, ToSocketAddrs};

    let mut escapes: Vec<String> = Vec::new();
    let mut check = |what: &str, outcome: Result<String, String>| match outcome {
        Ok(got) => {
            agent_host_sdk::error!("sandbox: {what}: ALLOWED: {got}");
            escapes.push(what.to_owned());
        }
        Err(denied) => agent_host_sdk::info!("sandbox: {what}: denied: {denied}"),
    };

    check(
        "read /etc/passwd",
        std::fs::read_to_string("/etc/passwd")
            .map(|s| format!("{} bytes", s.len()))
            .map_err(|e| e.to_string()),
    );
    for dir in ["/", "."] {
        check(
            &format!("list {dir}"),
            std::fs::read_dir(dir)
                .map(|entries| format!("{} entries", entries.count()))
                .map_err(|e| e.to_string()),
        );
    }
    // Names only: values could be secrets.
    let names: Vec<String> = std::env::vars_os()
        .map(|(name, _)| name.to_string_lossy().into_owned())
        .collect();
    check(
        "environment",
        if names.is_empty() {
            Err("empty".to_owned())
        } else {
            Ok(names.join(", "))
        },
    );
    check(
        "LIVEKIT_API_SECRET",
        std::env::var_os("LIVEKIT_API_SECRET")
            .map(|v| format!("{} bytes", v.len()))
            .ok_or_else(|| "not set".to_owned()),
    );
    check(
        &format!("connect 127.0.0.1:{port}"),
        TcpStream::connect(("127.0.0.1", port))
            .map(|s| format!("connected from {:?}", s.local_addr()))
            .map_err(|e| e.to_string()),
    );
    check(
        "resolve localhost",
        ("localhost", 80)
            .to_socket_addrs()
            .map_err(|e| e.to_string())
            .and_then(|addrs| {
                let addrs: Vec<String> = addrs.map(|a| a.to_string()).collect();
                if addrs.is_empty() {
                    Err("no addresses".to_owned())
                } else {
                    Ok(addrs.join(", "))
                }
            }),
    );

    if escapes.is_empty() {
        Ok(())
    } else {
        Err(format!("sandbox escape: {}", escapes.join(", ")))
    }
}

/// Every way to misuse the audio import, each answered by the host with an
/// error; the answers are sent to the room as one text line each.
fn audio_misuse(ctx: &JobContext) -> Result<(), String> {
    use agent_host_sdk::AudioFormat;
    let (room, audio) = (ctx.room(), ctx.audio());
    let cd_quality = AudioFormat {
        sample_rate: 44_100,
        channels: 1,
    };
    let report = |what: &str, result: Result<(), agent_host_sdk::RoomError>| {
        let answer = match result {
            Ok(()) => "ok".to_owned(),
            Err(err) => err.to_string(),
        };
        room.send_text(&format!("{what}: {answer}"))
    };
    report(
        "subscribe at 44.1 kHz",
        audio.subscribe("anyone", cd_quality),
    )?;
    report("write before publish", audio.write(&[0; 480]))?;
    report("publish at 44.1 kHz", audio.publish("voice", cd_quality))?;
    report("publish", audio.publish("voice", AudioFormat::MONO_48K))?;
    report(
        "publish again",
        audio.publish("voice", AudioFormat::MONO_48K),
    )?;
    report("write 1 s", audio.write(&vec![0; 48_000]))?;
    report("write 1 s + 1 sample", audio.write(&vec![0; 48_001]))?;
    report("clear", audio.clear())?;
    Ok(())
}

/// Creates host resources (clock pollables) and never drops them, until the
/// host's resource table is full; the host then fails the job.
fn hoard_resources() -> Result<(), String> {
    const MAX: usize = 1 << 20;
    let mut held = Vec::new();
    while held.len() < MAX {
        held.push(wasip2::clocks::monotonic_clock::subscribe_duration(
            u64::MAX,
        ));
    }
    Err(format!("faulty: held {MAX} resources and hit no limit"))
}

/// Calls every `server` function on `identity` and sends the results, with
/// everything the guest can see of itself (info, environment, arguments),
/// to the room as one text. `Err` if a call failed.
fn server_calls(ctx: &JobContext, identity: &str) -> Result<(), String> {
    let server = ctx.server();
    let attributes = [("faulty.server".to_owned(), "yes".to_owned())];
    let results = [
        (
            "send-data",
            server.send_data(b"from the server API", Some("faulty"), &[identity]),
        ),
        (
            "update-participant",
            server.update_participant(identity, Some("faulty-meta"), &attributes),
        ),
        ("mute-track", server.mute_track(identity, "TR_faulty", true)),
        ("remove-participant", server.remove_participant(identity)),
    ];
    let mut report: Vec<String> = results
        .iter()
        .map(|(what, result)| format!("{what}: {result:?}"))
        .collect();
    report.push(format!("info: {:?}", ctx.info()));
    report.push(format!("env: {:?}", std::env::vars().collect::<Vec<_>>()));
    report.push(format!("args: {:?}", std::env::args().collect::<Vec<_>>()));
    let report = report.join("\n");
    ctx.room().send_text(&report)?;
    if results.iter().all(|(_, r)| r.is_ok()) {
        Ok(())
    } else {
        Err(report)
    }
}

// Hostile sizes: each mode makes one guest string far larger than anything
// the host may pass on (a status frame, a log line, a room action).

include!(concat!(env!("OUT_DIR"), "/huge_name.rs"));

/// Size of the hostile strings: 3 MiB, over LiveKit's 2 MiB frame limit.
const HUGE: usize = 3 << 20;

/// Fails, in the way `how` names, inside the function with the 256 KiB
/// name (see `build.rs`), so wasmtime's backtrace carries that name, twelve
/// times.
fn fail_through_huge_name(how: HugeFailure) -> Result<(), String> {
    let fail = || -> u64 {
        match how {
            HugeFailure::Exit => std::process::exit(1),
            // A host call the host refuses: more bytes than one call may
            // carry (1 MiB) fails the call, and with it the job.
            HugeFailure::HostCall => {
                agent_host_sdk::log::info(&"h".repeat(2 << 20));
                0
            }
            HugeFailure::Trap => trap(),
            HugeFailure::Panic => panic!("faulty: panicking under a huge name"),
        }
    };
    // Twelve frames of the name: over 3 MiB of backtrace, more than the
    // server takes in one frame.
    through_huge_name(11, &fail);
    Err(format!("faulty: {how:?} under a huge name did not fail"))
}

/// An accept whose `field` (identity, name, metadata or attributes) is
/// one byte over what LiveKit lets an agent join with.
fn oversize_accept(field: Oversize) -> Decision {
    let mut options = AcceptOptions::default();
    match field {
        Oversize::Identity => options.identity = "i".repeat(257),
        Oversize::Name => options.name = "n".repeat(257),
        Oversize::Metadata => options.metadata = "m".repeat((512 << 10) + 1),
        Oversize::Attributes => options.attributes = vec![("a".to_owned(), "v".repeat(64 << 10))],
    }
    Decision::Accept(options)
}

/// One huge log call, stdout line and stderr line; `Ok` once they are out.
fn huge_output() -> Result<(), String> {
    // Under the 1 MiB a host call may carry, so the call itself succeeds.
    agent_host_sdk::log::warn(&"l".repeat(512 << 10));
    println!("{}", "o".repeat(HUGE));
    eprintln!("{}", "e".repeat(HUGE));
    Ok(())
}

/// Room and server actions whose payload is tiny but whose topic or
/// destination list is 100 KiB. `Ok` if the host refused each one as too
/// large, else `Err` naming the ones it did not.
fn huge_fields(ctx: &JobContext) -> Result<(), String> {
    use agent_host_sdk::{DataOptions, RoomError, TextOptions};
    let topic = "t".repeat(100 << 10);
    // 100 KiB of identities, 1,000 bytes each.
    let destinations: Vec<String> = (0..100).map(|i| format!("{i:0>1000}")).collect();
    let (room, server) = (ctx.room(), ctx.server());
    let attempts = [
        (
            "publish-data topic",
            room.publish_data(
                b"x",
                DataOptions {
                    topic: Some(topic.clone()),
                    ..DataOptions::default()
                },
            ),
        ),
        (
            "publish-data destinations",
            room.publish_data(
                b"x",
                DataOptions {
                    destinations: destinations.clone(),
                    ..DataOptions::default()
                },
            ),
        ),
        (
            "send-text topic",
            room.send_text_with(
                "x",
                TextOptions {
                    topic: topic.clone(),
                    ..TextOptions::default()
                },
            ),
        ),
        (
            "send-text destinations",
            room.send_text_with(
                "x",
                TextOptions {
                    destinations: destinations.clone(),
                    ..TextOptions::default()
                },
            ),
        ),
        (
            "server send-data topic",
            server.send_data(b"x", Some(&topic), &[] as &[&str]),
        ),
        (
            "server send-data destinations",
            server.send_data(b"x", None, &destinations),
        ),
    ];
    let passed: Vec<String> = attempts
        .iter()
        .filter(|(_, result)| !matches!(result, Err(RoomError::TooLarge(_))))
        .map(|(what, result)| format!("{what}: {result:?}"))
        .collect();
    if passed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "faulty: not refused as too large: {}",
            passed.join("; ")
        ))
    }
}
