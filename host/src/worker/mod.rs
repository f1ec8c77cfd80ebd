//! The LiveKit agent worker: takes offers, runs each job as its own
//! component instance, reports statuses, drains. The connection to the
//! server (registering, keepalive, reconnecting) is [`crate::protocol`]'s;
//! the worker decides what the server's messages mean.
//!
//! It speaks the same protocol as LiveKit's official Python and Node
//! workers (`/agent`, protobuf `WorkerMessage`/`ServerMessage`). Where the
//! two official workers differ, it does what the Python worker does, unless
//! noted at the place where it chooses otherwise.
//!
//! Invariants:
//! - every job that was assigned gets exactly one final status (`SUCCESS`
//!   or `FAILED`), delivered even across reconnects (statuses are queued
//!   while the connection is down);
//! - an offer gets exactly one answer; offers are declined at once while
//!   draining or full;
//! - jobs keep running while the connection is down; after re-registering
//!   the worker sends `MigrateJobRequest` with their ids;
//! - the API secret stays in the worker; guests never see it.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use std::sync::Arc;
//! use agent_host::worker::{Worker, WorkerOptions};
//! use agent_host::{Runtime, RuntimeConfig};
//!
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let plugin = runtime.load_plugin(&std::fs::read("agent.wasm")?)?;
//! let options = WorkerOptions {
//!     url: "ws://localhost:7880".into(),
//!     api_key: "devkey".into(),
//!     api_secret: "secret".into(),
//!     ..WorkerOptions::default()
//! };
//! let worker = Worker::new(options, runtime, plugin, Arc::new(agent_host::room::offline::Offline));
//! let handle = worker.handle();
//! tokio::spawn(async move {
//!     tokio::signal::ctrl_c().await.ok();
//!     handle.drain();
//! });
//! worker.run().await?;
//! # Ok(()) }
//! ```

mod load;
mod options;
mod run;
mod status;
mod trim;

use std::sync::Arc;

use tokio::sync::mpsc;

pub use self::load::{LoadFn, LoadInputs, default_load};
pub use self::options::{Permissions, WorkerOptions};
use self::status::WorkerShared;
pub use self::status::{ConnectionState, CpuHistogram, JobSnapshot, Metrics, WorkerStatus};
pub use crate::protocol::{
    ConnectError, MAX_FRAME, MAX_SEND_FRAME, agent_url, decode_server_frame, validate_deployment,
    worker_token,
};
use crate::room::RoomTransport;
use crate::room::service::RoomService;
use crate::{LoadedVersion, Plugin, PluginError, PluginSlot, PluginVersion, Runtime, Swap};

/// The version this worker reports to the server at registration.
pub const SDK_VERSION: &str = concat!("agent-host/", env!("CARGO_PKG_VERSION"));

/// A worker, ready to [`run`](Worker::run).
pub struct Worker {
    options: WorkerOptions,
    runtime: Runtime,
    transport: Arc<dyn RoomTransport>,
    /// The server API that each job gets, scoped to its room.
    room_service: Option<Arc<RoomService>>,
    shared: Arc<WorkerShared>,
    commands: mpsc::UnboundedReceiver<Command>,
    handle: WorkerHandle,
}

/// How a worker's run ended, when it ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Drained: every job ended (or was failed at the drain timeout) and
    /// the connection was closed cleanly.
    Drained,
    /// Stopped at once by [`WorkerHandle::stop`].
    Stopped,
}

/// Why a worker gave up.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The server refused the credentials.
    #[error(transparent)]
    Unauthorized(ConnectError),
    /// The URL, or another setting the server would refuse, cannot be used.
    #[error(transparent)]
    BadUrl(ConnectError),
    /// A setting cannot be used with this worker's runtime.
    #[error("{0}")]
    BadSetting(String),
    /// The connection could not be (re-)established within the retries.
    #[error("failed to connect to LiveKit after {attempts} attempts; last error: {last_error}")]
    ConnectionFailed {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        last_error: String,
    },
}

/// Controls a running worker and reads its state; cheap to clone.
#[derive(Clone)]
pub struct WorkerHandle {
    shared: Arc<WorkerShared>,
    commands: mpsc::UnboundedSender<Command>,
    agent_name: Arc<str>,
    job_type: livekit_protocol::JobType,
}

#[derive(Debug)]
pub(crate) enum Command {
    Drain,
    Stop,
}

impl Worker {
    /// A worker that runs `plugin` on `runtime`, joining rooms through
    /// `transport`.
    pub fn new(
        options: WorkerOptions,
        runtime: Runtime,
        plugin: Arc<Plugin>,
        transport: Arc<dyn RoomTransport>,
    ) -> Self {
        let shared = Arc::new(WorkerShared::new(PluginSlot::new(runtime.clone(), plugin)));
        let (tx, commands) = mpsc::unbounded_channel();
        let handle = WorkerHandle {
            shared: shared.clone(),
            commands: tx,
            agent_name: options.agent_name.as_str().into(),
            job_type: options.job_type,
        };
        let room_service =
            match RoomService::new(&options.url, &options.api_key, &options.api_secret) {
                Ok(service) => Some(Arc::new(service.with_network(options.network.clone()))),
                Err(err) => {
                    tracing::warn!(%err, "jobs get no server API");
                    None
                }
            };
        Self {
            options,
            runtime,
            transport,
            room_service,
            shared,
            commands,
            handle,
        }
    }

    /// A handle on this worker.
    pub fn handle(&self) -> WorkerHandle {
        self.handle.clone()
    }

    /// Connects, registers and serves until drained or stopped, or until the
    /// connection cannot be re-established. A worker whose `max_jobs` the
    /// runtime's pool has no room for is refused before it connects:
    /// otherwise it would report room it does not have, and the offers past
    /// the pool would fail to instantiate.
    pub async fn run(self) -> Result<Exit, WorkerError> {
        let pool = self.runtime.config().max_jobs;
        if self.options.max_jobs > pool as usize {
            self.shared
                .update(|s| s.connection = ConnectionState::Failed);
            return Err(WorkerError::BadSetting(format!(
                "the worker takes up to {} jobs (max_jobs) but its runtime's pool has room for {pool}; \
                 give the runtime a RuntimeConfig::max_jobs of at least {}, or the worker fewer jobs",
                self.options.max_jobs, self.options.max_jobs
            )));
        }
        run::Dispatcher::new(self).run().await
    }
}

impl WorkerHandle {
    /// Current state.
    pub fn status(&self) -> WorkerStatus {
        self.shared.snapshot()
    }

    /// Counters since start.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The agent name the worker registered with.
    pub fn agent_name(&self) -> &str {
        &self.agent_name
    }

    /// The job type the worker takes.
    pub fn job_type(&self) -> livekit_protocol::JobType {
        self.job_type
    }

    /// Starts draining: report full, decline offers, let running jobs end
    /// (up to the drain timeout), then close. Idempotent.
    pub fn drain(&self) {
        let _ = self.commands.send(Command::Drain);
    }

    /// Stops at once: running jobs are abandoned without a final status.
    pub fn stop(&self) {
        let _ = self.commands.send(Command::Stop);
    }

    /// Makes `bytes` the plugin for new jobs, once it compiled and
    /// type-checked; running jobs keep the version they started on. A
    /// broken or incompatible component is refused and the current version
    /// keeps serving. The worker stays registered throughout.
    pub async fn swap(&self, bytes: Vec<u8>) -> Result<Swap, PluginError> {
        let shared = self.shared.clone();
        let result = tokio::task::spawn_blocking(move || shared.plugins.swap(&bytes))
            .await
            .unwrap_or_else(|e| Err(PluginError::Invalid(format!("the swap task failed: {e}"))));
        let m = &self.shared.metrics;
        match &result {
            Ok(_) => Metrics::inc(&m.swaps),
            Err(err) => {
                tracing::warn!(error = %err, "plugin swap refused; the current version keeps serving");
                Metrics::inc(&m.swaps_refused);
            }
        }
        result
    }

    /// The version that takes new jobs.
    pub fn current_plugin(&self) -> PluginVersion {
        self.shared.plugins.current().version().clone()
    }

    /// Every plugin version in memory, with its running jobs, oldest first.
    pub fn versions(&self) -> Vec<(LoadedVersion, usize)> {
        let jobs = self.status().jobs_by_version;
        self.shared
            .plugins
            .versions()
            .into_iter()
            .map(|v| {
                let n = jobs.get(&v.version.digest).copied().unwrap_or(0);
                (v, n)
            })
            .collect()
    }

    /// The running jobs, with the CPU time and host memory each uses now.
    pub fn jobs(&self) -> Vec<JobSnapshot> {
        self.shared.jobs()
    }

    /// Whether the worker is healthy: registered, or still trying.
    pub fn healthy(&self) -> bool {
        !matches!(self.status().connection, ConnectionState::Failed)
    }
}
