//! Building a guest crate directory into a component.
//!
//! Wherever a `PLUGIN` is accepted it may be a `.wasm` component or a guest
//! crate directory; a directory is built with
//! `cargo build --release --target wasm32-wasip2` (cargo's progress goes to
//! the terminal) and the component it produced is loaded.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

/// Reads a plugin: the file itself, or the component built from a crate
/// directory. Returns the bytes and the path they came from.
pub fn read_plugin(path: &Path) -> Result<(Vec<u8>, PathBuf)> {
    let wasm = plugin_file(path)?;
    let bytes = std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
    Ok((bytes, wasm))
}

/// The plugin's file: `path` itself, or the component built from a crate
/// directory.
pub fn plugin_file(path: &Path) -> Result<PathBuf> {
    if path.is_dir() {
        build_crate(path)
    } else {
        Ok(path.to_path_buf())
    }
}

/// Builds the guest crate in `dir` for `wasm32-wasip2` in release mode and
/// returns the path of the component it produced.
pub fn build_crate(dir: &Path) -> Result<PathBuf> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        bail!("{} is a directory without a Cargo.toml", dir.display());
    }
    eprintln!("building {} for wasm32-wasip2 ...", dir.display());
    let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(&manifest)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo (is it installed and on PATH?)")?;
    if !output.status.success() {
        bail!(
            "building {} failed (see cargo's output above)",
            dir.display()
        );
    }
    let manifest = manifest.canonicalize()?;
    component_from_messages(&String::from_utf8_lossy(&output.stdout), &manifest).with_context(
        || {
            format!(
                "{} produced no .wasm component (is it a cdylib crate?)",
                dir.display()
            )
        },
    )
}

/// Finds the `.wasm` file that cargo reported for the package at `manifest`.
fn component_from_messages(messages: &str, manifest: &Path) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| m["manifest_path"].as_str().map(Path::new) == Some(manifest))
        .flat_map(|m| {
            m["filenames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|f| f.as_str().map(PathBuf::from))
        })
        .find(|f| f.extension().is_some_and(|e| e == "wasm"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_component_of_the_package() {
        let messages = r#"{"reason":"compiler-artifact","manifest_path":"/x/dep/Cargo.toml","filenames":["/t/libdep.rlib"]}
{"reason":"compiler-artifact","manifest_path":"/x/echo/Cargo.toml","filenames":["/t/echo.wasm"]}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            component_from_messages(messages, Path::new("/x/echo/Cargo.toml")),
            Some(PathBuf::from("/t/echo.wasm"))
        );
        assert_eq!(
            component_from_messages(messages, Path::new("/x/other/Cargo.toml")),
            None
        );
    }
}
