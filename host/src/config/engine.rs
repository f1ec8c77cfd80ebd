//! The engine and its pool: defaults of
//! [`RuntimeConfig`](crate::RuntimeConfig) and the shape of each pool slot.
//!
//! Policy: a slot holds exactly one job, sized for the largest guest the
//! settings allow; everything per job is multiplied by
//! [`RuntimeConfig::max_jobs`](crate::RuntimeConfig::max_jobs).

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

/// Freed fiber stacks are zeroed and handed back to the system (wasmtime's
/// `async_stack_zeroing`; none of each is kept resident, the pooling
/// allocator's default `async_stack_keep_resident` of 0): otherwise every
/// stack a burst used keeps the ≈28 KiB a job touched resident for good
/// (31 MiB after the e2e benchmark's bursts), and a new job's stack starts
/// with what the host left on it for the job before. Costs a `madvise` per
/// job end and the page faults of the next job's first calls.
pub const ASYNC_STACK_ZEROING: bool = true;

/// Core instances per job in the pool: components built by
/// wasm-component-ld hold a few (the program, shims for indirect calls);
/// 8 leaves headroom.
pub const CORE_INSTANCES_PER_JOB: u32 = 8;

/// Most core instances in one component: twice the pool's share per job.
pub const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 16;

/// Memories per job: one per Rust guest; two allows a WASI adapter's own
/// memory.
pub const MEMORIES_PER_JOB: u32 = 2;

/// Tables per job in the pool: a component's own tables and its shims'.
pub const TABLES_PER_JOB: u32 = 4;

/// Most tables in one component: twice the pool's share per job.
pub const MAX_TABLES_PER_COMPONENT: u32 = 8;

/// Freed slots kept warm (their pages stay mapped) so a burst of new jobs
/// reuses them without page faults; the rest are returned to the OS.
pub const MAX_UNUSED_WARM_SLOTS: u32 = 100;

/// Longest `.cwasm` header accepted (it holds a few short strings; this
/// only bounds what a damaged file can make the host allocate).
pub const MAX_PRECOMPILED_HEADER: usize = 64 << 10;
