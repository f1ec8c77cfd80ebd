//! Building a JavaScript (or TypeScript-checked JavaScript) project into a
//! component with componentize-js.
//!
//! A JavaScript project is a directory whose `package.json` depends on
//! [`SDK_PACKAGE`]. It is built by the SDK's own build script
//! (`guest-sdk/js/build.mjs`), run with `node` from agent-host's JavaScript
//! toolchain: `<user cache>/agent-host/js/<SDK_VERSION>/`, which holds the
//! SDK (embedded in this binary, so a released binary needs no checkout)
//! and componentize-js [`COMPONENTIZE_JS_VERSION`] installed there with
//! `npm install`. `agent-host setup --lang js` installs it; building a project
//! installs it on first use, saying so, when it is missing.
//!
//! A build is skipped when the component it would write exists and was
//! built from the same sources ([`is_source`] files outside
//! [`NOT_SOURCES`]), SDK and toolchain: see [`super::sources`].
//!
//! Invariants: the toolchain directory is complete only once its marker
//! ([`MARKER`], naming the SDK and componentize-js versions) is written,
//! which happens last, so an interrupted install is redone; the SDK files
//! are the ones compiled into this binary, so the toolchain and the host
//! never disagree on the WIT.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

use super::sources::{self, Sources};

/// The npm name of the JavaScript SDK; a project depends on it.
pub const SDK_PACKAGE: &str = "@agent-host/sdk";

/// The version of the JavaScript SDK embedded in this binary (its
/// `package.json` version).
pub const SDK_VERSION: &str = "0.1.0";

/// The componentize-js release the SDK builds with. Pinned because its
/// output (StarlingMonkey's engine, the bindings it generates) is what the
/// host is tested against.
pub const COMPONENTIZE_JS_VERSION: &str = "0.23.0";

/// The file whose presence marks a complete toolchain install.
pub const MARKER: &str = "installed";

/// The SDK's own files, as embedded: (path inside the SDK, contents);
/// [`sdk_files`] adds the host's WIT under `wit/`.
const SDK_FILES: &[(&str, &str)] = &[
    (
        "package.json",
        include_str!("../../../guest-sdk/js/package.json"),
    ),
    ("index.js", include_str!("../../../guest-sdk/js/index.js")),
    (
        "index.d.ts",
        include_str!("../../../guest-sdk/js/index.d.ts"),
    ),
    ("build.mjs", include_str!("../../../guest-sdk/js/build.mjs")),
];

/// Whether `dir` holds a JavaScript project: a `package.json` naming
/// [`SDK_PACKAGE`] among its dependencies.
pub fn is_project(dir: &Path) -> bool {
    let Ok(text) = fs::read_to_string(dir.join("package.json")) else {
        return false;
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        return false;
    };
    ["dependencies", "devDependencies", "peerDependencies"]
        .iter()
        .any(|section| json[section].get(SDK_PACKAGE).is_some())
}

/// Whether a change to `path` can change what a JavaScript project builds
/// (what `dev` watches): its modules and its `package.json`.
pub fn is_source(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    name == "package.json" || matches!(ext, "js" | "mjs" | "ts" | "mts")
}

/// Directories of a JavaScript project that never hold its sources: the
/// build's output and installed packages.
pub const NOT_SOURCES: &[&str] = &["dist", "node_modules", ".git"];

/// A JavaScript project's sources, for the build's stamp.
const SOURCES: Sources = Sources {
    is_source,
    skipped: NOT_SOURCES,
};

/// The toolchain directory: `<user cache>/agent-host/js/<SDK_VERSION>`.
pub fn toolchain_dir() -> Option<PathBuf> {
    Some(crate::dirs::cache_dir("js")?.join(SDK_VERSION))
}

/// Whether `dir` holds a complete toolchain for this SDK version.
pub fn installed(dir: &Path) -> bool {
    fs::read_to_string(dir.join(MARKER)).is_ok_and(|m| m.trim() == marker_text())
}

fn marker_text() -> String {
    format!("{SDK_PACKAGE}@{SDK_VERSION} componentize-js@{COMPONENTIZE_JS_VERSION}")
}

/// Installs the toolchain into `dir`: writes the embedded SDK into
/// `dir/sdk/` and runs `npm install` for componentize-js in `dir` (npm's
/// progress goes to the terminal). When it is already installed (and not
/// `force`), only the SDK is written again, so that a toolchain installed
/// by an earlier build of this SDK version builds with this binary's SDK.
pub fn install_toolchain(dir: &Path, force: bool) -> Result<()> {
    if !force && installed(dir) {
        return write_sdk(&dir.join("sdk"));
    }
    let _ = fs::remove_file(dir.join(MARKER));
    write_sdk(&dir.join("sdk"))?;
    let manifest = serde_json::json!({
        "name": "agent-host-js-toolchain",
        "private": true,
        "description": "agent-host's JavaScript toolchain (written by agent-host setup --lang js)",
        "dependencies": { "@bytecodealliance/componentize-js": COMPONENTIZE_JS_VERSION },
    });
    fs::write(
        dir.join("package.json"),
        serde_json::to_string_pretty(&manifest)?,
    )
    .with_context(|| format!("writing {}", dir.join("package.json").display()))?;
    eprintln!(
        "installing componentize-js {COMPONENTIZE_JS_VERSION} into {} with npm ...",
        dir.display()
    );
    let status = Command::new(npm())
        .args(["install", "--no-audit", "--no-fund", "--omit=dev"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .context("running npm (is Node.js 18 or later installed and on PATH?)")?;
    if !status.success() {
        bail!(
            "npm install of componentize-js {COMPONENTIZE_JS_VERSION} in {} failed ({status})",
            dir.display()
        );
    }
    fs::write(dir.join(MARKER), marker_text())
        .with_context(|| format!("writing {}", dir.join(MARKER).display()))
}

/// The embedded SDK: its own files and the host's WIT under `wit/`.
fn sdk_files() -> impl Iterator<Item = (String, &'static str)> {
    SDK_FILES
        .iter()
        .map(|(name, text)| (name.to_string(), *text))
        .chain(super::wit::files_under("wit/"))
}

/// Writes the embedded SDK's files into `dir`.
pub fn write_sdk(dir: &Path) -> Result<()> {
    for (name, contents) in sdk_files() {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Builds the JavaScript project in `dir` and returns the path of its
/// component (`dir/dist/<package name>.wasm`). Installs the toolchain
/// first if it is missing.
pub fn build(dir: &Path) -> Result<PathBuf> {
    build_to(dir, None)
}

/// [`build`], writing the component to `out` instead when given.
pub fn build_to(dir: &Path, out: Option<&Path>) -> Result<PathBuf> {
    if !is_project(dir) {
        bail!(
            "{} is not a JavaScript agent project (no package.json depending on {SDK_PACKAGE})",
            dir.display()
        );
    }
    let digest = SOURCES.digest(dir, &marker_text(), sdk_files())?;
    if let Some(built) = out.map(Path::to_path_buf).or_else(|| default_output(dir))
        && sources::is_current(&built, &digest)
    {
        eprintln!("{} is up to date", built.display());
        return Ok(built);
    }
    let built = componentize(dir, out)?;
    sources::record(&built, &digest)?;
    Ok(built)
}

/// Where the build script writes the component by default:
/// `dist/<package name>.wasm` (the name's last `/` part, as npm scopes it).
fn default_output(dir: &Path) -> Option<PathBuf> {
    let text = fs::read_to_string(dir.join("package.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let name = json["name"].as_str()?.rsplit('/').next()?.to_string();
    Some(dir.join("dist").join(format!("{name}.wasm")))
}

/// Runs the SDK's build script on `dir`; returns the component's path.
fn componentize(dir: &Path, out: Option<&Path>) -> Result<PathBuf> {
    let toolchain = toolchain_dir()
        .context("no cache directory for the JavaScript toolchain (HOME is not set)")?;
    if !installed(&toolchain) {
        eprintln!(
            "agent-host's JavaScript toolchain is not installed in {}; installing it now \
             (`agent-host setup --lang js` does this ahead of time)",
            toolchain.display()
        );
    }
    // Installs it if missing; otherwise writes this binary's SDK over the
    // installed one.
    install_toolchain(&toolchain, false)?;
    eprintln!("building {} with componentize-js ...", dir.display());
    let output = Command::new(node())
        .arg(toolchain.join("sdk").join("build.mjs"))
        .arg(dir)
        .args(out.map(|out| [Path::new("-o"), out]).into_iter().flatten())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("running node (is Node.js 18 or later installed and on PATH?)")?;
    if !output.status.success() {
        bail!(
            "building {} failed (see the build's output above)",
            dir.display()
        );
    }
    // The build script prints the component's path as its last line.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let wasm = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| PathBuf::from(l.trim()))
        .with_context(|| format!("building {} reported no component", dir.display()))?;
    if !wasm.is_file() {
        bail!(
            "building {} reported {}, which is not a file",
            dir.display(),
            wasm.display()
        );
    }
    Ok(wasm)
}

/// `node`, or `AGENT_HOST_NODE` when set (a Node.js that is not on PATH).
fn node() -> std::ffi::OsString {
    std::env::var_os("AGENT_HOST_NODE")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "node".into())
}

/// `npm`, or `AGENT_HOST_NPM` when set.
fn npm() -> std::ffi::OsString {
    std::env::var_os("AGENT_HOST_NPM")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "npm".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_is_a_package_depending_on_the_sdk() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_project(dir.path()));
        fs::write(dir.path().join("package.json"), r#"{"name":"x"}"#).unwrap();
        assert!(!is_project(dir.path()));
        fs::write(
            dir.path().join("package.json"),
            r#"{"name":"x","dependencies":{"@agent-host/sdk":"^0.1.0"}}"#,
        )
        .unwrap();
        assert!(is_project(dir.path()));
        fs::write(dir.path().join("package.json"), "{not json").unwrap();
        assert!(!is_project(dir.path()));
    }

    #[test]
    fn the_component_is_named_after_the_package() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("package.json"), r#"{"name":"@me/x"}"#).unwrap();
        assert_eq!(
            default_output(dir.path()),
            Some(dir.path().join("dist/x.wasm"))
        );
    }

    #[test]
    fn the_sources_are_modules_and_the_manifest_outside_the_output() {
        let dir = sources::project_with(&[
            "package.json",
            "agent.js",
            "lib/util.ts",
            "dist/x.js",
            "node_modules/m/i.js",
        ]);
        fs::write(dir.path().join("README.md"), "not a source").unwrap();
        let listed = SOURCES.list(dir.path()).unwrap();
        assert_eq!(
            listed,
            sources::paths(&["agent.js", "lib/util.ts", "package.json"])
        );
    }

    #[test]
    fn the_embedded_sdk_version_is_its_package_version() {
        let (_, manifest) = SDK_FILES[0];
        let json: serde_json::Value = serde_json::from_str(manifest).unwrap();
        assert_eq!(json["name"], SDK_PACKAGE);
        assert_eq!(json["version"], SDK_VERSION);
    }

    #[test]
    fn the_sdk_imports_the_wit_package_version() {
        let wit = sdk_files().find(|(n, _)| n == "wit/agent.wit").unwrap().1;
        let version = wit
            .lines()
            .find_map(|l| l.strip_prefix("package agent-host:agent@"))
            .and_then(|l| l.strip_suffix(';'))
            .unwrap();
        let index = SDK_FILES.iter().find(|(n, _)| *n == "index.js").unwrap().1;
        let imports: Vec<&str> = index
            .lines()
            .filter_map(|l| l.split("from \"agent-host:agent/").nth(1))
            .collect();
        assert!(imports.len() >= 9, "index.js imports every interface");
        for import in imports {
            assert!(
                import.contains(&format!("@{version}\"")),
                "index.js imports {import} but the WIT is {version}"
            );
        }
        assert!(index.contains(&format!("WIT_VERSION = \"{version}\"")));
    }
}
