//! The plugin slot: which version of a plugin takes new jobs.
//!
//! Invariants:
//! - the current version is replaced atomically; an offer reads it once and
//!   its job runs on that version to the end, whatever swaps follow;
//! - a new version becomes current only after it compiled and type-checked,
//!   and, if it exports `prewarm`, after its prewarm succeeded (loading runs
//!   it, see `prewarm.rs`); a refused swap changes nothing;
//! - the slot holds only the current version strongly; older versions live
//!   exactly as long as a job (or an offer) still uses them, and are freed
//!   with their last job;
//! - swapping to a version that is still in memory (same digest) reuses it,
//!   with no compilation.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use super::{Plugin, PluginError, PluginVersion, Runtime};

/// The current plugin and the older versions still in use.
pub struct PluginSlot {
    runtime: Runtime,
    state: Mutex<State>,
}

struct State {
    current: Arc<Plugin>,
    /// Every version loaded, newest last; dead entries are pruned on use.
    loaded: Vec<Weak<Plugin>>,
}

/// A version in memory, as listed by [`PluginSlot::versions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedVersion {
    /// The version.
    pub version: PluginVersion,
    /// Whether it takes new jobs.
    pub current: bool,
}

/// What a swap did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swap {
    /// The version that was current before.
    pub old: PluginVersion,
    /// The version that is current now.
    pub new: PluginVersion,
    /// Whether the new version was still in memory (no compilation).
    pub reused: bool,
}

impl PluginSlot {
    /// A slot whose current version is `plugin`.
    pub fn new(runtime: Runtime, plugin: Arc<Plugin>) -> Self {
        let loaded = vec![Arc::downgrade(&plugin)];
        Self {
            runtime,
            state: Mutex::new(State {
                current: plugin,
                loaded,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The version that takes new jobs.
    pub fn current(&self) -> Arc<Plugin> {
        self.lock().current.clone()
    }

    /// Loads `bytes` and makes it current. On error the current version
    /// stays. Compiling takes a while; call it off the async executor's hot
    /// path (e.g. in `spawn_blocking`).
    pub fn swap(&self, bytes: &[u8]) -> Result<Swap, PluginError> {
        let started = Instant::now();
        let digest = super::plugin::digest(bytes);
        let in_memory = self.find(&digest);
        let reused = in_memory.is_some();
        let plugin = match in_memory {
            Some(plugin) => plugin,
            None => self.runtime.load_plugin(bytes)?,
        };
        let mut state = self.lock();
        let old = std::mem::replace(&mut state.current, plugin.clone());
        if !reused {
            state.loaded.push(Arc::downgrade(&plugin));
        }
        state.loaded.retain(|w| w.strong_count() > 0);
        let swap = Swap {
            old: old.version().clone(),
            new: plugin.version().clone(),
            reused,
        };
        tracing::info!(
            old = %swap.old,
            new = %swap.new,
            reused,
            took = ?started.elapsed(),
            "plugin swapped: new jobs run the new version, running jobs keep theirs"
        );
        Ok(swap)
    }

    /// The loaded version with this digest, if any job still holds it.
    fn find(&self, digest: &str) -> Option<Arc<Plugin>> {
        let mut state = self.lock();
        state.loaded.retain(|w| w.strong_count() > 0);
        state
            .loaded
            .iter()
            .filter_map(Weak::upgrade)
            .find(|p| p.version().digest == digest)
    }

    /// Every version in memory (current, or still used by a job), oldest first.
    pub fn versions(&self) -> Vec<LoadedVersion> {
        let mut state = self.lock();
        state.loaded.retain(|w| w.strong_count() > 0);
        let current = state.current.version().digest.clone();
        state
            .loaded
            .iter()
            .filter_map(Weak::upgrade)
            .map(|p| LoadedVersion {
                current: p.version().digest == current,
                version: p.version().clone(),
            })
            .collect()
    }
}
