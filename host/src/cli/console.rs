//! `agent-host console`: one job in a simulated room, with the terminal user
//! as a participant. Needs no LiveKit server.
//!
//! Each line typed is sent to the agent as a chat message (`lk.chat`);
//! `/join NAME` and `/leave NAME` simulate other participants, `/tone MS`
//! plays a tone as the user's voice, `/data TEXT`
//! sends a data packet, `/metadata TEXT` changes the room's metadata.
//! Everything the agent sends is printed on stdout. End of input closes the
//! room, which ends the job; Ctrl-C terminates it. The exit code is 0 when
//! the job succeeded (or was terminated), 1 when it failed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::Args;
use tokio::io::{AsyncBufReadExt as _, BufReader};

use super::args::LimitArgs;
use super::settings::WorkerSettings;
use agent_host::config::ops::WATCH_DEBOUNCE;
use agent_host::guest_build::read_plugin;
use agent_host::room::sim::{SimOutput, SimRoom, SimRooms, tone};
use agent_host::watch::Watch;
use agent_host::wit::RoomInfo;
use agent_host::wit::audio::AudioFormat;
use agent_host::{JobLimits, Outcome, Plugin, Runtime, Terminator};

/// The format of what `/tone` plays: 48 kHz mono, LiveKit's native rate.
const CONSOLE_AUDIO: AudioFormat = AudioFormat {
    sample_rate: 48_000,
    channels: 1,
};

/// Arguments of `console`.
#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// A `.wasm` component, or a guest crate directory to build first.
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

const CHAT_TOPIC: &str = "lk.chat";

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
    let mut plugin = runtime
        .load_plugin(&bytes)
        .with_context(|| format!("loading {}", path.display()))?;
    let rooms = SimRooms::default();
    let room = rooms.room(&args.room);
    room.join_identity(&args.identity);
    let mut outputs = room.subscribe();

    let mut jobs = 0;
    let Some(mut job) = start_job(&runtime, &plugin, &rooms, &args, &limits, &mut jobs).await?
    else {
        return Ok(ExitCode::FAILURE);
    };
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
                    tokio::spawn(read_input(room.clone(), args.identity.clone()));
                }
                print_output(&output, &args.identity);
            }
            result = &mut job.outcome => {
                let outcome = result.unwrap_or_else(|e| Outcome::Failed(format!("internal error: {e}")));
                let Some(new) = next.take() else { break outcome };
                eprintln!("job on the old version: {outcome}");
                plugin = new;
                match start_job(&runtime, &plugin, &rooms, &args, &limits, &mut jobs).await? {
                    Some(started) => job = started,
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
        print_output(&output, &args.identity);
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
        "agent {agent} joined room `{}` (plugin {}); type to chat, /join NAME, /leave NAME, /data TEXT, /tone MS, Ctrl-D to end",
        args.room,
        plugin.version()
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

/// Turns typed lines into room activity; end of input closes the room.
async fn read_input(room: SimRoom, me: String) {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let (command, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let rest = rest.trim();
        match command {
            "/join" if !rest.is_empty() => room.join_identity(rest),
            "/leave" if !rest.is_empty() => {
                if !room.leave(rest) {
                    eprintln!("{rest} is not in the room");
                }
            }
            "/data" => room.send_data(&me, None, rest.as_bytes(), &[]),
            "/metadata" => room.set_metadata(rest),
            "/tone" => {
                let ms = rest.parse().unwrap_or(1_000).min(10_000);
                // The tone, then a second of silence: a pause after speech.
                let mut samples = tone(CONSOLE_AUDIO, 440, ms);
                samples.resize(samples.len() + CONSOLE_AUDIO.sample_rate as usize, 0);
                room.speak(&me, CONSOLE_AUDIO, &samples);
                eprintln!("you played a {ms} ms tone");
            }
            _ if command.starts_with('/') => {
                eprintln!(
                    "commands: /join NAME, /leave NAME, /data TEXT, /metadata TEXT, /tone MS"
                );
            }
            _ => room.send_text(&me, CHAT_TOPIC, &line, &[]),
        }
    }
    room.close();
}

fn print_output(output: &SimOutput, me: &str) {
    let to = |destinations: &[String]| {
        if destinations.is_empty() || destinations.iter().any(|d| d == me) {
            String::new()
        } else {
            format!(" (to {})", destinations.join(", "))
        }
    };
    match output {
        SimOutput::Text { from, text } => {
            println!("{from}{}: {}", to(&text.destinations), text.text);
        }
        SimOutput::Data { from, data } => {
            let payload = String::from_utf8(data.payload.clone())
                .unwrap_or_else(|_| format!("<{} bytes>", data.payload.len()));
            let topic = data
                .topic
                .as_deref()
                .map(|t| format!(" topic={t}"))
                .unwrap_or_default();
            println!("{from}{} [data{topic}]: {payload}", to(&data.destinations));
        }
        SimOutput::Metadata { from, metadata } => println!("{from} [metadata]: {metadata}"),
        SimOutput::Attributes { from, attributes } => {
            println!("{from} [attributes]: {attributes:?}");
        }
        SimOutput::AudioPublished { from, name, format } => println!(
            "{from} [audio]: published track `{name}` ({} Hz, {} ch)",
            format.sample_rate, format.channels
        ),
        SimOutput::TextStreamOpened { from, id, options } => println!(
            "{from}{} [stream {id} topic={}]: opened {:?}",
            to(&options.destinations),
            options.topic,
            options.attributes
        ),
        SimOutput::TextStreamChunk { from, id, text } => println!("{from} [stream {id}]: {text}"),
        SimOutput::TextStreamClosed {
            from,
            id,
            attributes,
        } => println!("{from} [stream {id}]: closed {attributes:?}"),
        SimOutput::RpcRequest { from, call, .. } => println!(
            "{from} [rpc]: calls `{}` on {} with {}",
            call.method, call.destination, call.payload
        ),
        SimOutput::Audio { .. } | SimOutput::AudioCleared { .. } => {}
        SimOutput::AgentJoined(_) | SimOutput::AgentLeft(_) => {}
    }
}
