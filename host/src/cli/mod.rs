//! Command-line interface. Every command is a thin layer over the library.

mod args;
mod check;
mod compile;
mod connect;
mod console;
mod defaults;
mod dev;
mod new;
mod parse;
mod progress;
mod run;
mod settings;
mod setup;

use std::process::ExitCode;
use std::sync::Arc;

use agent_host::wit::{Decision, JobRequest, JobType, RoomInfo};
use agent_host::{JobLimits, Plugin, PreparedJob, Runtime};
use anyhow::Result;
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

/// Run LiveKit agents as sandboxed WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "agent-host", version, about, propagate_version = true)]
struct Cli {
    /// Log line format (logs go to stderr; `RUST_LOG` sets the filter).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty, env = "AGENT_HOST_LOG_FORMAT")]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a plugin against the agent world and show what it imports and exports.
    Check(check::CheckArgs),
    /// Compile a plugin ahead of time into a `.cwasm` for this host and engine.
    Compile(compile::CompileArgs),
    /// Run one job locally in a simulated room; you are a participant in it.
    Console(Box<console::ConsoleArgs>),
    /// Register with a LiveKit server as an agent worker and run its jobs.
    #[command(visible_alias = "start")]
    Run(Box<run::RunArgs>),
    /// Build a guest project, run it, and rebuild and hot-swap it on every change.
    Dev(Box<dev::DevArgs>),
    /// Install LiveKit's client library (room I/O) into agent-host's cache.
    Setup(setup::SetupArgs),
    /// Run one job directly in a named room, without dispatch.
    Connect(Box<connect::ConnectArgs>),
    /// Create an agent project in Rust, Python or JavaScript.
    New(new::NewArgs),
}

/// Parses the command line, sets up logging and runs the command.
pub fn main() -> ExitCode {
    // `Cli::parse()`, with the defaults from the table in `--help`.
    let mut command = defaults::show_defaults(Cli::command());
    let cli = Cli::from_arg_matches(&command.clone().get_matches())
        .unwrap_or_else(|err| err.format(&mut command).exit());
    let default_filter = match cli.command {
        // Keep the conversation readable: the host's own chatter only when it matters.
        Command::Console(_) => "warn,agent_host::guest=info",
        Command::Check(_) | Command::Compile(_) => "warn",
        Command::Run(_) | Command::Dev(_) | Command::Connect(_) => "info",
        Command::Setup(_) | Command::New(_) => "warn",
    };
    init_logging(cli.log_format, default_filter);
    let result = match cli.command {
        Command::Check(args) => check::run(args),
        Command::Compile(args) => compile::run(args),
        Command::Console(args) => console::run(*args),
        Command::Run(args) => run::run(*args),
        Command::Dev(args) => dev::run(*args),
        Command::New(args) => new::run(args),
        Command::Setup(args) => setup::run(args),
        Command::Connect(args) => connect::run(*args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The one job of a one-job command (`console`, `connect`): a room job
/// with the given id, room and metadata, as a dispatch would offer it.
fn one_job_request(id: String, room: RoomInfo, metadata: &str) -> JobRequest {
    JobRequest {
        id,
        job_type: JobType::Room,
        room,
        participant: None,
        agent_name: String::new(),
        metadata: metadata.to_string(),
        attributes: Vec::new(),
    }
}

/// Offers a one-job command's job to the plugin: the prepared job, or
/// `None` after saying on stderr how the agent rejected it.
async fn offer_one_job(
    runtime: &Runtime,
    plugin: &Arc<Plugin>,
    request: JobRequest,
    limits: JobLimits,
) -> Result<Option<PreparedJob>> {
    let offer = runtime.offer(plugin, request, limits).await?;
    if offer.job.is_none() {
        let answer = match offer.decision {
            Decision::RejectAndTerminate => "rejected the job and asked to terminate it",
            _ => "rejected the job",
        };
        eprintln!("the agent {answer}");
    }
    Ok(offer.job)
}

/// Ctrl-C during a one-job command (`console`, `connect`): the first
/// terminates the job, which then has its grace period to end; the second
/// stops at once. Returns whether to stop now.
fn interrupt(interrupted: &mut bool, terminator: &agent_host::Terminator) -> bool {
    if *interrupted {
        eprintln!("stopping");
        return true;
    }
    *interrupted = true;
    eprintln!("terminating the job (Ctrl-C again to stop at once)");
    terminator.terminate();
    false
}

/// Reports how a one-job command's job ended; exit 0 unless it failed.
fn job_exit(outcome: &agent_host::Outcome) -> ExitCode {
    eprintln!("job {outcome}");
    match outcome {
        agent_host::Outcome::Success | agent_host::Outcome::Terminated => ExitCode::SUCCESS,
        agent_host::Outcome::Failed(_) => ExitCode::FAILURE,
    }
}
