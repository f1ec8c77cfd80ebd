//! `agent-host run` (alias `start`): register with LiveKit as an agent
//! worker and run each job as a component instance.
//!
//! Signals: the first SIGTERM or SIGINT drains (report full, decline
//! offers, let running jobs finish up to `--drain-timeout`, close cleanly,
//! exit 0); a second one stops at once (exit 1).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::{Args, ValueEnum};
use tokio::signal::unix::{SignalKind, signal};

use super::args::LimitArgs;
use agent_host::Runtime;
use agent_host::guest_build::read_plugin;
use agent_host::ops::{self, OpsState};
use agent_host::room::offline::Offline;
use agent_host::worker::{Exit, Permissions, Worker, WorkerOptions};

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A `.wasm` component, or a guest crate directory to build first.
    #[arg(long, value_name = "PLUGIN", env = "AGENT_HOST_PLUGIN")]
    plugin: PathBuf,

    /// LiveKit server URL.
    #[arg(long, env = "LIVEKIT_URL")]
    url: String,

    /// LiveKit API key.
    #[arg(long, env = "LIVEKIT_API_KEY")]
    api_key: String,

    /// LiveKit API secret.
    #[arg(long, env = "LIVEKIT_API_SECRET", hide_env_values = true)]
    api_secret: String,

    /// Agent name for explicit dispatch; empty takes automatic dispatch.
    #[arg(long, env = "LIVEKIT_AGENT_NAME", default_value = "")]
    agent_name: String,

    /// Which jobs to take.
    #[arg(long, value_enum, default_value_t = JobTypeArg::Room)]
    job_type: JobTypeArg,

    /// Deployment name sent at registration.
    #[arg(long, env = "LIVEKIT_AGENT_DEPLOYMENT", default_value = "")]
    deployment: String,

    /// Most jobs at once (also sizes the engine's instance pool).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    max_jobs: u32,

    /// Load at or above which the worker reports full and declines offers.
    #[arg(long, default_value_t = 0.7)]
    load_threshold: f32,

    /// How long a drain waits for running jobs before failing them.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,

    /// Reconnect attempts before giving up (then `/` turns 503 and the
    /// process exits non-zero).
    #[arg(long, default_value_t = 16)]
    max_retries: u32,

    /// Grace period of a terminated job before it is stopped.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    termination_grace: Duration,

    /// Interval of WebSocket keepalive pings.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    ping_interval: Duration,

    /// Silence after a ping after which the connection counts as dead.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = humantime::parse_duration)]
    ping_timeout: Duration,

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
    #[arg(long, default_value = "0.0.0.0")]
    http_host: IpAddr,

    /// Port of the health server (`/`, `/worker`, `/metrics`); 0 picks one.
    #[arg(long, default_value_t = 8081)]
    http_port: u16,

    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum JobTypeArg {
    Room,
    Publisher,
    Participant,
}

/// Runs the worker on a fresh tokio runtime.
pub fn run(args: RunArgs) -> Result<ExitCode> {
    let (bytes, path) = read_plugin(&args.plugin)?;
    tokio::runtime::Runtime::new()
        .context("starting the async runtime")?
        .block_on(serve(args, bytes, path))
}

async fn serve(args: RunArgs, bytes: Vec<u8>, path: PathBuf) -> Result<ExitCode> {
    let runtime = Runtime::new(args.limits.runtime_config(args.max_jobs))?;
    let plugin = runtime
        .load_plugin(&bytes)
        .with_context(|| format!("loading {}", path.display()))?;
    tracing::info!(
        plugin = %path.display(),
        version = %plugin.version(),
        load_time = ?plugin.load_time(),
        cached = plugin.from_cache(),
        "plugin loaded"
    );
    let options = WorkerOptions {
        url: args.url,
        api_key: args.api_key,
        api_secret: args.api_secret,
        agent_name: args.agent_name,
        job_type: match args.job_type {
            JobTypeArg::Room => livekit_protocol::JobType::JtRoom,
            JobTypeArg::Publisher => livekit_protocol::JobType::JtPublisher,
            JobTypeArg::Participant => livekit_protocol::JobType::JtParticipant,
        },
        permissions: Permissions {
            can_subscribe: !args.no_subscribe,
            can_publish: !args.no_publish,
            can_publish_data: !args.no_publish_data,
            can_update_metadata: !args.no_update_metadata,
            hidden: args.hidden,
        },
        deployment: args.deployment,
        max_jobs: args.max_jobs as usize,
        load_threshold: args.load_threshold,
        drain_timeout: args.drain_timeout,
        max_retries: args.max_retries,
        ping_interval: args.ping_interval,
        ping_timeout: args.ping_timeout,
        limits: agent_host::JobLimits {
            termination_grace: args.termination_grace,
            ..args.limits.job_limits()
        },
        ..WorkerOptions::default()
    };
    let version = plugin.version().clone();
    let worker = Worker::new(options, runtime, plugin, Arc::new(Offline));
    let handle = worker.handle();

    let listener = ops::bind(SocketAddr::new(args.http_host, args.http_port))
        .await
        .with_context(|| {
            format!(
                "binding the health server to {}:{}",
                args.http_host, args.http_port
            )
        })?;
    tracing::info!(addr = %listener.local_addr()?, "health server listening");
    tokio::spawn(ops::serve(
        listener,
        OpsState {
            worker: handle.clone(),
            plugin: version,
        },
    ));

    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let signals = handle.clone();
    tokio::spawn(async move {
        let mut received = 0;
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            received += 1;
            if received == 1 {
                tracing::info!("signal received: draining (send it again to stop at once)");
                signals.drain();
            } else {
                tracing::warn!("second signal: stopping now");
                signals.stop();
            }
        }
    });

    match worker.run().await {
        Ok(Exit::Drained) => Ok(ExitCode::SUCCESS),
        Ok(Exit::Stopped) => Ok(ExitCode::FAILURE),
        Err(err) => {
            eprintln!("error: {err}");
            Ok(ExitCode::FAILURE)
        }
    }
}
