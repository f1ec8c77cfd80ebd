//! agent-host runs LiveKit agents as WebAssembly components: each job is its
//! own component instance, sandboxed, limited and crash-isolated, in one
//! process.
//!
//! The parts, in the order data flows through them:
//! - [`protocol`]: the wire to LiveKit's agent service (connection, worker
//!   token, registration, codec, keepalive, reconnect backoff), and the
//!   guest's view of what the server sends;
//! - [`worker`]: the LiveKit agent worker (offers, job statuses, drain),
//!   driven by a [`worker::WorkerHandle`];
//! - [`runtime`]: one wasmtime engine, [`Plugin`]s (compiled guest
//!   versions) in a hot-swappable [`PluginSlot`], and one store per job,
//!   with [`JobLimits`];
//! - [`room`]: how a job reaches its room ([`room::RoomTransport`]), with an
//!   in-memory [`room::sim`] room for the console and tests;
//! - [`net`]: outbound connections of the worker, the server API and guest
//!   HTTP: an I/O-free [`net::policy`] (allow-list, egress address rules),
//!   then resolve, check, connect, proxies and TLS roots;
//! - [`ops`]: the health, worker-info, metrics and admin HTTP server;
//! - [`config`]: every default and bound, with its reason, in one table;
//! - [`guest_build`] and [`watch`]: building guest crates, and watching
//!   plugins for changes;
//! - [`wit`]: the types of the WIT contract (`wit/agent.wit`), as the host
//!   sees them.
//!
//! The `agent-host` binary is a thin layer over this library.

#![deny(missing_docs)]

#[allow(missing_docs)] // generated; the WIT carries the docs
mod bindings;
mod bounded;
pub mod config;
mod dirs;
pub mod guest_build;
pub mod host_memory;
mod imports;
mod livekit_url;
pub mod net;
pub mod ops;
pub mod protocol;
pub mod room;
pub mod runtime;
pub mod watch;
pub mod worker;

pub use net::credential::{Credential, Credentials};
pub use net::policy::{HttpAllowList, HttpRule};
pub use runtime::limits::JobLimits;
pub use runtime::{
    Footprint, JobHandle, LoadedVersion, Offer, Outcome, Plugin, PluginError, PluginSlot,
    PluginVersion, PreparedJob, RoomExit, Runtime, RuntimeConfig, Swap, Terminator,
};

/// The types of the WIT contract, generated from `wit/agent.wit`.
pub mod wit {
    pub use crate::bindings::types::*;

    /// Audio types (`agent-host:agent/audio`).
    pub mod audio {
        pub use crate::bindings::audio::{AudioFormat, AudioFrame, TrackInfo, TrackKind};
    }

    /// The combined event stream (`agent-host:agent/events`).
    pub mod events {
        pub use crate::bindings::events::Event;
    }
}
