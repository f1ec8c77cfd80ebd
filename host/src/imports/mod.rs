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

mod audio;
mod events;
mod job;
mod log;
mod room;
mod server;

use crate::bindings::types;
use crate::runtime::state::JobState;

impl types::Host for JobState {}

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
