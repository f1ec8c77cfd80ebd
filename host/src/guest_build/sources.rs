//! The sources of a Python or JavaScript project, and the stamp that lets a
//! build be skipped when they did not change (each such build takes 7–10 s
//! and about 0.5 GB).
//!
//! Policy:
//! - a project's sources are the files its kind accepts ([`Sources::is_source`])
//!   outside dot-entries and the directories that never hold sources
//!   ([`Sources::skipped`]: the build's output, installed packages, caches);
//! - the digest covers what decides the component: the toolchain's pins,
//!   every file of the SDK embedded in this binary (so another agent-host
//!   rebuilds), and each source's path relative to the project, length and
//!   contents, in path order;
//! - the stamp is `<component>.sha256`, written after the component, so an
//!   interrupted build is redone rather than trusted.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use sha2::{Digest as _, Sha256};

use crate::runtime::write_atomically;

/// What counts as a source in one kind of project.
pub struct Sources {
    /// Whether a file can change what the project builds.
    pub is_source: fn(&Path) -> bool,
    /// Directory names never walked into.
    pub skipped: &'static [&'static str],
}

impl Sources {
    /// The project's source files under `dir`, relative to it and sorted.
    pub fn list(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        self.walk(dir, dir, &mut files)?;
        files.sort();
        Ok(files)
    }

    fn walk(&self, root: &Path, dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
        for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            if entry.file_type()?.is_dir() {
                if !self.skipped.contains(&name.as_ref()) {
                    self.walk(root, &path, files)?;
                }
            } else if (self.is_source)(&path) {
                files.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
            }
        }
        Ok(())
    }

    /// The digest of the project in `dir` built by `toolchain` (its pins, as
    /// text) with the SDK files `sdk` (path, contents).
    pub fn digest<'a>(
        &self,
        dir: &Path,
        toolchain: &str,
        sdk: impl IntoIterator<Item = (String, &'a str)>,
    ) -> Result<String> {
        let mut hash = Sha256::new();
        let mut field = |bytes: &[u8]| {
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(bytes);
        };
        field(toolchain.as_bytes());
        for (path, text) in sdk {
            field(path.as_bytes());
            field(text.as_bytes());
        }
        for rel in self.list(dir)? {
            let file = dir.join(&rel);
            let bytes = fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            field(rel.to_string_lossy().as_bytes());
            field(&bytes);
        }
        Ok(hex::encode(hash.finalize()))
    }
}

/// Whether `component` exists and its stamp records `digest`.
pub fn is_current(component: &Path, digest: &str) -> bool {
    component.is_file() && fs::read_to_string(stamp(component)).is_ok_and(|d| d.trim() == digest)
}

/// Records that `component` was built from sources with `digest`.
pub fn record(component: &Path, digest: &str) -> Result<()> {
    let stamp = stamp(component);
    write_atomically(&stamp, digest.as_bytes())
        .with_context(|| format!("writing {}", stamp.display()))
}

/// The stamp beside `component`: `<component>.sha256`.
fn stamp(component: &Path) -> PathBuf {
    let mut name = component.as_os_str().to_os_string();
    name.push(".sha256");
    PathBuf::from(name)
}

/// A project directory holding `files` (paths relative to it), for tests
/// of what each kind counts as a source.
#[cfg(test)]
pub fn project_with(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in files {
        let path = dir.path().join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "x").unwrap();
    }
    dir
}

/// `names` as paths, to compare with [`Sources::list`] in tests.
#[cfg(test)]
pub fn paths(names: &[&str]) -> Vec<PathBuf> {
    names.iter().map(PathBuf::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const JS_LIKE: Sources = Sources {
        is_source: |p| p.extension().is_some_and(|e| e == "js"),
        skipped: &["dist"],
    };

    fn digest(dir: &Path) -> String {
        JS_LIKE
            .digest(dir, "tool@1", [("sdk.js".to_string(), "sdk")])
            .unwrap()
    }

    #[test]
    fn the_digest_follows_the_sources_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("agent.js"), "export default 1;").unwrap();
        let first = digest(dir.path());
        fs::create_dir_all(dir.path().join("dist")).unwrap();
        fs::write(dir.path().join("dist/skipped.js"), "built").unwrap();
        fs::create_dir_all(dir.path().join(".cache")).unwrap();
        fs::write(dir.path().join(".cache/hidden.js"), "hidden").unwrap();
        fs::write(dir.path().join("notes.txt"), "not a source").unwrap();
        assert_eq!(digest(dir.path()), first);
        fs::create_dir_all(dir.path().join("lib")).unwrap();
        fs::write(dir.path().join("lib/util.js"), "export const x = 1;").unwrap();
        let second = digest(dir.path());
        assert_ne!(second, first);
        fs::write(dir.path().join("lib/util.js"), "export const x = 2;").unwrap();
        assert_ne!(digest(dir.path()), second);
        assert_eq!(
            JS_LIKE.list(dir.path()).unwrap(),
            paths(&["agent.js", "lib/util.js"])
        );
    }

    #[test]
    fn the_toolchain_and_the_sdk_are_part_of_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("agent.js"), "export default 1;").unwrap();
        let base = digest(dir.path());
        let other_tool = JS_LIKE.digest(dir.path(), "tool@2", [("sdk.js".to_string(), "sdk")]);
        let other_sdk = JS_LIKE.digest(dir.path(), "tool@1", [("sdk.js".to_string(), "sdk2")]);
        assert_ne!(other_tool.unwrap(), base);
        assert_ne!(other_sdk.unwrap(), base);
    }

    #[test]
    fn a_component_is_current_only_with_its_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let component = dir.path().join("agent.wasm");
        assert!(!is_current(&component, "d1"));
        fs::write(&component, "wasm").unwrap();
        assert!(!is_current(&component, "d1"), "no stamp yet");
        record(&component, "d1").unwrap();
        assert!(is_current(&component, "d1"));
        assert!(!is_current(&component, "d2"));
        assert!(dir.path().join("agent.wasm.sha256").is_file());
    }
}
