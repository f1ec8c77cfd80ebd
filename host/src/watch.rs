//! Watching files for changes, debounced, for `run --watch` and `dev`.
//!
//! Directories are watched rather than files, because editors and build
//! tools replace a file (write elsewhere, rename over it) instead of
//! writing it in place; a watch on the file itself would be lost at the
//! first save. Bursts of events (a save is often several) become one
//! notification after the debounce period.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

/// A running watch; changes stop being reported when it is dropped.
pub struct Watch {
    _watcher: RecommendedWatcher,
    changes: mpsc::UnboundedReceiver<PathBuf>,
}

impl Watch {
    /// Watches `roots` (recursively for directories) and reports changed
    /// paths for which `relevant` is true.
    pub fn new(
        roots: &[PathBuf],
        relevant: impl Fn(&Path) -> bool + Send + 'static,
    ) -> Result<Self> {
        let (tx, changes) = mpsc::unbounded_channel();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
            let Ok(event) = event else { return };
            if matches!(event.kind, EventKind::Access(_)) {
                return;
            }
            for path in event.paths {
                if relevant(&path) {
                    let _ = tx.send(path);
                }
            }
        })
        .context("starting the file watcher")?;
        for root in roots {
            let mode = if root.is_dir() {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            watcher
                .watch(root, mode)
                .with_context(|| format!("watching {}", root.display()))?;
        }
        Ok(Self {
            _watcher: watcher,
            changes,
        })
    }

    /// Watches one file through its directory.
    pub fn file(path: &Path) -> Result<Self> {
        let path = std::path::absolute(path)?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let name = path.file_name().map(|n| n.to_os_string());
        Self::new(&[dir], move |changed| {
            changed.file_name().map(|n| n.to_os_string()) == name
        })
    }

    /// Waits for the next burst of changes and returns once it has been
    /// quiet for `debounce`. `None` when the watcher has stopped.
    pub async fn changed(&mut self, debounce: Duration) -> Option<()> {
        self.changes.recv().await?;
        loop {
            match tokio::time::timeout(debounce, self.changes.recv()).await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(_) => return Some(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_replaced_file_is_seen_once_per_burst() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agent.wasm");
        std::fs::write(&file, b"one").unwrap();
        let mut watch = Watch::file(&file).unwrap();
        // An editor-style save: write a temp file, rename it over the target.
        let tmp = dir.path().join(".agent.wasm.tmp");
        std::fs::write(&tmp, b"two").unwrap();
        std::fs::rename(&tmp, &file).unwrap();
        std::fs::write(dir.path().join("unrelated.txt"), b"x").unwrap();
        let seen = tokio::time::timeout(
            Duration::from_secs(10),
            watch.changed(Duration::from_millis(100)),
        )
        .await;
        assert_eq!(seen.unwrap(), Some(()));
        // Nothing else pending: the unrelated file was filtered out.
        let again = tokio::time::timeout(
            Duration::from_millis(300),
            watch.changed(Duration::from_millis(50)),
        )
        .await;
        assert!(again.is_err());
    }
}
