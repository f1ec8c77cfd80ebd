//! `agent-host connect --room NAME --plugin PLUGIN`: run one job directly
//! in a named room, without dispatch (like the official workers' `connect`
//! mode).
//!
//! The host offers the job to the guest (`on-request`), mints the agent's
//! participant token itself (room join for that room, `agent`, publish,
//! subscribe, publish data, update own metadata, with the identity the
//! agent accepted with unless `--identity` says otherwise), and runs the job
//! in the room through LiveKit's client library. Exit status: 0 when the
//! job succeeds (or is terminated with Ctrl-C), 1 when it fails or the
//! agent rejects it, 2 for setup errors (no library, bad plugin). A second
//! Ctrl-C stops at once.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use clap::Args;
use livekit_api::access_token::{AccessToken, VideoGrants};

use super::args::{DevServerArgs, LimitArgs};
use super::settings::WorkerSettings;
use agent_host::config::rooms::PARTICIPANT_TOKEN_TTL;
use agent_host::guest_build::read_plugin;
use agent_host::room::ffi::{FfiRooms, find_library};
use agent_host::room::service::RoomService;
use agent_host::wit::RoomInfo;
use agent_host::{Outcome, Runtime};

/// Arguments of `connect`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The room to join (created by the server if it does not exist).
    #[arg(long)]
    room: String,

    /// The plugin: a `.wasm` component or a guest project directory (Rust,
    /// Python or JavaScript).
    #[arg(long, value_name = "PLUGIN", env = "AGENT_HOST_PLUGIN")]
    plugin: PathBuf,

    /// The agent's identity in the room [default: the one the agent accepts with].
    #[arg(long)]
    identity: Option<String>,

    /// Job metadata, as a dispatch would give it.
    #[arg(long, default_value = "")]
    metadata: String,

    #[command(flatten)]
    server: DevServerArgs,

    /// LiveKit's client library (`liblivekit_ffi.so`) [default: the one
    /// `agent-host setup` installed].
    #[arg(long, value_name = "PATH", env = "LIVEKIT_LIB_PATH")]
    livekit_lib: Option<PathBuf>,

    #[command(flatten)]
    limits: LimitArgs,
}

/// The agent's participant token for `room`.
pub(super) fn participant_token(
    api_key: &str,
    api_secret: &str,
    room: &str,
    identity: &str,
) -> Result<String> {
    AccessToken::with_api_key(api_key, api_secret)
        .with_ttl(PARTICIPANT_TOKEN_TTL)
        .with_identity(identity)
        .with_name(identity)
        .with_kind("agent")
        .with_grants(VideoGrants {
            room_join: true,
            room: room.to_string(),
            agent: true,
            can_publish: Some(true),
            can_subscribe: Some(true),
            can_publish_data: Some(true),
            can_update_own_metadata: Some(true),
            ..VideoGrants::default()
        })
        .to_jwt()
        .map_err(|e| anyhow::anyhow!("could not sign the participant token: {e}"))
}

/// Runs `connect` on a fresh tokio runtime.
pub fn run(args: ConnectArgs) -> Result<ExitCode> {
    let path = find_library(args.livekit_lib.as_deref())?;
    let rooms = FfiRooms::load(&path)?;
    tracing::info!(library = %rooms.library_path().display(), "room transport: LiveKit client library");
    let (bytes, wasm) = read_plugin(&args.plugin)?;
    tokio::runtime::Runtime::new()
        .context("starting the async runtime")?
        .block_on(session(args, rooms, bytes, wasm))
}

async fn session(
    args: ConnectArgs,
    rooms: FfiRooms,
    bytes: Vec<u8>,
    wasm: PathBuf,
) -> Result<ExitCode> {
    let limits = args.limits.job_limits(&WorkerSettings::default())?;
    let runtime = Runtime::new(args.limits.runtime_config(1, limits.memory_bytes, None))?;
    let plugin = super::progress::loading(&wasm, || runtime.load_plugin(&bytes))
        .with_context(|| format!("loading {}", wasm.display()))?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let request = super::one_job_request(
        format!("AJ_connect{}_{nanos:x}", std::process::id()),
        RoomInfo {
            sid: String::new(),
            name: args.room.clone(),
            metadata: String::new(),
        },
        &args.metadata,
    );
    let Some(mut job) = super::offer_one_job(&runtime, &plugin, request, limits).await? else {
        return Ok(ExitCode::FAILURE);
    };
    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| job.info().identity.clone());
    let token = participant_token(
        &args.server.api_key,
        &args.server.api_secret,
        &args.room,
        &identity,
    )?;
    match RoomService::new(
        &args.server.url,
        &args.server.api_key,
        &args.server.api_secret,
    ) {
        Ok(service) => job.grant_room_service(&Arc::new(service)),
        Err(err) => tracing::warn!(error = %err, "no server API for the job"),
    }
    tracing::info!(room = %args.room, %identity, url = %args.server.url, plugin = %plugin.version(), "starting the job");
    let handle = job.start(Arc::new(rooms), args.server.url.clone(), token);
    let terminator = handle.terminator();
    let mut outcome = tokio::spawn(handle.outcome());
    let mut interrupted = false;
    let outcome = loop {
        tokio::select! {
            result = &mut outcome => {
                break result.unwrap_or_else(|e| Outcome::Failed(format!("internal error: {e}")));
            }
            _ = tokio::signal::ctrl_c() => {
                if super::interrupt(&mut interrupted, &terminator) {
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
    };
    Ok(super::job_exit(&outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_joins_one_room_as_an_agent() {
        let token = participant_token("devkey", "secret", "lobby", "agent-1").unwrap();
        let claims = livekit_api::access_token::Claims::from_unverified(&token)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(claims.sub, "agent-1");
        assert_eq!(claims.kind, "agent");
        let video = claims.video;
        assert!(video.room_join && video.agent);
        assert_eq!(video.room, "lobby");
        assert!(video.can_publish() && video.can_subscribe() && video.can_publish_data());
        assert!(video.can_update_own_metadata());
        assert!(!video.room_admin);
    }
}
