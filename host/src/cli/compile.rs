//! `agent-host compile PLUGIN -o plugin.cwasm`: compile a plugin ahead of
//! time, so that loading it skips Cranelift (and hashing the component).
//!
//! The output is bound to this agent-host build and to the engine settings
//! that change compiled code: `--memory-limit` must be the one the `.cwasm`
//! will run with (the largest of the workers' limits for `run`); anything
//! else is refused at load with a line saying to recompile. Loading a
//! `.cwasm` needs `--allow-precompiled` (see SECURITY.md).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Args;

use agent_host::config::job::DEFAULT_MEMORY_BYTES;
use agent_host::guest_build::read_plugin;
use agent_host::{Runtime, RuntimeConfig};

use super::parse::parse_bytes;

/// Arguments of `compile`.
#[derive(Debug, Args)]
pub struct CompileArgs {
    /// A `.wasm` component, or a guest project directory (Rust crate,
    /// Python app or JavaScript package) to build first.
    #[arg(value_name = "PLUGIN")]
    plugin: PathBuf,

    /// Where to write the precompiled plugin.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,

    /// The job memory limit the plugin will run with (it sets the engine's
    /// memory reservation, which compiled code depends on); the default is
    /// `run`'s.
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes, env = "AGENT_HOST_MEMORY_LIMIT")]
    memory_limit: Option<u64>,
}

/// Compiles and type-checks the plugin exactly as `run` would, then writes
/// it as a `.cwasm`.
pub fn run(args: CompileArgs) -> Result<ExitCode> {
    let (bytes, path) = read_plugin(&args.plugin)?;
    let runtime = Runtime::new(RuntimeConfig {
        // One job's worth of pool: the pool's size does not change compiled
        // code, only the memory reservation does.
        max_jobs: 1,
        max_memory_bytes: args.memory_limit.unwrap_or(DEFAULT_MEMORY_BYTES),
        cache_dir: None,
        ..RuntimeConfig::default()
    })?;
    let cwasm = runtime
        .precompile(&bytes)
        .with_context(|| format!("compiling {}", path.display()))?;
    agent_host::runtime::write_atomically(&args.output, &cwasm)
        .with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!(
        "{} -> {} ({} bytes)",
        path.display(),
        args.output.display(),
        cwasm.len()
    );
    Ok(ExitCode::SUCCESS)
}
