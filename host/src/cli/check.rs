//! `agent-host check PLUGIN`: validate a plugin and show what it is.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use agent_host::guest_build::plugin_file;
use agent_host::runtime::SDK_VERSION_SECTION;
use agent_host::{PluginError, Prewarm, Runtime, RuntimeConfig};

use super::args::PrecompiledArgs;

/// Arguments of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A `.wasm` component, or a guest project directory (Rust crate,
    /// Python app or JavaScript package) to build first.
    #[arg(value_name = "PLUGIN")]
    plugin: PathBuf,

    #[command(flatten)]
    precompiled: PrecompiledArgs,
}

/// Loads the plugin exactly as `run` would (compile, type-check against the
/// world) and prints its identity, what one job takes from the pool (and
/// how many fit the default pool), exports and imports. Warns, without
/// failing, when the SDK version section is missing.
pub fn run(args: CheckArgs) -> Result<ExitCode> {
    let path = plugin_file(&args.plugin)?;
    // The default pool, so "jobs fit" is what `run` gives by default.
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: None,
        allow_precompiled: args.precompiled.allow_precompiled,
        ..RuntimeConfig::default()
    })?;
    // A plugin that is refused fails the check (exit 1); a file that
    // cannot be read is an error of the command (exit 2).
    let plugin = match super::progress::loading(&path, || runtime.load_plugin_file(&path)) {
        Ok(plugin) => plugin,
        Err(err) if err.downcast_ref::<PluginError>().is_some() => {
            eprintln!("error: {}: {err:#}", path.display());
            return Ok(ExitCode::FAILURE);
        }
        Err(err) => return Err(err.context(format!("reading {}", path.display()))),
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
    println!(
        "  per job:       {}; {} jobs fit the pool of {} (--max-jobs)",
        plugin.footprint(),
        runtime.jobs_fit(&plugin),
        runtime.config().max_jobs
    );
    println!("  compiled in:   {:.0?}", plugin.load_time());
    println!("  prewarm:       {}", describe_prewarm(plugin.prewarm()));
    println!("  exports:");
    for name in plugin.exports() {
        println!("    {name}");
    }
    println!("  imports:");
    for name in plugin.imports() {
        println!("    {name}");
    }
    if version.sdk.is_none() {
        eprintln!(
            "warning: {}: no `{SDK_VERSION_SECTION}` custom section, so this host cannot tell \
             which WIT version the guest targets and refuse a newer one before running it; \
             build with an agent-host SDK (the Rust crate, or the Python and JavaScript SDK \
             builds, which append it), or append a custom section named `{SDK_VERSION_SECTION}` \
             holding the WIT version as text (e.g. `0.1.4`)",
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The `prewarm:` line: whether the plugin prewarms, and how long it took.
fn describe_prewarm(prewarm: Prewarm) -> String {
    match prewarm {
        Prewarm::None => "no (no `prewarm` export)".into(),
        Prewarm::Ran(took) => format!("ran in {took:.0?}, snapshotted for every job"),
        Prewarm::Cached => "snapshot from the compile cache (not run again)".into(),
        Prewarm::Precompiled => "snapshot taken by `agent-host compile` (not run again)".into(),
    }
}
