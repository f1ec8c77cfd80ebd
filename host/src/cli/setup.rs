//! `agent-host setup`: install LiveKit's client library for room I/O
//! (`--lang js|python`: a language's toolchain instead, see [`js`] and
//! [`python`]).
//!
//! Downloads the pinned `livekit` wheel with pip (`python3 -m pip
//! download`, the interpreter from `--python` or `PATH`), checks its
//! SHA-256, and unpacks `liblivekit_ffi.so`, its licence and the protocol
//! descriptors (for the schema check) into agent-host's cache. Idempotent:
//! when the cache already holds this wheel's files it does nothing. Files
//! are written under temporary names and renamed, and the marker naming the
//! wheel's hash is written last, so an interrupted setup is redone.

mod js;
mod python;

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context as _, Result, bail};
use clap::Args;
use sha2::{Digest as _, Sha256};

use agent_host::room::ffi::{
    DESCRIPTORS_FILE, LIBRARY_FILE, LICENSE_FILE, WHEEL_FILE, WHEEL_SHA256, WHEEL_VERSION,
    cache_dir, descriptor_set,
};

/// Name of the marker holding the installed wheel's SHA-256.
const MARKER: &str = "wheel.sha256";

/// Where the wheel keeps what setup extracts.
const LIBRARY_IN_WHEEL: &str = "livekit/rtc/resources/liblivekit_ffi.so";
const LICENSE_IN_WHEEL: &str = "livekit/rtc/resources/LICENSE.md";
const PROTO_IN_WHEEL: &str = "livekit/rtc/_proto/";

/// A language whose agents' toolchain `setup --lang` installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// componentize-py and the Python SDK, in a venv in agent-host's cache.
    Python,
    /// componentize-js (with npm) and the JavaScript SDK, in agent-host's
    /// cache.
    Js,
}

/// Arguments of `setup`.
#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Install the toolchain for agents in this language instead of
    /// LiveKit's client library (repeatable).
    #[arg(long, value_enum, value_name = "LANG")]
    lang: Vec<Lang>,

    /// The Python interpreter whose pip downloads the wheel (with `--lang
    /// python`: that makes the toolchain's venv) [default:
    /// python3 on PATH].
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,

    /// Install from this copy of the wheel instead of downloading it (its
    /// SHA-256 is checked all the same).
    #[arg(long, value_name = "FILE", conflicts_with = "python")]
    wheel: Option<PathBuf>,

    /// Install into this directory [default: ~/.cache/agent-host/livekit-ffi/<version>].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,

    /// Install again even if the cache already holds the library.
    #[arg(long)]
    force: bool,
}

/// Runs `setup`.
pub fn run(args: SetupArgs) -> Result<ExitCode> {
    if !args.lang.is_empty() {
        let mut code = ExitCode::SUCCESS;
        for lang in &args.lang {
            code = match lang {
                Lang::Python => python::run(args.python.as_deref(), args.force)?,
                Lang::Js => js::run(args.force)?,
            };
        }
        return Ok(code);
    }
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        bail!("the pinned LiveKit client library ({WHEEL_FILE}) is for x86-64 Linux only");
    }
    let dir = match args.dir.clone().or_else(cache_dir) {
        Some(dir) => dir,
        None => bail!("no cache directory (HOME is not set): give --dir"),
    };
    if !args.force && installed(&dir) {
        println!(
            "LiveKit client library {WHEEL_VERSION} is already installed: {}",
            dir.join(LIBRARY_FILE).display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let scratch = dir.join(format!(".download-{}", std::process::id()));
    let result = install(&args, &dir, &scratch);
    let _ = fs::remove_dir_all(&scratch);
    result?;
    println!(
        "installed LiveKit client library {WHEEL_VERSION} into {}:",
        dir.display()
    );
    for file in [LIBRARY_FILE, LICENSE_FILE, DESCRIPTORS_FILE] {
        println!("  {}", dir.join(file).display());
    }
    println!(
        "agent-host finds it there; `run --livekit-lib PATH` or LIVEKIT_LIB_PATH override it."
    );
    Ok(ExitCode::SUCCESS)
}

/// Whether `dir` holds every file of the pinned wheel.
fn installed(dir: &Path) -> bool {
    fs::read_to_string(dir.join(MARKER)).is_ok_and(|m| m.trim() == WHEEL_SHA256)
        && [LIBRARY_FILE, LICENSE_FILE, DESCRIPTORS_FILE]
            .iter()
            .all(|f| dir.join(f).is_file())
}

fn install(args: &SetupArgs, dir: &Path, scratch: &Path) -> Result<()> {
    let wheel = match &args.wheel {
        Some(wheel) => wheel.clone(),
        None => download(args.python.as_deref(), scratch)?,
    };
    eprintln!("checking {} ...", wheel.display());
    let bytes = fs::read(&wheel).with_context(|| format!("reading {}", wheel.display()))?;
    let digest = hex::encode(Sha256::digest(&bytes));
    if digest != WHEEL_SHA256 {
        bail!(
            "{} has SHA-256 {digest}, but livekit {WHEEL_VERSION} has {WHEEL_SHA256}: refusing to install it",
            wheel.display()
        );
    }
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .with_context(|| format!("{} is not a wheel (zip) file", wheel.display()))?;
    let read = |zip: &mut zip::ZipArchive<_>, name: &str| -> Result<Vec<u8>> {
        let mut entry = zip
            .by_name(name)
            .with_context(|| format!("the wheel has no {name}"))?;
        let mut out = Vec::new();
        entry
            .read_to_end(&mut out)
            .with_context(|| format!("unpacking {name}"))?;
        Ok(out)
    };
    eprintln!("unpacking {LIBRARY_FILE}, {LICENSE_FILE} and the protocol descriptors ...");
    let library = read(&mut zip, LIBRARY_IN_WHEEL)?;
    let license = read(&mut zip, LICENSE_IN_WHEEL)?;
    let mut modules: Vec<String> = zip
        .file_names()
        .filter_map(Result::ok)
        .filter(|n| n.starts_with(PROTO_IN_WHEEL) && n.ends_with("_pb2.py"))
        .map(|n| n.to_string())
        .collect();
    modules.sort();
    let mut sources = Vec::new();
    for name in modules {
        let source = String::from_utf8(read(&mut zip, &name)?)
            .with_context(|| format!("{name} is not UTF-8"))?;
        sources.push((name, source));
    }
    let descriptors =
        descriptor_set(&sources).map_err(|e| anyhow::anyhow!("reading the wheel's schema: {e}"))?;

    // The marker goes last: without it, the next setup starts over.
    let _ = fs::remove_file(dir.join(MARKER));
    write(dir, LIBRARY_FILE, &library, 0o755)?;
    write(dir, LICENSE_FILE, &license, 0o644)?;
    write(dir, DESCRIPTORS_FILE, &descriptors, 0o644)?;
    write(dir, MARKER, format!("{WHEEL_SHA256}\n").as_bytes(), 0o644)?;
    Ok(())
}

/// Writes `dir/name` through a temporary file and a rename.
fn write(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let target = dir.join(name);
    fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting permissions of {}", tmp.display()))?;
    fs::rename(&tmp, &target).with_context(|| format!("moving {} into place", target.display()))
}

/// Downloads the wheel with pip into `scratch`; returns its path.
fn download(python: Option<&Path>, scratch: &Path) -> Result<PathBuf> {
    let python = python.map_or_else(|| PathBuf::from("python3"), Path::to_path_buf);
    let pip = Command::new(&python)
        .args(["-m", "pip", "--version"])
        .stdin(Stdio::null())
        .output();
    match pip {
        Err(err) => bail!(
            "cannot run {} ({err}): setup downloads LiveKit's client library with pip; install Python 3 with pip, or give --python PATH (or --wheel FILE)",
            python.display()
        ),
        Ok(out) if !out.status.success() => bail!(
            "{} has no pip ({}): install pip (for example `apt-get install python3-pip`), or give --python PATH (or --wheel FILE)",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Ok(_) => {}
    }
    fs::create_dir_all(scratch).with_context(|| format!("creating {}", scratch.display()))?;
    eprintln!("downloading livekit=={WHEEL_VERSION} ({WHEEL_FILE}) with pip ...");
    let status = Command::new(&python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args([
            "--platform",
            "manylinux_2_28_x86_64",
            "--python-version",
            "3.11",
        ])
        .args(["--disable-pip-version-check", "--progress-bar", "off"])
        .arg(format!("livekit=={WHEEL_VERSION}"))
        .arg("-d")
        .arg(scratch)
        .stdin(Stdio::null())
        // pip's own lines are the progress; keep stdout for the result.
        .stdout(stderr())
        .status()
        .with_context(|| format!("running {} -m pip download", python.display()))?;
    if !status.success() {
        bail!(
            "pip could not download livekit=={WHEEL_VERSION} ({status}): check the network or the package index (PIP_INDEX_URL), or give --wheel FILE"
        );
    }
    let wheel = scratch.join(WHEEL_FILE);
    if !wheel.is_file() {
        bail!("pip did not produce {WHEEL_FILE} in {}", scratch.display());
    }
    Ok(wheel)
}

/// Our stderr, for a child's stdout.
fn stderr() -> Stdio {
    use std::os::fd::AsFd as _;
    std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_or_else(|_| Stdio::inherit(), Stdio::from)
}
