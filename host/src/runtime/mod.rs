//! The Wasm job runtime: one engine, many plugins, one store per job.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use std::sync::Arc;
//! use agent_host::{JobLimits, Runtime, RuntimeConfig};
//! use agent_host::room::sim::SimRooms;
//!
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let plugin = runtime.load_plugin(&std::fs::read("echo.wasm")?)?;
//! let request = agent_host::wit::JobRequest {
//!     id: "AJ_demo".into(),
//!     job_type: agent_host::wit::JobType::Room,
//!     room: agent_host::wit::RoomInfo { sid: "RM_1".into(), name: "demo".into(), metadata: String::new() },
//!     participant: None,
//!     agent_name: String::new(),
//!     metadata: String::new(),
//!     attributes: Vec::new(),
//! };
//! let offer = runtime.offer(&plugin, request, JobLimits::default()).await?;
//! if let Some(job) = offer.job {
//!     let handle = job.start(Arc::new(SimRooms::default()), String::new(), String::new());
//!     println!("{}", handle.outcome().await);
//! }
//! # Ok(()) }
//! ```

mod accept;
mod cache;
mod engine;
mod guard;
mod job;
pub(crate) mod limits;
mod plugin;
mod plugin_error;
mod pool;
mod precompiled;
mod prewarm;
mod reason;
mod slot;
mod state;
mod stdio;

use std::sync::Arc;

use anyhow::Result;
use tokio::sync::watch;
use tracing::Instrument as _;
use wasmtime::component::Linker;
use wasmtime::{Engine, Store};

pub use self::accept::{MAX_ATTRIBUTES, MAX_IDENTITY, MAX_METADATA, MAX_NAME};
use self::cache::ArtifactCache;
pub use self::cache::write_atomically;
pub use self::engine::{RuntimeConfig, default_cache_dir};
use self::guard::Metered;
pub use self::job::{
    JobHandle, JobUsage, LEAVE_TIMEOUT, Offer, Outcome, PreparedJob, RoomExit, Terminator,
};
pub use self::limits::JobLimits;
pub use self::plugin::digest;
pub use self::plugin::{
    GUEST_VERSION_SECTION, Plugin, PluginError, PluginVersion, Prewarm, SDK_VERSION_SECTION,
    WIT_VERSION,
};
use self::pool::Budget;
pub use self::pool::Footprint;
pub use self::slot::{LoadedVersion, PluginSlot, Swap};
use self::state::JobState;
use crate::bindings::types::{Decision, DispatchInfo, JobInfo, JobRequest};
pub use crate::host_memory::{Charge, HostMemory, HostMemoryExceeded, MemoryKind};
use crate::imports::{self, EndSignal};

/// The engine, the linker with every host import, and the compile cache.
/// Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<JobState>,
    /// What a plugin's `prewarm` may call (see `prewarm.rs`).
    prewarm_linker: Linker<JobState>,
    cache: Option<ArtifactCache>,
    /// The pool's totals, which every job draws its plugin's needs from.
    budget: Arc<Budget>,
    config: RuntimeConfig,
}

impl Runtime {
    /// Creates the engine (see [`RuntimeConfig`] for its settings) and starts
    /// its epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self> {
        let engine = engine::build_engine(&config)?;
        engine::start_ticker(&engine, config.epoch_tick)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| anyhow::Error::from(e).context("linking WASI"))?;
        // Outbound HTTP, behind the allow-list of `http::HttpPolicy`.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| anyhow::Error::from(e).context("linking WASI HTTP"))?;
        // Every agent import on its own narrow view (see `imports`).
        imports::add_to_linker(&mut linker)
            .map_err(|e| anyhow::Error::from(e).context("linking the agent imports"))?;
        let prewarm_linker = prewarm::linker(&engine)
            .map_err(|e| anyhow::Error::from(e).context("linking prewarm's imports"))?;
        let cache = config
            .cache_dir
            .clone()
            .map(|dir| ArtifactCache::new(&engine, dir));
        let budget = Budget::new(engine::pool_totals(&config), config.max_jobs);
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                prewarm_linker,
                cache,
                budget,
                config,
            }),
        })
    }

    /// The configuration this runtime was built with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Component instances alive in the pooling allocator now (one per
    /// prepared or running job); `None` without the pooling allocator.
    pub fn live_instances(&self) -> Option<u64> {
        self.inner
            .engine
            .pooling_allocator_metrics()
            .map(|m| m.component_instances())
    }

    /// How many jobs of `plugin` the pool holds at once (when it holds
    /// nothing else): the scarcest of its units over what one job needs,
    /// at most [`RuntimeConfig::max_jobs`].
    pub fn jobs_fit(&self, plugin: &Plugin) -> u32 {
        self.inner.budget.jobs_fit(plugin.footprint())
    }

    /// The pool's totals of core instances, memories and tables.
    pub fn pool_totals(&self) -> Footprint {
        self.inner.budget.total()
    }

    /// The largest share (0..=1) of any of the pool's units (jobs, core
    /// instances, memories, tables) that live jobs hold now.
    pub fn pool_share_used(&self) -> f32 {
        self.inner.budget.share_used()
    }

    /// Compiles (or loads from the cache) and type-checks a component.
    pub fn load_plugin(&self, bytes: &[u8]) -> Result<Arc<Plugin>, PluginError> {
        let plugin = Plugin::load(&self.loader(), bytes)?;
        Ok(Arc::new(plugin))
    }

    /// Loads the plugin in the file at `path` as [`load_plugin`](Self::load_plugin)
    /// does; a `.cwasm` is mapped rather than read (no copy of its code and
    /// data, pages read as used), which is what makes it start fast.
    pub fn load_plugin_file(&self, path: &std::path::Path) -> Result<Arc<Plugin>> {
        let plugin = Plugin::load_file(&self.loader(), path)?;
        Ok(Arc::new(plugin))
    }

    /// What loading a plugin needs from this runtime.
    fn loader(&self) -> plugin::Loader<'_> {
        plugin::Loader {
            engine: &self.inner.engine,
            linker: &self.inner.linker,
            prewarm_linker: &self.inner.prewarm_linker,
            cache: self.inner.cache.as_ref(),
            allow_precompiled: self.inner.config.allow_precompiled,
            // The largest memory any job may have: every job of the
            // version fits in what its snapshot holds.
            prewarm_limits: JobLimits {
                memory_bytes: self.inner.config.max_memory_bytes,
                ..JobLimits::default()
            },
        }
    }

    /// Compiles and type-checks a component as [`load_plugin`](Self::load_plugin)
    /// does and returns it as a `.cwasm` for this agent-host and this
    /// runtime's engine configuration (`agent-host compile`).
    pub fn precompile(&self, bytes: &[u8]) -> Result<Vec<u8>, PluginError> {
        self.load_plugin(bytes)?.precompiled()
    }

    /// Offers a job that no dispatch created (console, connect, tests) to
    /// `plugin`: [`Self::offer_dispatched`] with an empty [`DispatchInfo`].
    pub async fn offer(
        &self,
        plugin: &Arc<Plugin>,
        request: JobRequest,
        limits: JobLimits,
    ) -> Result<Offer, OfferError> {
        let dispatch = DispatchInfo {
            dispatch_id: String::new(),
            deployment: String::new(),
            enable_recording: false,
            enable_redaction: false,
        };
        self.offer_dispatched(plugin, request, dispatch, limits)
            .await
    }

    /// Offers a job to `plugin`: instantiates it in a fresh store and asks
    /// its `on-request`; `dispatch` is what `job.dispatch` returns to it. An
    /// error means the guest could not answer (it trapped, ran away, or
    /// could not be instantiated) or accepted with fields LiveKit would
    /// refuse when the agent joins (see [`MAX_IDENTITY`] and the other join
    /// limits); treat it as a decline. Its text is within
    /// [`MAX_FAILURE_REASON`](crate::config::job::MAX_FAILURE_REASON) plus a short
    /// prefix.
    pub async fn offer_dispatched(
        &self,
        plugin: &Arc<Plugin>,
        request: JobRequest,
        dispatch: DispatchInfo,
        limits: JobLimits,
    ) -> Result<Offer, OfferError> {
        let span = job::job_span(&request.id);
        self.offer_in_span(plugin, request, dispatch, limits)
            .instrument(span)
            .await
    }

    async fn offer_in_span(
        &self,
        plugin: &Arc<Plugin>,
        request: JobRequest,
        dispatch: DispatchInfo,
        limits: JobLimits,
    ) -> Result<Offer, OfferError> {
        anyhow::ensure!(
            limits.memory_bytes <= self.inner.config.max_memory_bytes,
            "job memory limit ({} bytes) is above the runtime's maximum ({} bytes)",
            limits.memory_bytes,
            self.inner.config.max_memory_bytes
        );
        // Before instantiating: a job the pool cannot hold is refused here,
        // naming the unit that ran out, not by wasmtime's allocator.
        let draw = self
            .inner
            .budget
            .draw(plugin.footprint())
            .map_err(anyhow::Error::msg)?;
        let (end, _) = watch::channel(None);
        let end = Arc::new(end);
        let info = job_info(&request, String::new());
        let mut store = self.new_store(info, dispatch, limits, end.clone());
        store.data_mut().pool = Some(draw);
        let clock = store.data().cpu.clock();
        let agent =
            match Metered::new(plugin.pre.instantiate_async(&mut store), clock.clone()).await {
                Ok(agent) => agent,
                Err(err) => {
                    let reason = reason::failure_reason(&err, store.data());
                    anyhow::bail!("could not instantiate the plugin: {reason}");
                }
            };
        let answer = Metered::new(agent.call_on_request(&mut store, &request), clock).await;
        let decision = match answer {
            Ok(decision) => decision,
            Err(err) => {
                let reason = reason::failure_reason(&err, store.data());
                anyhow::bail!("on-request failed: {reason}");
            }
        };
        let job = match &decision {
            Decision::Accept(options) => {
                accept::check(options).map_err(anyhow::Error::msg)?;
                let identity = if options.identity.is_empty() {
                    // What the official workers send: the server supplies no default.
                    format!("agent-{}", request.id)
                } else {
                    options.identity.clone()
                };
                store.data_mut().info.identity = identity;
                Some(PreparedJob {
                    store,
                    agent,
                    plugin: plugin.clone(),
                    end,
                })
            }
            Decision::Reject | Decision::RejectAndTerminate => None,
        };
        Ok(Offer { decision, job })
    }

    fn new_store(
        &self,
        info: JobInfo,
        dispatch: DispatchInfo,
        limits: JobLimits,
        end: EndSignal,
    ) -> Store<JobState> {
        let hostcall_bytes = limits.hostcall_bytes;
        let state = JobState::new(info, dispatch, limits, end);
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|state| &mut state.memory);
        store.set_hostcall_fuel(hostcall_bytes);
        // Every tick while the guest computes: yield to other jobs, or end
        // this one when its CPU slice is used up.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| ctx.data_mut().cpu.on_tick());
        store
    }
}

/// Why an offer got no answer from the guest.
pub type OfferError = anyhow::Error;

/// The job info a guest sees, before and after it accepted.
fn job_info(request: &JobRequest, identity: String) -> JobInfo {
    JobInfo {
        id: request.id.clone(),
        job_type: request.job_type,
        room: request.room.clone(),
        participant: request.participant.clone(),
        agent_name: request.agent_name.clone(),
        metadata: request.metadata.clone(),
        attributes: request.attributes.clone(),
        identity,
    }
}
