//! On-disk cache of compiled components.
//!
//! Policy: an entry is named by the SHA-256 of the component's bytes (with
//! `-prewarmed` for the snapshot of a component that prewarms) *and* a
//! hash of everything in the engine that affects compiled code (wasmtime
//! version, target, settings: [`Engine::precompile_compatibility_hash`]). An
//! entry written by another wasmtime or another configuration is therefore
//! never even looked at. Entries are written to a temporary file and renamed,
//! so a reader never sees half an entry. A cache that cannot be read or
//! written is a warning, never an error: the component is compiled instead.
//!
//! Trust: loading an entry runs machine code from it. The directory must be
//! writable only by the user running agent-host (the default, under the
//! user's own cache directory, is).
//!
//! The key and the (de)serialization here are also those of ahead-of-time
//! plugins (`agent-host compile`, see `precompiled.rs`): one code path for
//! compiled code on disk.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Compiled-artifact cache rooted at one directory.
#[derive(Debug, Clone)]
pub(crate) struct ArtifactCache {
    dir: PathBuf,
    engine_key: String,
}

impl ArtifactCache {
    pub(crate) fn new(engine: &Engine, dir: PathBuf) -> Self {
        Self {
            dir,
            engine_key: engine_key(engine),
        }
    }

    fn entry(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}-{}.cwasm", self.engine_key))
    }

    /// Loads the compiled component stored under `key` (a digest, or
    /// [`prewarmed_key`] of one), if cached.
    pub(crate) fn load(&self, engine: &Engine, key: &str) -> Option<Component> {
        let path = self.entry(key);
        if !path.exists() {
            return None;
        }
        // SAFETY: the entry was written by `store` below with this engine's
        // compatibility key in its name, into a directory only this user can
        // write (see the module docs); wasmtime still checks the header.
        match unsafe { deserialize_file(engine, &path) } {
            Ok(component) => Some(component),
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "ignoring unreadable cache entry");
                None
            }
        }
    }

    /// Stores a compiled component under `key`. Failures are logged.
    pub(crate) fn store(&self, key: &str, component: &Component) {
        if let Err(err) = self.try_store(key, component) {
            tracing::warn!(dir = %self.dir.display(), error = %err, "could not write compile cache");
        }
    }

    fn try_store(&self, key: &str, component: &Component) -> anyhow::Result<()> {
        let bytes = serialize(component)?;
        std::fs::create_dir_all(&self.dir)?;
        write_atomically(&self.entry(key), &bytes)
    }
}

/// The key of a prewarming component's entry: its snapshot, compiled. A
/// warm start loads it and does not run `prewarm` again: the snapshot is a
/// function of the component's bytes (prewarm has no job and no input; what
/// it read from random or the clocks is frozen either way).
pub(crate) fn prewarmed_key(digest: &str) -> String {
    format!("{digest}-prewarmed")
}

/// The engine's compatibility key: 16 hex digits of a hash of everything
/// that affects compiled code (wasmtime version, target, settings). Two
/// engines with the same key accept each other's compiled code.
pub(crate) fn engine_key(engine: &Engine) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let key = hasher.0.finalize();
    hex::encode(&key[..8])
}

/// A compiled component's bytes, as the cache and `.cwasm` files hold them.
pub(crate) fn serialize(component: &Component) -> anyhow::Result<Vec<u8>> {
    Ok(component.serialize()?)
}

/// Loads a compiled component from bytes [`serialize`] produced.
///
/// # Safety
///
/// `bytes` run as machine code: they must come from [`serialize`] of a
/// trusted build (see `Component::deserialize`). wasmtime checks that they
/// were compiled by its own version and this engine's configuration.
pub(crate) unsafe fn deserialize(engine: &Engine, bytes: &[u8]) -> anyhow::Result<Component> {
    // SAFETY: the caller vouches for the bytes (see above).
    Ok(unsafe { Component::deserialize(engine, bytes) }?)
}

/// Loads a compiled component by mapping the file at `path` (no copy; pages
/// are read when used). The file may carry bytes after [`serialize`]'s
/// output (a `.cwasm`'s header): wasmtime reads the artifact by its own
/// offsets.
///
/// # Safety
///
/// As [`deserialize`]: the file runs as machine code.
pub(crate) unsafe fn deserialize_file(engine: &Engine, path: &Path) -> anyhow::Result<Component> {
    // SAFETY: the caller vouches for the file (see above).
    Ok(unsafe { Component::deserialize_file(engine, path) }?)
}

/// Writes `bytes` to a temporary file beside `path` and renames it there,
/// so a reader never sees half a file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = tmp_path(path);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Feeds a [`Hash`] into SHA-256, so the key is stable across builds (std's
/// `DefaultHasher` makes no such promise).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        // Not used: the key is the full digest, read from `self.0`.
        0
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
}
