//! The per-store guards that turn limits into job failures with readable
//! reasons: the memory limiter and the CPU slice.
//!
//! Invariants:
//! - a guard only ever fails the store it belongs to;
//! - each guard records *why* it fired, so the job's failure names the limit
//!   ("memory limit 64 MiB exceeded") rather than the trap the guest ran
//!   into afterwards (Rust aborts with `unreachable` when allocation fails).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use wasmtime::{ResourceLimiter, UpdateDeadline};

use crate::limits::{human_bytes, human_duration};

/// Most elements a job's table may hold (Spin uses the same default, also
/// for its pooling allocator): room for the tables of large guests such
/// as interpreters compiled to wasm. The pooling allocator's slots are
/// sized to it too, so both allocators enforce the same number.
pub(crate) const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Denies memory growth past the job's cap and remembers that it did.
#[derive(Debug)]
pub(crate) struct MemoryGuard {
    max_memory: usize,
    pub(crate) memory_denied: bool,
    pub(crate) table_denied: bool,
}

impl MemoryGuard {
    pub(crate) fn new(max_memory: u64) -> Self {
        Self {
            max_memory: usize::try_from(max_memory).unwrap_or(usize::MAX),
            memory_denied: false,
            table_denied: false,
        }
    }

    /// The reason to report when a guard fired, if one did.
    pub(crate) fn reason(&self) -> Option<String> {
        if self.memory_denied {
            Some(format!(
                "memory limit {} exceeded",
                human_bytes(self.max_memory as u64)
            ))
        } else if self.table_denied {
            Some(format!(
                "table limit of {MAX_TABLE_ELEMENTS} elements exceeded"
            ))
        } else {
            None
        }
    }
}

impl ResourceLimiter for MemoryGuard {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.max_memory;
        self.memory_denied |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= MAX_TABLE_ELEMENTS;
        self.table_denied |= !allowed;
        Ok(allowed)
    }
}

/// Error that ends a job whose guest ran past its CPU slice.
#[derive(Debug, thiserror::Error)]
#[error("runaway: {} without yielding to the host", human_duration(*.0))]
pub(crate) struct Runaway(pub(crate) Duration);

/// Measures how long a guest has computed since it last waited on the host
/// (for a room event, a sleep, I/O), counting only time it was actually
/// scheduled: while it is parked after an epoch yield so other jobs can
/// run, its clock stops.
///
/// How: the job's call future is wrapped in [`Metered`], which sees every
/// time the guest's fiber suspends. A suspension the epoch callback asked
/// for is a fairness yield and keeps the count; any other suspension means
/// the guest waited in a host call, and starts its slice over. Host calls
/// that return at once (and wasmtime's internal libcalls, such as
/// `memory.fill`) do not count as waiting, so a guest cannot stay under the
/// radar by calling the host in a tight loop.
#[derive(Debug)]
pub(crate) struct CpuSlice {
    slice: Duration,
    clock: Arc<SliceClock>,
}

/// State shared between the epoch callback and [`Metered`].
#[derive(Debug, Default)]
pub(crate) struct SliceClock {
    /// Nanoseconds computed since the guest last waited, up to its last yield.
    ran: AtomicU64,
    /// When the guest was last resumed, in [`now_nanos`] units.
    resumed_at: AtomicU64,
    /// Set by the epoch callback when it asks the guest to yield.
    yielding: AtomicBool,
}

impl CpuSlice {
    pub(crate) fn new(slice: Duration) -> Self {
        Self {
            slice,
            clock: Arc::default(),
        }
    }

    /// The clock to hand to [`Metered`].
    pub(crate) fn clock(&self) -> Arc<SliceClock> {
        Arc::clone(&self.clock)
    }

    /// Called on every epoch tick while the guest runs: yields to let other
    /// jobs run, or ends the job once its slice is used up.
    pub(crate) fn on_tick(&mut self) -> wasmtime::Result<UpdateDeadline> {
        let clock = &self.clock;
        let now = now_nanos();
        let ran = clock.ran.load(Ordering::Relaxed)
            + now.saturating_sub(clock.resumed_at.load(Ordering::Relaxed));
        if u128::from(ran) >= self.slice.as_nanos() {
            return Err(wasmtime::Error::new(Runaway(self.slice)));
        }
        clock.ran.store(ran, Ordering::Relaxed);
        clock.yielding.store(true, Ordering::Relaxed);
        // A plain `Yield` can leave the task in tokio's LIFO slot and resume
        // it at once (wasmtime#10667); `yield_now` goes to the back.
        Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(tokio::task::yield_now()),
        ))
    }
}

/// Wraps a guest call so its [`CpuSlice`] knows when the guest runs, yields
/// and waits.
pub(crate) struct Metered<F> {
    call: Pin<Box<F>>,
    clock: Arc<SliceClock>,
}

impl<F> Metered<F> {
    pub(crate) fn new(call: F, clock: Arc<SliceClock>) -> Self {
        Self {
            call: Box::pin(call),
            clock,
        }
    }
}

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        this.clock.resumed_at.store(now_nanos(), Ordering::Relaxed);
        let poll = this.call.as_mut().poll(cx);
        if poll.is_pending() && !this.clock.yielding.swap(false, Ordering::Relaxed) {
            // Not our yield: the guest is waiting in a host call.
            this.clock.ran.store(0, Ordering::Relaxed);
        }
        poll
    }
}

/// Monotonic nanoseconds since the first call in this process.
fn now_nanos() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let nanos = BASE.get_or_init(Instant::now).elapsed().as_nanos();
    u64::try_from(nanos).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_guard_names_the_limit() {
        let mut guard = MemoryGuard::new(64 << 20);
        assert!(guard.memory_growing(0, 64 << 20, None).unwrap());
        assert_eq!(guard.reason(), None);
        assert!(!guard.memory_growing(0, (64 << 20) + 1, None).unwrap());
        assert_eq!(guard.reason().unwrap(), "memory limit 64 MiB exceeded");
    }

    #[test]
    fn slice_ends_after_its_time() {
        let mut cpu = CpuSlice::new(Duration::from_millis(200));
        cpu.clock.resumed_at.store(now_nanos(), Ordering::Relaxed);
        assert!(cpu.on_tick().is_ok());
        std::thread::sleep(Duration::from_millis(250));
        let err = cpu.on_tick().err().expect("slice used up");
        assert_eq!(
            err.to_string(),
            "runaway: 200 ms without yielding to the host"
        );
    }

    #[test]
    fn waiting_in_the_host_starts_the_slice_over() {
        let mut cpu = CpuSlice::new(Duration::from_millis(200));
        let clock = cpu.clock();
        clock.ran.store(150_000_000, Ordering::Relaxed);
        // A call that is pending without having been asked to yield waited.
        let mut waiting = Metered::new(std::future::pending::<()>(), clock.clone());
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut waiting).poll(&mut cx).is_pending());
        assert_eq!(clock.ran.load(Ordering::Relaxed), 0);
        // A yield the epoch callback asked for keeps the count.
        assert!(cpu.on_tick().is_ok());
        let ran = clock.ran.load(Ordering::Relaxed);
        assert!(Pin::new(&mut waiting).poll(&mut cx).is_pending());
        assert_eq!(clock.ran.load(Ordering::Relaxed), ran);
    }
}
