//! Python agent projects: recognising them, provisioning their toolchain,
//! and building them into components with the Python SDK.
//!
//! A Python project is a directory with an `app.py` that imports
//! `agent_host` (a `pyproject.toml` beside it is optional and gives the
//! guest version). Building runs the SDK's own build (`python -m agent_host
//! build`, componentize-py plus the version marker) in the toolchain venv
//! and writes `DIR/build/agent.wasm`.
//!
//! Policy:
//! - the toolchain is a venv in agent-host's cache ([`paths::toolchain_dir`])
//!   with componentize-py [`paths::COMPONENTIZE_PY`] from PyPI, and the SDK
//!   embedded in this binary (its Python files, and the WIT of the `wit/`
//!   directory this host was built from, so guests always target what the
//!   host serves). `agent-host setup --lang python` provisions it; a build
//!   provisions it on first use, saying so, when it is missing;
//! - the SDK files are rewritten whenever the embedded ones differ from
//!   those on disk (no network needed), so a newer agent-host never builds
//!   with an older SDK;
//! - a build is skipped when `DIR/build/agent.wasm` was built from the same
//!   sources, SDK and toolchain ([`super::sources`]), since each build
//!   takes 7–10 s;
//! - files are written under temporary names and renamed, and the ready
//!   marker last, so an interrupted setup is redone.

pub mod paths;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

use super::sources::{self, Sources};
use crate::runtime::write_atomically;

/// The SDK's own files as embedded in this binary: paths inside the
/// toolchain's `sdk/` directory and their contents; [`sdk_files`] adds the
/// host's WIT under `agent_host/wit/`.
const SDK_FILES: &[(&str, &str)] = &[
    (
        "agent_host/__init__.py",
        include_str!("../../../guest-sdk/python/agent_host/__init__.py"),
    ),
    (
        "agent_host/__main__.py",
        include_str!("../../../guest-sdk/python/agent_host/__main__.py"),
    ),
    (
        "agent_host/_agent.py",
        include_str!("../../../guest-sdk/python/agent_host/_agent.py"),
    ),
    (
        "agent_host/_log.py",
        include_str!("../../../guest-sdk/python/agent_host/_log.py"),
    ),
    (
        "agent_host/_room.py",
        include_str!("../../../guest-sdk/python/agent_host/_room.py"),
    ),
    (
        "agent_host/build.py",
        include_str!("../../../guest-sdk/python/agent_host/build.py"),
    ),
    (
        "agent_host/http.py",
        include_str!("../../../guest-sdk/python/agent_host/http.py"),
    ),
];

/// Where [`build`] writes a project's component, under the project directory.
const OUTPUT_DIR: &str = "build";

/// Directories of a Python project that never hold its sources: the
/// build's output ([`OUTPUT_DIR`]) and bytecode caches.
pub const NOT_SOURCES: &[&str] = &[OUTPUT_DIR, "__pycache__"];

/// A Python project's sources, for the build's stamp.
const SOURCES: Sources = Sources {
    is_source,
    skipped: NOT_SOURCES,
};

/// Whether `dir` is a Python agent project: an `app.py` that uses `agent_host`.
pub fn is_project(dir: &Path) -> bool {
    fs::read_to_string(dir.join("app.py")).is_ok_and(|app| app.contains("agent_host"))
}

/// Whether a change to `path` can change what a Python project builds.
pub fn is_source(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    path.extension().is_some_and(|e| e == "py") || name == "pyproject.toml"
}

/// Builds the Python project in `dir` (provisioning the toolchain first if
/// it is missing) into `dir/build/agent.wasm` and returns that path.
pub fn build(dir: &Path) -> Result<PathBuf> {
    build_into(dir, &dir.join(OUTPUT_DIR))
}

/// [`build`], writing `agent.wasm` (and the digest of what it was built
/// from) into `out_dir` instead: tests keep their builds under `target/`.
pub fn build_into(dir: &Path, out_dir: &Path) -> Result<PathBuf> {
    if !is_project(dir) {
        bail!(
            "{} is not a Python agent project (no app.py importing agent_host)",
            dir.display()
        );
    }
    let toolchain = ensure_toolchain(None)?;
    let out = out_dir.join("agent.wasm");
    let digest = SOURCES.digest(dir, &toolchain_pins(), sdk_files())?;
    if sources::is_current(&out, &digest) {
        return Ok(out);
    }
    eprintln!("building {} with componentize-py ...", dir.display());
    let status = Command::new(toolchain.join("venv/bin/python"))
        .args(["-m", "agent_host", "build"])
        .arg(dir)
        .arg("-o")
        .arg(&out)
        .env("PYTHONPATH", toolchain.join("sdk"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .context("running the toolchain's Python")?;
    if !status.success() {
        bail!("building {} failed (see the output above)", dir.display());
    }
    sources::record(&out, &digest)?;
    Ok(out)
}

/// What the toolchain builds with, for the build's stamp.
fn toolchain_pins() -> String {
    format!("componentize-py@{}", paths::COMPONENTIZE_PY)
}

/// The toolchain directory, set up (with the interpreter `python`, else
/// `python3` on PATH) if it is not ready; the SDK files brought up to date.
pub fn ensure_toolchain(python: Option<&Path>) -> Result<PathBuf> {
    let Some(dir) = paths::toolchain_dir() else {
        bail!("no cache directory for the Python toolchain (HOME is not set)");
    };
    if !is_ready(&dir) {
        eprintln!(
            "setting up the Python toolchain (componentize-py {}) in {}, once ...",
            paths::COMPONENTIZE_PY,
            dir.display()
        );
        install(&dir, python)?;
    }
    write_sdk(&dir)?;
    Ok(dir)
}

/// Sets the toolchain up again in `dir` (or the default place): a fresh
/// venv with componentize-py, then the SDK, then the ready marker.
pub fn install(dir: &Path, python: Option<&Path>) -> Result<()> {
    let _ = fs::remove_file(paths::ready_marker(dir));
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let venv = dir.join("venv");
    let python = python.map_or_else(|| PathBuf::from("python3"), Path::to_path_buf);
    run(Command::new(&python)
        .args(["-m", "venv", "--clear"])
        .arg(&venv))
    .with_context(|| format!("creating a venv with {}", python.display()))?;
    let pin = format!("componentize-py=={}", paths::COMPONENTIZE_PY);
    run(Command::new(venv.join("bin/python")).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        &pin,
    ]))
    .with_context(|| format!("installing {pin} from PyPI"))?;
    write_sdk(dir)?;
    write_atomically(&paths::ready_marker(dir), pin.as_bytes())?;
    Ok(())
}

/// Whether `dir` holds a finished setup of this componentize-py.
fn is_ready(dir: &Path) -> bool {
    fs::read_to_string(paths::ready_marker(dir))
        .is_ok_and(|m| m.trim() == format!("componentize-py=={}", paths::COMPONENTIZE_PY))
}

/// The embedded SDK: its own files and the host's WIT under
/// `agent_host/wit/`, where the package keeps it.
fn sdk_files() -> impl Iterator<Item = (String, &'static str)> {
    SDK_FILES
        .iter()
        .map(|(path, text)| (path.to_string(), *text))
        .chain(super::wit::files_under("agent_host/wit/"))
}

/// Writes the embedded SDK under `dir/sdk` where it differs from what is there.
fn write_sdk(dir: &Path) -> Result<()> {
    for (path, text) in sdk_files() {
        let file = dir.join("sdk").join(path);
        if fs::read_to_string(&file).is_ok_and(|t| t == *text) {
            continue;
        }
        if let Some(parent) = file.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        write_atomically(&file, text.as_bytes())
            .with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(())
}

fn run(command: &mut Command) -> Result<()> {
    let status = command
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("running {:?}", command.get_program()))?;
    if !status.success() {
        bail!("{:?} failed ({status})", command.get_program());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The WIT shipped in the pip package is the host's: no silent drift.
    #[test]
    fn the_packaged_wit_is_the_hosts() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for (path, text) in sdk_files().filter(|(p, _)| p.ends_with(".wit")) {
            let packaged = fs::read_to_string(root.join("guest-sdk/python").join(&path))
                .unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(&packaged, text, "guest-sdk/python/{path} differs from wit/");
        }
    }

    /// Every file of the SDK package is embedded, and the versions agree.
    #[test]
    fn every_sdk_file_is_embedded_and_versions_agree() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk/python/agent_host");
        let mut on_disk: Vec<String> = fs::read_dir(&root)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".py"))
            .map(|n| format!("agent_host/{n}"))
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = SDK_FILES
            .iter()
            .map(|(p, _)| p.to_string())
            .filter(|p| p.ends_with(".py"))
            .collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
        let build = SDK_FILES
            .iter()
            .find(|(p, _)| p.ends_with("build.py"))
            .unwrap()
            .1;
        assert!(build.contains(&format!("COMPONENTIZE_PY = \"{}\"", paths::COMPONENTIZE_PY)));
        assert!(build.contains(&format!(
            "WIT_VERSION = \"{}\"",
            crate::runtime::WIT_VERSION
        )));
        assert_eq!(paths::SDK_VERSION, crate::runtime::WIT_VERSION);
    }

    #[test]
    fn recognises_python_projects() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_project(dir.path()));
        fs::write(dir.path().join("app.py"), "print('hi')\n").unwrap();
        assert!(!is_project(dir.path()), "an app.py without agent_host");
        fs::write(dir.path().join("app.py"), "from agent_host import Agent\n").unwrap();
        assert!(is_project(dir.path()));
        assert!(is_source(Path::new("x/app.py")) && is_source(Path::new("pyproject.toml")));
        assert!(!is_source(Path::new("build/agent.wasm")));
    }

    #[test]
    fn the_sources_skip_the_build_and_bytecode_caches() {
        let dir = sources::project_with(&[
            "app.py",
            "pyproject.toml",
            "lib/util.py",
            "build/gen.py",
            "__pycache__/app.py",
        ]);
        let listed = SOURCES.list(dir.path()).unwrap();
        assert_eq!(
            listed,
            sources::paths(&["app.py", "lib/util.py", "pyproject.toml"])
        );
    }
}
