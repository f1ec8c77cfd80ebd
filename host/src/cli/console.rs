//! `agent-host console`: one job in a simulated room, with the terminal user
//! as a participant. Needs no LiveKit server.
//!
//! Each line typed is sent to the agent as a chat message (`lk.chat`);
//! `/join NAME` and `/leave NAME` simulate other participants, `/say TEXT`
//! and `/tone MS` play speech-like audio as the user's voice, `/rpc METHOD
//! PAYLOAD` calls the agent, `/data TEXT` sends a data packet, `/metadata
//! TEXT` changes the room's metadata (`input`). Everything the agent sends
//! is printed on stdout, transcriptions as they stream and agent state
//! changes as `[state] …` (`show`). End of input closes the room, which
//! ends the job; Ctrl-C terminates it. The exit code is 0 when the job
//! succeeded (or was terminated), 1 when it failed.

mod input;
mod show;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::Args;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::args::LimitArgs;
use super::settings::WorkerSettings;
use agent_host::config::ops::WATCH_DEBOUNCE;
use agent_host::guest_build::read_plugin;
use agent_host::room::sim::{SimOutput, SimRooms};
use agent_host::watch::Watch;
use agent_host::wit::RoomInfo;
use agent_host::{JobLimits, Outcome, Plugin, Runtime, Terminator};
use input::Typed;
use show::Printer;

/// Arguments of `console`.
#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// A `.wasm` component, or a guest project directory (Rust crate,
    /// Python app or JavaScript package) to build first.
    #[arg(long, value_name = "PLUGIN", env = "AGENT_HOST_PLUGIN")]
    pub(super) plugin: PathBuf,

    /// Job metadata, as a dispatch would give it.
    #[arg(long, default_value = "")]
    pub(super) metadata: String,

    /// Your identity in the room.
    #[arg(long, default_value = "you")]
    pub(super) identity: String,

    /// Name of the simulated room.
    #[arg(long, default_value = "console")]
    pub(super) room: String,

    #[command(flatten)]
    pub(super) limits: LimitArgs,
}

/// Runs the console session on a fresh tokio runtime.
pub fn run(args: ConsoleArgs) -> Result<ExitCode> {
    let (bytes, path) = read_plugin(&args.plugin)?;
    tokio::runtime::Runtime::new()
        .context("starting the async runtime")?
        .block_on(session(args, bytes, path, None))
}

/// A rebuild-and-swap source for `dev --console`: the watch and the crate.
pub(super) type Rebuild = (Watch, PathBuf);

/// Runs the console session. With `rebuild`, a change to the crate
/// rebuilds it and, when the build and load succeed, ends the running job
/// and starts a new one on the new version in the same room (a console has
/// one job, so that is its hot swap); a failed build keeps the job running.
pub(super) async fn session(
    args: ConsoleArgs,
    bytes: Vec<u8>,
    path: PathBuf,
    mut rebuild: Option<Rebuild>,
) -> Result<ExitCode> {
    let limits = args.limits.job_limits(&WorkerSettings::default())?;
    let runtime = Runtime::new(args.limits.runtime_config(1, limits.memory_bytes, None))?;
    let mut plugin = super::progress::loading(&path, || runtime.load_plugin(&bytes))
        .with_context(|| format!("loading {}", path.display()))?;
    let rooms = SimRooms::default();
    let room = rooms.room(&args.room);
    room.join_identity(&args.identity);
    let mut outputs = room.subscribe();
    let mut printer = Printer::new(args.identity.clone());

    let mut jobs = 0;
    let Some(mut job) = start_job(&runtime, &plugin, &rooms, &args, &limits, &mut jobs).await?
    else {
        return Ok(ExitCode::FAILURE);
    };
    // Whom `/rpc` calls: the running job's agent.
    let (agent, agent_seen) = watch::channel(job.agent.clone());
    // What the input hands the loop, and the lines of the calls in flight.
    let (typed_tx, mut typed) = mpsc::unbounded_channel();
    let mut answers = JoinSet::new();
    let mut input_ended = false;
    // Typed lines only make sense once the agent is in the room.
    let mut input_started = false;
    let mut interrupted = false;
    // A new version waiting for the running job to end.
    let mut next = None;
    let outcome = loop {
        tokio::select! {
            Some(output) = outputs.recv() => {
                if !input_started && output == SimOutput::AgentJoined(job.agent.clone()) {
                    input_started = true;
                    tokio::spawn(input::read(room.clone(), args.identity.clone(), agent_seen.clone(), typed_tx.clone()));
                }
                printer.print(&output, &room);
            }
            Some(line) = typed.recv() => match line {
                Typed::Call { method, answer } => {
                    answers.spawn(Typed::answered(method, answer));
                }
                Typed::End => {
                    input_ended = true;
                    if answers.is_empty() {
                        room.close();
                    }
                }
            },
            Some(line) = answers.join_next() => {
                if let Ok(line) = line {
                    println!("{line}");
                }
                if input_ended && answers.is_empty() {
                    room.close();
                }
            }
            result = &mut job.outcome => {
                let outcome = result.unwrap_or_else(|e| Outcome::Failed(format!("internal error: {e}")));
                let Some(new) = next.take() else { break outcome };
                eprintln!("job on the old version: {outcome}");
                plugin = new;
                match start_job(&runtime, &plugin, &rooms, &args, &limits, &mut jobs).await? {
                    Some(started) => {
                        agent.send_replace(started.agent.clone());
                        job = started;
                    }
                    None => return Ok(ExitCode::FAILURE),
                }
            }
            Some(()) = changed(&mut rebuild) => {
                let (_, crate_dir) = rebuild.as_ref().expect("a change implies a watch");
                match rebuilt(&runtime, crate_dir).await {
                    Ok(new) if new.version() == plugin.version() => eprintln!("unchanged build; keeping the running job"),
                    Ok(new) => {
                        eprintln!("rebuilt {}: restarting the job on it", new.version());
                        next = Some(new);
                        job.terminator.terminate();
                    }
                    Err(err) => eprintln!("rebuild failed, the running version keeps serving: {err:#}"),
                }
            }
            _ = tokio::signal::ctrl_c() => {
                if super::interrupt(&mut interrupted, &job.terminator) {
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
    };
    // The sim room hands over outputs before the guest's call returns, so
    // everything the agent sent before it ended is queued by now.
    while let Ok(output) = outputs.try_recv() {
        printer.print(&output, &room);
    }
    // Answers of calls the agent answered just before it ended, or that
    // fail now that it has left (1503); each ends within its timeout.
    while let Ok(line) = typed.try_recv() {
        if let Typed::Call { method, answer } = line {
            answers.spawn(Typed::answered(method, answer));
        }
    }
    while let Some(line) = answers.join_next().await {
        if let Ok(line) = line {
            println!("{line}");
        }
    }
    Ok(super::job_exit(&outcome))
}

/// The console's running job.
struct ConsoleJob {
    agent: String,
    terminator: Terminator,
    outcome: tokio::task::JoinHandle<Outcome>,
}

/// Offers a job to `plugin` and starts it; `None` (after saying why) when
/// the agent rejects it.
async fn start_job(
    runtime: &Runtime,
    plugin: &Arc<Plugin>,
    rooms: &SimRooms,
    args: &ConsoleArgs,
    limits: &JobLimits,
    jobs: &mut u32,
) -> Result<Option<ConsoleJob>> {
    *jobs += 1;
    let room = rooms.room(&args.room);
    let request = super::one_job_request(
        format!("AJ_console{}_{jobs}", std::process::id()),
        RoomInfo {
            sid: room.sid(),
            name: room.name(),
            metadata: String::new(),
        },
        &args.metadata,
    );
    let Some(job) = super::offer_one_job(runtime, plugin, request, limits.clone()).await? else {
        return Ok(None);
    };
    let agent = job.info().identity.clone();
    eprintln!(
        "agent {agent} joined room `{}` (plugin {}); type to chat, {}, Ctrl-D to end",
        args.room,
        plugin.version(),
        input::HELP
    );
    let handle = job.start(Arc::new(rooms.clone()), String::new(), String::new());
    let terminator = handle.terminator();
    Ok(Some(ConsoleJob {
        agent,
        terminator,
        outcome: tokio::spawn(handle.outcome()),
    }))
}

/// The next burst of changes, or never without a watch.
async fn changed(rebuild: &mut Option<Rebuild>) -> Option<()> {
    match rebuild {
        Some((watch, _)) => watch.changed(WATCH_DEBOUNCE).await,
        None => std::future::pending().await,
    }
}

/// Rebuilds the crate and loads the result.
async fn rebuilt(runtime: &Runtime, crate_dir: &std::path::Path) -> Result<Arc<Plugin>> {
    let dir = crate_dir.to_path_buf();
    let (bytes, _) = tokio::task::spawn_blocking(move || read_plugin(&dir)).await??;
    Ok(runtime.load_plugin(&bytes)?)
}
