//! What waits in a session's queue, charged to the job's host-memory
//! budget.
//!
//! Policy: a transport queues a [`Queued`] item (an event, an RPC call, a
//! byte stream), which carries a [`Charge`] for the bytes it holds; the
//! charge is given back when the guest takes the item (or the queue is
//! dropped). Audio that the budget cannot take is dropped, like audio a
//! full queue cannot take; any other item the budget cannot take fails
//! the job with the budget's reason (`host memory limit ... exceeded (room
//! events)`), since nothing else is ever dropped.

use crate::bindings::agent_host::agent::rpc::Invocation;
use crate::bindings::agent_host::agent::streams::ByteStream;
use crate::bindings::events::Event;
use crate::bindings::types::{Participant, RoomEvent};
use crate::host_memory::{Charge, HostMemory, HostMemoryExceeded, MemoryKind};

/// What a session delivers to its job. Events go to `events` and `room`;
/// calls to `rpc`; byte streams to `streams`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A room, track or audio event.
    Event(Event),
    /// A call to an RPC method the job registered.
    Call(Invocation),
    /// A byte stream on a topic the job accepts, received whole.
    Bytes(ByteStream),
}

/// An item in a session's queue, with the host memory it holds.
#[derive(Debug)]
pub struct Queued {
    item: Incoming,
    _charge: Charge,
}

impl Queued {
    /// Charges a non-audio event to `memory`. A refusal is recorded in the
    /// budget, which fails the job.
    pub fn event(memory: &HostMemory, event: Event) -> Result<Self, HostMemoryExceeded> {
        Self::charged(memory, Incoming::Event(event))
    }

    /// Charges an RPC call or a byte stream (or any non-audio item) to
    /// `memory`. A refusal is recorded in the budget, which fails the job.
    pub fn charged(memory: &HostMemory, item: Incoming) -> Result<Self, HostMemoryExceeded> {
        let charge = memory.charge(MemoryKind::RoomEvents, item_bytes(&item))?;
        Ok(Self {
            item,
            _charge: charge,
        })
    }

    /// Charges an audio frame to `memory`; `None` (not recorded as a
    /// refusal) when the budget cannot take it: the frame is dropped.
    pub fn audio(memory: &HostMemory, event: Event) -> Option<Self> {
        let item = Incoming::Event(event);
        let charge = memory.try_charge(MemoryKind::AudioFrames, item_bytes(&item))?;
        Some(Self {
            item,
            _charge: charge,
        })
    }

    /// The item, for the guest; its bytes leave the budget.
    pub fn into_item(self) -> Incoming {
        self.item
    }

    /// The item, still queued.
    pub fn get(&self) -> &Incoming {
        &self.item
    }

    /// Whether this is an audio frame (which may be dropped when unread).
    pub fn is_audio(&self) -> bool {
        matches!(self.item, Incoming::Event(Event::Audio(_)))
    }
}

/// Bytes an item holds on the host: its heap data plus the value itself.
pub(crate) fn item_bytes(item: &Incoming) -> u64 {
    let heap = match item {
        Incoming::Event(event) => event_heap(event),
        Incoming::Call(call) => {
            call.id.len() + call.caller.len() + call.method.len() + call.payload.len()
        }
        Incoming::Bytes(stream) => {
            stream.id.len()
                + stream.sender.len()
                + stream.topic.len()
                + stream.name.len()
                + stream.mime_type.len()
                + pairs_bytes(&stream.attributes)
                + stream.bytes.len()
                + stream.incomplete.as_ref().map_or(0, String::len)
        }
    };
    (heap + size_of::<Queued>()) as u64
}

/// Bytes an event holds on the heap.
fn event_heap(event: &Event) -> usize {
    match event {
        Event::Room(room) => match room {
            RoomEvent::ParticipantJoined(p)
            | RoomEvent::ParticipantLeft(p)
            | RoomEvent::ParticipantUpdated(p) => participant_bytes(p),
            RoomEvent::DataReceived(d) => {
                d.sender.as_ref().map_or(0, String::len)
                    + d.topic.as_ref().map_or(0, String::len)
                    + d.payload.len()
            }
            RoomEvent::TextReceived(t) => t.sender.len() + t.topic.len() + t.text.len(),
            RoomEvent::RoomMetadataChanged(m) => m.len(),
            RoomEvent::Closed(_) => 0,
        },
        Event::TrackPublished(t) | Event::TrackUnpublished(t) => {
            t.sid.len() + t.participant.len() + t.name.len()
        }
        Event::Audio(frame) => frame.participant.len() + frame.samples.len() * 2,
    }
}

fn participant_bytes(p: &Participant) -> usize {
    p.sid.len() + p.identity.len() + p.name.len() + p.metadata.len() + pairs_bytes(&p.attributes)
}

/// Bytes key/value pairs hold.
fn pairs_bytes(pairs: &[(String, String)]) -> usize {
    pairs
        .iter()
        .map(|(k, v)| k.len() + v.len() + 2 * size_of::<String>())
        .sum()
}
