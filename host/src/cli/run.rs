//! `agent-host run` (alias `start`): register with LiveKit as an agent
//! worker (one per plugin) and run each job as a component instance.
//!
//! Signals: the first SIGTERM or SIGINT drains every worker (report full,
//! decline offers, let running jobs finish up to `--drain-timeout`, close
//! cleanly, exit 0); a second one stops at once (exit 1). SIGHUP reloads
//! every plugin from its path (a hot swap).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Args, ValueEnum};
use tokio::signal::unix::{Signal, SignalKind, signal};

use super::args::LimitArgs;
use super::settings::{FileSettings, WorkerSettings, check_names, parse_plugin_flag};
use agent_host::config::ops::{DEFAULT_HTTP_HOST, DEFAULT_HTTP_PORT, WATCH_DEBOUNCE};
use agent_host::config::worker::SERVER_TARGET_LOAD;
use agent_host::guest_build::{plugin_file, read_plugin, watch_project};
use agent_host::net::Network;
use agent_host::ops::{self, OpsState};
use agent_host::room::RoomTransport;
use agent_host::room::ffi::{FfiRooms, find_library};
use agent_host::room::offline::Offline;
use agent_host::watch::Watch;
use agent_host::worker::{
    Exit, Permissions, Worker, WorkerHandle, WorkerOptions, validate_deployment,
};
use agent_host::{JobLimits, Runtime};

/// Arguments of `run`. Every one may also come from `--config`; a flag
/// wins over the file.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A plugin: a `.wasm` component or a guest project directory (Rust,
    /// Python or JavaScript). Repeat it to serve several agents, each as
    /// `NAME=PLUGIN` (NAME = agent name).
    #[arg(long = "plugin", value_name = "[NAME=]PLUGIN", value_parser = parse_plugin_flag, env = "AGENT_HOST_PLUGIN")]
    plugins: Vec<(Option<String>, PathBuf)>,

    /// A TOML file with any of these settings, and `[[plugin]]` tables.
    #[arg(long, value_name = "FILE", env = "AGENT_HOST_CONFIG")]
    config: Option<PathBuf>,

    /// LiveKit server URL.
    #[arg(long, env = "LIVEKIT_URL")]
    url: Option<String>,

    /// LiveKit API key.
    #[arg(long, env = "LIVEKIT_API_KEY")]
    api_key: Option<String>,

    /// LiveKit API secret.
    #[arg(long, env = "LIVEKIT_API_SECRET", hide_env_values = true)]
    api_secret: Option<String>,

    /// LiveKit Cloud's worker token, sent as the `worker_token` query
    /// parameter of `/agent` (the open-source server ignores it) [default: none].
    #[arg(long, env = "LIVEKIT_WORKER_TOKEN", hide_env_values = true)]
    worker_token: Option<String>,

    /// A PEM file of CA certificates to trust beside the built-in roots,
    /// for the worker connection, the server API and guest HTTP (as are
    /// `SSL_CERT_FILE` and `SSL_CERT_DIR`). Repeatable.
    #[arg(
        long,
        value_name = "FILE",
        env = "AGENT_HOST_CA_FILE",
        value_delimiter = ','
    )]
    ca_file: Vec<PathBuf>,

    /// Agent name for explicit dispatch [default: empty (automatic dispatch)].
    #[arg(long, env = "LIVEKIT_AGENT_NAME")]
    agent_name: Option<String>,

    /// Which jobs to take [default: room].
    #[arg(long, value_enum)]
    job_type: Option<JobTypeArg>,

    /// Deployment name sent at registration [default: empty].
    #[arg(long, env = "LIVEKIT_AGENT_DEPLOYMENT")]
    deployment: Option<String>,

    /// Most jobs at once per plugin; sizes the instance pool.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    max_jobs: Option<u32>,

    /// Load at or above which a worker reports full and declines offers.
    #[arg(long)]
    load_threshold: Option<f32>,

    /// How long a drain waits for running jobs before failing them.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    drain_timeout: Option<Duration>,

    /// Reconnect attempts before giving up; then `/` turns 503 and the
    /// process exits 1.
    #[arg(long)]
    max_retries: Option<u32>,

    /// Grace period of a terminated job, or of one whose room session ended,
    /// before it is stopped.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    termination_grace: Option<Duration>,

    /// Interval of WebSocket keepalive pings.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    ping_interval: Option<Duration>,

    /// Silence after a ping after which the connection counts as dead.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    ping_timeout: Option<Duration>,

    /// The agent's participant is hidden from others.
    #[arg(long)]
    hidden: bool,

    /// The agent may not publish tracks.
    #[arg(long)]
    no_publish: bool,

    /// The agent may not subscribe to tracks.
    #[arg(long)]
    no_subscribe: bool,

    /// The agent may not publish data.
    #[arg(long)]
    no_publish_data: bool,

    /// The agent may not update its own metadata.
    #[arg(long)]
    no_update_metadata: bool,

    /// Address of the health server.
    #[arg(long)]
    http_host: Option<IpAddr>,

    /// Port of the health server (`/`, `/worker`, `/metrics`); 0 picks one.
    #[arg(long)]
    http_port: Option<u16>,

    /// Token that turns on the admin API (`POST /plugins/<name>` swaps a
    /// plugin); without it the API is off.
    #[arg(long, env = "AGENT_HOST_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,

    /// Hot-swap a plugin when its file (or, for a project directory, its
    /// sources) change.
    #[arg(long)]
    watch: bool,

    /// LiveKit's client library (`liblivekit_ffi.so`) for room I/O
    /// [default: the one `agent-host setup` installed; without it, jobs run
    /// without room access].
    #[arg(long, value_name = "PATH", env = "LIVEKIT_LIB_PATH")]
    livekit_lib: Option<PathBuf>,

    /// Run jobs without room I/O even if LiveKit's client library is
    /// installed (room actions fail): for trying dispatch against a server
    /// without rooms. A library named with --livekit-lib wins.
    #[arg(long, env = "AGENT_HOST_NO_ROOM_IO", value_parser = clap::builder::BoolishValueParser::new())]
    no_room_io: bool,

    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum JobTypeArg {
    Room,
    Publisher,
    Participant,
}

/// One worker to start: its plugin path and options.
pub(super) struct Planned {
    pub(super) path: PathBuf,
    pub(super) options: WorkerOptions,
}

/// Everything `run` will do, resolved from flags, file and defaults.
pub(super) struct Plan {
    pub(super) workers: Vec<Planned>,
    pub(super) http: SocketAddr,
    pub(super) admin_token: Option<String>,
    pub(super) watch: bool,
    pub(super) cache_dir: Option<PathBuf>,
    /// `--livekit-lib`: the client library named explicitly.
    pub(super) livekit_lib: Option<PathBuf>,
    /// `--no-room-io`: no room transport unless a library is named.
    pub(super) no_room_io: bool,
}

impl RunArgs {
    /// The worker settings given as flags (unset = not given).
    fn worker_flags(&self) -> WorkerSettings {
        let off = |flag: bool| flag.then_some(false);
        WorkerSettings {
            agent_name: self.agent_name.clone(),
            job_type: self
                .job_type
                .and_then(|t| t.to_possible_value())
                .map(|v| v.get_name().to_string()),
            deployment: self.deployment.clone(),
            max_jobs: self.max_jobs,
            load_threshold: self.load_threshold,
            drain_timeout: self.drain_timeout,
            max_retries: self.max_retries,
            termination_grace: self.termination_grace,
            ping_interval: self.ping_interval,
            ping_timeout: self.ping_timeout,
            hidden: self.hidden.then_some(true),
            can_publish: off(self.no_publish),
            can_subscribe: off(self.no_subscribe),
            can_publish_data: off(self.no_publish_data),
            can_update_metadata: off(self.no_update_metadata),
            memory_limit: self.limits.memory_limit,
            host_memory_limit: self.limits.host_memory_limit,
            cpu_slice: self.limits.cpu_slice,
            job_cpu_limit: self.limits.job_cpu_limit,
            wall_clock_limit: self.limits.wall_clock_limit,
            allow_http: (!self.limits.allow_http.is_empty())
                .then(|| self.limits.allow_http.clone()),
            allow_http_private: self.limits.allow_http_private.then_some(true),
            credential: (!self.limits.credential.is_empty())
                .then(|| self.limits.credential.clone()),
            max_websockets: self.limits.max_websockets,
            websocket_message_limit: self.limits.websocket_message_limit,
            websocket_buffer_limit: self.limits.websocket_buffer_limit,
        }
    }

    fn plan(&self) -> Result<Plan> {
        let file = match &self.config {
            Some(path) => FileSettings::load(path)?,
            None => FileSettings::default(),
        };
        let flags = self.worker_flags();
        let url = self.url.clone().or(file.url.clone()).context(
            "no LiveKit URL: give --url, set LIVEKIT_URL, or put `url` in the config file",
        )?;
        let api_key = self.api_key.clone().or(file.api_key.clone()).context(
            "no API key: give --api-key, set LIVEKIT_API_KEY, or put `api_key` in the config file",
        )?;
        let api_secret = self.api_secret.clone().or(file.api_secret.clone()).context(
            "no API secret: give --api-secret, set LIVEKIT_API_SECRET, or put `api_secret` in the config file",
        )?;
        // Flags beat the plugin's table, which beats the file's top level.
        let plugins: Vec<(PathBuf, WorkerSettings)> = if self.plugins.is_empty() {
            file.plugin
                .iter()
                .map(|p| (p.path.clone(), flags.or(&p.worker).or(&file.worker)))
                .collect()
        } else {
            self.plugins
                .iter()
                .map(|(name, path)| {
                    let named = WorkerSettings {
                        agent_name: name.clone(),
                        ..WorkerSettings::default()
                    };
                    (path.clone(), named.or(&flags).or(&file.worker))
                })
                .collect()
        };
        if plugins.is_empty() {
            bail!("no plugin: give --plugin PATH, or `[[plugin]]` tables in the config file");
        }
        check_names(
            plugins
                .iter()
                .map(|(_, s)| s.agent_name.as_deref().unwrap_or("")),
        )?;
        let ca_files = if self.ca_file.is_empty() {
            file.ca_file.clone().unwrap_or_default()
        } else {
            self.ca_file.clone()
        };
        let network = Network::from_env(&ca_files).context("the network settings")?;
        let worker_token = self.worker_token.clone().or(file.worker_token.clone());
        let workers = plugins
            .into_iter()
            .map(|(path, s)| {
                let mut options = worker_options(
                    &s,
                    &self.limits,
                    url.clone(),
                    api_key.clone(),
                    api_secret.clone(),
                )?;
                warn_on_ineffective_load_threshold(&options);
                options.worker_token = worker_token.clone();
                options.network = network.clone();
                options.limits.network = network.clone();
                Ok(Planned { path, options })
            })
            .collect::<Result<_>>()?;
        Ok(Plan {
            workers,
            http: SocketAddr::new(
                self.http_host
                    .or(file.http_host)
                    .unwrap_or(DEFAULT_HTTP_HOST),
                self.http_port
                    .or(file.http_port)
                    .unwrap_or(DEFAULT_HTTP_PORT),
            ),
            admin_token: self.admin_token.clone().or(file.admin_token.clone()),
            watch: self.watch || file.watch.unwrap_or(false),
            cache_dir: file.cache_dir.clone(),
            livekit_lib: self.livekit_lib.clone().or(file.livekit_lib.clone()),
            no_room_io: self.no_room_io || file.no_room_io.unwrap_or(false),
        })
    }
}

/// A load threshold above the server's target load has no effect: the
/// server stops offering jobs at its target load whatever the worker reports.
fn warn_on_ineffective_load_threshold(options: &WorkerOptions) {
    if options.load_threshold > SERVER_TARGET_LOAD {
        tracing::warn!(
            agent_name = %options.agent_name,
            load_threshold = options.load_threshold,
            server_target_load = SERVER_TARGET_LOAD,
            "--load-threshold is above the LiveKit server's target load: the server offers no job to a node whose workers all report a load at or above {SERVER_TARGET_LOAD}, so this worker gets no more jobs than at {SERVER_TARGET_LOAD}"
        );
    }
}

/// Options for one worker from its resolved settings; defaults from
/// [`WorkerOptions::default`]. A deployment name the server would refuse
/// is an error here, before any connection.
pub(super) fn worker_options(
    s: &WorkerSettings,
    limits: &LimitArgs,
    url: String,
    api_key: String,
    api_secret: String,
) -> Result<WorkerOptions> {
    let d = WorkerOptions::default();
    let dp = d.permissions;
    let job_type = match s.job_type.as_deref() {
        None | Some("room") => livekit_protocol::JobType::JtRoom,
        Some("publisher") => livekit_protocol::JobType::JtPublisher,
        Some("participant") => livekit_protocol::JobType::JtParticipant,
        Some(other) => bail!("unknown job type `{other}` (use room, publisher or participant)"),
    };
    let limits: JobLimits = limits.job_limits(s)?;
    Ok(WorkerOptions {
        url,
        api_key,
        api_secret,
        agent_name: s.agent_name.clone().unwrap_or_default(),
        job_type,
        permissions: Permissions {
            can_subscribe: s.can_subscribe.unwrap_or(dp.can_subscribe),
            can_publish: s.can_publish.unwrap_or(dp.can_publish),
            can_publish_data: s.can_publish_data.unwrap_or(dp.can_publish_data),
            can_update_metadata: s.can_update_metadata.unwrap_or(dp.can_update_metadata),
            hidden: s.hidden.unwrap_or(dp.hidden),
        },
        deployment: {
            let deployment = s.deployment.clone().unwrap_or_default();
            validate_deployment(&deployment)
                .map_err(|why| anyhow::anyhow!("--deployment: {why}"))?;
            deployment
        },
        max_jobs: s.max_jobs.map_or(d.max_jobs, |n| n as usize),
        load_threshold: s.load_threshold.unwrap_or(d.load_threshold),
        drain_timeout: s.drain_timeout.unwrap_or(d.drain_timeout),
        max_retries: s.max_retries.unwrap_or(d.max_retries),
        ping_interval: s.ping_interval.unwrap_or(d.ping_interval),
        ping_timeout: s.ping_timeout.unwrap_or(d.ping_timeout),
        limits,
        ..d
    })
}

/// Runs the workers on a fresh tokio runtime.
pub fn run(args: RunArgs) -> Result<ExitCode> {
    let plan = args.plan()?;
    tokio::runtime::Runtime::new()
        .context("starting the async runtime")?
        .block_on(serve(plan, args.limits))
}

pub(super) async fn serve(plan: Plan, limits: LimitArgs) -> Result<ExitCode> {
    // Before any worker runs: a signal must never find the default action
    // (which would kill the process instead of draining it).
    let signals = install_signals()?;
    let max_jobs: usize = plan.workers.iter().map(|w| w.options.max_jobs).sum();
    let max_memory = plan
        .workers
        .iter()
        .map(|w| w.options.limits.memory_bytes)
        .max()
        .unwrap_or_default();
    let runtime = Runtime::new(limits.runtime_config(
        u32::try_from(max_jobs).unwrap_or(u32::MAX),
        max_memory,
        plan.cache_dir.clone(),
    ))?;

    let transport = room_transport(plan.livekit_lib.as_deref(), plan.no_room_io)?;
    let mut handles = Vec::new();
    let mut runs = tokio::task::JoinSet::new();
    for planned in plan.workers {
        let wasm = plugin_file(&planned.path)?;
        let plugin = super::progress::loading(&wasm, || runtime.load_plugin_file(&wasm))
            .with_context(|| format!("loading {}", wasm.display()))?;
        tracing::info!(
            plugin = %wasm.display(),
            agent_name = %planned.options.agent_name,
            version = %plugin.version(),
            load_time = ?plugin.load_time(),
            cached = plugin.from_cache(),
            prewarm = ?plugin.prewarm(),
            "plugin loaded"
        );
        let worker = Worker::new(planned.options, runtime.clone(), plugin, transport.clone());
        let handle = worker.handle();
        if plan.watch {
            tokio::spawn(watch_plugin(handle.clone(), planned.path.clone())?);
        }
        handles.push((handle, planned.path));
        runs.spawn(worker.run());
    }
    let workers: Vec<WorkerHandle> = handles.iter().map(|(h, _)| h.clone()).collect();

    let listener = ops::bind(plan.http)
        .await
        .with_context(|| format!("binding the health server to {}", plan.http))?;
    tracing::info!(addr = %listener.local_addr()?, admin_api = plan.admin_token.is_some(), "health server listening");
    tokio::spawn(ops::serve(
        listener,
        OpsState {
            workers: workers.clone(),
            admin_token: plan.admin_token,
        },
    ));
    tokio::spawn(handle_signals(signals, workers, handles));

    // The process ends with its last worker; any failure makes it fail.
    let mut code = ExitCode::SUCCESS;
    while let Some(result) = runs.join_next().await {
        match result {
            Ok(Ok(Exit::Drained)) => {}
            Ok(Ok(Exit::Stopped)) => code = ExitCode::FAILURE,
            Ok(Err(err)) => {
                eprintln!("error: {err}");
                code = ExitCode::FAILURE;
            }
            Err(err) => {
                eprintln!("error: a worker task failed: {err}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}

/// The room transport: LiveKit's client library when it is named or
/// installed (and `no_room_io` is off), else [`Offline`] (jobs run; room
/// actions fail, saying how to install the library). A library named
/// explicitly that cannot be used is an error.
pub(super) fn room_transport(
    named: Option<&Path>,
    no_room_io: bool,
) -> Result<Arc<dyn RoomTransport>> {
    if no_room_io && named.is_none() {
        tracing::info!("room transport: none (--no-room-io), jobs run without room I/O");
        return Ok(Arc::new(Offline));
    }
    let path = match find_library(named) {
        Ok(path) => path,
        Err(err) if named.is_none() => {
            tracing::warn!(reason = %err, "room transport: none, jobs run without room I/O");
            return Ok(Arc::new(Offline));
        }
        Err(err) => return Err(err.into()),
    };
    let rooms = FfiRooms::load(&path)?;
    tracing::info!(library = %rooms.library_path().display(), "room transport: LiveKit client library");
    Ok(Arc::new(rooms))
}

/// SIGTERM, SIGINT and SIGHUP streams.
type Signals = (Signal, Signal, Signal);

fn install_signals() -> Result<Signals> {
    Ok((
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        signal(SignalKind::hangup()).context("installing the SIGHUP handler")?,
    ))
}

/// SIGTERM/SIGINT drain (twice: stop); SIGHUP reloads every plugin.
async fn handle_signals(
    (mut term, mut int, mut hup): Signals,
    workers: Vec<WorkerHandle>,
    plugins: Vec<(WorkerHandle, PathBuf)>,
) {
    let mut received = 0;
    loop {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading plugins");
                for (handle, path) in &plugins {
                    reload(handle, path).await;
                }
                continue;
            }
        }
        received += 1;
        if received == 1 {
            tracing::info!("signal received: draining (send it again to stop at once)");
            workers.iter().for_each(WorkerHandle::drain);
        } else {
            tracing::warn!("second signal: stopping now");
            workers.iter().for_each(WorkerHandle::stop);
        }
    }
}

/// Reads (or builds) a plugin and swaps it in, unless it is unchanged.
/// Every problem is logged; the current version keeps serving.
async fn reload(handle: &WorkerHandle, path: &Path) {
    let path_owned = path.to_path_buf();
    let read = tokio::task::spawn_blocking(move || read_plugin(&path_owned)).await;
    let bytes = match read {
        Ok(Ok((bytes, _))) => bytes,
        Ok(Err(err)) => {
            tracing::warn!(plugin = %path.display(), error = %format!("{err:#}"), "reload failed; the current version keeps serving");
            return;
        }
        Err(err) => {
            tracing::warn!(plugin = %path.display(), error = %err, "reload failed; the current version keeps serving");
            return;
        }
    };
    if agent_host::runtime::digest(&bytes) == handle.current_plugin().digest {
        tracing::info!(plugin = %path.display(), "plugin unchanged; nothing to swap");
        return;
    }
    // A refused swap is logged and counted by the handle.
    let _ = handle.swap(bytes).await;
}

/// Watches a plugin's file (or a crate's sources) and reloads on change.
fn watch_plugin(
    handle: WorkerHandle,
    path: PathBuf,
) -> Result<impl std::future::Future<Output = ()>> {
    let mut watch = if path.is_dir() {
        watch_project(&path)?
    } else {
        Watch::file(&path)?
    };
    tracing::info!(plugin = %path.display(), "watching for changes");
    Ok(async move {
        while watch.changed(WATCH_DEBOUNCE).await.is_some() {
            tracing::info!(plugin = %path.display(), "change detected; reloading");
            reload(&handle, &path).await;
        }
    })
}
