//! `agent-host setup --lang python`: the Python agents' toolchain.
//!
//! A venv in agent-host's cache with the pinned componentize-py from PyPI
//! and the Python SDK embedded in this binary (see
//! [`agent_host::guest_build::python`], which a build also calls to
//! provision it on first use). Idempotent unless `--force`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};

use agent_host::guest_build::python::{self, paths};

/// Sets the toolchain up (with the interpreter `python`, else `python3`)
/// unless it is ready, or again with `force`.
pub fn run(python_bin: Option<&Path>, force: bool) -> Result<ExitCode> {
    let Some(dir) = paths::toolchain_dir() else {
        bail!("no cache directory for the Python toolchain (HOME is not set)");
    };
    if force {
        python::install(&dir, python_bin)?;
    }
    let dir = python::ensure_toolchain(python_bin)?;
    println!(
        "Python toolchain (componentize-py {}, agent-host SDK {}) is ready in {}",
        paths::COMPONENTIZE_PY,
        paths::SDK_VERSION,
        dir.display()
    );
    println!(
        "build a Python agent directory with `agent-host console --plugin DIR` or `run --plugin DIR`."
    );
    Ok(ExitCode::SUCCESS)
}
