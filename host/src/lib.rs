//! agent-host runs LiveKit agents as WebAssembly components: each job is its
//! own component instance, sandboxed, limited and crash-isolated, in one
//! process.
//!
//! The parts, in the order data flows through them:
//! - [`worker`]: the LiveKit agent worker (protocol, offers, job statuses,
//!   reconnect, drain), driven by a [`worker::WorkerHandle`];
//! - [`config`]: every default and bound, with its reason;
//! - [`runtime`]: one wasmtime engine, [`Plugin`]s (compiled guest
//!   versions) in a hot-swappable [`PluginSlot`], and one store per job,
//!   with [`JobLimits`];
//! - [`room`]: how a job reaches its room ([`room::RoomTransport`]), with an
//!   in-memory [`room::sim`] room for the console and tests;
//! - [`net`]: outbound connections (proxies, TLS roots) of the worker,
//!   the server API and guest HTTP;
//! - [`ops`]: the health, worker-info, metrics and admin HTTP server;
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
pub mod guest_build;
pub mod host_memory;
mod imports;
pub mod net;
pub mod ops;
pub mod room;
pub mod room_service;
pub mod runtime;
pub mod watch;
pub mod worker;

pub use limits::{HttpAllowList, HttpRule, JobLimits};

/// Per-job limits in one path: the settings ([`JobLimits`], held by the
/// runtime) and their defaults and fixed bounds (from [`config::job`]).
pub mod limits {
    pub use crate::config::job::{
        CpuQuota, DEFAULT_CPU_WINDOW, DEFAULT_HOST_MEMORY_BYTES, DEFAULT_MEMORY_BYTES,
        MAX_FAILURE_REASON, MAX_LOG_LINE,
    };
    pub(crate) use crate::config::units::human_duration;
    pub use crate::runtime::limits::{HttpAllowList, HttpRule, JobLimits};
}
pub use runtime::{
    JobHandle, LoadedVersion, Offer, Outcome, Plugin, PluginError, PluginSlot, PluginVersion,
    PreparedJob, RoomExit, Runtime, RuntimeConfig, Swap, Terminator,
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
