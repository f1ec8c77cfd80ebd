//! The production room transport: LiveKit's own client library,
//! `liblivekit_ffi.so`, loaded at run time.
//!
//! The library is the Rust client SDK behind a C ABI that takes protobuf
//! `FfiRequest`s and delivers `FfiEvent`s through one callback; the official
//! Python and Node SDKs use the same library. It ships in the `livekit` wheel
//! on PyPI ([`WHEEL_VERSION`] is pinned); `agent-host setup` puts it in the
//! cache where [`find_library`] looks.
//!
//! Parts:
//! - `library`: where the library is, the pinned wheel, errors;
//! - `sys`: the only unsafe code (loading, the four C entry points, the
//!   callback);
//! - `client`: the one client per process: the callback only copies bytes
//!   into a channel, one pump thread decodes and routes them by room handle,
//!   stream handle and async id;
//! - `routes`: where the pump sends audio-stream events and async
//!   callbacks;
//! - `connected`: one connected room as the pump keeps it (participants,
//!   tracks, the job's event queue);
//! - `session`: joining a room, and one job's [`RoomSession`] on it;
//! - `streams`: text streams the job writes, byte streams it receives;
//! - `rpc`: calls to the job and calls it makes;
//! - `handle`: owned handles, each dropped exactly once;
//! - `proto`: the protocol subset (a `.proto` compiled by `build.rs`,
//!   checked against the wheel's schema by a test);
//! - `wheel`: reading the schema embedded in the wheel.
//!
//! Policy: every job has its own room connection (its own room handle), all
//! jobs share the client. A panic of the library fails every session and
//! every later connect: the library cannot be restarted in-process.

mod client;
mod connected;
mod handle;
mod in_flight;
mod library;
mod proto;
mod routes;
mod rpc;
mod rpc_answer;
mod session;
mod streams;
mod sys;
mod wheel;

use std::path::Path;

use futures::FutureExt as _;
use futures::future::BoxFuture;

pub use self::connected::{AUDIO_QUEUE, EVENT_QUEUE};
pub use self::library::{
    DESCRIPTORS_FILE, FfiError, INSTALL_HINT, LIBRARY_ENV, LIBRARY_FILE, LICENSE_FILE, WHEEL_FILE,
    WHEEL_SHA256, WHEEL_VERSION, cache_dir, find_library,
};
pub use self::wheel::{descriptor_from_pb2, descriptor_set};
use super::{ConnectRequest, RoomSession, RoomTransport};
use crate::bindings::types::RoomError;
use client::Client;

/// A [`RoomTransport`] through LiveKit's client library. Cheap to clone;
/// every clone uses the process's one FFI client.
#[derive(Clone)]
pub struct FfiRooms {
    client: &'static Client,
}

impl std::fmt::Debug for FfiRooms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FfiRooms")
            .field("library", &self.client.path())
            .finish()
    }
}

impl FfiRooms {
    /// Loads and initialises the library at `path`. Loading it again
    /// returns the same client; another library after the first is an
    /// error (one client per process).
    pub fn load(path: &Path) -> Result<FfiRooms, FfiError> {
        Ok(FfiRooms {
            client: Client::get_or_load(path)?,
        })
    }

    /// The library in use (canonical path).
    pub fn library_path(&self) -> &Path {
        self.client.path()
    }
}

impl RoomTransport for FfiRooms {
    fn connect(
        &self,
        request: ConnectRequest,
    ) -> BoxFuture<'_, Result<Box<dyn RoomSession>, RoomError>> {
        let client = self.client;
        async move {
            session::connect(client, request)
                .await
                .map(|s| Box::new(s) as Box<dyn RoomSession>)
        }
        .boxed()
    }
}

/// The library for tests that need it. Such tests carry
/// `#[cfg_attr(not(has_livekit_lib), ignore = "needs LiveKit's client library: run `agent-host setup`")]`
/// (`build.rs` sets the cfg when the library is installed, and always on CI).
#[cfg(test)]
pub(crate) mod testing {
    use agent_host_capability::{Capability, require};

    /// The real library, loaded.
    ///
    /// # Panics
    /// When it is not installed (on CI, or when it went away after the
    /// build) or does not load.
    pub(crate) fn rooms() -> super::FfiRooms {
        super::FfiRooms::load(&require(Capability::LivekitLib))
            .expect("the installed library loads")
    }
}

#[cfg(test)]
mod tests;
