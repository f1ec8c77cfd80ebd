//! Events waiting in a session's queue, charged to the job's host-memory
//! budget.
//!
//! Policy: a transport queues a [`Queued`] event, which carries a
//! [`Charge`] for the bytes the event holds; the charge is given back when
//! the guest takes the event (or the queue is dropped). Audio that the
//! budget cannot take is dropped, like audio a full queue cannot take;
//! any other event the budget cannot take fails the job with the budget's
//! reason (`host memory limit ... exceeded (room events)`), since other
//! events are never dropped.

use crate::bindings::events::Event;
use crate::bindings::types::{Participant, RoomEvent};
use crate::host_memory::{Charge, HostMemory, HostMemoryExceeded, MemoryKind};

/// An event in a session's queue, with the host memory it holds.
#[derive(Debug)]
pub struct Queued {
    event: Event,
    _charge: Charge,
}

impl Queued {
    /// Charges a non-audio event to `memory`. A refusal is recorded in the
    /// budget, which fails the job.
    pub fn event(memory: &HostMemory, event: Event) -> Result<Self, HostMemoryExceeded> {
        let charge = memory.charge(MemoryKind::RoomEvents, event_bytes(&event))?;
        Ok(Self {
            event,
            _charge: charge,
        })
    }

    /// Charges an audio frame to `memory`; `None` (not recorded as a
    /// refusal) when the budget cannot take it: the frame is dropped.
    pub fn audio(memory: &HostMemory, event: Event) -> Option<Self> {
        let charge = memory.try_charge(MemoryKind::AudioFrames, event_bytes(&event))?;
        Some(Self {
            event,
            _charge: charge,
        })
    }

    /// The event, for the guest; its bytes leave the budget.
    pub fn into_event(self) -> Event {
        self.event
    }

    /// The event, still queued.
    pub fn get(&self) -> &Event {
        &self.event
    }
}

/// Bytes an event holds on the host: its heap data plus the value itself.
pub(crate) fn event_bytes(event: &Event) -> u64 {
    let heap = match event {
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
    };
    (heap + size_of::<Queued>()) as u64
}

fn participant_bytes(p: &Participant) -> usize {
    p.sid.len()
        + p.identity.len()
        + p.name.len()
        + p.metadata.len()
        + p.attributes
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2 * size_of::<String>())
            .sum::<usize>()
}
