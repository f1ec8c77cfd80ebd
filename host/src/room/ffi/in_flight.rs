//! What a connected room holds for the job's RPC calls and byte streams
//! in flight: state only, so that [`ConnectedRoom`](super::connected)
//! can hold it without depending on the modules that act on it
//! ([`super::rpc`], [`super::streams`]).

use tokio::task::AbortHandle;

use super::handle::OwnedHandle;
use crate::bindings::streams::ByteStream;
use crate::host_memory::Charge;

/// A call delivered to the job and not answered yet: the timer that will
/// answer it 1502, stopped when the call is answered or forgotten (the
/// job answered, or left the room).
pub(super) struct Waiting(pub(super) Option<AbortHandle>);

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(timer) = &self.0 {
            timer.abort();
        }
    }
}

/// A byte stream arriving on an accepted topic: what came so far, and its
/// charge to the job's budget.
pub(super) struct Arriving {
    pub(super) stream: ByteStream,
    /// Bytes the stream holds without its content.
    pub(super) header: u64,
    pub(super) charge: Charge,
    /// Released when the stream is queued or dropped.
    pub(super) _reader: OwnedHandle,
}
