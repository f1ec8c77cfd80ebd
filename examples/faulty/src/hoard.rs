//! Modes that hoard host memory through `wasi:http` and stdout, and one
//! that burns CPU in short bursts; each stops at a host limit or never.

use std::hint::black_box;
use std::io::Write as _;
use std::time::{Duration, Instant};

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingRequest, Scheme};

/// Most resources a hoarding mode creates: below the host's 1,024
/// handles, so the host-memory budget is what stops it.
const MAX_HELD: usize = 900;

/// Waits 1 ms on the host every 16 resources, so that a slow machine does
/// not stop a hoarder as a runaway before it hoarded.
fn pause(held: usize) {
    if held.is_multiple_of(16) {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `hoard-fields`: header sets with one 100 KiB value each, all kept.
pub fn fields() -> Result<(), String> {
    let value = vec![b'v'; 100 << 10];
    let mut held = Vec::new();
    while held.len() < MAX_HELD {
        let fields = Fields::new();
        fields
            .append("x-hoard", &value)
            .map_err(|e| format!("faulty: the host refused a header: {e:?}"))?;
        held.push(fields);
        pause(held.len());
    }
    Err(format!(
        "faulty: held {MAX_HELD} header sets and hit no limit"
    ))
}

/// `hoard-requests`: outgoing requests never sent, each with a 64 KiB
/// header, and a path and an authority of 60,000 bytes each (the `http`
/// crate refuses URI parts of 64 KiB and more), all kept.
pub fn requests() -> Result<(), String> {
    let header = vec![b'h'; 64 << 10];
    let path = format!("/{}", "p".repeat(59_999));
    let authority = format!("{}.example.com", "a".repeat(60_000 - 12));
    let mut held = Vec::new();
    while held.len() < MAX_HELD {
        let fields = Fields::new();
        fields
            .append("x-hoard", &header)
            .map_err(|e| format!("faulty: the host refused a header: {e:?}"))?;
        let request = OutgoingRequest::new(fields);
        request
            .set_path_with_query(Some(&path))
            .map_err(|()| "faulty: the host refused the path".to_owned())?;
        request
            .set_authority(Some(&authority))
            .map_err(|()| "faulty: the host refused the authority".to_owned())?;
        held.push(request);
        pause(held.len());
    }
    Err(format!("faulty: held {MAX_HELD} requests and hit no limit"))
}

/// `hoard-responses:AUTHORITY`: `GET http://AUTHORITY/` again and again,
/// keeping every response body unread.
pub fn responses(authority: &str) -> Result<(), String> {
    let mut held = Vec::new();
    while held.len() < MAX_HELD / 4 {
        let request = OutgoingRequest::new(Fields::new());
        request
            .set_method(&Method::Get)
            .and_then(|()| request.set_scheme(Some(&Scheme::Http)))
            .and_then(|()| request.set_authority(Some(authority)))
            .and_then(|()| request.set_path_with_query(Some("/")))
            .map_err(|()| "faulty: the host refused the URL".to_owned())?;
        let pending = outgoing_handler::handle(request, None)
            .map_err(|e| format!("faulty: request {} refused: {e:?}", held.len()))?;
        pending.subscribe().block();
        let response = pending
            .get()
            .ok_or("faulty: no response")?
            .map_err(|()| "faulty: response taken twice")?
            .map_err(|e| format!("faulty: request {} failed: {e:?}", held.len()))?;
        let body = response
            .consume()
            .map_err(|()| "faulty: no body".to_owned())?;
        held.push((response, body));
    }
    Err(format!(
        "faulty: held {} unread responses and hit no limit",
        held.len()
    ))
}

/// `hoard-stdout`: 64 MiB on stdout without a newline, then success
/// (pausing 1 ms after each MiB, so it is not a runaway).
pub fn stdout() -> Result<(), String> {
    let chunk = vec![b'x'; 64 << 10];
    let mut out = std::io::stdout();
    for i in 1..=1024u32 {
        out.write_all(&chunk)
            .map_err(|e| format!("faulty: writing stdout: {e}"))?;
        if i.is_multiple_of(16) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(())
}

/// `cpu-burst`: computes for about 9 ms, waits 1 µs, forever: never long
/// enough in one go to be a runaway.
pub fn cpu_burst() -> ! {
    let mut n: u64 = 0;
    loop {
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(9) {
            for _ in 0..1000 {
                n = black_box(n.wrapping_add(1));
            }
        }
        std::thread::sleep(Duration::from_micros(1));
    }
}

/// `hoard-audio:<identity>`: subscribes to `identity` (48 kHz mono), does
/// not read for 2 s, then counts the audio frames queued meanwhile and
/// sends `audio frames: <n>` to the room.
pub fn audio(ctx: &agent_host_sdk::JobContext, identity: &str) -> Result<(), String> {
    use agent_host_sdk::{AudioFormat, Event};
    ctx.audio()
        .subscribe(identity, AudioFormat::MONO_48K)
        .map_err(|e| e.to_string())?;
    ctx.room()
        .send_text("subscribed")
        .map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_secs(2));
    let mut frames = 0;
    while let Some(event) = ctx.room().next(Some(Duration::ZERO)) {
        if let Event::Audio(_) = event {
            frames += 1;
        }
    }
    ctx.room()
        .send_text(&format!("audio frames: {frames}"))
        .map_err(|e| e.to_string())
}
