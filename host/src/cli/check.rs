//! `agent-host check PLUGIN`: validate a plugin and show what it is.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use agent_host::guest_build::read_plugin;
use agent_host::{Runtime, RuntimeConfig};

use super::args::PrecompiledArgs;

/// Arguments of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A `.wasm` component, or a guest crate directory to build first.
    #[arg(value_name = "PLUGIN")]
    plugin: PathBuf,

    #[command(flatten)]
    precompiled: PrecompiledArgs,
}

/// Loads the plugin exactly as `run` would (compile, type-check against the
/// world) and prints its identity, exports and imports.
pub fn run(args: CheckArgs) -> Result<ExitCode> {
    let (bytes, path) = read_plugin(&args.plugin)?;
    let runtime = Runtime::new(RuntimeConfig {
        max_jobs: 1,
        cache_dir: None,
        allow_precompiled: args.precompiled.allow_precompiled,
        ..RuntimeConfig::default()
    })?;
    let plugin = match runtime.load_plugin(&bytes) {
        Ok(plugin) => plugin,
        Err(err) => {
            eprintln!("error: {}: {err}", path.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let version = plugin.version();
    println!("{}: ok, an agent-host agent", path.display());
    println!("  digest:        sha256:{}", version.digest);
    println!(
        "  guest version: {}",
        version.guest.as_deref().unwrap_or("(not recorded)")
    );
    println!(
        "  WIT version:   {}",
        version
            .sdk
            .as_deref()
            .unwrap_or("(not recorded; built without agent-host-sdk)")
    );
    println!("  compiled in:   {:.0?}", plugin.load_time());
    println!("  exports:");
    for name in plugin.exports() {
        println!("    {name}");
    }
    println!("  imports:");
    for name in plugin.imports() {
        println!("    {name}");
    }
    Ok(ExitCode::SUCCESS)
}
