//! Host memory held on a guest's behalf: one budget per job.
//!
//! Whatever a guest makes the host keep for it (HTTP fields, requests and
//! response buffers, room events and audio frames waiting to be read,
//! WebSocket buffers and messages, partial stdout/stderr lines) is charged
//! to its job's [`HostMemory`].
//!
//! Policy:
//! - **A cap of its own**, [`JobLimits::host_memory_bytes`](crate::JobLimits::host_memory_bytes),
//!   default 16 MiB, next to the linear-memory cap rather than inside it.
//!   Linear memory never shrinks, so a shared cap would let a guest that
//!   once grew its heap be refused an HTTP header for good, and the
//!   operator could not tell the two apart; two caps are two numbers an
//!   operator can size and read in a failure reason.
//! - A charge that would take the job over its cap is refused. What
//!   happens then depends on the kind: audio frames are dropped (audio is
//!   real time), everything else fails the job, with the reason
//!   `host memory limit 16 MiB exceeded (<kind>)`.
//! - Every resource kind plugs in the same way: it takes a [`Charge`] for
//!   what it holds when it starts holding it, resizes it as it grows, and
//!   credits it back by dropping it. Resources the host owns carry their
//!   charge inside them; resources owned by wasmtime-wasi-http are measured
//!   in the job's resource table instead (see `state.rs`).
//!
//! Invariants:
//! - the budget's `used` never goes above its limit: a refused charge adds
//!   nothing;
//! - a refusal is sticky and is seen by the job (its run ends with the
//!   reason above), however deep in the host it happened;
//! - dropping a [`Charge`] returns exactly what it holds, so `used` falls
//!   back to zero once the job's resources are gone.

use std::fmt;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

use crate::config::units::human_bytes;

/// What a [`Charge`] holds memory for; named in the failure reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MemoryKind {
    /// `wasi:http` header and trailer sets (`fields`).
    HttpFields,
    /// `wasi:http` outgoing requests: method, path, authority, headers,
    /// and the body bytes waiting to be sent.
    HttpRequests,
    /// `wasi:http` responses: headers and body bytes buffered for the guest.
    HttpResponses,
    /// Room events waiting for the guest to read them.
    RoomEvents,
    /// Audio frames waiting for the guest to read them.
    AudioFrames,
    /// Partial stdout/stderr lines and the kept stderr tail.
    Stdio,
    /// Outbound WebSockets: each socket's buffers and the messages it
    /// holds in both directions.
    WebSockets,
}

impl fmt::Display for MemoryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MemoryKind::HttpFields => "wasi:http fields",
            MemoryKind::HttpRequests => "wasi:http requests",
            MemoryKind::HttpResponses => "wasi:http responses",
            MemoryKind::RoomEvents => "room events",
            MemoryKind::AudioFrames => "audio frames",
            MemoryKind::Stdio => "stdout/stderr lines",
            MemoryKind::WebSockets => "websockets",
        })
    }
}

/// A job went over its host-memory budget.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("host memory limit {} exceeded ({kind})", human_bytes(*.limit))]
pub struct HostMemoryExceeded {
    /// The job's budget, in bytes.
    pub limit: u64,
    /// What the refused charge was for.
    pub kind: MemoryKind,
}

/// One job's budget of host memory. Cheap to clone; clones share it.
///
/// ```
/// use agent_host::host_memory::{HostMemory, MemoryKind};
/// let budget = HostMemory::new(1024);
/// let charge = budget.charge(MemoryKind::RoomEvents, 1000).unwrap();
/// assert!(budget.charge(MemoryKind::RoomEvents, 100).is_err());
/// drop(charge);
/// assert_eq!(budget.used(), 0);
/// assert_eq!(
///     budget.exceeded().unwrap().to_string(),
///     "host memory limit 1 KiB exceeded (room events)"
/// );
/// ```
#[derive(Clone)]
pub struct HostMemory {
    inner: Arc<Budget>,
}

struct Budget {
    limit: u64,
    used: AtomicU64,
    peak: AtomicU64,
    exceeded: OnceLock<HostMemoryExceeded>,
    signal: watch::Sender<bool>,
}

impl fmt::Debug for HostMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostMemory")
            .field("limit", &self.inner.limit)
            .field("used", &self.used())
            .finish()
    }
}

impl HostMemory {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Self {
        Self {
            inner: Arc::new(Budget {
                limit,
                used: AtomicU64::new(0),
                peak: AtomicU64::new(0),
                exceeded: OnceLock::new(),
                signal: watch::channel(false).0,
            }),
        }
    }

    /// The budget, in bytes.
    pub fn limit(&self) -> u64 {
        self.inner.limit
    }

    /// Bytes charged now.
    pub fn used(&self) -> u64 {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// Most bytes charged at once so far.
    pub fn peak(&self) -> u64 {
        self.inner.peak.load(Ordering::Relaxed)
    }

    /// The first refused charge, if there was one.
    pub fn exceeded(&self) -> Option<HostMemoryExceeded> {
        self.inner.exceeded.get().cloned()
    }

    /// Charges `bytes` for `kind`; refused (and recorded) if that would take
    /// the budget over its limit.
    pub fn charge(&self, kind: MemoryKind, bytes: u64) -> Result<Charge, HostMemoryExceeded> {
        self.add(kind, bytes)?;
        Ok(Charge {
            memory: self.clone(),
            kind,
            bytes,
        })
    }

    /// Charges `bytes` for `kind` if the budget can take them; a refusal
    /// is not recorded (for what the holder may drop instead, such as
    /// audio frames).
    pub fn try_charge(&self, kind: MemoryKind, bytes: u64) -> Option<Charge> {
        if !self.reserve(bytes) {
            return None;
        }
        Some(Charge {
            memory: self.clone(),
            kind,
            bytes,
        })
    }

    /// An empty charge for `kind`, to [`resize`](Charge::resize) later.
    pub fn empty(&self, kind: MemoryKind) -> Charge {
        Charge {
            memory: self.clone(),
            kind,
            bytes: 0,
        }
    }

    /// Resolves once a charge was refused.
    pub async fn wait_exceeded(&self) -> HostMemoryExceeded {
        let mut signal = self.inner.signal.subscribe();
        // The sender lives in `self`, so this only returns once it was set.
        let _ = signal.wait_for(|set| *set).await;
        self.exceeded()
            .unwrap_or_else(|| unreachable!("the signal is set after the refusal is recorded"))
    }

    fn add(&self, kind: MemoryKind, bytes: u64) -> Result<(), HostMemoryExceeded> {
        if self.reserve(bytes) {
            return Ok(());
        }
        let budget = &*self.inner;
        let exceeded = HostMemoryExceeded {
            limit: budget.limit,
            kind,
        };
        if budget.exceeded.set(exceeded.clone()).is_ok() {
            tracing::warn!(reason = %exceeded, used = self.used(), asked = bytes, "host memory budget refused a charge");
        }
        budget.signal.send_replace(true);
        Err(exceeded)
    }

    /// Adds `bytes` to `used` if that stays within the limit.
    fn reserve(&self, bytes: u64) -> bool {
        let budget = &*self.inner;
        let reserved = budget
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|n| *n <= budget.limit)
            });
        match reserved {
            Ok(before) => {
                budget.peak.fetch_max(before + bytes, Ordering::Relaxed);
                true
            }
            Err(_) => false,
        }
    }

    fn sub(&self, bytes: u64) {
        self.inner.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// Bytes held in a [`HostMemory`] budget; dropping it gives them back.
#[must_use = "dropping a charge gives its bytes back at once"]
pub struct Charge {
    memory: HostMemory,
    kind: MemoryKind,
    bytes: u64,
}

impl fmt::Debug for Charge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Charge({} bytes of {})", self.bytes, self.kind)
    }
}

impl Charge {
    /// Bytes this charge holds.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Makes this charge hold `bytes`: growing it may be refused (then it
    /// keeps what it held), shrinking it never is.
    pub fn resize(&mut self, bytes: u64) -> Result<(), HostMemoryExceeded> {
        if bytes > self.bytes {
            self.memory.add(self.kind, bytes - self.bytes)?;
        } else {
            self.memory.sub(self.bytes - bytes);
        }
        self.bytes = bytes;
        Ok(())
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.memory.sub(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_add_up_and_come_back() {
        let budget = HostMemory::new(100);
        let a = budget.charge(MemoryKind::HttpFields, 60).unwrap();
        let mut b = budget.empty(MemoryKind::Stdio);
        b.resize(40).unwrap();
        assert_eq!(budget.used(), 100);
        let err = b.resize(41).unwrap_err();
        assert_eq!(err.kind, MemoryKind::Stdio);
        assert_eq!(b.bytes(), 40, "a refused resize keeps what it held");
        assert_eq!(budget.used(), 100);
        b.resize(10).unwrap();
        drop(a);
        assert_eq!(budget.used(), 10);
        drop(b);
        assert_eq!(budget.used(), 0);
        assert_eq!(budget.peak(), 100);
        let quiet = HostMemory::new(1);
        assert!(quiet.try_charge(MemoryKind::AudioFrames, 2).is_none());
        assert!(quiet.exceeded().is_none(), "try_charge records no refusal");
    }

    #[test]
    fn the_first_refusal_is_the_reason() {
        let budget = HostMemory::new(16 << 20);
        assert!(budget.exceeded().is_none());
        assert!(budget.charge(MemoryKind::HttpFields, 17 << 20).is_err());
        assert!(budget.charge(MemoryKind::RoomEvents, 17 << 20).is_err());
        assert_eq!(
            budget.exceeded().unwrap().to_string(),
            "host memory limit 16 MiB exceeded (wasi:http fields)"
        );
    }

    #[tokio::test]
    async fn a_refusal_wakes_the_job() {
        let budget = HostMemory::new(1);
        let waiter = tokio::spawn({
            let budget = budget.clone();
            async move { budget.wait_exceeded().await }
        });
        tokio::task::yield_now().await;
        assert!(budget.charge(MemoryKind::AudioFrames, 2).is_err());
        assert_eq!(waiter.await.unwrap().kind, MemoryKind::AudioFrames);
    }
}
