//! Owned FFI handles: every `FfiOwnedHandle` the library hands out is
//! wrapped in an [`OwnedHandle`] as soon as it is decoded, and released
//! exactly once, when that value is dropped.

use std::fmt;

use super::proto;
use super::sys::Library;

/// A handle the host owns; dropping it releases it in the library.
pub(crate) struct OwnedHandle {
    id: u64,
    lib: &'static Library,
}

impl OwnedHandle {
    /// Takes ownership of `handle` (the invalid id 0 gives none).
    pub(super) fn take(lib: &'static Library, handle: proto::FfiOwnedHandle) -> Option<Self> {
        (handle.id != 0).then_some(OwnedHandle { id: handle.id, lib })
    }

    /// The handle id, for requests that name it.
    pub(super) fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for OwnedHandle {
    fn drop(&mut self) {
        if !self.lib.drop_handle(self.id) {
            tracing::debug!(
                handle = self.id,
                "the LiveKit FFI library did not know a handle it gave out"
            );
        }
    }
}

impl fmt::Debug for OwnedHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OwnedHandle({})", self.id)
    }
}
