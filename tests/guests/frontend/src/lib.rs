//! What LiveKit's frontends read from a voice agent, through the raw
//! `streams` and `rpc` imports (the SDK's own wrappers are tested
//! elsewhere), scripted by the job metadata: steps separated by `;`, each
//! reported into the room as one chat message (errors too, so that tests
//! see them):
//!
//! - `wait IDENTITY`: waits (at most 30 s) until IDENTITY is in the room
//!   → `here IDENTITY`;
//! - `state S`: sets `lk.agent.state` to S → `state S`;
//! - `transcribe SEG TRACK WORDS...`: an `lk.transcription` stream with
//!   `lk.segment_id`, `lk.transcribed_track_id` and
//!   `lk.transcription_final` = `false`, one write per word, closed with
//!   `lk.transcription_final` = `true` → `transcribed SEG`;
//! - `unclosed SEG WORDS...`: a transcription whose writer is dropped
//!   without `close` → `dropped SEG`;
//! - `user IDENTITY SEG TEXT...`: a final transcription sent on behalf of
//!   IDENTITY → `user SEG`;
//! - `register METHODS...` → `registered`;
//! - `serve N`: answers N calls: `echo` with its payload, `fail` with
//!   error 4001 `nope` (data: the payload), `slow` not at all until its
//!   response timeout has passed, then late → `served N`, `late <result>`;
//! - `call DEST METHOD TIMEOUT_MS PAYLOAD...` → `answer PAYLOAD` or
//!   `rpc-error CODE MESSAGE`;
//! - `bigcall DEST`: a call with a 16 KiB payload (LiveKit's cap is 15) →
//!   `call <error>`;
//! - `accept TOPIC` → `accepted TOPIC`;
//! - `receive N`: N byte streams → `bytes TOPIC SENDER LEN k=v,... INCOMPLETE`
//!   each.
//!
//! A failing step reports `<verb> error <room-error>` and the script goes
//! on.

use std::time::Duration;

use agent_host_sdk::__bindings::agent_host::agent::rpc::{self, RpcError};
use agent_host_sdk::__bindings::agent_host::agent::streams::{self, TextStreamOptions};
use agent_host_sdk::__bindings::agent_host::agent::types::RoomError;
use agent_host_sdk::{Agent, JobContext, block_on, sleep};

const TRANSCRIPTION: &str = "lk.transcription";
const FINAL: &str = "lk.transcription_final";

struct Frontend;

fn pair(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// A transcription stream's options.
fn transcription(seg: &str, track: &str, sender: Option<String>, fin: bool) -> TextStreamOptions {
    TextStreamOptions {
        topic: TRANSCRIPTION.into(),
        attributes: vec![
            pair("lk.segment_id", seg),
            pair("lk.transcribed_track_id", track),
            pair(FINAL, if fin { "true" } else { "false" }),
        ],
        destinations: Vec::new(),
        sender,
    }
}

/// Writes `words` one per write, then closes with `trailer`.
fn stream(
    options: TextStreamOptions,
    words: &[&str],
    trailer: Vec<(String, String)>,
) -> Result<(), RoomError> {
    let writer = streams::open_text(&options)?;
    for (i, word) in words.iter().enumerate() {
        let sep = if i + 1 < words.len() { " " } else { "" };
        writer.write(&format!("{word}{sep}"))?;
    }
    writer.close(&trailer)
}

/// Answers `n` calls; `slow` ones late.
fn serve(n: usize) -> Vec<String> {
    let mut slow = Vec::new();
    let mut served = 0;
    while served < n {
        let Some(call) = rpc::next_call() else {
            rpc::subscribe().block();
            continue;
        };
        served += 1;
        let response = match call.method.as_str() {
            "echo" => Ok(call.payload.clone()),
            "fail" => Err(RpcError {
                code: 4001,
                message: "nope".into(),
                data: Some(call.payload.clone()),
            }),
            _ => {
                slow.push(call);
                continue;
            }
        };
        if let Err(e) = rpc::respond(&call.id, response.as_deref()) {
            return vec![format!("serve error {e:?}")];
        }
    }
    let mut reports = vec![format!("served {n}")];
    for call in slow {
        let past = Duration::from_millis(u64::from(call.response_timeout_ms) + 500);
        block_on(sleep(past));
        let result = rpc::respond(&call.id, Ok("late"));
        reports.push(format!("late {result:?}"));
    }
    reports
}

fn call(dest: &str, method: &str, timeout_ms: u32, payload: &str) -> String {
    let pending = match rpc::perform(dest, method, payload, timeout_ms) {
        Ok(pending) => pending,
        Err(e) => return format!("call error {e:?}"),
    };
    pending.subscribe().block();
    match pending.get() {
        Some(Ok(answer)) => format!("answer {answer}"),
        Some(Err(e)) => format!("rpc-error {} {}", e.code, e.message),
        None => "call error no answer".into(),
    }
}

fn receive(n: usize) -> Vec<String> {
    let mut reports = Vec::new();
    while reports.len() < n {
        let Some(s) = streams::next_bytes() else {
            streams::subscribe().block();
            continue;
        };
        let attributes: Vec<String> = s
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        reports.push(format!(
            "bytes {} {} {} {} {:?}",
            s.topic,
            s.sender,
            s.bytes.len(),
            attributes.join(","),
            s.incomplete
        ));
    }
    reports
}

/// Runs one step; what it reports.
fn step(ctx: &JobContext, step: &str) -> Vec<String> {
    let words: Vec<&str> = step.split_whitespace().collect();
    let Some((&verb, args)) = words.split_first() else {
        return Vec::new();
    };
    let done = |ok: String, result: Result<(), String>| match result {
        Ok(()) => vec![ok],
        Err(e) => vec![format!("{verb} error {e}")],
    };
    match (verb, args) {
        ("wait", [who]) => {
            // At most 30 s (300 waits of 100 ms for an event, any of
            // which may be the join).
            let room = ctx.room();
            for _ in 0..300 {
                if room.participants().iter().any(|p| p.identity == *who) {
                    return vec![format!("here {who}")];
                }
                let _ = room.next(Some(Duration::from_millis(100)));
            }
            vec![format!("wait error {who} did not come")]
        }
        ("state", [s]) => done(
            format!("state {s}"),
            ctx.room()
                .set_attributes([("lk.agent.state", *s)])
                .map_err(|e| format!("{e:?}")),
        ),
        ("transcribe", [seg, track, text @ ..]) => done(
            format!("transcribed {seg}"),
            stream(
                transcription(seg, track, None, false),
                text,
                vec![pair(FINAL, "true")],
            )
            .map_err(|e| format!("{e:?}")),
        ),
        ("unclosed", [seg, text @ ..]) => {
            let result = streams::open_text(&transcription(seg, "", None, false)).and_then(|w| {
                text.iter()
                    .try_for_each(|word| w.write(&format!("{word} ")))
                // `w` is dropped here, unclosed.
            });
            done(
                format!("dropped {seg}"),
                result.map_err(|e| format!("{e:?}")),
            )
        }
        ("user", [who, seg, text @ ..]) => done(
            format!("user {seg}"),
            stream(
                transcription(seg, "", Some(who.to_string()), true),
                text,
                Vec::new(),
            )
            .map_err(|e| format!("{e:?}")),
        ),
        ("register", methods) => done(
            "registered".into(),
            methods
                .iter()
                .try_for_each(|m| rpc::register(m))
                .map_err(|e| format!("{e:?}")),
        ),
        ("serve", [n]) => serve(n.parse().unwrap_or(0)),
        ("call", [dest, method, timeout, payload @ ..]) => vec![call(
            dest,
            method,
            timeout.parse().unwrap_or(5000),
            &payload.join(" "),
        )],
        ("bigcall", [dest]) => vec![call(dest, "echo", 5000, &"x".repeat(16 * 1024))],
        ("accept", [topic]) => done(
            format!("accepted {topic}"),
            streams::accept_bytes(topic).map_err(|e| format!("{e:?}")),
        ),
        ("receive", [n]) => receive(n.parse().unwrap_or(0)),
        _ => vec![format!("unknown step {step}")],
    }
}

impl Agent for Frontend {
    fn run(ctx: JobContext) -> Result<(), String> {
        let script = ctx.info().metadata;
        for s in script.split(';') {
            for report in step(&ctx, s) {
                ctx.room()
                    .send_text(&report)
                    .map_err(|e| format!("{e:?}"))?;
            }
        }
        Ok(())
    }
}

agent_host_sdk::export_agent!(Frontend);
