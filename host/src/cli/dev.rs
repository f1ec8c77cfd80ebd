//! `agent-host dev --plugin <project dir>`: build the guest project (a Rust
//! crate, a JavaScript package or a Python app, see `guest_build`), run it,
//! watch its sources, rebuild on change and hot-swap; like `lk agent dev`,
//! without restarting anything.
//!
//! As a worker (the default) it registers with a LiveKit server (by
//! default `livekit-server --dev` on this machine) and every rebuild is a
//! hot swap: new jobs run the new build, running jobs finish on theirs.
//! With `--console` it runs one job in a simulated room instead, and a
//! rebuild restarts that job on the new build in the same room. A build
//! that fails prints the compiler's errors and leaves the running version
//! serving.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::Args;

use super::args::{DevServerArgs, LimitArgs};
use super::console::{self, ConsoleArgs};
use super::run::{self, Plan, Planned};
use super::settings::WorkerSettings;
use agent_host::guest_build::{ProjectKind, js, read_plugin, watch_project};

/// Arguments of `dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// The guest project directory (a Rust crate, a JavaScript package or a
    /// Python app).
    #[arg(long, value_name = "PROJECT_DIR")]
    plugin: PathBuf,

    /// Chat with the agent in a simulated room instead of registering with
    /// a server.
    #[arg(long)]
    console: bool,

    /// (console) Job metadata.
    #[arg(long, default_value = "")]
    metadata: String,

    /// (console) Your identity in the room.
    #[arg(long, default_value = "you")]
    identity: String,

    #[command(flatten)]
    server: DevServerArgs,

    /// Agent name for explicit dispatch.
    #[arg(long, env = "LIVEKIT_AGENT_NAME", default_value = "")]
    agent_name: String,

    /// Address of the health server.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    http_host: IpAddr,

    /// Port of the health server; 0 (the default in dev) picks one.
    #[arg(long, default_value_t = 0)]
    http_port: u16,

    /// LiveKit's client library (`liblivekit_ffi.so`) for room I/O
    /// [default: the one `agent-host setup` installed].
    #[arg(long, value_name = "PATH", env = "LIVEKIT_LIB_PATH")]
    livekit_lib: Option<PathBuf>,

    /// Run jobs without room I/O even if LiveKit's client library is
    /// installed. A library named with --livekit-lib wins.
    #[arg(long, env = "AGENT_HOST_NO_ROOM_IO", value_parser = clap::builder::BoolishValueParser::new())]
    no_room_io: bool,

    #[command(flatten)]
    limits: LimitArgs,
}

/// Builds, runs and watches the project.
pub fn run(args: DevArgs) -> Result<ExitCode> {
    if ProjectKind::of(&args.plugin).is_none() {
        bail!(
            "{} is not a guest project directory (a Rust crate with a Cargo.toml, a \
             JavaScript package depending on {}, or a Python app.py importing agent_host)",
            args.plugin.display(),
            js::SDK_PACKAGE
        );
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    if args.console {
        let (bytes, path) = read_plugin(&args.plugin)?;
        let console_args = ConsoleArgs {
            plugin: args.plugin.clone(),
            metadata: args.metadata,
            identity: args.identity,
            room: "console".into(),
            limits: args.limits,
        };
        return runtime.block_on(async {
            let watch = watch_project(&args.plugin)?;
            console::session(console_args, bytes, path, Some((watch, args.plugin))).await
        });
    }
    let settings = WorkerSettings {
        agent_name: Some(args.agent_name),
        // As the official workers in dev mode: never report full.
        load_threshold: Some(f32::INFINITY),
        ..WorkerSettings::default()
    };
    let options = run::worker_options(
        &settings,
        &args.limits,
        args.server.url,
        args.server.api_key,
        args.server.api_secret,
    )?;
    let plan = Plan {
        workers: vec![Planned {
            path: args.plugin,
            options,
        }],
        http: SocketAddr::new(args.http_host, args.http_port),
        admin_token: None,
        watch: true,
        cache_dir: None,
        livekit_lib: args.livekit_lib,
        no_room_io: args.no_room_io,
    };
    runtime.block_on(run::serve(plan, args.limits))
}
