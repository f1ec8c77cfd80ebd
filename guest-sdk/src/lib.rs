//! Write [LiveKit](https://livekit.io) agents that run as WebAssembly
//! components on **agent-host**.
//!
//! A guest is a `cdylib` crate that depends on this crate only. It implements
//! [`Agent`] for a type and names that type in [`export_agent!`]; nothing else
//! is needed in its `lib.rs`. One component instance runs one job: the host
//! calls [`Agent::on_request`] with the job offer and, if the agent accepts and
//! the server assigns the job, [`Agent::run`] on the same instance. The job
//! ends when `run` returns.
//!
//! ```no_run
//! use agent_host_sdk::{Agent, JobContext, RoomEvent};
//!
//! struct Echo;
//!
//! impl Agent for Echo {
//!     fn run(ctx: JobContext) -> Result<(), String> {
//!         let room = ctx.room();
//!         agent_host_sdk::info!("job {} started", ctx.info().id);
//!         for event in room.events() {
//!             match event {
//!                 RoomEvent::TextReceived(msg) => {
//!                     // `?` works: `RoomError` converts into `String`.
//!                     room.send_text_to(&[&msg.sender], &msg.text)?;
//!                 }
//!                 RoomEvent::Closed(reason) => {
//!                     agent_host_sdk::info!("room closed: {reason:?}");
//!                 }
//!                 _ => {}
//!             }
//!         }
//!         Ok(())
//!     }
//! }
//!
//! agent_host_sdk::export_agent!(Echo);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2`; the result in
//! `target/wasm32-wasip2/release/<crate>.wasm` is a component the host runs.
//!
//! # Async agents: the room, HTTP, WebSockets and timers at once
//!
//! An [`AsyncAgent`], exported with `export_agent!(async MyAgent)`, has an
//! async `run` on the [`wstd`] executor ([`task`] says why that one). It
//! awaits room events ([`Room::recv`], [`Room::stream`]), outbound HTTP
//! ([`http`]), WebSockets ([`websocket`]) and timers ([`sleep`],
//! [`timeout`]), and [`spawn`]s tasks; whenever every task waits, the job
//! makes one `wasi:io/poll` call over all of them. The blocking API above
//! stays for agents that do one thing at a time.
//!
//! One task per slow thing keeps the room answered, as in
//! `examples/assistant`:
//!
//! ```no_run
//! use agent_host_sdk::{AsyncAgent, JobContext, RoomEvent, http, spawn};
//!
//! struct Fetcher;
//!
//! impl AsyncAgent for Fetcher {
//!     async fn run(ctx: JobContext) -> Result<(), String> {
//!         let room = ctx.room();
//!         let mut tasks = Vec::new();
//!         let mut events = room.stream();
//!         while let Some(event) = events.next().await {
//!             let RoomEvent::TextReceived(msg) = event else { continue };
//!             if msg.text == "ping" {
//!                 // Answered at once, whatever the fetches below are doing.
//!                 room.send_text_to(&[&msg.sender], "pong")?;
//!                 continue;
//!             }
//!             tasks.push(spawn(async move {
//!                 let answer = match http::get(&msg.text).send().await {
//!                     Ok(response) => response.status().to_string(),
//!                     Err(err) => format!("error: {err}"),
//!                 };
//!                 let _ = room.send_text_to(&[&msg.sender], &answer);
//!             }));
//!         }
//!         Ok(())
//!     }
//! }
//!
//! agent_host_sdk::export_agent!(async Fetcher);
//! ```
//!
//! Or wait on two things in one task with
//! [`futures_lite::future::or`]: here the room
//! and a streamed HTTP body, whichever has something first (neither loses
//! anything when the other wins):
//!
//! ```no_run
//! # async fn example(room: agent_host_sdk::Room) -> Result<(), String> {
//! use agent_host_sdk::futures_lite::future;
//! use agent_host_sdk::{RoomEvent, http};
//!
//! enum Next {
//!     Room(RoomEvent),
//!     Body(Result<Option<http::Bytes>, http::Error>),
//! }
//!
//! let mut response = http::get("https://example.com/stream").send().await?;
//! loop {
//!     let next = future::or(
//!         async { Next::Room(room.recv().await) },
//!         async { Next::Body(response.chunk().await) },
//!     )
//!     .await;
//!     match next {
//!         Next::Room(RoomEvent::Closed(_)) => break,
//!         Next::Room(event) => agent_host_sdk::info!("{event:?}"),
//!         Next::Body(Ok(Some(chunk))) => agent_host_sdk::info!("{} bytes", chunk.len()),
//!         Next::Body(Ok(None)) => break,
//!         Next::Body(Err(err)) => return Err(err.into()),
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! [`http`] sends requests with JSON bodies, streams responses and parses
//! server-sent events ([`sse`]); [`websocket`] opens outbound WebSockets.
//! Both reach only what the host's allow-list names, and the host adds the
//! operator's credentials for a destination itself: a guest never needs an
//! API key.
//!
//! # Audio
//!
//! [`JobContext::audio`] subscribes to participants' voices and publishes
//! the agent's own; frames arrive as [`Event::Audio`] from
//! [`Room::all_events`] (or [`Room::recv_any`]). See `examples/parrot`.
//!
//! # Voice agents
//!
//! [`voice`] is a voice pipeline a guest composes in a few lines: a
//! [`voice::VoiceSession`] listens to a participant (voice-activity
//! detection and end of turn in the guest), transcribes, streams an LLM's
//! answer and speaks it sentence by sentence, stops at once when
//! interrupted, and publishes what LiveKit's frontends show: the
//! `lk.agent.state` attribute and both sides' transcriptions on
//! `lk.transcription`. Providers sit behind traits, with OpenAI-compatible
//! and Deepgram-compatible implementations; keys stay on the host
//! (`--credential`). See `examples/voice`.
//!
//! ```no_run
//! use agent_host_sdk::voice::{OpenAiLlm, OpenAiStt, OpenAiTts, VoiceSession};
//! use agent_host_sdk::{AsyncAgent, JobContext};
//!
//! struct Voice;
//!
//! impl AsyncAgent for Voice {
//!     async fn run(ctx: JobContext) -> Result<(), String> {
//!         let base = "https://api.openai.com/v1";
//!         VoiceSession::builder()
//!             .stt(OpenAiStt::new(base, "whisper-1"))
//!             .llm(OpenAiLlm::new(base, "gpt-4o-mini"))
//!             .tts(OpenAiTts::new(base, "tts-1", "alloy"))
//!             .instructions("You are a helpful voice assistant.")
//!             .build()?
//!             .run(ctx)
//!             .await
//!     }
//! }
//!
//! agent_host_sdk::export_agent!(async Voice);
//! ```
//!
//! Its parts are LiveKit's data streams and RPC, usable alone: [`streams`]
//! writes text streams incrementally with attributes ([`TextWriter`]) and
//! receives byte streams; [`rpc`] registers methods, answers calls and
//! performs calls on participants.
//!
//! # The sandbox
//!
//! Besides the imports wrapped here the host provides WASI 0.2 with no ambient
//! authority: clocks and random numbers are real (so [`std::thread::sleep`]
//! and [`std::time::Instant`] work, though an async agent sleeps with
//! [`sleep`]), stdout and stderr go to the job's log, and there is no
//! environment and no file system. The network is outbound HTTP and
//! WebSockets to the destinations on the host's allow-list (empty by
//! default, which denies all).
//!
//! # Prewarm: state built once per plugin version
//!
//! `export_agent!(MyAgent, prewarm = my_prewarm)` runs `my_prewarm` once
//! when the host loads the plugin; the memory it fills (a lookup table, a
//! decoded model) is snapshotted, and every job starts with it. See
//! [`export_agent!`] and `examples/prewarm`.
//!
//! # Version markers
//!
//! [`export_agent!`] embeds two custom sections in the component, which the
//! host reads before instantiating it:
//!
//! * `agent-host:sdk-version`: the version of the WIT package
//!   `agent-host:agent` this SDK targets ([`WIT_VERSION`]);
//! * `agent-host:guest-version`: the guest crate's own `CARGO_PKG_VERSION`.

#![deny(missing_docs)]

// Lets the generated code name this crate as `::agent_host_sdk` (its
// `runtime_path`), the same path that works from guest crates.
extern crate self as agent_host_sdk;

#[doc(hidden)]
#[path = "bindings.rs"]
pub mod __bindings;

#[doc(hidden)]
#[path = "bindings_prewarm.rs"]
pub mod __bindings_prewarm;

mod audio;
pub mod http;
mod job;
pub mod log;
mod room;
mod room_async;
pub mod rpc;
mod server;
pub mod sse;
pub mod streams;
pub mod task;
pub mod voice;
pub mod websocket;

pub use audio::{Audio, AudioFormat, AudioFrame, TrackInfo, TrackKind};
pub use job::JobContext;
pub use room::{AllEvents, CHAT_TOPIC, DataOptions, Events, Room, RoomError, TextOptions};
pub use room_async::EventStream;
pub use rpc::{Invocation, RpcError};
pub use server::Server;
pub use streams::{ByteStream, TextStreamOptions, TextWriter};
pub use task::{Elapsed, Task, block_on, sleep, spawn, timeout, yield_now};

/// Select-style waits and other future helpers (`future::or`,
/// `future::zip`, `pin!`), re-exported so that a guest needs no dependency
/// of its own; the version wstd uses.
pub use futures_lite;

pub use __bindings::agent_host::agent::events::Event;

pub use __bindings::agent_host::agent::types::{
    AcceptOptions, CloseReason, DataPacket, Decision, DispatchInfo, JobInfo, JobRequest, JobType,
    Participant, ParticipantKind, RoomEvent, RoomInfo, TextMessage,
};

/// The version of the WIT package `agent-host:agent` this SDK is built
/// against; written to the `agent-host:sdk-version` custom section.
pub const WIT_VERSION: &str = "0.1.5";

/// A LiveKit agent: the behaviour of one job.
///
/// Both functions are associated functions (no `self`): a fresh component
/// instance is created for each job, so per-job state lives in locals of
/// [`Agent::run`], not in the type.
pub trait Agent {
    /// Answer a job offer. Default: accept with the host's default identity.
    fn on_request(request: JobRequest) -> Decision {
        let _ = request;
        Decision::Accept(AcceptOptions::default())
    }

    /// The job body. `Ok(())` ends the job as a success, `Err(reason)` as a
    /// failure.
    fn run(ctx: JobContext) -> Result<(), String>;
}

/// A LiveKit agent whose job body is async: it can wait on its room, HTTP
/// responses, WebSockets and timers at once, and [`spawn`] tasks.
///
/// Exported with `export_agent!(async MyAgent)`. `run` runs inside
/// [`block_on`]; the job ends when it returns and every detached task is
/// done (tasks whose handles were dropped are cancelled: keep the handles
/// of tasks that wait on the room or a socket, as `examples/assistant`
/// does, rather than detaching them).
///
/// ```no_run
/// use agent_host_sdk::{AsyncAgent, JobContext, RoomEvent};
///
/// struct Echo;
///
/// impl AsyncAgent for Echo {
///     async fn run(ctx: JobContext) -> Result<(), String> {
///         let room = ctx.room();
///         let mut events = room.stream();
///         while let Some(event) = events.next().await {
///             if let RoomEvent::TextReceived(msg) = event {
///                 room.send_text_to(&[&msg.sender], &msg.text)?;
///             }
///         }
///         Ok(())
///     }
/// }
///
/// agent_host_sdk::export_agent!(async Echo);
/// ```
pub trait AsyncAgent {
    /// Answer a job offer (not async: the host waits for the answer).
    /// Default: accept with the host's default identity.
    fn on_request(request: JobRequest) -> Decision {
        let _ = request;
        Decision::Accept(AcceptOptions::default())
    }

    /// The job body. `Ok(())` ends the job as a success, `Err(reason)` as a
    /// failure.
    fn run(ctx: JobContext) -> impl std::future::Future<Output = Result<(), String>>;
}

impl Default for AcceptOptions {
    /// Empty identity (the host picks `agent-<job id>`), name, metadata and
    /// attributes.
    fn default() -> Self {
        AcceptOptions {
            identity: String::new(),
            name: String::new(),
            metadata: String::new(),
            attributes: Vec::new(),
        }
    }
}

/// Export a type implementing [`Agent`] (or, with `async` before it,
/// [`AsyncAgent`]) as the component's `on-request` and `run`, and embed the
/// version markers.
///
/// Use it once, at the top level of the guest crate:
///
/// ```no_run
/// struct MyAgent;
///
/// impl agent_host_sdk::Agent for MyAgent {
///     fn run(_ctx: agent_host_sdk::JobContext) -> Result<(), String> {
///         Ok(())
///     }
/// }
///
/// agent_host_sdk::export_agent!(MyAgent);
/// ```
///
/// and for an [`AsyncAgent`], `agent_host_sdk::export_agent!(async MyAgent);`.
///
/// # Prewarm
///
/// `export_agent!(MyAgent, prewarm = my_prewarm)` (or `async MyAgent,
/// prewarm = ...`) also exports `my_prewarm`, a `fn() -> Result<(), String>`,
/// as the `prewarm` of the `agent-prewarm` world (WIT 0.1.5). The host
/// calls it once per plugin version, when it loads it, and snapshots the
/// memory it leaves: every job of that version starts with what it built,
/// at no cost per job (pages are shared copy-on-write until a job writes
/// them). Keep the results in `static`s ([`std::sync::OnceLock`],
/// [`std::sync::LazyLock`]) and read them in `run`:
///
/// ```no_run
/// use std::sync::OnceLock;
///
/// static SQUARES: OnceLock<Vec<u64>> = OnceLock::new();
///
/// fn prewarm() -> Result<(), String> {
///     SQUARES.set((0..1_000_000).map(|i| i * i).collect()).map_err(|_| "set twice")?;
///     Ok(())
/// }
///
/// struct MyAgent;
///
/// impl agent_host_sdk::Agent for MyAgent {
///     fn run(ctx: agent_host_sdk::JobContext) -> Result<(), String> {
///         // Computed here if the host did not prewarm (an older host).
///         let squares = SQUARES.get_or_init(|| (0..1_000_000).map(|i| i * i).collect());
///         ctx.room().send_text(&format!("999² = {}", squares[999]))?;
///         Ok(())
///     }
/// }
///
/// agent_host_sdk::export_agent!(MyAgent, prewarm = prewarm);
/// ```
///
/// An [`AsyncAgent`] takes the same hook:
///
/// ```no_run
/// struct Fetcher;
///
/// impl agent_host_sdk::AsyncAgent for Fetcher {
///     async fn run(_ctx: agent_host_sdk::JobContext) -> Result<(), String> {
///         Ok(())
///     }
/// }
///
/// fn load_model() -> Result<(), String> {
///     Ok(())
/// }
///
/// agent_host_sdk::export_agent!(async Fetcher, prewarm = load_model);
/// ```
///
/// A prewarm may compute, allocate, log, and read random numbers and the
/// clocks; the job, the room, HTTP and WebSockets trap, since there is no
/// job yet. It must not keep a handle open (a snapshot holds memory, not
/// handles): log with [`info!`] rather than `println!`, whose stdout
/// stream std may keep. What it read from random or the
/// clocks is the same in every job. A prewarm that fails, traps or exceeds
/// the job limits makes the host refuse the version, with the reason.
///
/// The expansion refers to this crate as `::agent_host_sdk`, so the
/// dependency must not be renamed in the guest's `Cargo.toml`.
#[macro_export]
macro_rules! export_agent {
    (async $agent:ty, prewarm = $prewarm:path) => {
        $crate::__export_agent_prewarm!($agent, AsyncAgent, run_async, $prewarm);
    };
    ($agent:ty, prewarm = $prewarm:path) => {
        $crate::__export_agent_prewarm!($agent, Agent, run, $prewarm);
    };
    (async $agent:ty) => {
        $crate::__export_agent!($agent, AsyncAgent, run_async);
    };
    ($agent:ty) => {
        $crate::__export_agent!($agent, Agent, run);
    };
}

/// The expansion of [`export_agent!`]: `$trait` is `Agent` or
/// `AsyncAgent`, `$run` the `__private` function that runs it.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_agent {
    ($agent:ty, $trait:ident, $run:ident) => {
        const _: () = {
            struct __AgentHostExport;

            impl $crate::__bindings::Guest for __AgentHostExport {
                fn on_request(request: $crate::JobRequest) -> $crate::Decision {
                    <$agent as $crate::$trait>::on_request(request)
                }

                fn run() -> ::core::result::Result<(), ::std::string::String> {
                    $crate::__private::$run::<$agent>()
                }
            }

            $crate::__bindings::__export_agent_world!(
                __AgentHostExport with_types_in $crate::__bindings
            );

            $crate::__version_markers!();
        };
    };
}

/// The expansion of [`export_agent!`] with a prewarm hook: the
/// `agent-prewarm` world's exports.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_agent_prewarm {
    ($agent:ty, $trait:ident, $run:ident, $prewarm:path) => {
        const _: () = {
            struct __AgentHostExport;

            impl $crate::__bindings_prewarm::Guest for __AgentHostExport {
                fn on_request(request: $crate::JobRequest) -> $crate::Decision {
                    <$agent as $crate::$trait>::on_request(request)
                }

                fn run() -> ::core::result::Result<(), ::std::string::String> {
                    $crate::__private::$run::<$agent>()
                }

                fn prewarm() -> ::core::result::Result<(), ::std::string::String> {
                    let hook: fn() -> ::core::result::Result<(), ::std::string::String> = $prewarm;
                    hook()
                }
            }

            $crate::__bindings_prewarm::__export_agent_prewarm_world!(
                __AgentHostExport with_types_in $crate::__bindings_prewarm
            );

            // Links the `agent-prewarm` world's type section (see
            // `bindings_prewarm.rs`): only guests with a hook export `prewarm`.
            #[cfg(target_arch = "wasm32")]
            #[used]
            static __AGENT_HOST_PREWARM_WORLD: fn() =
                $crate::__bindings_prewarm::__link_custom_section_describing_imports;

            $crate::__version_markers!();
        };
    };
}

/// The version markers' custom sections, emitted in the guest crate rather
/// than in the SDK so that they are part of the guest's own object code
/// and always linked.
#[doc(hidden)]
#[macro_export]
macro_rules! __version_markers {
    () => {
        #[used]
        #[unsafe(link_section = "agent-host:sdk-version")]
        static __AGENT_HOST_SDK_VERSION: [u8; $crate::WIT_VERSION.len()] =
            $crate::__private::bytes($crate::WIT_VERSION);

        const __AGENT_HOST_GUEST_VERSION_STR: &str = ::core::env!("CARGO_PKG_VERSION");
        #[used]
        #[unsafe(link_section = "agent-host:guest-version")]
        static __AGENT_HOST_GUEST_VERSION: [u8; __AGENT_HOST_GUEST_VERSION_STR.len()] =
            $crate::__private::bytes(__AGENT_HOST_GUEST_VERSION_STR);
    };
}

/// Support for [`export_agent!`]; not part of the API.
#[doc(hidden)]
pub mod __private {
    use crate::{Agent, AsyncAgent, JobContext};

    /// Calls the agent's `run` with a fresh context.
    pub fn run<A: Agent>() -> Result<(), String> {
        A::run(JobContext::new())
    }

    /// Runs the async agent's `run` with a fresh context to its end.
    pub fn run_async<A: AsyncAgent>() -> Result<(), String> {
        crate::block_on(A::run(JobContext::new()))
    }

    /// The bytes of `s` as an array, for `link_section` statics.
    pub const fn bytes<const N: usize>(s: &str) -> [u8; N] {
        let src = s.as_bytes();
        assert!(src.len() == N, "length mismatch");
        let mut out = [0u8; N];
        let mut i = 0;
        while i < N {
            out[i] = src[i];
            i += 1;
        }
        out
    }
}

/// wit-bindgen's runtime, for the generated code (`runtime_path`).
#[doc(hidden)]
pub use wit_bindgen::rt as __rt;

#[cfg(test)]
mod tests {
    #[test]
    fn wit_version_matches_the_wit_package() {
        let wit = include_str!("../wit/agent.wit");
        let expected = format!("package agent-host:agent@{};", super::WIT_VERSION);
        assert!(
            wit.lines().any(|line| line.trim() == expected),
            "WIT_VERSION does not match the package line of wit/agent.wit"
        );
    }

    #[test]
    fn bytes_copies_the_string() {
        let b: [u8; 5] = super::__private::bytes("0.1.0");
        assert_eq!(&b, b"0.1.0");
    }
}
