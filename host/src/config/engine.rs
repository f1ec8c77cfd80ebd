//! The engine and its pool: defaults of
//! [`RuntimeConfig`](crate::RuntimeConfig) and the shape of each pool slot.
//!
//! Policy: the pool holds [`RuntimeConfig::max_jobs`](crate::RuntimeConfig::max_jobs)
//! component instances, and of core instances, memories and tables
//! `max_jobs` times a per-job share sized for the largest guests measured
//! (componentize-py); these totals are a budget that each job draws from by
//! what its plugin needs, so small guests leave room and a guest larger than
//! the share fits fewer jobs (`runtime::pool`).

use std::time::Duration;

pub use super::worker::DEFAULT_MAX_JOBS;

/// Default period of the epoch ticker: 10 ms (as Spin). It bounds how late
/// a busy guest yields and how precisely a runaway is caught, for one
/// thread waking 100 times a second.
pub const DEFAULT_EPOCH_TICK: Duration = Duration::from_millis(10);

/// Default on loading plugins precompiled by `agent-host compile`: off. A
/// `.wasm` from anyone is sandboxed, a `.cwasm` is trusted native code, so
/// the operator opts in (SECURITY.md).
pub const DEFAULT_ALLOW_PRECOMPILED: bool = false;

/// Wasm stack per call: wasmtime's default of 512 KiB; deep recursion
/// traps as "stack overflow" on the guest, never on the host.
pub const MAX_WASM_STACK: usize = 512 << 10;

/// Each running job suspends on its own fiber stack; 1 MiB holds the wasm
/// stack above plus the host functions it calls.
pub const ASYNC_STACK_SIZE: usize = 1 << 20;

/// Core instances per job in the pool's budget: the pool holds `max_jobs`
/// times this many, and each job draws what its plugin needs (see
/// `runtime::pool`). 16 fits one job of every guest measured in the pool's
/// share (`agent-host check` prints the counts): a componentize-py 0.25
/// component holds 14 (its interpreter, libc, the WASI adapter and their
/// shims), a jco/QuickJS one 9, a Rust guest built by wasm-component-ld 3.
pub const CORE_INSTANCES_PER_JOB: u32 = 16;

/// Most core instances in one component: twice the pool's share per job, so
/// a larger guest still loads and fits half as many jobs. wasmtime refuses
/// a component over this at load, before any job.
pub const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 2 * CORE_INSTANCES_PER_JOB;

/// Memories per job in the pool's budget: Rust and componentize-py guests
/// define one; two leaves room for a WASI adapter's own memory. Each takes
/// a memory slot, which reserves address space (not memory) for the job's
/// memory limit, so the share is kept small.
pub const MEMORIES_PER_JOB: u32 = 2;

/// Most memories in one component: twice the pool's share per job.
pub const MAX_MEMORIES_PER_COMPONENT: u32 = 2 * MEMORIES_PER_JOB;

/// Tables per job in the pool's budget: Rust and componentize-py guests
/// define two (the program's and a shim's for indirect calls); four leaves
/// headroom.
pub const TABLES_PER_JOB: u32 = 4;

/// Most tables in one component: twice the pool's share per job.
pub const MAX_TABLES_PER_COMPONENT: u32 = 2 * TABLES_PER_JOB;

/// Freed slots kept warm (their pages stay mapped) so a burst of new jobs
/// reuses them without page faults; the rest are returned to the OS.
pub const MAX_UNUSED_WARM_SLOTS: u32 = 100;

/// Longest `.cwasm` header accepted (it holds a few short strings; this
/// only bounds what a damaged file can make the host allocate).
pub const MAX_PRECOMPILED_HEADER: usize = 64 << 10;
