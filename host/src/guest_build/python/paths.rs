//! Where the Python toolchain lives: `<user cache>/agent-host/python/<SDK version>`.
//!
//! Kept free of dependencies beyond `crate::dirs` so that the test
//! capability probe (`tests/capability`) includes this very file and agrees
//! with the host on the place.

use std::path::PathBuf;

/// The componentize-py the SDK is built and tested with (PyPI).
pub const COMPONENTIZE_PY: &str = "0.25.1";

/// The Python SDK's version: the WIT version it targets, which names the
/// toolchain directory (one per SDK release, side by side).
pub const SDK_VERSION: &str = "0.1.4";

/// The toolchain directory; `None` without a user cache directory.
pub fn toolchain_dir() -> Option<PathBuf> {
    crate::dirs::cache_dir("python").map(|dir| dir.join(SDK_VERSION))
}

/// The marker written last by setup, naming what was installed: a
/// toolchain without it (an interrupted setup) is set up again.
pub fn ready_marker(toolchain: &std::path::Path) -> PathBuf {
    toolchain.join("ready")
}
