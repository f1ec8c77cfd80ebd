//! `agent-host new NAME --lang rust|python|js`: scaffold an agent project.
//!
//! Writes a small agent that builds and runs in `console` with the commands
//! its README gives, from templates embedded in this binary (so a released
//! binary needs no checkout): Rust's beside this file (`new/rust/`),
//! JavaScript's in `guest-sdk/js/template/`, Python's the `echo-py`
//! example's `app.py` and `pyproject.toml` with a README of its own.
//!
//! Policy: the project directory (`--dir`, default `./NAME`) must not
//! exist or be empty; nothing is overwritten. `NAME` must be a package name
//! every language accepts: lowercase ASCII letters, digits and `-`,
//! starting with a letter.
//!
//! The Rust project's SDK dependency: a path dependency on the SDK of the
//! checkout this binary was built from when it is still there (a developer
//! build, and the tests, which have no network), else a git dependency on
//! the SDK's repository at this release's tag (a released binary).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::{Args, ValueEnum};

use agent_host::guest_build::js;

/// The languages `new` scaffolds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// A Rust crate using `agent-host-sdk`.
    Rust,
    /// A Python app using the `agent_host` package (componentize-py).
    Python,
    /// A JavaScript package using `@agent-host/sdk` (componentize-js).
    Js,
}

/// Arguments of `new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The project's (and its package's) name.
    name: String,

    /// The language to write the agent in.
    #[arg(long, value_enum)]
    lang: Lang,

    /// Where to create the project [default: ./NAME].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// One file of a template: its path in the project and its text, with
/// `{{name}}` (and, for Rust, `{{sdk_dependency}}`; for JavaScript
/// `{{sdk_version}}`) to fill in.
type Template = &'static [(&'static str, &'static str)];

const RUST: Template = &[
    ("Cargo.toml", include_str!("new/rust/Cargo.toml")),
    ("src/lib.rs", include_str!("new/rust/src/lib.rs")),
    ("README.md", include_str!("new/rust/README.md")),
];

const JS: Template = &[
    (
        "package.json",
        include_str!("../../../guest-sdk/js/template/package.json"),
    ),
    (
        "agent.js",
        include_str!("../../../guest-sdk/js/template/agent.js"),
    ),
    (
        "README.md",
        include_str!("../../../guest-sdk/js/template/README.md"),
    ),
];

const PYTHON: Template = &[
    (
        "app.py",
        include_str!("../../../guest-sdk/python/template/app.py"),
    ),
    (
        "pyproject.toml",
        include_str!("../../../guest-sdk/python/template/pyproject.toml"),
    ),
    (
        "README.md",
        include_str!("../../../guest-sdk/python/template/README.md"),
    ),
    (
        ".gitignore",
        include_str!("../../../guest-sdk/python/template/.gitignore"),
    ),
];

/// Runs `new`.
pub fn run(args: NewArgs) -> Result<ExitCode> {
    check_name(&args.name)?;
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() {
        let empty = dir.is_dir()
            && fs::read_dir(&dir)
                .with_context(|| format!("reading {}", dir.display()))?
                .next()
                .is_none();
        if !empty {
            bail!(
                "{} already exists and is not an empty directory; choose another NAME or --dir",
                dir.display()
            );
        }
    }
    let (template, fill): (Template, Vec<(&str, String)>) = match args.lang {
        Lang::Rust => (RUST, vec![("{{sdk_dependency}}", rust_sdk_dependency())]),
        Lang::Js => (JS, vec![("{{sdk_version}}", js::SDK_VERSION.to_string())]),
        Lang::Python => (PYTHON, vec![("echo-py", args.name.clone())]),
    };
    for (path, text) in template {
        let mut text = text.replace("{{name}}", &args.name);
        for (from, to) in &fill {
            text = text.replace(from, to);
        }
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "created {} ({:?} agent); next: agent-host console --plugin {}",
        dir.display(),
        args.lang,
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Refuses a name some language's package manager would refuse.
fn check_name(name: &str) -> Result<()> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && name.len() <= 64;
    if !valid {
        bail!(
            "`{name}` is not a usable project name: use lowercase letters, digits and `-` \
             (at most 64, starting with a letter, not ending with `-`)"
        );
    }
    Ok(())
}

/// The Rust template's `agent-host-sdk` dependency (see the module doc).
fn rust_sdk_dependency() -> String {
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk");
    match checkout
        .join("Cargo.toml")
        .is_file()
        .then(|| checkout.canonicalize())
    {
        Some(Ok(path)) => format!("{{ path = {:?} }}", path.display().to_string()),
        _ => format!(
            "{{ git = {:?}, tag = \"v{}\" }}",
            env!("CARGO_PKG_REPOSITORY"),
            env!("CARGO_PKG_VERSION")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_language_accepts() {
        for ok in ["echo", "my-agent", "a1"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Echo", "1agent", "my_agent", "a-", "../x", "a b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_existing_project_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("keep.txt"), "mine").unwrap();
        let args = NewArgs {
            name: "x".into(),
            lang: Lang::Js,
            dir: Some(dir.path().to_path_buf()),
        };
        let err = run(args).unwrap_err().to_string();
        assert!(err.contains("not an empty directory"), "{err}");
        assert_eq!(
            fs::read_to_string(dir.path().join("keep.txt")).unwrap(),
            "mine"
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
