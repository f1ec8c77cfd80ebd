//! `agent-host setup --lang js`: install agent-host's JavaScript toolchain.
//!
//! Writes the JavaScript SDK embedded in this binary and installs the
//! pinned componentize-js with `npm install` into
//! `<user cache>/agent-host/js/<sdk version>/`; see
//! `agent_host::guest_build::js`, which also installs it on first use when a
//! JavaScript project is built. Idempotent unless `--force`.

use std::process::ExitCode;

use anyhow::{Result, bail};

use agent_host::guest_build::js::{self, COMPONENTIZE_JS_VERSION, SDK_PACKAGE, SDK_VERSION};

/// Installs the toolchain into the cache (again when `force`).
pub fn run(force: bool) -> Result<ExitCode> {
    let Some(dir) = js::toolchain_dir() else {
        bail!("no cache directory (HOME is not set)");
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
