//! The async runtime: run futures, spawn tasks, sleep, time out.
//!
//! Everything here runs on the Bytecode Alliance's [`wstd`] executor, one
//! per job: [`block_on`] drives a future to its end on the job's single
//! thread, and whenever every task waits it makes **one**
//! `wasi:io/poll.poll` call over all the pollables they wait on: room
//! events (`events.subscribe`), HTTP bodies, WebSockets and timers alike.
//! An [`AsyncAgent`](crate::AsyncAgent)'s `run` is already inside
//! `block_on`; a blocking [`Agent`](crate::Agent) can call it itself.
//!
//! Policy and invariants:
//! - One executor per job, never nested: `block_on` inside `block_on`
//!   panics (wstd's rule), and the async functions of this crate need one
//!   running (they panic outside it).
//! - A task runs until it awaits; a blocking call (such as
//!   [`Room::next_event`](crate::Room::next_event) or
//!   [`std::thread::sleep`]) inside a task stalls every task of the job.
//! - A [`Task`] is cancelled when its handle is dropped; [`Task::detach`]
//!   lets it run on. `block_on` returns once its future is done and every
//!   detached task has finished or waits on nothing: a detached task that
//!   keeps awaiting the room or a socket keeps the job from ending.
//! - Dropping a future of this crate at an `await` loses nothing: a room
//!   event, a body chunk or a WebSocket message is only taken from the host
//!   once it is there, in the same poll that returns it.
//!
//! # Why wstd, not an executor of our own
//!
//! An executor over `wasi:io/poll` is about 150 lines (a ready list, a
//! table of pollables, one `poll` call when idle). We use wstd's instead:
//! - it is maintained upstream by the Bytecode Alliance, next to wasmtime
//!   and `wasi:http`;
//! - it waits on the same `Pollable` type as our bindings (the `wasip2`
//!   crate, which the SDK's `wasi:io/poll` is mapped to), so
//!   `AsyncPollable::new(events::subscribe())` joins the same `poll` as its
//!   own HTTP bodies and timers, with no glue;
//! - it brings what we would otherwise write and test ourselves: an HTTP
//!   client with streamed bodies and the `wasi:http` request options,
//!   timers, `spawn`.
//!
//! Against it: size and version coupling. Measured on the examples
//! (release, LTO, debug info stripped; `ls -l target/guests/...`): `echo`
//! is 62 KiB blocking and 88 KiB written as an `AsyncAgent` (the
//! executor: 26 KiB); `http-fetch` is 115 KiB on the raw `wasi:http`
//! bindings and 348 KiB on [`crate::http`], whose client brings the `http`,
//! `http-body` and `anyhow` crates. And wstd pins a `wasip2` 1.0 and a
//! `futures-lite` 1.x, so a guest crate that wants other versions of those
//! gets two copies. Both are small against a guest that talks to model
//! providers, and a guest that wants neither keeps the blocking API, which
//! links none of it.
//!
//! # Waiting on two things at once
//!
//! [`futures_lite::future::or`] (re-exported as [`crate::futures_lite`])
//! polls two futures and returns the first one's output; wrap each side
//! in its own variant to tell them apart. See the crate documentation for
//! a room and an HTTP stream at once.
//!
//! One caution, from wstd 0.6.8: an HTTP body read ([`crate::http`]'s
//! `chunk`) dropped mid-wait, the loser of an `or`, leaves the body
//! registered on its pollable. While that body has data and its task then
//! awaits something else (a [`sleep`]), every `poll` returns at once and
//! the executor keeps waking the task: the job spins, and the host stops
//! it as a runaway after its CPU slice. Race a body only against things
//! that end the body's use, or read each body in a task of its own; the
//! voice pipeline's player waits in one blocking `poll` for this reason.

use std::fmt;
use std::future::Future;
use std::time::Duration;

pub use wstd::runtime::{Task, block_on, spawn};

/// Wait for `duration`, letting the job's other tasks run meanwhile.
pub async fn sleep(duration: Duration) {
    wstd::task::sleep(duration.into()).await;
}

/// Yield once to the job's other tasks, for a long computation that wants
/// to let them in.
pub async fn yield_now() {
    futures_lite::future::yield_now().await;
}

/// Run `future` for at most `duration`: its output, or [`Elapsed`] (and
/// `future` is dropped) if it took longer.
///
/// ```no_run
/// # async fn example(room: agent_host_sdk::Room) {
/// use std::time::Duration;
/// match agent_host_sdk::timeout(Duration::from_secs(5), room.recv()).await {
///     Ok(event) => agent_host_sdk::info!("{event:?}"),
///     Err(elapsed) => agent_host_sdk::info!("a quiet room: {elapsed}"),
/// }
/// # }
/// ```
pub async fn timeout<F: Future>(duration: Duration, future: F) -> Result<F::Output, Elapsed> {
    futures_lite::future::or(async { Ok(future.await) }, async {
        sleep(duration).await;
        Err(Elapsed(duration))
    })
    .await
}

/// What [`timeout`] returns when the time ran out: the duration it allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(pub Duration);

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timed out after {:?}", self.0)
    }
}

impl std::error::Error for Elapsed {}

/// Lets `?` turn an [`Elapsed`] into the `Err(String)` of a job's `run`.
impl From<Elapsed> for String {
    fn from(elapsed: Elapsed) -> Self {
        elapsed.to_string()
    }
}

/// Waits until `pollable` is ready, in the running executor.
pub(crate) async fn ready(pollable: wasip2::io::poll::Pollable) {
    wstd::runtime::AsyncPollable::new(pollable).wait_for().await;
}
