//! The host side of each interface the `agent` world imports.
//!
//! Capability policy, enforced here and nowhere else:
//! - a job only ever reaches its own room session (the store holds exactly
//!   one, opened for the job's room); there is no way to name another room;
//! - what a guest hands a room, audio or server action (payload, topic,
//!   destination identities, metadata, attribute keys and values, track
//!   names and ids) counts, all of it, against
//!   [`JobLimits::max_payload_bytes`](crate::JobLimits::max_payload_bytes)
//!   before it reaches a transport: a call over it fails with `too-large`
//!   and the job goes on ([`guest_bytes`] is the one way it is counted);
//! - nothing the host knows beyond the job's own info (API key and secret,
//!   environment, files) is reachable through these functions.
//!
//! The types enforce it: each interface is implemented on its own view
//! (wasmtime-wasi's `HasData` pattern), which borrows exactly what that
//! interface may touch from the job's store, and [`add_to_linker`] links
//! each interface with its own view. `server` holds the job's server API
//! scope and the cap, never the room session or the HTTP policy; `job`
//! reads the job's facts and may close its room session, nothing of the
//! session itself; `log` and `types` hold nothing at all. Each view can be
//! built, and each import tested, without a `Store`.
//!
//! `wasi:http` is wasmtime-wasi-http's, linked with its own view
//! (`WasiHttpView` on the job's store); what this host adds to it, the
//! send hook (allow-list, caps, one way out through [`crate::net`]) and
//! the host-memory meter, lives in [`http`]. Outbound WebSockets
//! ([`websocket`]) go the same way out, under the same allow-list.

mod audio;
mod events;
pub(crate) mod http;
mod job;
mod log;
mod room;
pub(crate) mod rpc;
mod server;
pub(crate) mod streams;
#[cfg(test)]
mod testing;
pub(crate) mod websocket;

use wasmtime::component::{HasData, Linker};

pub(crate) use self::audio::{AudioData, AudioView, PublishedTrack};
pub(crate) use self::events::{EventsData, EventsView};
pub(crate) use self::job::{JobData, JobView};
pub(crate) use self::log::{LogData, LogView};
pub(crate) use self::room::{EndSignal, RoomData, RoomLink, RoomView, SessionCloser};
pub(crate) use self::rpc::{Rpc, RpcData, RpcView};
pub(crate) use self::server::{ServerData, ServerView};
pub(crate) use self::streams::{Streams, StreamsData, StreamsView};
pub(crate) use self::websocket::{WebSocketData, WebSocketView, WebSockets};
use crate::bindings::agent_host::agent as wit;

/// A store's data that can lend each import its view, as wasmtime-wasi's
/// `WasiView` lends `wasi:*` theirs.
pub(crate) trait AgentView: Send {
    /// The `job` import's view.
    fn job(&mut self) -> JobView<'_>;
    /// The `room` import's view.
    fn room(&mut self) -> RoomView<'_>;
    /// The `audio` import's view.
    fn audio(&mut self) -> AudioView<'_>;
    /// The `events` import's view.
    fn events(&mut self) -> EventsView<'_>;
    /// The `server` import's view.
    fn server(&mut self) -> ServerView<'_>;
    /// The `websocket` import's view.
    fn websocket(&mut self) -> WebSocketView<'_>;
    /// The `streams` import's view.
    fn streams(&mut self) -> StreamsView<'_>;
    /// The `rpc` import's view.
    fn rpc(&mut self) -> RpcView<'_>;
}

/// Links every interface the `agent` world imports, each on its own view.
pub(crate) fn add_to_linker<T: AgentView + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    wit::types::add_to_linker::<T, Types>(linker, |_| Types)?;
    wit::job::add_to_linker::<T, JobData>(linker, T::job)?;
    wit::room::add_to_linker::<T, RoomData>(linker, T::room)?;
    wit::audio::add_to_linker::<T, AudioData>(linker, T::audio)?;
    wit::events::add_to_linker::<T, EventsData>(linker, T::events)?;
    wit::server::add_to_linker::<T, ServerData>(linker, T::server)?;
    wit::websocket::add_to_linker::<T, WebSocketData>(linker, T::websocket)?;
    wit::streams::add_to_linker::<T, StreamsData>(linker, T::streams)?;
    wit::rpc::add_to_linker::<T, RpcData>(linker, T::rpc)?;
    wit::log::add_to_linker::<T, LogData>(linker, |_| LogView)?;
    Ok(())
}

/// The `types` interface has no functions: its view holds nothing.
struct Types;

impl HasData for Types {
    type Data<'a> = Types;
}

impl wit::types::Host for Types {}

/// What the guest's strings of one call count against the cap: each one's
/// bytes plus one, so a list of empty identities is not free either (on
/// the wire every entry costs its framing).
pub(crate) fn guest_bytes<'a>(parts: impl IntoIterator<Item = &'a str>) -> usize {
    parts.into_iter().map(|s| s.len() + 1).sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_string_counts() {
        assert_eq!(super::guest_bytes([]), 0);
        assert_eq!(super::guest_bytes(["", ""]), 2);
        assert_eq!(super::guest_bytes(["topic", "bob"]), 10);
    }
}
