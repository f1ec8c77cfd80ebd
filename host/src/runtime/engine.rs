//! The one wasmtime [`Engine`] of a process, and the thread that ticks its epoch.
//!
//! The defaults and the pool's shape are set in
//! [`config::engine`](crate::config::engine), each with its reason. Invariants:
//! - one engine per [`Runtime`](crate::Runtime): every plugin version is
//!   compiled by it and every job's store lives in it;
//! - the pooling allocator has room for `max_jobs` live jobs of the per-job
//!   share ([`pool_totals`]); each job draws its plugin's needs from those
//!   totals before it is instantiated (`runtime::pool`), so a job never
//!   waits for a slot and wasmtime never reaches its own pool limits;
//! - one ticker thread per engine, whatever the number of jobs; it holds only
//!   a weak reference and ends when the engine is dropped.

use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use anyhow::{Context as _, Result};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use crate::config::engine::{
    ASYNC_STACK_SIZE, CORE_INSTANCES_PER_JOB, DEFAULT_ALLOW_PRECOMPILED, DEFAULT_EPOCH_TICK,
    DEFAULT_MAX_JOBS, MAX_CORE_INSTANCES_PER_COMPONENT, MAX_MEMORIES_PER_COMPONENT,
    MAX_TABLES_PER_COMPONENT, MAX_UNUSED_WARM_SLOTS, MAX_WASM_STACK, MEMORIES_PER_JOB,
    TABLES_PER_JOB,
};
use crate::config::job::{DEFAULT_MEMORY_BYTES, MAX_TABLE_ELEMENTS};
use crate::runtime::pool::Footprint;

/// Settings of the engine shared by all jobs of a process.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Most jobs alive at once; sizes the pooling allocator. Default 1,000.
    pub max_jobs: u32,
    /// Largest linear memory any job may be given, in bytes; each pool slot
    /// reserves this much address space (not memory). Default 64 MiB.
    pub max_memory_bytes: u64,
    /// Period of the epoch ticker, which bounds how late a busy guest yields
    /// and how precisely a runaway is caught. Default 10 ms (as Spin).
    pub epoch_tick: Duration,
    /// Directory for compiled components, keyed by content digest and engine
    /// compatibility. `None` compiles every time. Default: the user's cache
    /// directory (`$XDG_CACHE_HOME/agent-host/components`).
    pub cache_dir: Option<PathBuf>,
    /// Whether plugins precompiled by `agent-host compile` (`.cwasm`, native
    /// code) may be loaded. Default off: a `.wasm` from anyone is sandboxed,
    /// a `.cwasm` is trusted code, so the operator opts in (SECURITY.md).
    pub allow_precompiled: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            max_jobs: DEFAULT_MAX_JOBS,
            // As large as the default job limit: every default job fits.
            max_memory_bytes: DEFAULT_MEMORY_BYTES,
            epoch_tick: DEFAULT_EPOCH_TICK,
            // On disk, so a restart loads instead of compiling.
            cache_dir: default_cache_dir(),
            allow_precompiled: DEFAULT_ALLOW_PRECOMPILED,
        }
    }
}

/// `$XDG_CACHE_HOME/agent-host/components`, else `~/.cache/agent-host/components`;
/// `None` when neither names an absolute directory (an empty or relative
/// value counts as unset, so the cache never lands in the working directory).
pub fn default_cache_dir() -> Option<PathBuf> {
    crate::dirs::cache_dir("components")
}

/// Builds the engine. Falls back from the pooling allocator to on-demand
/// allocation (with a warning) when the machine cannot reserve the pool's
/// address space, as `wasmtime serve` and Spin do.
pub(crate) fn build_engine(cfg: &RuntimeConfig) -> Result<Engine> {
    anyhow::ensure!(cfg.max_jobs > 0, "max jobs must be at least 1");
    let mut config = base_config(cfg);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool_config(cfg)));
    match Engine::new(&config) {
        Ok(engine) => Ok(engine),
        Err(pool_err) => {
            tracing::warn!(
                error = %pool_err,
                "pooling allocator unavailable, falling back to on-demand allocation"
            );
            let config = base_config(cfg);
            Engine::new(&config)
                .map_err(|e| anyhow::Error::from(e).context("creating the wasmtime engine"))
        }
    }
}

fn base_config(cfg: &RuntimeConfig) -> Config {
    let mut config = Config::new();
    // Busy guests are interrupted by epoch ticks (cheap: one load and compare
    // per loop header), not fuel, which costs 2-3x in run time.
    config.epoch_interruption(true);
    // Cranelift at full optimisation: compile once per plugin version, run
    // every job fast.
    config.cranelift_opt_level(OptLevel::Speed);
    // Reserve only what a job may use: with a small reservation wasmtime
    // emits explicit bounds checks, and 10,000 jobs fit in the address space
    // (4 GiB + guards per job would not leave room for that).
    config.memory_reservation(cfg.max_memory_bytes);
    config.memory_reservation_for_growth(0);
    config.max_wasm_stack(MAX_WASM_STACK);
    config.async_stack_size(ASYNC_STACK_SIZE);
    config
}

/// The pool's totals of core instances, memories and tables: the budget
/// jobs draw from, `max_jobs` times the per-job share, and never less than
/// one component of the per-component maxima, so that any component
/// wasmtime loads fits at least one job (a pool of one job included).
pub(crate) fn pool_totals(cfg: &RuntimeConfig) -> Footprint {
    let share = Footprint {
        core_instances: CORE_INSTANCES_PER_JOB,
        memories: MEMORIES_PER_JOB,
        tables: TABLES_PER_JOB,
    }
    .times(cfg.max_jobs);
    Footprint {
        core_instances: share.core_instances.max(MAX_CORE_INSTANCES_PER_COMPONENT),
        memories: share.memories.max(MAX_MEMORIES_PER_COMPONENT),
        tables: share.tables.max(MAX_TABLES_PER_COMPONENT),
    }
}

fn pool_config(cfg: &RuntimeConfig) -> PoolingAllocationConfig {
    let n = cfg.max_jobs;
    let totals = pool_totals(cfg);
    let mut pool = PoolingAllocationConfig::default();
    // One component instance per job.
    pool.total_component_instances(n);
    pool.total_core_instances(totals.core_instances);
    pool.max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT);
    pool.total_memories(totals.memories);
    pool.max_memories_per_component(MAX_MEMORIES_PER_COMPONENT);
    pool.max_memory_size(cfg.max_memory_bytes as usize);
    pool.total_tables(totals.tables);
    pool.max_tables_per_component(MAX_TABLES_PER_COMPONENT);
    // wasmtime's default slot (20,000 elements) would cap tables below the
    // limit the store's limiter states and the failure reason names.
    pool.table_elements(MAX_TABLE_ELEMENTS);
    // One fiber stack per running job.
    pool.total_stacks(n);
    pool.max_unused_warm_slots(n.min(MAX_UNUSED_WARM_SLOTS));
    pool
}

/// Starts the epoch ticker: one thread per engine, whatever the number of
/// jobs. It holds a weak reference and stops once the engine is gone.
pub(crate) fn start_ticker(engine: &Engine, tick: Duration) -> Result<()> {
    let weak = engine.weak();
    thread::Builder::new()
        .name("agent-host-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                thread::sleep(tick);
            }
        })
        .context("starting the epoch ticker thread")?;
    Ok(())
}
