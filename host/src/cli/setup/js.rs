//! `agent-host setup --js`: install agent-host's JavaScript toolchain.
//!
//! Writes the JavaScript SDK embedded in this binary and installs the
//! pinned componentize-js with `npm install` into
//! `<user cache>/agent-host/js/<sdk version>/` (or `--dir`); see
//! `agent_host::guest_build::js`, which also installs it on first use when a
//! JavaScript project is built. Idempotent unless `--force`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};

use agent_host::guest_build::js::{self, COMPONENTIZE_JS_VERSION, SDK_PACKAGE, SDK_VERSION};

/// Installs the toolchain into `dir` (default: the cache).
pub fn run(dir: Option<&Path>, force: bool) -> Result<ExitCode> {
    let dir = match dir.map(Path::to_path_buf).or_else(js::toolchain_dir) {
        Some(dir) => dir,
        None => bail!("no cache directory (HOME is not set): give --dir"),
    };
    if !force && js::installed(&dir) {
        println!(
            "JavaScript toolchain ({SDK_PACKAGE} {SDK_VERSION}, componentize-js \
             {COMPONENTIZE_JS_VERSION}) is already installed: {}",
            dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    std::fs::create_dir_all(&dir)?;
    js::install_toolchain(&dir, force)?;
    println!(
        "installed the JavaScript toolchain ({SDK_PACKAGE} {SDK_VERSION}, componentize-js \
         {COMPONENTIZE_JS_VERSION}) into {}",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
