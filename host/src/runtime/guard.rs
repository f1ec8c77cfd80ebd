//! The per-store guards that turn limits into job failures with readable
//! reasons: the memory limiter, the CPU slice and the CPU quota.
//!
//! CPU time: [`Metered`] sees every poll of a job's guest future, and adds
//! the CPU time of the polling thread during that poll (the guest's own
//! code and the host calls it makes without waiting) to the job's total.
//! Time the guest is parked (waiting on the host, or yielded to other
//! jobs) is not counted; neither is time the OS took the thread away.
//!
//! Invariants:
//! - a guard only ever fails the store it belongs to;
//! - each guard records *why* it fired, so the job's failure names the limit
//!   ("memory limit 64 MiB exceeded") rather than the trap the guest ran
//!   into afterwards (Rust aborts with `unreachable` when allocation fails).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use wasmtime::{ResourceLimiter, UpdateDeadline};

use crate::config::job::CpuQuota;
use crate::config::job::MAX_TABLE_ELEMENTS;
use crate::config::units::{human_bytes, human_duration};

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
#[derive(Debug)]
pub(crate) struct SliceClock {
    /// Nanoseconds computed since the guest last waited, up to its last yield.
    ran: AtomicU64,
    /// When the guest was last resumed, in [`now_nanos`] units.
    resumed_at: AtomicU64,
    /// Set by the epoch callback when it asks the guest to yield.
    yielding: AtomicBool,
    /// CPU nanoseconds of every finished poll of the guest.
    cpu: AtomicU64,
    /// The polling thread's CPU clock when the current poll began.
    poll_cpu_start: AtomicU64,
    /// The CPU quota's window, when the job has a quota.
    quota: Option<Mutex<QuotaWindow>>,
    /// Set once the quota was exceeded.
    over_quota: OnceLock<CpuQuotaExceeded>,
    signal: watch::Sender<bool>,
}

/// The window a [`CpuQuota`] is being counted in.
#[derive(Debug)]
struct QuotaWindow {
    quota: CpuQuota,
    /// Start of the window, in [`now_nanos`] units.
    started: u64,
    /// The job's CPU nanoseconds when the window started.
    cpu_at_start: u64,
}

/// Error that ends a job that used more CPU than its quota allows.
#[derive(Debug, Clone, thiserror::Error)]
#[error("CPU quota exceeded: more than {} of CPU within {} ({})", human_duration(self.quota.per_window()), human_duration(self.quota.window), self.quota)]
pub(crate) struct CpuQuotaExceeded {
    quota: CpuQuota,
}

impl SliceClock {
    fn new(quota: Option<CpuQuota>) -> Self {
        Self {
            quota: quota.map(|quota| {
                Mutex::new(QuotaWindow {
                    quota,
                    started: now_nanos(),
                    cpu_at_start: 0,
                })
            }),
            signal: watch::channel(false).0,
            ran: AtomicU64::new(0),
            resumed_at: AtomicU64::new(0),
            yielding: AtomicBool::new(false),
            cpu: AtomicU64::new(0),
            poll_cpu_start: AtomicU64::new(0),
            over_quota: OnceLock::new(),
        }
    }

    /// CPU time the guest has used so far, finished polls only.
    pub(crate) fn cpu_time(&self) -> Duration {
        Duration::from_nanos(self.cpu.load(Ordering::Relaxed))
    }

    /// Checks the quota with `running` nanoseconds of the current poll
    /// added; records (and signals) the first time it is exceeded.
    fn check_quota(&self, running: u64) -> Result<(), CpuQuotaExceeded> {
        let Some(window) = &self.quota else {
            return Ok(());
        };
        if let Some(over) = self.over_quota.get() {
            return Err(over.clone());
        }
        let mut window = window.lock().unwrap_or_else(|e| e.into_inner());
        let cpu = self.cpu.load(Ordering::Relaxed) + running;
        let now = now_nanos();
        let length = u64::try_from(window.quota.window.as_nanos()).unwrap_or(u64::MAX);
        if now.saturating_sub(window.started) >= length {
            // A new window: whole windows since the job started.
            window.started = now - (now - window.started) % length;
            window.cpu_at_start = cpu;
        }
        let allowed = u128::from(cpu - window.cpu_at_start) <= window.quota.per_window().as_nanos();
        if allowed {
            return Ok(());
        }
        let over = CpuQuotaExceeded {
            quota: window.quota,
        };
        let _ = self.over_quota.set(over.clone());
        self.signal.send_replace(true);
        Err(over)
    }

    /// Resolves once the quota was exceeded; never without a quota.
    pub(crate) async fn wait_over_quota(&self) -> CpuQuotaExceeded {
        let mut signal = self.signal.subscribe();
        let _ = signal.wait_for(|set| *set).await;
        match self.over_quota.get() {
            Some(over) => over.clone(),
            None => std::future::pending().await,
        }
    }
}

impl CpuSlice {
    pub(crate) fn new(slice: Duration, quota: Option<CpuQuota>) -> Self {
        Self {
            slice,
            clock: Arc::new(SliceClock::new(quota)),
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
        let running =
            thread_cpu_nanos().saturating_sub(clock.poll_cpu_start.load(Ordering::Relaxed));
        clock.check_quota(running).map_err(wasmtime::Error::new)?;
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
        let cpu_start = thread_cpu_nanos();
        this.clock
            .poll_cpu_start
            .store(cpu_start, Ordering::Relaxed);
        let poll = this.call.as_mut().poll(cx);
        let used = thread_cpu_nanos().saturating_sub(cpu_start);
        this.clock.cpu.fetch_add(used, Ordering::Relaxed);
        // Recorded and signalled to the job; the error itself is not needed here.
        let _ = this.clock.check_quota(0);
        if poll.is_pending() && !this.clock.yielding.swap(false, Ordering::Relaxed) {
            // Not our yield: the guest is waiting in a host call.
            this.clock.ran.store(0, Ordering::Relaxed);
        }
        poll
    }
}

/// CPU nanoseconds the calling thread has used (its own clock).
#[cfg(unix)]
fn thread_cpu_nanos() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is
    // supported on every unix agent-host builds for (Linux, macOS).
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0;
    if !ok {
        return now_nanos();
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Elsewhere, the wall time of the poll stands in for its CPU time.
#[cfg(not(unix))]
fn thread_cpu_nanos() -> u64 {
    now_nanos()
}

/// Monotonic nanoseconds since the first call in this process.
fn now_nanos() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let nanos = BASE.get_or_init(Instant::now).elapsed().as_nanos();
    u64::try_from(nanos).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::hint::black_box;

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
        let mut cpu = CpuSlice::new(Duration::from_millis(200), None);
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
    fn polls_add_cpu_time_and_a_quota_ends_the_job() {
        let quota = CpuQuota {
            share: 0.5,
            window: Duration::from_secs(10),
        };
        let cpu = CpuSlice::new(Duration::from_secs(60), Some(quota));
        let clock = cpu.clock();
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        // A call that burns about 50 ms of CPU per poll, then waits.
        let mut busy = Metered::new(
            futures::future::poll_fn(|cx| {
                let start = thread_cpu_nanos();
                while thread_cpu_nanos() - start < 50_000_000 {
                    black_box(0);
                }
                cx.waker().wake_by_ref();
                Poll::<()>::Pending
            }),
            clock.clone(),
        );
        assert!(Pin::new(&mut busy).poll(&mut cx).is_pending());
        let after_one = clock.cpu_time();
        assert!(after_one >= Duration::from_millis(50), "{after_one:?}");
        assert!(clock.check_quota(0).is_ok());
        // Pretend the job already used its 5 s in this window.
        clock.cpu.fetch_add(5_000_000_000, Ordering::Relaxed);
        assert!(Pin::new(&mut busy).poll(&mut cx).is_pending());
        let over = clock.check_quota(0).expect_err("over the quota");
        assert_eq!(
            over.to_string(),
            "CPU quota exceeded: more than 5 s of CPU within 10 s (0.5 of a core over 10 s)"
        );
        let mut waiting = std::pin::pin!(clock.wait_over_quota());
        assert!(waiting.as_mut().poll(&mut cx).is_ready());
    }

    #[test]
    fn waiting_in_the_host_starts_the_slice_over() {
        let mut cpu = CpuSlice::new(Duration::from_millis(200), None);
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
