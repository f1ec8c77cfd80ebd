//! The modes of the `faulty` guest: what it does, selected by the job
//! metadata (`sleep:500`, `hoard-audio:alice`, …).
//!
//! The guest parses the metadata with [`Mode::from_str`]; tests build it
//! with [`Mode`]'s `Display`, so a scenario cannot be misspelt. The two
//! round-trip for every mode ([`Mode::examples`]), and
//! `tests/tests/faulty_modes.rs` checks that every mode is used by some
//! test in this typed form.
//!
//! No dependencies: the crate is built for the guest (wasm32-wasip2) and
//! for the host's tests.

use std::fmt;
use std::str::FromStr;

/// What `faulty` does for a job. Offer-time modes ([`Mode::on_offer`])
/// shape the answer to the offer; the others shape `run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// `reject`: the offer is answered `Reject`.
    Reject,
    /// `reject-terminate`: the offer is answered `RejectAndTerminate`.
    RejectTerminate,
    /// `stall-offer`: the offer is never answered (the guest sleeps).
    StallOffer,
    /// `accept-oversize:<field>`: accepts with `field` one byte over what
    /// LiveKit lets an agent join with.
    AcceptOversize(Oversize),
    /// `dispatch`: accepts with the offer's dispatch facts as an attribute,
    /// then sends the job's dispatch facts to the room.
    Dispatch,
    /// `ok`: sends `ok from faulty <flavor>` to the room.
    Ok,
    /// `sleep:<ms>`: sleeps on the host clock.
    Sleep(u64),
    /// `fail:<text>`: returns `Err(<text>)`.
    Fail(String),
    /// `trap`: executes `unreachable`.
    Trap,
    /// `panic`: panics.
    Panic,
    /// `loop`: spins forever without calling the host.
    Loop,
    /// `flood-log`: calls `log` in a tight loop, forever.
    FloodLog,
    /// `flood-data`: calls `room.publish-data` in a tight loop, forever.
    FloodData,
    /// `ignore-closed`: reads events until `closed`, then sleeps forever.
    IgnoreClosed,
    /// `oom`: allocates until allocation fails.
    Oom,
    /// `stack`: recurses until the wasm stack overflows.
    Stack,
    /// `audio-misuse`: every misuse of the `audio` import, each answer sent
    /// to the room.
    AudioMisuse,
    /// `resources`: creates host resources until the table is full.
    Resources,
    /// `hoard-fields`: keeps `wasi:http` header sets with 100 KiB values.
    HoardFields,
    /// `hoard-requests`: keeps unsent `wasi:http` requests.
    HoardRequests,
    /// `hoard-responses:<authority>`: keeps unread response bodies from
    /// `http://<authority>/`.
    HoardResponses(String),
    /// `hoard-stdout`: 64 MiB to stdout without a newline.
    HoardStdout,
    /// `hoard-audio:<identity>`: subscribes, reads nothing for 2 s, sends
    /// `audio frames: <n>`.
    HoardAudio(String),
    /// `cpu-burst`: about 9 ms of work, 1 µs of sleep, forever.
    CpuBurst,
    /// `server:<identity>`: every `server` call on `identity`, results to
    /// the room.
    Server(String),
    /// `huge-name:<how>`: fails under frames with a 256 KiB name.
    HugeName(HugeFailure),
    /// `huge-err`: returns a 768 KiB `Err`.
    HugeErr,
    /// `huge-panic`: panics with a 3 MiB message.
    HugePanic,
    /// `huge-output`: a huge log call, stdout line and stderr line.
    HugeOutput,
    /// `huge-fields`: room and server actions with 100 KiB topics or
    /// destination lists.
    HugeFields,
    /// `sandbox[:<port>]`: tries to escape the sandbox (TCP to `port`,
    /// default 80).
    Sandbox(Option<u16>),
    /// `shutdown:<reason>`: calls `job.shutdown(reason)`, reads events until
    /// `closed`, then tries one room action (see the guest's README).
    Shutdown(String),
    /// `set-metadata:<metadata>`: replaces the agent's participant metadata.
    SetMetadata(String),
    /// `audio-unsubscribe:<identity>`: subscribes to `identity`, waits for a
    /// frame, unsubscribes, then counts the frames that still arrive.
    AudioUnsubscribe(String),
    /// `websocket-echo:<count>:<url>`: opens a WebSocket to `url`, sends
    /// `count` messages and waits with `poll` for as many echoes, closes
    /// and waits for the peer's close, then sends `echoed <n> of <count>,
    /// then <the close>` to the room.
    WebsocketEcho {
        /// Messages to send.
        count: u32,
        /// The `ws://` or `wss://` URL.
        url: String,
    },
    /// `websocket-hoard:<url>`: opens WebSockets to `url` until the host
    /// refuses one, reads none of them for 2 s, sends `websockets: <n>,
    /// then <error>` to the room, and ends the job still holding them.
    WebsocketHoard(String),
}

/// The field an `accept-oversize` accept makes too large.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oversize {
    /// `identity`: 257 bytes.
    Identity,
    /// `name`: 257 bytes.
    Name,
    /// `metadata`: 512 KiB + 1.
    Metadata,
    /// `attributes`: one 64 KiB value.
    Attributes,
}

/// How a `huge-name` job fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HugeFailure {
    /// `exit`: `exit(1)`.
    Exit,
    /// `host-call`: a `log` call over what one call may carry.
    HostCall,
    /// `trap`: `unreachable`.
    Trap,
    /// `panic`: a panic.
    Panic,
}

impl Mode {
    /// Whether the mode acts on the offer (the answer) rather than on `run`.
    pub fn on_offer(&self) -> bool {
        matches!(
            self,
            Mode::Reject
                | Mode::RejectTerminate
                | Mode::StallOffer
                | Mode::AcceptOversize(_)
                | Mode::Dispatch
        )
    }

    /// The metadata prefix naming the mode (`sleep` for `sleep:500`).
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Reject => "reject",
            Mode::RejectTerminate => "reject-terminate",
            Mode::StallOffer => "stall-offer",
            Mode::AcceptOversize(_) => "accept-oversize",
            Mode::Dispatch => "dispatch",
            Mode::Ok => "ok",
            Mode::Sleep(_) => "sleep",
            Mode::Fail(_) => "fail",
            Mode::Trap => "trap",
            Mode::Panic => "panic",
            Mode::Loop => "loop",
            Mode::FloodLog => "flood-log",
            Mode::FloodData => "flood-data",
            Mode::IgnoreClosed => "ignore-closed",
            Mode::Oom => "oom",
            Mode::Stack => "stack",
            Mode::AudioMisuse => "audio-misuse",
            Mode::Resources => "resources",
            Mode::HoardFields => "hoard-fields",
            Mode::HoardRequests => "hoard-requests",
            Mode::HoardResponses(_) => "hoard-responses",
            Mode::HoardStdout => "hoard-stdout",
            Mode::HoardAudio(_) => "hoard-audio",
            Mode::CpuBurst => "cpu-burst",
            Mode::Server(_) => "server",
            Mode::HugeName(_) => "huge-name",
            Mode::HugeErr => "huge-err",
            Mode::HugePanic => "huge-panic",
            Mode::HugeOutput => "huge-output",
            Mode::HugeFields => "huge-fields",
            Mode::Sandbox(_) => "sandbox",
            Mode::Shutdown(_) => "shutdown",
            Mode::SetMetadata(_) => "set-metadata",
            Mode::AudioUnsubscribe(_) => "audio-unsubscribe",
            Mode::WebsocketEcho { .. } => "websocket-echo",
            Mode::WebsocketHoard(_) => "websocket-hoard",
        }
    }

    /// One value of every mode (and of every argument enum), for the
    /// round-trip test and the check that every mode has a test.
    pub fn examples() -> Vec<Mode> {
        let mut all = vec![
            Mode::Reject,
            Mode::RejectTerminate,
            Mode::StallOffer,
            Mode::Dispatch,
            Mode::Ok,
            Mode::Sleep(500),
            Mode::Fail("no luck: at all".to_owned()),
            Mode::Trap,
            Mode::Panic,
            Mode::Loop,
            Mode::FloodLog,
            Mode::FloodData,
            Mode::IgnoreClosed,
            Mode::Oom,
            Mode::Stack,
            Mode::AudioMisuse,
            Mode::Resources,
            Mode::HoardFields,
            Mode::HoardRequests,
            Mode::HoardResponses("127.0.0.1:8080".to_owned()),
            Mode::HoardStdout,
            Mode::HoardAudio("alice".to_owned()),
            Mode::CpuBurst,
            Mode::Server("alice".to_owned()),
            Mode::HugeErr,
            Mode::HugePanic,
            Mode::HugeOutput,
            Mode::HugeFields,
            Mode::Sandbox(None),
            Mode::Sandbox(Some(8080)),
            Mode::Shutdown("done: for today".to_owned()),
            Mode::SetMetadata("{\"mood\":\"ok\"}".to_owned()),
            Mode::AudioUnsubscribe("alice".to_owned()),
            Mode::WebsocketEcho {
                count: 100,
                url: "ws://127.0.0.1:8080/echo".to_owned(),
            },
            Mode::WebsocketHoard("ws://127.0.0.1:8080/flood".to_owned()),
        ];
        all.extend(
            [
                Oversize::Identity,
                Oversize::Name,
                Oversize::Metadata,
                Oversize::Attributes,
            ]
            .map(Mode::AcceptOversize),
        );
        all.extend(
            [
                HugeFailure::Exit,
                HugeFailure::HostCall,
                HugeFailure::Trap,
                HugeFailure::Panic,
            ]
            .map(Mode::HugeName),
        );
        all
    }
}

impl Oversize {
    fn as_str(self) -> &'static str {
        match self {
            Oversize::Identity => "identity",
            Oversize::Name => "name",
            Oversize::Metadata => "metadata",
            Oversize::Attributes => "attributes",
        }
    }
}

impl HugeFailure {
    fn as_str(self) -> &'static str {
        match self {
            HugeFailure::Exit => "exit",
            HugeFailure::HostCall => "host-call",
            HugeFailure::Trap => "trap",
            HugeFailure::Panic => "panic",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name();
        match self {
            Mode::AcceptOversize(field) => write!(f, "{name}:{}", field.as_str()),
            Mode::Sleep(ms) => write!(f, "{name}:{ms}"),
            Mode::HugeName(how) => write!(f, "{name}:{}", how.as_str()),
            Mode::Sandbox(Some(port)) => write!(f, "{name}:{port}"),
            Mode::WebsocketEcho { count, url } => write!(f, "{name}:{count}:{url}"),
            Mode::Fail(arg)
            | Mode::HoardResponses(arg)
            | Mode::HoardAudio(arg)
            | Mode::Server(arg)
            | Mode::Shutdown(arg)
            | Mode::SetMetadata(arg)
            | Mode::AudioUnsubscribe(arg)
            | Mode::WebsocketHoard(arg) => write!(f, "{name}:{arg}"),
            _ => f.write_str(name),
        }
    }
}

/// Metadata that names no mode, with the message the guest fails with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownMode(String);

impl fmt::Display for UnknownMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UnknownMode {}

impl FromStr for Mode {
    type Err = UnknownMode;

    /// Parses job metadata; the argument is everything after the first `:`.
    fn from_str(metadata: &str) -> Result<Mode, UnknownMode> {
        let unknown = || UnknownMode(format!("unknown mode '{metadata}'"));
        let (name, arg) = match metadata.split_once(':') {
            Some((name, arg)) => (name, Some(arg)),
            None => (metadata, None),
        };
        let text = |arg: &str| arg.to_owned();
        Ok(match (name, arg) {
            ("reject", None) => Mode::Reject,
            ("reject-terminate", None) => Mode::RejectTerminate,
            ("stall-offer", None) => Mode::StallOffer,
            ("accept-oversize", Some(field)) => Mode::AcceptOversize(match field {
                "identity" => Oversize::Identity,
                "name" => Oversize::Name,
                "metadata" => Oversize::Metadata,
                "attributes" => Oversize::Attributes,
                _ => return Err(unknown()),
            }),
            ("dispatch", None) => Mode::Dispatch,
            ("ok", None) => Mode::Ok,
            ("sleep", Some(ms)) => Mode::Sleep(
                ms.parse()
                    .map_err(|e| UnknownMode(format!("bad sleep time '{ms}': {e}")))?,
            ),
            ("fail", Some(reason)) => Mode::Fail(text(reason)),
            ("trap", None) => Mode::Trap,
            ("panic", None) => Mode::Panic,
            ("loop", None) => Mode::Loop,
            ("flood-log", None) => Mode::FloodLog,
            ("flood-data", None) => Mode::FloodData,
            ("ignore-closed", None) => Mode::IgnoreClosed,
            ("oom", None) => Mode::Oom,
            ("stack", None) => Mode::Stack,
            ("audio-misuse", None) => Mode::AudioMisuse,
            ("resources", None) => Mode::Resources,
            ("hoard-fields", None) => Mode::HoardFields,
            ("hoard-requests", None) => Mode::HoardRequests,
            ("hoard-responses", Some(authority)) => Mode::HoardResponses(text(authority)),
            ("hoard-stdout", None) => Mode::HoardStdout,
            ("hoard-audio", Some(identity)) => Mode::HoardAudio(text(identity)),
            ("cpu-burst", None) => Mode::CpuBurst,
            ("server", Some(identity)) => Mode::Server(text(identity)),
            ("huge-name", Some(how)) => Mode::HugeName(match how {
                "exit" => HugeFailure::Exit,
                "host-call" => HugeFailure::HostCall,
                "trap" => HugeFailure::Trap,
                "panic" => HugeFailure::Panic,
                _ => return Err(UnknownMode(format!("unknown way to fail '{how}'"))),
            }),
            ("huge-err", None) => Mode::HugeErr,
            ("huge-panic", None) => Mode::HugePanic,
            ("huge-output", None) => Mode::HugeOutput,
            ("huge-fields", None) => Mode::HugeFields,
            ("sandbox", None) => Mode::Sandbox(None),
            ("sandbox", Some(port)) => Mode::Sandbox(Some(
                port.parse()
                    .map_err(|e| UnknownMode(format!("bad port '{port}': {e}")))?,
            )),
            ("shutdown", Some(reason)) => Mode::Shutdown(text(reason)),
            ("set-metadata", Some(metadata)) => Mode::SetMetadata(text(metadata)),
            ("audio-unsubscribe", Some(identity)) => Mode::AudioUnsubscribe(text(identity)),
            ("websocket-echo", Some(arg)) => {
                let (count, url) = arg.split_once(':').ok_or_else(unknown)?;
                Mode::WebsocketEcho {
                    count: count
                        .parse()
                        .map_err(|e| UnknownMode(format!("bad count '{count}': {e}")))?,
                    url: text(url),
                }
            }
            ("websocket-hoard", Some(url)) => Mode::WebsocketHoard(text(url)),
            _ => return Err(unknown()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_round_trips() {
        for mode in Mode::examples() {
            let text = mode.to_string();
            assert_eq!(text.parse::<Mode>(), Ok(mode.clone()), "{text}");
            assert!(text.starts_with(mode.name()), "{text}");
        }
    }

    #[test]
    fn the_examples_cover_every_name() {
        let mut names: Vec<&str> = Mode::examples().iter().map(Mode::name).collect();
        names.dedup();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(names.len(), unique.len(), "examples of a mode are adjacent");
        // One per variant of `Mode` (the match in `name` lists them all).
        assert_eq!(unique.len(), 36);
    }

    #[test]
    fn bad_metadata_says_why() {
        let err = |m: &str| m.parse::<Mode>().unwrap_err().to_string();
        assert_eq!(err(""), "unknown mode ''");
        assert_eq!(err("sleep"), "unknown mode 'sleep'");
        assert_eq!(err("ok:1"), "unknown mode 'ok:1'");
        assert_eq!(
            err("accept-oversize:size"),
            "unknown mode 'accept-oversize:size'"
        );
        assert!(err("sleep:soon").starts_with("bad sleep time 'soon': "));
        assert!(err("sandbox:http").starts_with("bad port 'http': "));
        assert_eq!(err("huge-name:gently"), "unknown way to fail 'gently'");
    }

    #[test]
    fn an_argument_keeps_its_colons() {
        let mode: Mode = "hoard-responses:127.0.0.1:80".parse().unwrap();
        assert_eq!(mode, Mode::HoardResponses("127.0.0.1:80".to_owned()));
    }
}
