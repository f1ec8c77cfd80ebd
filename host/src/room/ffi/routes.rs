//! Where the pump sends what is not a room event: audio stream handles to
//! their room and participant, byte stream readers to their room, async ids to whoever waits for the
//! callback. Kept with the rooms behind the client's one mutex.

use std::collections::HashMap;

use tokio::sync::oneshot;

use super::handle::OwnedHandle;
use super::proto::ffi_event;

/// Routes for audio streams and async callbacks.
#[derive(Default)]
pub(super) struct Routes {
    /// Audio stream handle → (room handle, participant identity).
    pub(super) streams: HashMap<u64, (u64, String)>,
    /// Byte stream reader handle → room handle.
    pub(super) readers: HashMap<u64, u64>,
    /// Async id → who waits for its callback.
    pub(super) pending: HashMap<u64, Pending>,
    /// Callbacks that arrived before anyone registered for them.
    pub(super) early: HashMap<u64, ffi_event::Message>,
}

/// Who waits for an async callback.
pub(super) enum Pending {
    /// A call awaiting the callback.
    Waiter(oneshot::Sender<ffi_event::Message>),
    /// A text stream being read for a room: the callback becomes a
    /// `text-received` event. The reader is released with the entry.
    TextRead {
        /// The room handle.
        room: u64,
        /// Who sent the text.
        sender: String,
        /// The stream's topic.
        topic: String,
        /// The stream reader.
        reader: OwnedHandle,
    },
    /// Nobody: release what the callback carries.
    Discard,
    /// Nobody, but the request names this handle (a text writer being
    /// closed because it was dropped): it is released with the callback.
    Holding(OwnedHandle),
}
