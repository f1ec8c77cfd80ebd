//! Building a guest project directory into a component.
//!
//! Wherever a `PLUGIN` is accepted it may be a `.wasm` component or a
//! project directory. What kind of project a directory is follows from the
//! file that defines it ([`ProjectKind::of`]):
//!
//! * a `Cargo.toml`: a Rust guest crate, built here with
//!   `cargo build --release --target wasm32-wasip2` (cargo's progress goes to
//!   the terminal);
//! * a `package.json` that depends on the JavaScript SDK: built by [`js`]
//!   with componentize-js;
//! * an `app.py` importing `agent_host`: a Python agent, built with the
//!   Python SDK and componentize-py ([`python`]).
//!
//! Either way the component the build produced is loaded. A directory that
//! is none of these gets an error naming what was looked for.

pub mod js;
pub mod python;
mod sources;
mod wit;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

use crate::watch::Watch;

/// The kinds of guest project a directory can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProjectKind {
    /// A Rust crate (`Cargo.toml`) using the `agent-host-sdk` crate.
    Rust,
    /// A JavaScript package (`package.json`) using the `@agent-host/sdk`
    /// npm package.
    JavaScript,
    /// A Python agent (`app.py` using the `agent_host` package).
    Python,
}

impl ProjectKind {
    /// The kind of project in `dir`, if it is one. A `Cargo.toml` wins
    /// over a `package.json`, so a Rust crate with JavaScript tooling beside
    /// it stays a Rust crate.
    pub fn of(dir: &Path) -> Option<Self> {
        if dir.join("Cargo.toml").is_file() {
            Some(Self::Rust)
        } else if js::is_project(dir) {
            Some(Self::JavaScript)
        } else if python::is_project(dir) {
            Some(Self::Python)
        } else {
            None
        }
    }

    /// Whether a change to `path` (relative to the project's directory)
    /// inside a project of this kind can change the component it builds
    /// (what `dev` and `run --watch` react to):
    /// for Rust anything watched outside `target/`, for JavaScript its
    /// modules and `package.json` outside `node_modules/` and `dist/`, for
    /// Python what [`python::is_source`] says outside `build/` and
    /// `__pycache__/`.
    pub fn is_source(self, path: &Path) -> bool {
        let under = |dir: &str| path.components().any(|c| c.as_os_str() == dir);
        match self {
            Self::Rust => !under("target"),
            Self::JavaScript => js::is_source(path) && !js::NOT_SOURCES.iter().any(|d| under(d)),
            Self::Python => {
                python::is_source(path) && !python::NOT_SOURCES.iter().any(|d| under(d))
            }
        }
    }

    /// What to watch in a project of this kind in `dir`: for Rust `src/`
    /// and `Cargo.toml` (not the build's `target/`, which the build itself
    /// writes); for JavaScript and Python every entry of `dir` but the
    /// build's output, installed packages and dot-entries, so that a build
    /// does not trigger another build.
    fn watch_roots(self, dir: &Path) -> Result<Vec<PathBuf>> {
        let skipped: &[&str] = match self {
            Self::Rust => &[],
            Self::JavaScript => js::NOT_SOURCES,
            Self::Python => python::NOT_SOURCES,
        };
        Ok(match self {
            Self::Rust => vec![dir.join("src"), dir.join("Cargo.toml")],
            Self::JavaScript | Self::Python => {
                let mut roots = Vec::new();
                for entry in
                    std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?
                {
                    let entry = entry?;
                    let name = entry.file_name();
                    let name = name.to_string_lossy();
                    if !name.starts_with('.') && !skipped.contains(&name.as_ref()) {
                        roots.push(entry.path());
                    }
                }
                roots
            }
        })
    }
}

/// Watches the sources of the project in `dir` (see
/// [`ProjectKind::is_source`]), for `run --watch` and `dev`.
pub fn watch_project(dir: &Path) -> Result<Watch> {
    let kind = ProjectKind::of(dir)
        .with_context(|| format!("{} is not a guest project", dir.display()))?;
    // As given and canonical: the watcher reports paths under either.
    let dirs = [dir.to_path_buf(), std::fs::canonicalize(dir)?];
    Watch::new(&kind.watch_roots(dir)?, move |p| {
        kind.is_source(project_relative(&dirs, p))
    })
}

/// `path` relative to the first of `dirs` (one project directory, in the
/// forms a watcher may report) it is under; `path` itself otherwise. So a
/// project that itself lives under a directory named `build`, `dist` or
/// `target` is not taken for build output.
fn project_relative<'a>(dirs: &[PathBuf], path: &'a Path) -> &'a Path {
    dirs.iter()
        .find_map(|d| path.strip_prefix(d).ok())
        .unwrap_or(path)
}

/// Reads a plugin: the file itself, or the component built from a crate
/// directory. Returns the bytes and the path they came from.
pub fn read_plugin(path: &Path) -> Result<(Vec<u8>, PathBuf)> {
    let wasm = plugin_file(path)?;
    let bytes = std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
    Ok((bytes, wasm))
}

/// The plugin's file: `path` itself, or the component built from a project
/// directory.
pub fn plugin_file(path: &Path) -> Result<PathBuf> {
    if path.is_dir() {
        build_project(path)
    } else {
        Ok(path.to_path_buf())
    }
}

/// Builds the project in `dir`, whichever kind it is, and returns the path
/// of the component it produced.
pub fn build_project(dir: &Path) -> Result<PathBuf> {
    match ProjectKind::of(dir) {
        Some(ProjectKind::Rust) => build_crate(dir),
        Some(ProjectKind::JavaScript) => js::build(dir),
        Some(ProjectKind::Python) => python::build(dir),
        None => bail!(
            "{} is not a guest project: it has neither a Cargo.toml (Rust), a \
             package.json depending on {} (JavaScript) nor an app.py importing \
             agent_host (Python)",
            dir.display(),
            js::SDK_PACKAGE
        ),
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
    fn a_project_under_a_build_directory_still_has_sources() {
        let dirs = [
            PathBuf::from("/srv/build/agent"),
            PathBuf::from("/real/build/agent"),
        ];
        let app = Path::new("/real/build/agent/app.py");
        assert_eq!(project_relative(&dirs, app), Path::new("app.py"));
        assert!(ProjectKind::Python.is_source(project_relative(&dirs, app)));
        let output = Path::new("/srv/build/agent/build/gen.py");
        assert!(!ProjectKind::Python.is_source(project_relative(&dirs, output)));
        let js = Path::new("/srv/build/agent/dist/x.js");
        assert!(!ProjectKind::JavaScript.is_source(project_relative(&dirs, js)));
        assert!(
            !ProjectKind::Python.is_source(app),
            "the whole path reads `build` as output"
        );
    }

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
