//! What a test needs from the machine, and how a test says it did not run.
//!
//! A [`Capability`] is something a test cannot provide itself: LiveKit's
//! client library (`agent-host setup`), the right to create a private network
//! namespace (root, `unshare`, `ip`), the official Python worker's venv
//! (`tests/conformance/setup.sh`), agent-host's JavaScript toolchain
//! (`agent-host setup --lang js`). Tests that need one are ignored, with the
//! reason, when it is missing, and fail when it is missing on CI:
//!
//! * The build script of each crate with such tests calls [`build_script`]:
//!   for every capability present it emits `cargo::rustc-cfg=<cfg>` (see
//!   [`Capability::cfg`]); when `CI` is set ([`on_ci`]) it emits them all,
//!   present or not. It reruns when a variable or a file the probe reads
//!   changes.
//! * Each such test carries
//!   `#[cfg_attr(not(has_livekit_lib), ignore = "needs LiveKit's client library: run `agent-host setup`")]`
//!   (the reason is a literal: libtest drops one made by a macro), so
//!   `cargo test` prints `ignored, needs …` for it.
//! * The test starts with [`require`], which panics when the capability is
//!   missing: on CI (where the cfg is always set, so the test is never
//!   ignored) and when it went away after the build. A test can therefore
//!   never pass without having run.
//!
//! Policy: `CI` set to anything but empty, `0` or `false` means CI, as on
//! GitHub Actions, GitLab and most others; `.ci/run` sets `CI=true`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where and how the host finds LiveKit's client library, included here so
/// that the probe and the host agree (`find_library`, `cache_dir`).
#[allow(dead_code, reason = "only the lookup is used, not the wheel's facts")]
#[path = "../../../host/src/room/ffi/library.rs"]
mod library;

/// The host's cache directory rule, which `library` looks under.
#[path = "../../../host/src/dirs.rs"]
mod dirs;

/// Where the host keeps the Python agents' toolchain (`setup --lang python`).
#[allow(dead_code, reason = "only the toolchain's place is used")]
#[path = "../../../host/src/guest_build/python/paths.rs"]
mod python_paths;

/// The environment variable naming the Python interpreter of the official
/// worker's venv (`target/conformance-venv/bin/python`).
pub const PYTHON_ENV: &str = "AGENT_HOST_PYTHON";

/// Shell commands that set a private network namespace up for room tests:
/// `lo` up and a veth pair with `10.77.0.1` and `10.77.0.2` (a /24 that
/// exists only in that namespace). The probe runs them once in a throwaway
/// namespace.
pub const NETNS_SETUP: &str = "set -e; ip link set lo up; \
    ip link add veth0 type veth peer name veth1; \
    ip addr add 10.77.0.1/24 dev veth0; ip addr add 10.77.0.2/24 dev veth1; \
    ip link set veth0 up; ip link set veth1 up";

/// Something a test needs from the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// LiveKit's client library, `liblivekit_ffi.so`, where agent-host finds
    /// it (`LIVEKIT_LIB_PATH`, else the cache `agent-host setup` fills).
    LivekitLib,
    /// Private network namespaces with a veth pair (`unshare -n` and `ip`,
    /// as root or with CAP_NET_ADMIN).
    Netns,
    /// The official Python worker's venv, named by [`PYTHON_ENV`].
    PythonWorker,
    /// agent-host's JavaScript toolchain (the SDK and componentize-js, in
    /// the cache `agent-host setup --lang js` fills) and `node` to run it.
    JsToolchain,
    /// The Python agents' toolchain (componentize-py and the SDK) in
    /// agent-host's cache.
    PythonSdk,
}

impl Capability {
    /// Every capability.
    pub const ALL: [Capability; 5] = [
        Capability::LivekitLib,
        Capability::Netns,
        Capability::PythonWorker,
        Capability::JsToolchain,
        Capability::PythonSdk,
    ];

    /// The cfg set when it is present: tests write
    /// `#[cfg_attr(not(<cfg>), ignore = "…")]`.
    pub fn cfg(self) -> &'static str {
        match self {
            Capability::LivekitLib => "has_livekit_lib",
            Capability::Netns => "has_netns",
            Capability::PythonWorker => "has_python_worker",
            Capability::JsToolchain => "has_js_toolchain",
            Capability::PythonSdk => "has_python_sdk",
        }
    }

    /// What it is, for people.
    pub fn what(self) -> &'static str {
        match self {
            Capability::LivekitLib => "LiveKit's client library",
            Capability::Netns => "a private network namespace",
            Capability::PythonWorker => "the official Python worker",
            Capability::JsToolchain => "agent-host's JavaScript toolchain",
            Capability::PythonSdk => "the Python agents' toolchain",
        }
    }

    /// How to get it.
    pub fn how(self) -> &'static str {
        match self {
            Capability::LivekitLib => {
                "run `agent-host setup` (or point LIVEKIT_LIB_PATH at a liblivekit_ffi.so)"
            }
            Capability::Netns => "run as root (or with CAP_NET_ADMIN), with `unshare` and `ip`",
            Capability::PythonWorker => {
                "run `bash tests/conformance/setup.sh` and set AGENT_HOST_PYTHON=$PWD/target/conformance-venv/bin/python"
            }
            Capability::JsToolchain => {
                "install Node.js 18 or later and run `agent-host setup --lang js`"
            }
            Capability::PythonSdk => "run `agent-host setup --lang python`",
        }
    }

    /// The environment variables the probe reads.
    fn env(self) -> &'static [&'static str] {
        match self {
            Capability::LivekitLib => &[library::LIBRARY_ENV, "XDG_CACHE_HOME", "HOME"],
            Capability::Netns => &[],
            Capability::PythonWorker => &[PYTHON_ENV],
            Capability::JsToolchain => &["XDG_CACHE_HOME", "HOME", "PATH"],
            Capability::PythonSdk => &["XDG_CACHE_HOME", "HOME"],
        }
    }

    /// Looks for it: the file that provides it (the library, the
    /// interpreter, or for [`Capability::Netns`] the `unshare` it ran), or
    /// why it is missing.
    pub fn probe(self) -> Result<PathBuf, String> {
        match self {
            Capability::LivekitLib => library::find_library(None).map_err(|e| e.to_string()),
            Capability::Netns => {
                let made = Command::new("unshare")
                    .args(["-n", "sh", "-c", NETNS_SETUP])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                match made {
                    Ok(s) if s.success() => Ok(PathBuf::from("unshare")),
                    Ok(s) => Err(format!("`unshare -n` with a veth pair failed here ({s})")),
                    Err(e) => Err(format!("cannot run `unshare`: {e}")),
                }
            }
            Capability::PythonWorker => match std::env::var_os(PYTHON_ENV) {
                None => Err(format!("{PYTHON_ENV} is not set")),
                Some(p) if Path::new(&p).is_file() => Ok(PathBuf::from(p)),
                Some(p) => Err(format!(
                    "{PYTHON_ENV}={} does not exist",
                    Path::new(&p).display()
                )),
            },
            Capability::JsToolchain => {
                let marker = js_toolchain_dir()
                    .ok_or("no cache directory (HOME is not set)")?
                    .join("installed");
                if !marker.is_file() {
                    return Err(format!("{} does not exist", marker.display()));
                }
                match Command::new("node")
                    .arg("--version")
                    .stdout(Stdio::null())
                    .status()
                {
                    Ok(s) if s.success() => Ok(marker),
                    Ok(s) => Err(format!("`node --version` failed ({s})")),
                    Err(e) => Err(format!("cannot run `node`: {e}")),
                }
            }
            Capability::PythonSdk => {
                let dir = python_paths::toolchain_dir().ok_or("no cache directory")?;
                let marker = python_paths::ready_marker(&dir);
                if marker.is_file() {
                    Ok(marker)
                } else {
                    Err(format!("{} is not set up", dir.display()))
                }
            }
        }
    }

    /// The file whose appearance or change should rerun the probe: what it
    /// found, else the deepest existing directory on the way to what it
    /// looked for (never above the cache base or the named file's parent,
    /// so cargo never scans a large tree).
    fn watch(self, found: Option<&Path>) -> Option<PathBuf> {
        if let Some(found) = found {
            return (self != Capability::Netns).then(|| found.to_path_buf());
        }
        let named = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty());
        match self {
            Capability::LivekitLib => match named(library::LIBRARY_ENV) {
                Some(path) => existing_parent(Path::new(&path)),
                None => {
                    let dir = library::cache_dir()?;
                    // cache_dir() is <base>/agent-host/livekit-ffi/<version>.
                    let base = dir.ancestors().nth(3)?;
                    dir.ancestors()
                        .take_while(|d| d.starts_with(base))
                        .find(|d| d.is_dir())
                        .map(Path::to_path_buf)
                }
            },
            Capability::Netns => None,
            Capability::PythonWorker => {
                named(PYTHON_ENV).and_then(|p| existing_parent(Path::new(&p)))
            }
            Capability::JsToolchain => {
                let dir = js_toolchain_dir()?;
                // <base>/agent-host/js/<version>: watch the nearest existing one.
                let base = dir.ancestors().nth(3)?;
                dir.ancestors()
                    .take_while(|d| d.starts_with(base))
                    .find(|d| d.is_dir())
                    .map(Path::to_path_buf)
            }
            Capability::PythonSdk => {
                let dir = python_paths::toolchain_dir()?;
                // toolchain_dir() is <base>/agent-host/python/<version>.
                let base = dir.ancestors().nth(3)?;
                dir.ancestors()
                    .take_while(|d| d.starts_with(base))
                    .find(|d| d.is_dir())
                    .map(Path::to_path_buf)
            }
        }
    }
}

/// Where the host keeps its JavaScript toolchain
/// (`agent_host::guest_build::js::toolchain_dir`): `<cache>/js/<SDK version>`,
/// the version read from the SDK's package.json as the host's is.
fn js_toolchain_dir() -> Option<PathBuf> {
    const MANIFEST: &str = include_str!("../../../guest-sdk/js/package.json");
    let version = MANIFEST
        .lines()
        .find_map(|l| l.trim().strip_prefix("\"version\": \""))?
        .split('"')
        .next()?;
    Some(dirs::cache_dir("js")?.join(version))
}

/// The parent directory of `path` if it exists.
fn existing_parent(path: &Path) -> Option<PathBuf> {
    path.parent().filter(|d| d.is_dir()).map(Path::to_path_buf)
}

/// Whether this is a CI run: `CI` set to anything but empty, `0` or `false`.
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// For build scripts: declares the cfg of each of `capabilities`, sets it
/// when the capability is present or [`on_ci`], and asks cargo to rerun the
/// script when what the probes read changes.
pub fn build_script(capabilities: &[Capability]) {
    println!("cargo::rerun-if-env-changed=CI");
    for &capability in capabilities {
        println!("cargo::rustc-check-cfg=cfg({})", capability.cfg());
        for var in capability.env() {
            println!("cargo::rerun-if-env-changed={var}");
        }
        let found = capability.probe();
        if let Some(path) = capability.watch(found.as_ref().ok().map(PathBuf::as_path)) {
            println!("cargo::rerun-if-changed={}", path.display());
        }
        if found.is_ok() || on_ci() {
            println!("cargo::rustc-cfg={}", capability.cfg());
        }
    }
}

/// For a test that needs `capability`: what provides it (see
/// [`Capability::probe`]).
///
/// # Panics
/// When it is missing, with what is missing and how to get it: on CI, or
/// off CI when it went away after the build decided the test could run.
pub fn require(capability: Capability) -> PathBuf {
    capability
        .probe()
        .unwrap_or_else(|why| panic!("{}", missing(capability, &why, on_ci())))
}

/// The failure of a test whose `capability` is missing (`why`).
fn missing(capability: Capability, why: &str, ci: bool) -> String {
    let context = if ci {
        "CI runs every test"
    } else {
        "it was present when this test was built; rebuild to have the test ignored"
    };
    format!(
        "this test needs {} ({why}; {context}): {}",
        capability.what(),
        capability.how()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cfgs_are_distinct_and_named_has() {
        let cfgs: Vec<&str> = Capability::ALL.iter().map(|c| c.cfg()).collect();
        for (i, cfg) in cfgs.iter().enumerate() {
            assert!(cfg.starts_with("has_"), "{cfg}");
            assert!(!cfgs[..i].contains(cfg), "{cfg} twice");
        }
    }

    #[test]
    fn a_missing_capability_says_what_and_how_to_get_it() {
        let ci = missing(
            Capability::PythonWorker,
            "AGENT_HOST_PYTHON is not set",
            true,
        );
        assert!(ci.contains("the official Python worker"), "{ci}");
        assert!(ci.contains("AGENT_HOST_PYTHON is not set"), "{ci}");
        assert!(ci.contains("CI runs every test"), "{ci}");
        assert!(ci.contains("tests/conformance/setup.sh"), "{ci}");
        let gone = missing(Capability::LivekitLib, "not found", false);
        assert!(gone.contains("rebuild"), "{gone}");
        assert!(gone.contains("agent-host setup"), "{gone}");
    }

    #[test]
    fn a_named_file_that_does_not_exist_is_missing() {
        let nowhere = std::env::temp_dir().join("agent-host-capability-nowhere/python");
        assert_eq!(existing_parent(&nowhere), None);
        assert_eq!(
            existing_parent(&std::env::temp_dir().join("x")),
            Some(std::env::temp_dir())
        );
    }
}
