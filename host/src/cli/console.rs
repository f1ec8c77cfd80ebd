//! `agent-host console`: one job in a simulated room, with the terminal user
//! as a participant. Needs no LiveKit server.
//!
//! Each line typed is sent to the agent as a chat message (`lk.chat`);
//! `/join NAME` and `/leave NAME` simulate other participants, `/data TEXT`
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
use agent_host::guest_build::read_plugin;
use agent_host::room::sim::{SimOutput, SimRoom, SimRooms};
use agent_host::wit::{Decision, JobRequest, JobType, RoomInfo};
use agent_host::{Outcome, Runtime};

/// Arguments of `console`.
#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// A `.wasm` component, or a guest crate directory to build first.
    #[arg(long, value_name = "PLUGIN", env = "AGENT_HOST_PLUGIN")]
    plugin: PathBuf,

    /// Job metadata, as a dispatch would give it.
    #[arg(long, default_value = "")]
    metadata: String,

    /// Your identity in the room.
    #[arg(long, default_value = "you")]
    identity: String,

    /// Name of the simulated room.
    #[arg(long, default_value = "console")]
    room: String,

    #[command(flatten)]
    limits: LimitArgs,
}

const CHAT_TOPIC: &str = "lk.chat";

/// Runs the console session on a fresh tokio runtime.
pub fn run(args: ConsoleArgs) -> Result<ExitCode> {
    let (bytes, path) = read_plugin(&args.plugin)?;
    tokio::runtime::Runtime::new()
        .context("starting the async runtime")?
        .block_on(session(args, bytes, path))
}

async fn session(args: ConsoleArgs, bytes: Vec<u8>, path: PathBuf) -> Result<ExitCode> {
    let limits = args.limits.job_limits(&WorkerSettings::default());
    let runtime = Runtime::new(args.limits.runtime_config(1, limits.memory_bytes, None))?;
    let plugin = runtime
        .load_plugin(&bytes)
        .with_context(|| format!("loading {}", path.display()))?;
    let rooms = SimRooms::default();
    let room = rooms.room(&args.room);
    room.join_identity(&args.identity);

    let request = JobRequest {
        id: format!("AJ_console{}", std::process::id()),
        job_type: JobType::Room,
        room: RoomInfo {
            sid: room.sid(),
            name: room.name(),
            metadata: String::new(),
        },
        participant: None,
        agent_name: String::new(),
        metadata: args.metadata.clone(),
        attributes: Vec::new(),
    };
    let offer = runtime.offer(&plugin, request, limits).await?;
    let Some(job) = offer.job else {
        let answer = match offer.decision {
            Decision::RejectAndTerminate => "rejected the job and asked to terminate it",
            _ => "rejected the job",
        };
        eprintln!("the agent {answer}");
        return Ok(ExitCode::FAILURE);
    };
    let agent = job.info().identity.clone();
    eprintln!(
        "agent {agent} joined room `{}` (plugin {}); type to chat, /join NAME, /leave NAME, /data TEXT, Ctrl-D to end",
        args.room,
        plugin.version()
    );

    let mut outputs = room.subscribe();
    let handle = job.start(Arc::new(rooms.clone()), String::new(), String::new());
    let terminator = handle.terminator();
    let outcome = tokio::spawn(handle.outcome());
    tokio::pin!(outcome);

    // Typed lines only make sense once the agent is in the room.
    let mut input_started = false;
    let mut interrupted = false;
    let outcome = loop {
        tokio::select! {
            Some(output) = outputs.recv() => {
                if !input_started && output == SimOutput::AgentJoined(agent.clone()) {
                    input_started = true;
                    tokio::spawn(read_input(room.clone(), args.identity.clone()));
                }
                print_output(&output, &args.identity);
            }
            result = &mut outcome => break result.unwrap_or_else(|e| Outcome::Failed(format!("internal error: {e}"))),
            _ = tokio::signal::ctrl_c() => {
                if interrupted {
                    eprintln!("stopping");
                    return Ok(ExitCode::FAILURE);
                }
                interrupted = true;
                eprintln!("terminating the job (Ctrl-C again to stop at once)");
                terminator.terminate();
            }
        }
    };
    // The sim room hands over outputs before the guest's call returns, so
    // everything the agent sent before it ended is queued by now.
    while let Ok(output) = outputs.try_recv() {
        print_output(&output, &args.identity);
    }
    eprintln!("job {outcome}");
    Ok(match outcome {
        Outcome::Success | Outcome::Terminated => ExitCode::SUCCESS,
        Outcome::Failed(_) => ExitCode::FAILURE,
    })
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
            _ if command.starts_with('/') => {
                eprintln!("commands: /join NAME, /leave NAME, /data TEXT, /metadata TEXT");
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
        SimOutput::AgentJoined(_) | SimOutput::AgentLeft(_) => {}
    }
}
