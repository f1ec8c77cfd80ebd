//! The host side of each interface the `agent` world imports.
//!
//! Capability policy, enforced here and nowhere else:
//! - a job only ever reaches its own room session (the store holds exactly
//!   one, opened for the job's room); there is no way to name another room;
//! - payloads are capped at [`JobLimits::max_payload_bytes`](crate::JobLimits::max_payload_bytes)
//!   before they reach a transport;
//! - nothing the host knows beyond the job's own info (API key and secret,
//!   environment, files) is reachable through these functions.

mod audio;
mod events;
mod job;
mod log;
mod room;
mod server;

use crate::bindings::types;
use crate::runtime::state::JobState;

impl types::Host for JobState {}
